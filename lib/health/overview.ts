import type { Context } from '../engine/context.ts';
import type { ClusterService } from '../cluster/cluster-service.ts';
import type { Route } from '../engine/route.ts';
import { MasterConsumer } from '../components/master/master-consumer.ts';
import { isMetered } from '../spi/endpoint-meters.ts';

/**
 * Whether the route takes exchanges on this member now: a master: route is started on every member
 * but its consumer runs only on the leader.
 */
export function isConsuming(route: Route): boolean {
  const consumer = route.consumer;
  return route.status === 'started' && (consumer instanceof MasterConsumer ? consumer.isMaster : consumer !== undefined);
}

export interface Overview {
  member: string | null;
  kind: string | null;
  state: string;
  time: string;
  routes: Array<{ id: string; endpoint: string; status: string; consuming: boolean; completed: number; failed: number; inflight: number }>;
  locks: Array<{ lock: string; leader: string | null; isLeader: boolean; term: number | null; members: Array<{ id: string; isLeader: boolean; isLocal: boolean }> }>;
  /** The endpoints whose components count their work (amqp, http-poll), with those counts. */
  endpoints: Array<{ endpoint: string; counts: Array<{ label: string; value: number }> }>;
}

/** What the console shows: this member's routes with their counts and state, the locks it takes part in, and the endpoints' counts. */
export async function overview(context: Context, cluster: ClusterService | undefined): Promise<Overview> {
  const endpoints = (await context.endpoints()).filter(isMetered);
  return {
    member: cluster?.memberId ?? null,
    kind: cluster?.kind ?? null,
    state: context.state,
    time: new Date().toISOString(),
    routes: context.routes.map((route) => {
      const { total, failed, inflight } = route.stats;
      return { id: route.id, endpoint: route.endpoint.maskedUri, status: route.status, consuming: isConsuming(route), completed: total - failed - inflight, failed, inflight };
    }),
    locks: (cluster?.locks ?? []).map((lock) => {
      // Another reference to a lock that already has views: closing it never stops the election.
      const view = cluster!.view(lock);
      try {
        return {
          lock,
          leader: view.leader ?? null,
          isLeader: view.isLeader,
          term: view.term?.token ?? null,
          members: view.members.map((m) => ({ id: m.id, isLeader: m.isLeader, isLocal: m.isLocal })),
        };
      } finally {
        void view.close();
      }
    }),
    endpoints: endpoints.map((e) => ({ endpoint: e.maskedUri, counts: e.meters.map((m) => ({ label: m.label, value: m.read() })) })),
  };
}
