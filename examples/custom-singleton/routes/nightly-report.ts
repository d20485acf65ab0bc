// The seed article's "custom singleton service": plain code, not a route, that must run on one
// member only. singleton() starts it when this member becomes leader of `reports` and stops it when
// it stops leading, so the report is never produced twice.
import { singleton, type RouteBuilder, type RouteFileEnvironment } from 'dromedary';

class ReportScheduler {
  #timer: NodeJS.Timeout | undefined;
  #runs = 0;

  start(): void {
    console.log('report scheduler started on this member');
    this.#timer = setInterval(() => {
      this.#runs += 1;
      console.log(`report #${this.#runs} produced`);
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
