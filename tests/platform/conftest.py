"""What the tests of the real clients share: `scf-local serve` started, its front door's address, stopped."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("SCF_TARGET_DIR", ROOT / "target" / "debug"))


@contextlib.contextmanager
def served(args: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """`scf-local serve --port 0 ARGS…` until the block ends; yields `127.0.0.1:PORT` of its front door."""
    proc = subprocess.Popen(
        [str(TARGET / "scf-local"), "serve", "--port", "0", *args], stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stderr is not None
    addr = ""
    for line in proc.stderr:
        if line.startswith("scf-local: listening on http://"):
            addr = line.strip().removeprefix("scf-local: listening on http://")
            break
    try:
        assert addr, "scf-local serve did not start"
        yield addr
    finally:
        proc.terminate()
        proc.wait(timeout=30)
