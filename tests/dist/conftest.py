"""Fixtures for the release artifacts' tests: the artifacts of `make dist-debug`, the runtime tarball
extracted into a fresh prefix, and an environment that holds nothing but that prefix, /usr/bin and /bin.

The artifacts' folder is `$SCF_DIST_DIR` (default `target/dist-debug`). Nothing here uses the checkout's
binaries, SDKs or virtualenv: only the example native library is taken from `target/debug` (a function,
not part of the runtime).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("SCF_DIST_DIR", ROOT / "target" / "dist-debug")).resolve()
VERSION = json.loads((ROOT / "sdk-node" / "package.json").read_text())["version"]
# What a machine has with nothing installed by the user: no cargo, no venv, no SDK, no variables.
SYSTEM_PATH = "/usr/bin:/bin"


def artifact(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {DIST}, found {found}: run `make dist-debug` first"
    return found[0]


@dataclass(frozen=True)
class Artifacts:
    tarball: Path
    wheel: Path
    npm: Path


@pytest.fixture(scope="session")
def artifacts() -> Artifacts:
    return Artifacts(
        tarball=artifact(f"scf-runtime-{VERSION}-x86_64-linux.tar.gz"),
        wheel=artifact(f"scf_sdk-{VERSION}-cp39-abi3-manylinux*.whl"),
        npm=artifact(f"scf-sdk-{VERSION}.tgz"),
    )


def system_env(home: Path, *front: Path) -> dict[str, str]:
    """A bare environment: PATH of `front` then /usr/bin and /bin, a private HOME, nothing else."""
    path = ":".join([*(str(p) for p in front), SYSTEM_PATH])
    for d in path.split(":"):
        assert not (Path(d) / "cargo").exists(), f"cargo is on the test PATH ({d})"
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": path, "HOME": str(home)}


@dataclass(frozen=True)
class Prefix:
    """The runtime tarball installed as its Install section says: extracted into a prefix."""

    root: Path
    env: dict[str, str]

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*args], cwd=cwd, env=env or self.env, input=input, capture_output=True, text=True, check=False
        )

    def invoke(self, code: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """`scf-local invoke CODE ARGS…`, found on PATH, from the code directory's parent."""
        return self.run("scf-local", "invoke", str(code), *args, cwd=code.parent)


@pytest.fixture(scope="session")
def prefix(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> Prefix:
    root = tmp_path_factory.mktemp("prefix")
    with tarfile.open(artifacts.tarball) as t:
        top = {name.split("/")[0] for name in t.getnames()}
    assert top == {f"scf-runtime-{VERSION}-x86_64-linux"}, top
    # The Install section's command.
    subprocess.run(["tar", "-xzf", str(artifacts.tarball), "--strip-components=1", "-C", str(root)], check=True)
    return Prefix(root=root, env=system_env(tmp_path_factory.mktemp("home"), root / "bin"))


def write(dir: Path, files: dict[str, str], executable: tuple[str, ...] = ()) -> Path:
    for name, text in files.items():
        p = dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if name in executable:
            p.chmod(0o755)
    return dir


def native_library() -> Path:
    lib = ROOT / "target" / "debug" / "libindex.so"
    assert lib.is_file(), f"{lib} is missing: run `make build` (the rust-hello example) first"
    return lib


@dataclass
class Served:
    """A running `scf-local serve` and its front door."""

    proc: subprocess.Popen[str]
    addr: str

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            f"http://{self.addr}/",
            data=json.dumps(params).encode(),
            headers={"Content-Type": "application/json", "X-TC-Action": action},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=120) as resp:
            body: dict[str, Any] = json.loads(resp.read())["Response"]
        return body

    def invoke(self, function: str, event: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "Invoke", {"FunctionName": function, "ClientContext": json.dumps(event), "LogType": "Tail"}
        )["Result"]
        return result


def serve(prefix: Prefix, data: Path, dirs: list[Path]) -> Iterator[Served]:
    proc = subprocess.Popen(
        ["scf-local", "serve", "--port", "0", "--data-dir", str(data), *map(str, dirs)],
        env=prefix.env, cwd=data, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    assert proc.stderr is not None
    addr = ""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("scf-local: listening on http://"):
            addr = line.strip().removeprefix("scf-local: listening on http://")
            break
    assert addr, f"scf-local serve did not start: {''.join(seen)}"
    # Keep reading what it prints, so that a full pipe never blocks it.
    drain = threading.Thread(target=lambda: [None for _ in proc.stderr or ()], daemon=True)
    drain.start()
    try:
        yield Served(proc, addr)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        drain.join()


def copytree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst
