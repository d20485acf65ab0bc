/**
 * A real ZooKeeper for tests: Debian's zookeeper jar started with java in a temp folder, standalone,
 * on a free loopback port (no admin server), stopped by PID. Its tickTime is 200 ms, so sessions
 * may be as short as 0.4 s and as long as 4 s: the chaos suite's leases fit. restart() keeps the data
 * folder (sessions survive it); pause() and resume() SIGSTOP and SIGCONT it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureInstalled, freePort, ServerProcess, waitReady } from './local-server.ts';

const JAR = '/usr/share/java/zookeeper.jar';
const LOGGING = ['/usr/share/java/slf4j-log4j12.jar', '/usr/share/java/log4j-1.2.jar'];

export class ZooKeeperServer {
  readonly dir: string;
  port = 0;
  #proc: ServerProcess | undefined;

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'dromedary-zk-'));
  }

  static async start(): Promise<ZooKeeperServer> {
    ensureInstalled(JAR, ['zookeeper']);
    const server = new ZooKeeperServer();
    try {
      server.port = await freePort();
      mkdirSync(join(server.dir, 'data'));
      mkdirSync(join(server.dir, 'conf'));
      writeFileSync(
        join(server.dir, 'conf', 'zoo.cfg'),
        [
          'tickTime=200',
          'minSessionTimeout=400',
          'maxSessionTimeout=20000',
          `dataDir=${join(server.dir, 'data')}`,
          `clientPort=${server.port}`,
          'clientPortAddress=127.0.0.1',
          'admin.enableServer=false',
          '4lw.commands.whitelist=ruok,srvr,stat',
          '',
        ].join('\n'),
      );
      if (existsSync('/etc/zookeeper/conf_example/log4j.properties')) copyFileSync('/etc/zookeeper/conf_example/log4j.properties', join(server.dir, 'conf', 'log4j.properties'));
      await server.#start();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get connectString(): string {
    return `127.0.0.1:${this.port}`;
  }

  async #start(): Promise<void> {
    const classpath = [join(this.dir, 'conf'), JAR, ...LOGGING.filter((j) => existsSync(j))].join(':');
    this.#proc = new ServerProcess(
      'java',
      ['-Xmx256m', '-cp', classpath, `-Dzookeeper.log.dir=${join(this.dir, 'log')}`, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', join(this.dir, 'conf', 'zoo.cfg')],
      { cwd: this.dir, logFile: join(this.dir, 'stdout.log') },
    );
    await waitReady('zookeeper', this.#proc, () => this.#ruok());
  }

  #ruok(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(this.port, '127.0.0.1');
      let reply = '';
      socket.setTimeout(1000, () => socket.destroy());
      socket.on('connect', () => socket.write('ruok'));
      socket.on('data', (d) => (reply += d.toString()));
      socket.on('close', () => resolve(reply === 'imok'));
      socket.on('error', () => resolve(false));
    });
  }

  /** Packets the server has received (its `srvr` command). */
  packetsReceived(): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1');
      let reply = '';
      socket.on('connect', () => socket.write('srvr'));
      socket.on('data', (d) => (reply += d.toString()));
      socket.on('error', reject);
      socket.on('close', () => resolve(Number(/Received: (\d+)/.exec(reply)?.[1] ?? NaN)));
    });
  }

  async restart(onStopped?: () => void): Promise<void> {
    await this.#proc?.stop();
    onStopped?.();
    await this.#start();
  }

  pause(): void {
    this.#proc?.signal('SIGSTOP');
  }

  resume(): void {
    this.#proc?.signal('SIGCONT');
  }

  async stop(): Promise<void> {
    await this.#proc?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
