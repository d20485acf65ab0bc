/**
 * Kubeconfig text for the test server. Over HTTPS the cluster carries the server's self-signed
 * certificate as its CA. Over plain HTTP it carries
 * `insecure-skip-tls-verify: true`: @kubernetes/client-node refuses http:// servers otherwise
 * ("HTTP protocol is not allowed when skipTLSVerify is not set or false"). Scalars are written as
 * JSON strings, which YAML reads verbatim, so any token is safe to embed.
 */

export interface KubeconfigOptions {
  /** The API server URL. */
  server: string;
  /** Bearer token of the user; none when omitted. */
  token?: string;
  /** Namespace of the context. */
  namespace?: string;
  /** Names of the cluster, user and context entries. Default `dromedary-test`. */
  name?: string;
  /** PEM certificate of an https server: written as certificate-authority-data instead of skipping verification. */
  caCertificate?: string;
}

export function kubeconfigYaml(options: KubeconfigOptions): string {
  const name = options.name ?? 'dromedary-test';
  const q = (s: string): string => JSON.stringify(s);
  const lines = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${q(name)}`,
    '  cluster:',
    `    server: ${q(options.server)}`,
    options.caCertificate === undefined
      ? '    insecure-skip-tls-verify: true'
      : `    certificate-authority-data: ${q(Buffer.from(options.caCertificate).toString('base64'))}`,
    'users:',
    `- name: ${q(name)}`,
    options.token === undefined ? '  user: {}' : `  user:\n    token: ${q(options.token)}`,
    'contexts:',
    `- name: ${q(name)}`,
    '  context:',
    `    cluster: ${q(name)}`,
    `    user: ${q(name)}`,
    ...(options.namespace ? [`    namespace: ${q(options.namespace)}`] : []),
    `current-context: ${q(name)}`,
    'preferences: {}',
  ];
  return `${lines.join('\n')}\n`;
}
