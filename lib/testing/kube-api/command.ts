/**
 * What `dromedary kube-api --port <n>` runs: start the test server, write a kubeconfig for it and
 * say where both are. The CLI owns argument parsing and signal handling; this returns the server
 * so the caller can close it.
 *
 * The server is reachable by every local user, so it requires the bearer token it writes into the
 * kubeconfig (a random one unless given), and the kubeconfig is the owner's only (0600). It serves
 * HTTPS with a self-signed certificate that the kubeconfig names as the CA, because kubectl (like
 * every client-go program) sends a bearer token only over TLS. `anonymous` turns the token check off.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { type KubeApiServer, type KubeApiServerOptions, startKubeApiServer } from './server.ts';

export interface KubeApiCommandOptions extends KubeApiServerOptions {
  /** Where to write the kubeconfig. Default `./kubeconfig.dromedary-test.yaml`. */
  kubeconfigPath?: string;
  /** Token put in the kubeconfig and required by the server. Default: 32 random bytes, base64url. */
  token?: string;
  /** Accept requests without a token (or with any token), and write none into the kubeconfig. */
  anonymous?: boolean;
  /** Where the lines of output go. Default stdout. */
  out?: (line: string) => void;
}

export async function runKubeApiCommand(options: KubeApiCommandOptions = {}): Promise<KubeApiServer> {
  const { kubeconfigPath = 'kubeconfig.dromedary-test.yaml', anonymous = false, out = (line) => process.stdout.write(`${line}\n`), ...rest } = options;
  const { token: given, ...serverOptions } = rest;
  const token = anonymous ? given : (given ?? randomBytes(32).toString('base64url'));
  const tokens = anonymous || token === undefined ? serverOptions.tokens : { ...serverOptions.tokens, [token]: serverOptions.tokens?.[token] ?? {} };
  const server = await startKubeApiServer({ ...serverOptions, tls: serverOptions.tls ?? true, tokens });
  try {
    const path = await server.writeKubeconfig(resolve(kubeconfigPath), token === undefined ? {} : { token });
    out(`Kubernetes API test server listening on ${server.url}`);
    out(`kubeconfig written to ${path} (export KUBECONFIG=${path})`);
    out(
      anonymous
        ? 'Anonymous access: any local user can read and write through this server'
        : 'Requests must carry the bearer token of the kubeconfig (kubectl --kubeconfig … and dromedary run with KUBECONFIG do)',
    );
    return server;
  } catch (err) {
    await server.close();
    throw err;
  }
}
