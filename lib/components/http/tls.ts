import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import { ResolveEndpointError } from '../../errors.ts';
import type { Logger } from '../../logging/logger.ts';
import type { ParsedUri } from '../../uri/parse.ts';
import { OPTION_PREFIX } from './target.ts';

/** TLS options shared by `https:` and `http-poll:https://` (Camel's sslContextParameters, in Node's terms). */
export const tlsOptions = {
  caFile: { type: 'string', description: 'PEM file of certificate authorities to trust besides the built-in ones (a private CA, a self-signed server)' },
  rejectUnauthorized: { type: 'boolean', default: true, description: 'verify the server certificate; false accepts any certificate (testing only: it removes all protection)' },
} as const;

/** Node's codes for a certificate chain that does not lead to a trusted authority. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

/**
 * The agent for https requests, or undefined for Node's defaults. A CA file is read once, at
 * startup, so a wrong path fails the route instead of every request.
 */
export async function createHttpsAgent(uri: ParsedUri, options: { caFile?: string; rejectUnauthorized: boolean }, logger: Logger): Promise<Agent | undefined> {
  if (options.caFile === undefined && options.rejectUnauthorized) return undefined;
  let ca: string[] | undefined;
  if (options.caFile !== undefined) {
    let pem: string;
    try {
      pem = await readFile(options.caFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new ResolveEndpointError(uri.masked, `${OPTION_PREFIX}caFile: cannot read "${options.caFile}" (${code}). Give the path of a PEM file holding the CA certificate(s) to trust`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new ResolveEndpointError(uri.masked, `${OPTION_PREFIX}caFile: "${options.caFile}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    }
    // Node's `ca` replaces the built-in list; keep it, so public servers stay trusted too.
    ca = [...rootCertificates, pem];
  }
  if (!options.rejectUnauthorized) {
    logger.warn(`${uri.masked}: ${OPTION_PREFIX}rejectUnauthorized=false: server certificates are not verified, so anyone on the network path can read and change this traffic. Trust the server's CA with ${OPTION_PREFIX}caFile instead`);
  }
  return new Agent({ ca, rejectUnauthorized: options.rejectUnauthorized });
}

/** A hint for a TLS failure, naming the option that fixes it; undefined for other errors. */
export function tlsHint(code: string | undefined): string | undefined {
  if (code === undefined) return undefined;
  if (UNTRUSTED.has(code)) {
    return `the server's certificate is not signed by a trusted authority: to trust a private CA or a self-signed server, set ${OPTION_PREFIX}caFile=<PEM file of its CA> (or NODE_EXTRA_CA_CERTS for the whole process)`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'the server certificate does not name this host: connect with a name the certificate lists';
  if (code === 'CERT_HAS_EXPIRED') return 'the server certificate has expired';
  return undefined;
}
