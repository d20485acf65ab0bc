import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../engine/context.ts';
import type { ClusterService } from '../cluster/cluster-service.ts';
import { createMetrics } from './metrics.ts';

/** Answers a request if it is one of the operations endpoints (/metrics); false lets the health server go on. */
export type OperationsHandler = (path: string, req: IncomingMessage, res: ServerResponse) => boolean;

/** The operations endpoints beside the probes: Prometheus metrics at /metrics. */
export async function createOperationsHandler(options: { context: Context; cluster?: ClusterService }): Promise<OperationsHandler> {
  const metrics = await createMetrics(options);
  return (path, req, res) => {
    if (path !== '/metrics') return false;
    metrics.text().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
    return true;
  };
}
