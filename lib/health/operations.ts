import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../engine/context.ts';
import type { ClusterService } from '../cluster/cluster-service.ts';
import { createMetrics } from './metrics.ts';
import { overview } from './overview.ts';
import { maskSecrets } from '../uri/mask.ts';

/** Answers a request if it is one of the operations endpoints; false lets the health server go on. */
export type OperationsHandler = (path: string, req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The operations endpoints beside the probes: Prometheus metrics at /metrics, and the read-only
 * web console at / (one static page) with the JSON it polls at /api/overview.
 */
export async function createOperationsHandler(options: { context: Context; cluster?: ClusterService }): Promise<OperationsHandler> {
  const { context, cluster } = options;
  const metrics = await createMetrics(options);
  const page = await readFile(new URL('./console.html', import.meta.url), 'utf8');
  // The page's one inline script is allowed by its hash; nothing else may run or load.
  const script = /<script>([\s\S]*?)<\/script>/.exec(page)![1]!;
  const csp = `default-src 'none'; script-src 'sha256-${createHash('sha256').update(script).digest('base64')}'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'`;
  const send = (req: IncomingMessage, res: ServerResponse, type: string, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  return (path, req, res) => {
    if (path === '/' || path === '/console') {
      send(req, res, 'text/html; charset=utf-8', page, { 'Content-Security-Policy': csp });
      return true;
    }
    if (path === '/api/overview') {
      overview(context, cluster).then(
        (o) => send(req, res, 'application/json', JSON.stringify(o)),
        (err: unknown) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(maskSecrets(`overview failed: ${err instanceof Error ? err.message : String(err)}\n`));
        },
      );
      return true;
    }
    if (path !== '/metrics') return false;
    metrics.text().then(
      (text) => send(req, res, metrics.contentType, text),
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
    return true;
  };
}
