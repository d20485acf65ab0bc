import { expect } from 'chai';
import { ElectorClusterService } from '../../lib/cluster/elector-cluster-service.ts';
import { MemoryLockStore } from '../../lib/cluster/memory/memory-store.ts';
import { validateTimings } from '../../lib/cluster/election/timings.ts';
import { singleton, type SingletonHandle, type SingletonTerm } from '../../lib/cluster/singleton.ts';
import { LeadershipLostError } from '../../lib/errors.ts';
import { captureLogger } from '../support/capture-logger.ts';
import { waitFor } from '../support/wait.ts';

// Long enough that a busy machine's stalls never lapse a term by themselves: these tests play the
// lapse with the clock; the next term starts at the next renewal, within retryPeriod.
const timings = validateTimings({ leaseDuration: 6000, renewDeadline: 4000, retryPeriod: 300 });

describe('singleton services and their leadership term', () => {
  const services: ElectorClusterService[] = [];
  const handles: SingletonHandle[] = [];
  // The elector's monotonic clock, moved forward to play a pause: on resume, renewDeadline has passed
  // before any of the member's timers has run.
  let skew = 0;
  afterEach(async () => {
    for (const h of handles.splice(0)) await h.close();
    for (const s of services.splice(0)) await s.stop();
    skew = 0;
  });

  async function member(id: string, store: MemoryLockStore): Promise<ElectorClusterService> {
    const service = new ElectorClusterService({ kind: 'memory', memberId: id, store, timings, logger: captureLogger().logger, elector: { now: () => performance.now() + skew } });
    services.push(service);
    await service.start();
    return service;
  }

  it('starts the service with its term: the lock, the member, the fencing token, a signal and an isLeader() gate', async () => {
    const store = new MemoryLockStore();
    const cluster = await member('a', store);
    const terms: SingletonTerm[] = [];
    const handle = singleton(cluster, 'lock1', { start: (term) => void terms.push(term) });
    handles.push(handle);
    await waitFor(() => handle.running);
    const [term] = terms;
    expect(term).to.include({ lock: 'lock1', memberId: 'a', token: store.peek('lock1')!.record.leaseTransitions });
    expect(handle.term).to.equal(term);
    const { isLeader } = term!;
    expect(isLeader()).to.equal(true);
    expect(term!.signal.aborted).to.equal(false);
  });

  it('closes the gate the moment a pause has outlived the term, aborts its signal, stops the service and starts it again for the next term', async () => {
    const store = new MemoryLockStore();
    const cluster = await member('a', store);
    const log: string[] = [];
    const terms: SingletonTerm[] = [];
    let units = 0;
    // The README's pattern: a loop that checks the gate before each unit and stops on the signal.
    const handle = singleton(cluster, 'lock1', {
      start(term) {
        terms.push(term);
        log.push('start');
        const timer = setInterval(() => {
          if (!term.isLeader()) return;
          units += 1;
        }, 5);
        term.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
      },
      stop: () => void log.push('stop'),
    });
    handles.push(handle);
    await waitFor(() => units >= 3, { message: 'the service to do some units of work' });
    const first = terms[0]!;

    skew += timings.leaseDuration * 10;
    // The gate is judged on the monotonic clock, before any timer of the member has noticed the lapse.
    expect(first.isLeader()).to.equal(false);
    const unitsAtLapse = units;
    expect(first.signal.aborted).to.equal(true);
    expect(first.signal.reason).to.be.instanceOf(LeadershipLostError);
    await waitFor(() => log.includes('stop'), { message: 'the service to be stopped' });
    expect(units).to.equal(unitsAtLapse);

    // Still the holder in the store: its next renewal is a fresh acquisition, a new term, a new start.
    await waitFor(() => terms.length === 2, { timeout: timings.retryPeriod + 2000, message: 'a start for the next term' });
    expect(terms[1]).not.to.equal(first);
    expect(terms[1]!.isLeader()).to.equal(true);
    expect(log).to.deep.equal(['start', 'stop', 'start']);
  });

  it('keeps services written as start() and stop() working, moving them on handover', async () => {
    const store = new MemoryLockStore();
    const a = await member('a', store);
    const log: string[] = [];
    const ha = singleton(a, 'lock1', { start: () => void log.push('a start'), stop: () => void log.push('a stop') });
    await waitFor(() => ha.running);
    const b = await member('b', store);
    const hb = singleton(b, 'lock1', { start: () => void log.push('b start'), stop: () => void log.push('b stop') });
    handles.push(hb);
    await ha.close();
    await waitFor(() => hb.running);
    expect(log).to.deep.equal(['a start', 'a stop', 'b start']);
  });
});
