import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadClientNode, loadKubeConfig, type K8s } from '../../../lib/cluster/kubernetes/client.ts';
import { ConfigurationError } from '../../../lib/errors.ts';
import { spawnCli, type ProcessHandle } from '../../support/cli-process.ts';

const SECRETS = ['T0kenS3cretValue', 'Passw0rdS3cret', 'Q2xpZW50S2V5RGF0YQ'];

/** A kubeconfig with credentials whose line 12 is indented wrongly. */
const MALFORMED = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://10.0.0.1:6443
users:
- name: u
  user:
    token: ${SECRETS[0]}
    password: ${SECRETS[1]}
   client-key-data: ${SECRETS[2]}
contexts: []
`;

// Issue 17.3: a malformed kubeconfig printed a YAML code frame holding the token: and password: lines.
describe('kubeconfig errors name the file, the line and the problem, and nothing of its content', () => {
  let dir: string;
  let k8s: K8s;
  const handles: ProcessHandle[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dromedary-kubeconfig-'));
    k8s = await loadClientNode();
  });
  after(async () => {
    for (const h of handles) await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function loadError(text: string): Error {
    const file = join(dir, `kc-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text, { mode: 0o600 });
    try {
      loadKubeConfig(k8s, { KUBECONFIG: file });
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigurationError);
      expect((err as Error).message).to.contain(`KUBECONFIG=${file}`);
      for (const s of SECRETS) expect(`${(err as Error).message}\n${(err as Error).stack}`).not.to.contain(s);
      return err as Error;
    }
    throw new Error('the kubeconfig loaded');
  }

  it('a YAML error: the line, the column and the problem only', () => {
    expect(loadError(MALFORMED).message).to.match(/: invalid YAML at line 12, column 4: bad indentation of a mapping entry$/);
  });

  it('an unterminated quote holding a token', () => {
    const err = loadError(`users:\n- name: u\n  user:\n    token: "${SECRETS[0]}\n    password: ${SECRETS[1]}\n`);
    expect(err.message).to.match(/invalid YAML at line \d+/);
    expect(err.message.split('\n')).to.have.length(1);
  });

  it('a tag built from a secret is left out of the problem', () => {
    expect(loadError(`token: !<tag:${SECRETS[0]}> x\n`).message).to.contain('unknown scalar tag !<…>');
  });

  it('a structural problem names the entry, not its value', () => {
    expect(loadError(`clusters: [{name: c}]\nusers:\n- name: u\n  user: {token: ${SECRETS[0]}}\n`).message).to.contain('clusters[0].cluster is missing');
  });

  it('the startup error of `dromedary run` holds none of it either', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, MALFORMED, { mode: 0o600 });
    writeFileSync(join(dir, 'route.mjs'), "export default (r) => r.from('master:l1:timer:t?period=1000').log('x');\n");
    const cli = spawnCli(['run', '--cluster', 'kubernetes', join(dir, 'route.mjs')], { env: { KUBECONFIG: file, DROMEDARY_DEBUG: '1', DROMEDARY_LOG_LEVEL: 'debug' } });
    handles.push(cli);
    const { code } = await cli.exited;
    expect(code).to.equal(1);
    expect(cli.output).to.contain(`KUBECONFIG=${file}: invalid YAML at line 12, column 4: bad indentation of a mapping entry`);
    for (const s of SECRETS) expect(cli.output).not.to.contain(s);
  });
});
