import { expect } from 'chai';
import { startKubeApiServer, type KubeApiServer } from '../../../lib/testing/index.ts';
import { loadClientNode } from '../../../lib/cluster/kubernetes/client.ts';
import { LeaseLockStore } from '../../../lib/cluster/kubernetes/lease-store.ts';
import { microTime, type LockRecord } from '../../../lib/cluster/election/lock-store.ts';
import { captureLogger } from '../../support/capture-logger.ts';
import { waitFor } from '../../support/wait.ts';

const record = (holder: string): LockRecord => ({ holderIdentity: holder, leaseDurationMs: 15_000, acquireTime: microTime(), renewTime: microTime(), leaseTransitions: 0 });

describe('kubernetes backend: the shared watch', function () {
  this.timeout(30_000);
  let server: KubeApiServer;
  before(async () => {
    // Frequent bookmarks, as a quiet collection's only sign of life.
    server = await startKubeApiServer({ namespace: 'w', bookmarkIntervalMs: 200, tokens: { watcher: {}, writer: {} } });
  });
  after(async () => {
    await server.close();
  });

  async function leaseStore(token: string, watchIdleMs: number) {
    const k8s = await loadClientNode();
    const kc = new k8s.KubeConfig();
    kc.loadFromString(server.kubeconfig({ namespace: 'w', token }));
    const capture = captureLogger();
    return { store: new LeaseLockStore(k8s, kc, { namespace: 'w', prefix: 'watch', labels: { provider: 'dromedary' }, watchIdleMs, logger: capture.logger }), capture };
  }

  it('passes changes with their record, reopens after the API server drops it, and starts over after 410 Expired', async () => {
    const { store } = await leaseStore('watcher', 30_000);
    const seen: Array<{ version?: string; holder?: string }> = [];
    const off = store.watch('lock1', (version, r) => seen.push({ version, holder: r?.holderIdentity }));
    try {
      const signal = AbortSignal.timeout(5000);
      const created = await store.create('lock1', record('a'), signal);
      await waitFor(() => seen.some((e) => e.version === created.version && e.holder === 'a'));

      // The API server goes away and comes back with its history compacted: the watch resumes from
      // a version that is now too old, gets 410 Expired, and must start a fresh stream.
      await server.stop();
      server.createPod({ name: 'bump', namespace: 'w' }); // moves the global resourceVersion past the watch's
      server.store.compact();
      await server.start();
      const updated = await store.update('lock1', record('b'), created.version, AbortSignal.timeout(5000));
      await waitFor(() => seen.some((e) => e.version === updated.version && e.holder === 'b'), { timeout: 15_000, message: 'the change after the restart' });
      expect(seen.filter((e) => e.holder === 'b').length).to.be.at.least(1);
      // Three streams: the first, the resumed one that got 410 Expired, and a fresh one.
      expect(server.requests({ token: 'watcher', verb: 'watch' }).length).to.be.at.least(3);
    } finally {
      off();
      await store.close();
    }
  });

  it('asks for bookmarks and a server-side timeout, and reopens a stream that falls silent without ending, resuming where it was', async () => {
    const idle = 2000;
    const { store: watcher, capture } = await leaseStore('watcher', idle);
    const { store: writer } = await leaseStore('writer', 30_000);
    const seen: Array<string | undefined> = [];
    const off = watcher.watch('stall', (version) => seen.push(version));
    try {
      const created = await writer.create('stall', record('a'), AbortSignal.timeout(5000));
      await waitFor(() => seen.includes(created.version), { message: 'the first change' });
      const latest = server.requests({ token: 'watcher', verb: 'watch' }).at(-1)!;
      const query = new URLSearchParams(latest.query);
      expect(query.get('allowWatchBookmarks')).to.equal('true');
      expect(query.get('timeoutSeconds')).to.equal(String(idle / 2000));

      // A healthy quiet stream: the server ends it every timeoutSeconds, with bookmarks in between; none is taken for dead.
      const healthySince = server.requests({ token: 'watcher', verb: 'watch' }).length;
      await waitFor(() => server.requests({ token: 'watcher', verb: 'watch' }).length >= healthySince + 2, { timeout: 10_000, message: 'two server-side ends' });
      expect(capture.messages().filter((m) => m.includes('silent'))).to.deep.equal([]);

      // The connection dies without a FIN: nothing more arrives on it, not even its end.
      server.faults('watcher').stallWatches();
      const updated = await writer.update('stall', record('b'), created.version, AbortSignal.timeout(5000));
      await waitFor(() => seen.includes(updated.version), { timeout: 4 * idle, message: 'the change made while the stream was silent' });
      expect(capture.messages().some((m) => m.includes(`was silent for ${idle}ms`))).to.equal(true);
    } finally {
      off();
      await watcher.close();
      await writer.close();
    }
  });
});
