import { expect } from 'chai';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DromedaryError } from '../../lib/errors.ts';
import { parseProperties } from '../../lib/cli/properties-file.ts';
import { spawnCli, type ProcessHandle } from '../support/cli-process.ts';
import { waitFor } from '../support/wait.ts';

describe('dromedary run --properties', function () {
  this.timeout(60_000);
  let dir: string;
  const processes: ProcessHandle[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dromedary-cli-props-'));
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
    await mkdir(join(dir, 'routes'));
    // The timer's name comes from the properties file; the log shows the URI as written.
    await writeFile(
      join(dir, 'routes', 'r.ts'),
      "import { from } from 'dromedary';\nfrom('timer:{{timer.name}}?period={{period:30}}&delay=0&includeMetadata=true').routeId('p').log('fired ${exchangeProperty.CamelTimerName}');\n",
    );
  });

  afterEach(async () => {
    for (const p of processes.splice(0)) await p.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function run(args: string[]) {
    const p = spawnCli(args, { cwd: dir, env: { DROMEDARY_CLUSTER_ROOT: join(dir, '.locks') } });
    processes.push(p);
    return p;
  }

  it('resolves {{name}} placeholders from the file, for every replica', async () => {
    await writeFile(join(dir, 'app.properties'), '# the timer\ntimer.name = props-timer-7f3a\n! another comment\n\nunused: x\n');
    const p = run(['run', '--properties', 'app.properties', '--replicas', '2']);
    await waitFor(() => ['-1 |', '-2 |'].every((member) => p.lines.some((l) => l.includes(member) && l.includes('fired props-timer-7f3a'))), {
      message: () => `both members fire the timer named in the file; output:\n${p.output}`,
    });
    await p.waitForLine(/Started route p \(timer:\{\{timer\.name\}\}\?period=\{\{period:30\}\}/);
    p.signal('SIGTERM');
    expect((await p.exited).code).to.equal(0);
  });

  it('fails startup naming a missing file, and a key the file does not define', async () => {
    const missing = run(['run', '--properties', 'nope.properties']);
    expect((await missing.exited).code).to.equal(1);
    expect(missing.output).to.contain('--properties: cannot read "nope.properties" (ENOENT)');

    await writeFile(join(dir, 'app.properties'), 'other=1\n');
    const undefinedKey = run(['run', '--properties', 'app.properties']);
    expect((await undefinedKey.exited).code).to.equal(1);
    expect(undefinedKey.output).to.contain('the property "timer.name" of the placeholder {{timer.name}} is not defined');
  });

  // Issue 17: the hints were printed masked (`key=xxxxxx`): masking must not touch the product's own text.
  it('prints its hints as written, while a secret value in the same file stays masked', async () => {
    await writeFile(join(dir, 'app.properties'), 'api.token=Sup3rS3cretV4lue\njust-a-key\n');
    const malformed = run(['run', '--properties', 'app.properties']);
    expect((await malformed.exited).code).to.equal(1);
    expect(malformed.output).to.contain('--properties: line 2 of app.properties is not key=value (comments start with #)');
    expect(malformed.output).not.to.contain('Sup3rS3cretV4lue');
    const unreadable = run(['run', '--properties', 'missing.properties']);
    expect((await unreadable.exited).code).to.equal(1);
    expect(unreadable.output).to.contain('give a file of key=value lines');
  });

  it('parses key=value and key: value lines, skips comments, and names a malformed line', () => {
    expect(parseProperties('a=1\n  b : two words \n#c=3\n!d=4\ne=x=y\r\n')).to.deep.equal({ a: '1', b: 'two words', e: 'x=y' });
    expect(() => parseProperties('a=1\njust-a-key\n', 'app.properties')).to.throw(DromedaryError, 'line 2 of app.properties is not key=value');
  });
});
