/**
 * What `dromedary kube-api --port <n>` runs: start the test server, write a kubeconfig for it and
 * say where both are. The CLI owns argument parsing and signal handling; this returns the server
 * so the caller can close it.
 */
import { resolve } from 'node:path';
import { type KubeApiServer, type KubeApiServerOptions, startKubeApiServer } from './server.ts';

export interface KubeApiCommandOptions extends KubeApiServerOptions {
  /** Where to write the kubeconfig. Default `./kubeconfig.dromedary-test.yaml`. */
  kubeconfigPath?: string;
  /** Token put in the kubeconfig (and registered with the server when `tokens` is given). */
  token?: string;
  /** Where the two lines of output go. Default stdout. */
  out?: (line: string) => void;
}

export async function runKubeApiCommand(options: KubeApiCommandOptions = {}): Promise<KubeApiServer> {
  const { kubeconfigPath = 'kubeconfig.dromedary-test.yaml', token, out = (line) => process.stdout.write(`${line}\n`), ...serverOptions } = options;
  const tokens = serverOptions.tokens && token !== undefined && !(token in serverOptions.tokens) ? { ...serverOptions.tokens, [token]: {} } : serverOptions.tokens;
  const server = await startKubeApiServer({ ...serverOptions, tokens });
  try {
    const path = await server.writeKubeconfig(resolve(kubeconfigPath), token === undefined ? {} : { token });
    out(`Kubernetes API test server listening on ${server.url}`);
    out(`kubeconfig written to ${path} (export KUBECONFIG=${path})`);
    return server;
  } catch (err) {
    await server.close();
    throw err;
  }
}
