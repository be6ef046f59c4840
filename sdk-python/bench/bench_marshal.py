"""Marshalling benchmark: scf_sdk's Rust codec against the standard library, measured in the same run.

    python bench/bench_marshal.py [--size-kb 1024] [--repeat 30]

Prints, for a ~1 MB event (API Gateway / COS / CKafka-like records: nested dicts, strings with some
non-ASCII and escapes, ints, floats, bools, nulls):
  decode: scf_sdk._core.loads(text)  vs json.loads(text)                        target <= 0.7x
  encode: scf_sdk._core.dumps(obj)   vs json.dumps(obj) and json.dumps(obj, ensure_ascii=False)  target <= 0.7x
Times are the median of --repeat runs. Not a test: it prints figures and exits 0.
"""

import argparse
import json
import random
import statistics
import time
from typing import Any, Callable, Dict, List

from scf_sdk import _core


def make_event(size_kb: int, seed: int = 7) -> Dict[str, Any]:
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "中文", "ünïcode", "emoji😀", "quote\"d", "line\nbreak", "path/x"]
    records: List[Dict[str, Any]] = []
    event: Dict[str, Any] = {"Records": records, "source": "bench", "version": 2}
    while True:
        i = len(records)
        records.append(
            {
                "eventId": f"{rnd.getrandbits(64):016x}-{i}",
                "eventTime": 1700000000 + i,
                "eventSource": "qcs::cos",
                "region": rnd.choice(["ap-guangzhou", "ap-shanghai", "ap-beijing"]),
                "size": rnd.randint(0, 10**9),
                "ratio": rnd.random(),
                "price": round(rnd.uniform(0, 1000), 2),
                "ok": rnd.random() < 0.5,
                "deleted": None,
                "tags": [rnd.choice(words) for _ in range(4)],
                "object": {
                    "key": "/".join(rnd.choice(words) for _ in range(3)),
                    "meta": {"Content-Type": "application/json", "x-request-id": f"{rnd.getrandbits(96):024x}"},
                    "parts": [rnd.randint(0, 1 << 40) for _ in range(3)],
                },
                "message": " ".join(rnd.choice(words) for _ in range(12)),
            }
        )
        if i % 50 == 0 and len(json.dumps(event, ensure_ascii=False).encode()) > size_kb * 1024:
            return event


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-kb", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()

    event = make_event(args.size_kb)
    text = json.dumps(event, ensure_ascii=False)
    data = text.encode("utf-8")
    assert _core.loads(data) == json.loads(text)
    assert _core.dumps(event) == json.dumps(event, ensure_ascii=False)

    t_json_loads = median_time(lambda: json.loads(text), args.repeat)
    t_json_loads_b = median_time(lambda: json.loads(data), args.repeat)
    t_core_loads = median_time(lambda: _core.loads(data), args.repeat)
    t_json_dumps = median_time(lambda: json.dumps(event), args.repeat)
    t_json_dumps_na = median_time(lambda: json.dumps(event, ensure_ascii=False), args.repeat)
    t_core_dumps = median_time(lambda: _core.dumps(event), args.repeat)
    t_core_dumps_b = median_time(lambda: _core.dumps_bytes(event), args.repeat)

    ms = 1000.0
    print(f"event: {len(data) / 1024:.0f} KiB of JSON, {len(event['Records'])} records (median of {args.repeat})")
    print(f"decode  json.loads(str)            {t_json_loads * ms:7.2f} ms")
    print(f"decode  json.loads(bytes)          {t_json_loads_b * ms:7.2f} ms")
    print(f"decode  scf_sdk loads(bytes)       {t_core_loads * ms:7.2f} ms   ratio {t_core_loads / t_json_loads:.2f}x vs json.loads(str)  (target <= 0.70x)")
    print(f"encode  json.dumps                 {t_json_dumps * ms:7.2f} ms")
    print(f"encode  json.dumps(ensure_ascii=F) {t_json_dumps_na * ms:7.2f} ms")
    print(f"encode  scf_sdk dumps -> str       {t_core_dumps * ms:7.2f} ms   ratio {t_core_dumps / t_json_dumps:.2f}x vs json.dumps, {t_core_dumps / t_json_dumps_na:.2f}x vs ensure_ascii=False  (target <= 0.70x)")
    print(f"encode  scf_sdk dumps -> bytes     {t_core_dumps_b * ms:7.2f} ms   ratio {t_core_dumps_b / t_json_dumps:.2f}x vs json.dumps (what the runtime posts)")


if __name__ == "__main__":
    main()
