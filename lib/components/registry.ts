import type { Component } from '../spi/component.ts';

/**
 * The components every context knows without registration. Each is loaded on first use, so a
 * route file that never touches amqp or http never pays for amqplib or axios.
 */
export const builtinComponents: Readonly<Record<string, () => Promise<Component>>> = {
  timer: async () => new (await import('./timer/timer-component.ts')).TimerComponent(),
  direct: async () => new (await import('./direct/direct-component.ts')).DirectComponent(),
  log: async () => new (await import('./log/log-component.ts')).LogComponent(),
  master: async () => new (await import('./master/master-component.ts')).MasterComponent(),
  cron: async () => new (await import('./cron/cron-component.ts')).CronComponent(),
  amqp: async () => new (await import('./amqp/amqp-component.ts')).AmqpComponent(),
  http: async () => new (await import('./http/http-component.ts')).HttpComponent(),
  https: async () => new (await import('./http/http-component.ts')).HttpComponent(),
  'http-poll': async () => new (await import('./http-poll/http-poll-component.ts')).HttpPollComponent(),
};
