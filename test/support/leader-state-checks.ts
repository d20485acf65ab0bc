import { expect } from 'chai';
import type { ClusterView } from '../../lib/cluster/cluster-service.ts';
import { ConfigurationError, LeaderStateTooLargeError, LeadershipLostError } from '../../lib/errors.ts';
import { LEADER_STATE_MAX_BYTES } from '../../lib/spi/leader-state.ts';
import { waitFor } from './wait.ts';

/**
 * One backend's leader state through its views, in-process: `leader` leads the lock and `follower`
 * has seen it lead. `stored()` reads the lock's state straight from the server (the key, row or
 * node), to show where it lives. The leader closes at the end; the follower must then lead within
 * `handover` ms.
 */
export async function checkLeaderStateHandover(leader: ClusterView, follower: ClusterView, stored: () => Promise<unknown>, handover: number): Promise<void> {
  const first = leader.term!;
  await leader.state.set('cursor', { since: 5, etag: 'W/"é"' });
  await leader.state.set('fired', 1_700_000_000_000);
  expect(await stored()).to.deep.equal({ cursor: { since: 5, etag: 'W/"é"' }, fired: 1_700_000_000_000 });
  expect(await follower.state.get('cursor')).to.deep.equal({ since: 5, etag: 'W/"é"' });
  expect(await follower.state.get('missing')).to.equal(undefined);

  // Only the leader writes.
  expect(await follower.state.set('cursor', { since: 0 }).catch((e: unknown) => e)).to.be.instanceOf(LeadershipLostError);
  // Bad values and too much state are refused, naming the key, and leave the stored state alone.
  expect(await leader.state.set('when', new Date() as never).catch((e: unknown) => e))
    .to.be.instanceOf(ConfigurationError)
    .that.has.property('message')
    .that.contains('key when');
  const big = await leader.state.set('blob', 'x'.repeat(LEADER_STATE_MAX_BYTES)).catch((e: unknown) => e);
  expect(big).to.be.instanceOf(LeaderStateTooLargeError).that.has.property('message').that.contains('key blob');
  // Removing a key; the rest stays.
  await leader.state.set('fired', undefined);
  expect(await stored()).to.deep.equal({ cursor: { since: 5, etag: 'W/"é"' } });

  // A graceful handover: the next leader reads what the last one wrote and carries on.
  await leader.close();
  await waitFor(() => follower.isLeader, { timeout: handover, message: 'the follower to lead after the handover' });
  expect(await follower.state.get('cursor')).to.deep.equal({ since: 5, etag: 'W/"é"' });
  await follower.state.set('cursor', { since: 6 });
  // The ended term can no longer write, not even through the new leader's view.
  expect(await follower.state.set('cursor', { since: 1 }, { term: first }).catch((e: unknown) => e)).to.be.instanceOf(LeadershipLostError);
  expect(await stored()).to.deep.equal({ cursor: { since: 6 } });
  expect(await follower.state.get('cursor')).to.deep.equal({ since: 6 });
}
