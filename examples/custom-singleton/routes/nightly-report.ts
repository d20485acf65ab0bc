// The seed article's "custom singleton service": plain code, not a route, that must run on one
// member only. singleton() starts it with the leadership term when this member becomes leader of
// `reports` and stops it when the term ends, so the report is never produced twice. The number of
// the last report is kept in the lock's leader state, so the next leader continues the numbering.
import { LeadershipLostError, singleton, type ClusterView, type RouteBuilder, type RouteFileEnvironment, type SingletonTerm } from 'dromedary';

class ReportScheduler {
  readonly #state: ClusterView['state'];
  #timer: NodeJS.Timeout | undefined;

  constructor(state: ClusterView['state']) {
    this.#state = state;
  }

  async start(term: SingletonTerm): Promise<void> {
    const { isLeader, token } = term;
    // Where the previous leader stopped (any member can read it; only the leader writes it).
    let runs = ((await this.#state.get('lastReport')) as number | undefined) ?? 0;
    console.log(`report scheduler started on this member (fencing token ${token}, last report #${runs})`);
    this.#timer = setInterval(() => {
      // The gate: after a pause (SIGSTOP, a long GC) this timer may fire before the stop runs.
      if (!isLeader()) return;
      runs += 1;
      console.log(`report #${runs} produced (fencing token ${token})`);
      // Saved after the report: a crash in between makes the next leader produce it again (at-least-once).
      this.#state.set('lastReport', runs, { term }).catch((err) => {
        if (!(err instanceof LeadershipLostError)) console.error(`could not save the report number: ${(err as Error).message}`);
      });
    }, Number(process.env.REPORT_EVERY_MS ?? 2000));
  }

  stop(): void {
    clearInterval(this.#timer);
    console.log('report scheduler stopped on this member');
  }
}

export default (r: RouteBuilder, { cluster }: RouteFileEnvironment) => {
  singleton(cluster, 'reports', new ReportScheduler(cluster.view('reports').state));
  // Routes in the same file run on every member, as usual.
  r.from('timer:alive?period=10s').routeId('alive').log('member is alive');
};
