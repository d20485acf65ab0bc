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
    server = await startKubeApiServer({ namespace: 'w' });
  });
  after(async () => {
    await server.close();
  });

  it('passes changes with their record, reopens after the API server drops it, and starts over after 410 Expired', async () => {
    const k8s = await loadClientNode();
    const kc = new k8s.KubeConfig();
    kc.loadFromString(server.kubeconfig({ namespace: 'w' }));
    const capture = captureLogger();
    const store = new LeaseLockStore(k8s, kc, { namespace: 'w', prefix: 'watch', labels: { provider: 'dromedary' }, logger: capture.logger });
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
      expect(server.requests({ verb: 'watch' }).length).to.be.at.least(3);
    } finally {
      off();
      await store.close();
    }
  });
});
