"""Cold-start benchmark: spawn of scf-shim -> init/ready of a Python instance with an empty handler, against the
bare interpreter's start (`python -c pass`, `python -S -c pass`), measured in the same run.

    python bench/bench_coldstart.py [--shim target/release/scf-shim] [--runs 20]

A tiny runtime API server on a Unix socket (this script) answers `POST /runtime/init/ready` and notes the time;
it then closes the connection, and the instance ends as it does when the platform goes away. The interpreter
is this script's (`sys.executable`, which has scf_sdk installed), passed to the shim as SCF_PYTHON.
Target: spawn -> ready <= bare interpreter + 5 ms. Not a test: it prints figures and exits 0.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[2]


def find_shim(explicit: Optional[str]) -> str:
    if explicit:
        return explicit
    for p in (ROOT / "target/release/scf-shim", ROOT / "target/debug/scf-shim"):
        if p.is_file():
            return str(p)
    found = shutil.which("scf-shim")
    if not found:
        sys.exit("scf-shim not found: build it (cargo build -p scf-shim) or pass --shim")
    return found


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def one_start(shim: str, code: Path, sock_path: str, env: dict) -> float:
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    t0 = time.perf_counter()
    proc = subprocess.Popen([shim], cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    srv.settimeout(30)
    conn, _ = srv.accept()
    head = read_request(conn)
    t_ready = time.perf_counter()
    if not head.startswith(b"POST /runtime/init/ready"):
        raise SystemExit(f"unexpected first request: {head[:80]!r}")
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    # The instance now waits on /next; a platform would reclaim it like this.
    proc.kill()
    proc.communicate(timeout=30)
    conn.close()
    srv.close()
    return t_ready - t0


def time_cmd(cmd: List[str], runs: int, env: dict) -> float:
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    shim = find_shim(args.shim)
    python = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="scf-coldstart-"))
    try:
        code = tmp / "code"
        code.mkdir()
        (code / "index.py").write_text("def main_handler(event, context):\n    return None\n")
        sock_path = str(tmp / "api.sock")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("SCF_", "_SCF", "PYTHON"))}
        env = dict(base_env, _HANDLER="index.main_handler", SCF_RUNTIME="python3", USER_CODE_ROOT=str(code),
                   SCF_RUNTIME_API=f"unix:{sock_path}", SCF_PYTHON=python, PYTHONDONTWRITEBYTECODE="1")
        one_start(shim, code, sock_path, env)
        # Interleaved, so that drift of the machine's load hits every series alike.
        starts, passes, nosites, imports = [], [], [], []
        for _ in range(args.runs):
            starts.append(one_start(shim, code, sock_path, env))
            passes.append(time_cmd([python, "-c", "pass"], 1, base_env))
            nosites.append(time_cmd([python, "-S", "-c", "pass"], 1, base_env))
            imports.append(time_cmd([python, "-c", "import scf_sdk._core"], 1, base_env))
        t_start, t_pass, t_nosite, t_import = (statistics.median(x) for x in (starts, passes, nosites, imports))
        ms = 1000.0
        print(f"interpreter {python}, shim {shim}, median of {args.runs}")
        print(f"python -c pass                  {t_pass * ms:6.1f} ms")
        print(f"python -S -c pass               {t_nosite * ms:6.1f} ms")
        print(f"python -c 'import scf_sdk._core' {t_import * ms:5.1f} ms")
        print(f"scf-shim spawn -> init/ready    {t_start * ms:6.1f} ms   = python -c pass + {(t_start - t_pass) * ms:.1f} ms"
              f" (target <= +5 ms), {t_start / t_pass:.2f}x; vs -S: {t_start / t_nosite:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
