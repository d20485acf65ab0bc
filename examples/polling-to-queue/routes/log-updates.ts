// Runs on every member: consumes the queue and logs each update (the messages are shared among them).
import { from } from 'dromedary';

from('amqp:queue:{{env:UPDATES_QUEUE:updates}}')
  .routeId('log-updates')
  .log('received update ${body.update_id} messageId=${header.CamelRabbitmqMessageId} redelivered=${header.CamelRabbitmqRedelivered}');
