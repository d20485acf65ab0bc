import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from '../engine/context.ts';
import type { ClusterService } from '../cluster/cluster-service.ts';
import { createOperationsHandler } from './operations.ts';

export interface HealthServerOptions {
  context: Context;
  cluster?: ClusterService;
  port: number;
  /** 127.0.0.1 unless told otherwise; a pod's probes need 0.0.0.0. */
  host?: string;
}

export interface HealthServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Probes for orchestrators. /healthz answers while the event loop runs and the context has not
 * failed (a hung process cannot answer, so the kubelet restarts it); /readyz answers 200 once the
 * routes have started and 503 while starting or stopping; /leadership shows who leads each lock.
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { context, cluster } = options;
  const operations = await createOperationsHandler({ context, cluster });
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'use GET' });
    if (operations(path!, req, res)) return;
    if (path === '/healthz') {
      const up = context.state !== 'stopped';
      return send(up ? 200 : 503, { status: up ? 'UP' : 'DOWN', state: context.state });
    }
    if (path === '/readyz') {
      const ready = context.isStarted;
      return send(ready ? 200 : 503, { status: ready ? 'UP' : 'DOWN', state: context.state, routes: context.routes.map((r) => ({ id: r.id, status: r.status })) });
    }
    if (path === '/leadership') {
      const locks = (cluster?.locks ?? []).map((lock) => {
        // Another reference to a lock that already has views: closing it never stops the election.
        const view = cluster!.view(lock);
        try {
          return { lock, leader: view.leader ?? null, isLeader: view.isLeader, members: view.members.map((m) => m.id) };
        } finally {
          void view.close();
        }
      });
      return send(200, { member: cluster?.memberId ?? null, kind: cluster?.kind ?? null, locks });
    }
    send(404, { error: `no such endpoint ${path}: use /healthz, /readyz or /leadership` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
