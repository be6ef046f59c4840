'use strict';
// A minimal SCF runtime API server on a Unix socket, for benchmarks and smoke tests that need no platform.
// It serves `events` (texts) in order to one instance, records every post with timestamps, and closes the
// connection when it runs out of events (the shim then ends quietly).
const http = require('node:http');
const fs = require('node:fs');

/**
 * @param {string} socketPath
 * @param {string[]} events
 * @param {{onReady?: (t: bigint) => void, onPost?: (p: object) => void, onDone?: () => void,
 *   onEvent?: (n: number, socket: import('node:net').Socket) => void, close?: boolean}} hooks
 *   `onEvent`: called once the `n`th event (from 1) has been handed to the socket, with the connection it went on.
 *   `close`: the answer of every other event (the 1st, 3rd, …) says `Connection: close` and ends its connection,
 *   so the instance reconnects to post that result, and waits for the next event on the new connection.
 */
function startMockApi(socketPath, events, hooks = {}) {
  try {
    fs.unlinkSync(socketPath);
  } catch {}
  let n = 0;
  let sentAt = 0n;
  const posts = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const now = process.hrtime.bigint();
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.url === '/runtime/init/ready') {
        hooks.onReady?.(now, req.headers);
        res.end('');
      } else if (req.url === '/runtime/invocation/next') {
        if (n >= events.length) {
          hooks.onDone?.();
          req.socket.destroy();
          return;
        }
        const id = `req-${++n}`;
        const text = events[n - 1];
        res.writeHead(200, {
          request_id: id,
          memory_limit_in_mb: '128',
          time_limit_in_ms: '3000',
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          ...(hooks.close && n % 2 === 1 ? { connection: 'close' } : {}),
        });
        const sent = n;
        res.end(text, () => hooks.onEvent?.(sent, req.socket));
        sentAt = process.hrtime.bigint();
      } else {
        const p = { type: req.url.endsWith('/error') ? 'error' : 'response', id: `req-${n}`, body, turnaroundNs: now - sentAt };
        posts.push(p);
        hooks.onPost?.(p);
        res.end('');
      }
    });
  });
  server.keepAliveTimeout = 0;
  return new Promise((resolve) => server.listen(socketPath, () => resolve({ server, posts })));
}

module.exports = { startMockApi };
