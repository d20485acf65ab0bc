// Runs on every member: consumes the queue and logs each update (the messages are shared among them).
import { from } from 'dromedary';

const queue = process.env.UPDATES_QUEUE ?? 'updates';

from(`amqp:queue:${queue}`)
  .routeId('log-updates')
  .log('received update ${body.update_id} messageId=${header.CamelRabbitmqMessageId} redelivered=${header.CamelRabbitmqRedelivered}');
