import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A self-signed certificate for 127.0.0.1, made by openssl in a temporary folder; remove() in after hooks. */
export interface SelfSignedCertificate {
  readonly dir: string;
  /** The certificate, PEM: also the CA file a client must trust. */
  readonly certFile: string;
  readonly keyFile: string;
  remove(): void;
}

export function makeSelfSignedCertificate(): SelfSignedCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'dromedary-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl could not make a test certificate (install openssl): ${(err as Error).message} ${stderr}`);
  }
  return { dir, certFile, keyFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestHttpsServer {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly requests: string[];
  close(): Promise<void>;
}

/** A real node:https server on 127.0.0.1 and a free port, serving with the given certificate. */
export async function startHttpsServer(cert: SelfSignedCertificate, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestHttpsServer> {
  const requests: string[] = [];
  const server: Server = createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (req, res) => {
    requests.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
