#!/usr/bin/env node
// A small Telegram-like updates API for the polling-to-queue example (plain JavaScript, any Node).
//
//   GET  /bot<token>/getUpdates?offset=N&limit=L&timeout=T  updates with update_id >= N, oldest first, at most L
//        (1-100, default 100); calling with offset N confirms, and forgets, every update below N.
//        With timeout=T (seconds) and nothing to return, it waits up to T seconds for a new update.
//   GET  /stats   {"generated": last update_id, "served": [ids ever returned], "confirmed": offset,
//                  "pollsWithoutOffset": getUpdates calls that sent no offset (a client that lost its cursor)}
//   POST /pause   stop producing updates (tests use it to let the pipeline drain); POST /resume
//
//        As in Telegram, the bot token is a path segment; a wrong token gets 401 Unauthorized.
//
// Environment: BOT_TOKEN (required: the token clients must send), PORT (8081; 0 picks a free one),
// UPDATE_EVERY_MS (500), FIRST_UPDATE_ID (1000), LOG_REQUESTS=1 (prints each request, token masked).
import { createServer } from 'node:http';

const token = process.env.BOT_TOKEN;
if (!token) {
  console.error('Set BOT_TOKEN to the token clients must send (/bot<token>/getUpdates), e.g. BOT_TOKEN=123:dev');
  process.exit(1);
}
const port = Number(process.env.PORT ?? 8081);
const every = Number(process.env.UPDATE_EVERY_MS ?? 500);
let nextId = Number(process.env.FIRST_UPDATE_ID ?? 1000);
const pending = []; // unconfirmed updates, oldest first
const served = new Set();
let confirmed = 0;
let pollsWithoutOffset = 0;
let paused = false;
const waiters = new Set(); // long polls waiting for an update

const produce = setInterval(() => {
  if (paused) return;
  const id = nextId++;
  pending.push({ update_id: id, message: { message_id: id, date: Math.floor(Date.now() / 1000), text: `update ${id}` } });
  for (const wake of [...waiters]) wake();
}, every);

function select(offset, limit) {
  if (offset > confirmed) {
    confirmed = offset;
    while (pending.length > 0 && pending[0].update_id < offset) pending.shift();
  }
  return pending.filter((u) => u.update_id >= offset).slice(0, limit);
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const logRequests = process.env.LOG_REQUESTS === '1';

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (logRequests) console.log(`${new Date().toISOString()} ${req.method} ${(req.url ?? '').replace(/^\/bot[^/]*/, '/botxxxxxx')}`);
  if (url.pathname.endsWith('/getUpdates')) {
    if (url.pathname !== `/bot${token}/getUpdates`) return send(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
    if (!url.searchParams.has('offset')) pollsWithoutOffset += 1;
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const limit = Math.min(100, Math.max(1, Number(url.searchParams.get('limit') ?? 100)));
    const timeout = Math.min(50, Math.max(0, Number(url.searchParams.get('timeout') ?? 0)));
    if (!Number.isInteger(offset) || !Number.isFinite(limit)) return send(res, 400, { ok: false, error_code: 400, description: 'Bad Request: offset and limit must be integers' });
    const answer = () => {
      const result = select(offset, limit);
      for (const u of result) served.add(u.update_id);
      send(res, 200, { ok: true, result });
    };
    if (timeout === 0 || select(offset, limit).length > 0) return answer();
    // Long poll: answer on the first new update or at the timeout, whichever comes first.
    const done = () => {
      waiters.delete(done);
      clearTimeout(timer);
      if (!res.destroyed) answer();
    };
    const timer = setTimeout(done, timeout * 1000);
    waiters.add(done);
    res.on('close', () => {
      waiters.delete(done);
      clearTimeout(timer);
    });
    return;
  }
  if (url.pathname === '/stats') return send(res, 200, { generated: nextId - 1, served: [...served].sort((a, b) => a - b), confirmed, pollsWithoutOffset });
  if (url.pathname === '/pause' && req.method === 'POST') {
    paused = true;
    return send(res, 200, { paused, generated: nextId - 1 });
  }
  if (url.pathname === '/resume' && req.method === 'POST') {
    paused = false;
    return send(res, 200, { paused });
  }
  send(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`updates API listening on http://127.0.0.1:${server.address().port} (first update_id ${nextId}, one every ${every}ms)`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    clearInterval(produce);
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
