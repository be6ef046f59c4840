#!/usr/bin/env python3
"""An image-style event function: its own HTTP server on port 9000 (PORT when set).

Every event arrives as `POST /event-invoke`: the body is the event, the context is in the X-Scf-* headers.
A 200 answer is the result; any other status is an error (a body in the error shape of docs/errors.md is
kept as it is, any other body becomes an unhandled error).
"""

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if self.path != "/event-invoke":
            return self.answer(404, {"error": "events arrive at POST /event-invoke"})
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        request_id = self.headers.get("X-Scf-Request-Id")
        print("event for request %s: %s" % (request_id, json.dumps(event)), flush=True)
        action = event.get("action") if isinstance(event, dict) else None
        if action == "fail":
            return self.answer(500, {"message": "failed on purpose"})
        if action == "sleep":
            time.sleep(float(event.get("seconds", 1)))
        return self.answer(200, {
            "hello": event.get("name", "world") if isinstance(event, dict) else "world",
            "request_id": request_id,
            "function": self.headers.get("X-Scf-Name"),
            "memory": self.headers.get("X-Scf-Memory"),
            "timeout": self.headers.get("X-Scf-Timeout"),
            "pid": os.getpid(),
        })


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "9000"))
    print("listening on %d" % port, flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
