"""The symbol-version check that `make dist` runs on everything it ships (scripts/check-glibc.sh): it passes
the artifacts, and it does fail a binary that needs a newer glibc (the workspace's own build on this
machine links against the host's glibc, newer than 2.17).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import ROOT, Prefix

CHECK = str(ROOT / "scripts" / "check-glibc.sh")


def test_every_shipped_elf_file_needs_at_most_glibc_2_17(prefix: Prefix) -> None:
    run = subprocess.run([CHECK, "2.17", str(prefix.root)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    checked = [line for line in run.stdout.splitlines() if line.startswith("check-glibc: ok")]
    for name in ["bin/scf-local", "bin/scf-shim", "scf_sdk_node.node", "_core.abi3.so"]:
        assert any(line.endswith(name) for line in checked), (name, run.stdout)


def test_a_binary_for_a_newer_glibc_fails_the_check(tmp_path: Path) -> None:
    host_build = ROOT / "target" / "debug" / "scf-shim"
    assert host_build.is_file(), "run `make build` first"
    run = subprocess.run([CHECK, "2.17", str(host_build)], capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{host_build} needs glibc 2." in run.stderr and "(GLIBC_2." in run.stderr, run.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert subprocess.run([CHECK, "2.17", str(empty)], capture_output=True).returncode == 1, "no ELF: a failure"
