// A web function using only Node's `http` module: an HTTP server on port 9000 (PORT when set).
'use strict';
const http = require('http');
const crypto = require('crypto');

let requests = 0;

const server = http.createServer((req, res) => {
  requests += 1;
  const url = new URL(req.url, 'http://localhost');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    console.log(`${req.method} ${req.url}`);
    const send = (status, obj) => {
      const text = JSON.stringify(obj);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (url.pathname === '/') {
      send(200, { message: 'Hello from a Node.js web function', pid: process.pid });
    } else if (url.pathname === '/echo') {
      send(200, {
        method: req.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body_bytes: body.length,
        body_sha256: crypto.createHash('sha256').update(body).digest('hex'),
        pid: process.pid,
        port: Number(process.env.PORT || 9000),
        requests,
      });
    } else if (url.pathname === '/sleep') {
      const s = Number(url.searchParams.get('s') || '1');
      setTimeout(() => send(200, { slept: s, pid: process.pid }), s * 1000);
    } else {
      send(404, { error: `no route ${url.pathname}` });
    }
  });
});

const port = Number(process.env.PORT || 9000);
server.keepAliveTimeout = 60000;
server.listen(port, '0.0.0.0', () => console.log(`listening on ${port}`));
