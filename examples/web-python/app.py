"""A web function using only Python's standard library: an HTTP server on port 9000.

scf-local (and the cloud) start it through `scf_bootstrap` and proxy HTTP requests to it. It reads the port
from PORT (9000 when unset, as on the cloud).
"""

import hashlib
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STARTED = time.time()
COUNT = {"requests": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the platform reuses its connections
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

    def log_message(self, fmt, *args):  # one line per request in the function's log
        print("%s %s" % (self.command, self.path), flush=True)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()  # grows in place: a 6 MB body in 1 KB chunks is not copied 6,000 times
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status, body, content_type="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        COUNT["requests"] += 1
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        data = self.body()
        if url.path == "/":
            return self.send(200, {"message": "Hello from a Python web function", "pid": os.getpid()})
        if url.path == "/echo":
            return self.send(200, {
                "method": self.command,
                "path": url.path,
                "query": q,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_bytes": len(data),
                "body_sha256": hashlib.sha256(data).hexdigest(),
                "pid": os.getpid(),
                "port": int(os.environ.get("PORT", "9000")),
                "requests": COUNT["requests"],
            })
        if url.path == "/raw":  # the body back, byte for byte
            return self.send(200, data, self.headers.get("Content-Type", "application/octet-stream"))
        if url.path == "/status":
            return self.send(int(q.get("code", "200")), {"status": int(q.get("code", "200"))},
                             headers=[("X-Custom", q.get("header", "set"))])
        if url.path == "/big":  # a body of `bytes` bytes
            return self.send(200, b"x" * int(q.get("bytes", "0")), "application/octet-stream")
        if url.path == "/big-headers":
            return self.send(200, {"ok": True}, headers=[("X-Filler-%d" % i, "y" * 100) for i in range(50)])
        if url.path == "/stream":  # chunks written with a pause between them
            n, pause = int(q.get("n", "3")), float(q.get("pause", "0.1"))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(n):
                chunk = ("chunk %d at %.3f\n" % (i, time.time())).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                time.sleep(pause)
            self.wfile.write(b"0\r\n\r\n")
            return
        if url.path == "/sleep":
            seconds = float(q.get("s", "1"))
            time.sleep(seconds)
            return self.send(200, {"slept": seconds, "pid": os.getpid(), "port": int(os.environ.get("PORT", "9000"))})
        if url.path == "/print":
            print(q.get("line", "a line from the function"), flush=True)
            print("to stderr", file=sys.stderr, flush=True)
            return self.send(200, {"printed": True, "pid": os.getpid()})
        if url.path == "/exit":
            print("exiting on request", flush=True)
            os._exit(3)
        return self.send(404, {"error": "no route " + url.path})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_any

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "9000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    print("listening on %d" % port, flush=True)
    server.serve_forever()
