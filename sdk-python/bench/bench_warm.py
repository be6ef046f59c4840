"""Warm-path benchmark: the runtime's per-invocation overhead inside a Python instance.

    python bench/bench_warm.py [--n 200000]

Measures, in one run, with a small event (an API Gateway-like dict, ~400 bytes) and a handler that returns a
small dict:
  direct   handler(event, context) called from Python (the handler's own cost)
  runtime  the production host path, from Rust: event JSON text -> objects, context dict, the call, result ->
           JSON text, log flush (scf_sdk._core._bench_warm drives scf_shim::Host::invoke + flush_logs)
  stdlib   the same work in pure Python: json.loads + a context dict + the call + json.dumps + flushes
and prints overhead = runtime - direct (target <= 5 us) and the ratio runtime / stdlib. The HTTP round trip
to the platform (~17 us over a Unix socket, the floor `make bench` measures) is not included. Not a test.
"""

import argparse
import json
import sys
import time
from typing import Any, Dict

from scf_sdk import _core

EVENT = {
    "requestContext": {"serviceId": "service-f94sy04v", "path": "/test/{path}", "httpMethod": "POST",
                       "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "sourceIp": "10.0.2.14", "stage": "release"},
    "headers": {"Accept": "application/json", "Host": "example.invalid", "User-Agent": "bench"},
    "body": "{\"test\":\"body\"}",
    "pathParameters": {"path": "value"},
    "queryStringParameters": {"foo": "bar"},
    "path": "/test/value",
    "httpMethod": "POST",
}
CONTEXT_FIELDS = dict(memory_limit_in_mb=128, time_limit_in_ms=3000, request_id="bench", environment="",
                      environ="", function_version="$LATEST", function_name="bench", namespace="default",
                      tencentcloud_region="", tencentcloud_appid="", tencentcloud_uin="")


def handler(event: Any, context: Any) -> Dict[str, Any]:
    return {"statusCode": 200, "path": event["path"]}


def best_of(fn: Any, n: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn(n)
        best = min(best, (time.perf_counter() - t) / n)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200000)
    args = ap.parse_args()
    text = json.dumps(EVENT).encode()
    ev = json.loads(text)
    ctx = dict(CONTEXT_FIELDS)

    def direct(n: int) -> None:
        for _ in range(n):
            handler(ev, ctx)

    def stdlib(n: int) -> None:
        for _ in range(n):
            e = json.loads(text)
            c = dict(CONTEXT_FIELDS)
            json.dumps(handler(e, c)).encode()
            sys.stdout.flush()
            sys.stderr.flush()

    t_direct = best_of(direct, args.n)
    t_stdlib = best_of(stdlib, args.n)
    t_runtime = min(_core._bench_warm(handler, text, args.n) for _ in range(5))
    us = 1e6
    print(f"event {len(text)} bytes, best of 5 x {args.n} invocations")
    print(f"direct  handler call            {t_direct * us:6.2f} us")
    print(f"stdlib  json + call + flush     {t_stdlib * us:6.2f} us")
    print(f"runtime production host path    {t_runtime * us:6.2f} us   overhead {max(t_runtime - t_direct, 0) * us:.2f} us"
          f" (target <= 5 us), ratio {t_runtime / t_stdlib:.2f}x vs stdlib")


if __name__ == "__main__":
    main()
