// The seed article's "custom singleton service": plain code, not a route, that must run on one
// member only. singleton() starts it with the leadership term when this member becomes leader of
// `reports` and stops it when the term ends, so the report is never produced twice.
import { singleton, type RouteBuilder, type RouteFileEnvironment, type SingletonTerm } from 'dromedary';

class ReportScheduler {
  #timer: NodeJS.Timeout | undefined;
  #runs = 0;

  start({ isLeader, token }: SingletonTerm): void {
    console.log(`report scheduler started on this member (fencing token ${token})`);
    this.#timer = setInterval(() => {
      // The gate: after a pause (SIGSTOP, a long GC) this timer may fire before the stop runs.
      if (!isLeader()) return;
      this.#runs += 1;
      console.log(`report #${this.#runs} produced (fencing token ${token})`);
    }, Number(process.env.REPORT_EVERY_MS ?? 2000));
  }

  stop(): void {
    clearInterval(this.#timer);
    console.log('report scheduler stopped on this member');
  }
}

export default (r: RouteBuilder, { cluster }: RouteFileEnvironment) => {
  singleton(cluster, 'reports', new ReportScheduler());
  // Routes in the same file run on every member, as usual.
  r.from('timer:alive?period=10s').routeId('alive').log('member is alive');
};
