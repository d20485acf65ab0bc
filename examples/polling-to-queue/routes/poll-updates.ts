// Runs on the leader of the `updates` lock only: polls the Telegram-like API (updates-api.mjs) and
// publishes each update to RabbitMQ. The cursor (offset = highest update_id + 1) moves only after
// the broker confirmed every update of a batch, so an update is never lost. Under master: the cursor
// is also saved in the lock's leader state after each batch, so a new leader continues from it
// instead of starting without one; the batch in flight when a leader dies comes again, so a few
// updates (at most one batch) may be published twice, with the same messageId.
import { from } from 'dromedary';

// The bot token is a path segment, as in Telegram: {{env:BOT_TOKEN}} is resolved when the endpoint is
// created, and every log line and error shows the placeholder, never the token. timeout and limit are
// Telegram's own parameters and go to the server as written; the poller's options are the dromedary.* ones.
from(
  'master:updates:http-poll:{{env:UPDATES_API_URL:http://127.0.0.1:8081}}/bot{{env:BOT_TOKEN}}/getUpdates?timeout=10&limit=100' +
    '&dromedary.splitPath=result&dromedary.cursorParam=offset&dromedary.cursorField=update_id' +
    '&dromedary.requestTimeout=15s&dromedary.delay=100ms&dromedary.backoffMax=10s',
)
  .routeId('poll-updates')
  .process((exchange) => {
    exchange.message.messageId = `update-${(exchange.body as { update_id: number }).update_id}`;
  })
  .to('amqp:queue:{{env:UPDATES_QUEUE:updates}}')
  .log('published update ${body.update_id}');
