"""The Python wheel as a function author installs it: a fresh venv of the system's Python, `pip install` of
the wheel with no cargo anywhere on PATH, then the SDK imported, `scf_sdk.invoke`, and a real instance that
uses that venv (the code directory's `.venv`). Also: a source build with no cargo stops with a message
instead of downloading a Rust toolchain.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, VERSION, Artifacts, Prefix, system_env, write

CHECK = """\
import json, scf_sdk
from scf_sdk import FunctionError, invoke

def handler(event, context):
    return {"hi": event["name"], "fn": context["function_name"]}

def broken(event, context):
    raise ValueError("nope")

out = {"file": scf_sdk.__file__, "ok": invoke(handler, {"name": "wheel"}), "dumps": scf_sdk.dumps({"a": [1, "é"]})}
try:
    invoke(broken, {})
except FunctionError as e:
    out["error"] = [e.error_type, e.status_code, "ValueError: nope" in e.stack_trace]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def fn_with_venv(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A function directory whose `.venv` (made from /usr/bin/python3) has the wheel installed."""
    fn = write(tmp_path_factory.mktemp("fn"), {
        "index.py": "import sys, scf_sdk\n\ndef main_handler(event, context):\n"
                    "    return {'sdk': scf_sdk.__file__, 'python': sys.executable, 'name': event['name']}\n",
    })
    env = system_env(tmp_path_factory.mktemp("home"))
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(fn / ".venv")], env=env, check=True)
    pip = subprocess.run(
        [str(fn / ".venv/bin/python"), "-m", "pip", "install", "--no-index", "--disable-pip-version-check",
         "-q", str(artifacts.wheel)],
        env=env, capture_output=True, text=True,
    )
    assert pip.returncode == 0, pip.stderr
    return fn


def test_the_wheel_is_abi3_manylinux2014_with_real_metadata(artifacts: Artifacts) -> None:
    assert artifacts.wheel.name == (
        f"scf_sdk-{VERSION}-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    ), artifacts.wheel.name
    with zipfile.ZipFile(artifacts.wheel) as z:
        meta = z.read(f"scf_sdk-{VERSION}.dist-info/METADATA").decode()
        names = z.namelist()
    for line in ["Name: scf-sdk", f"Version: {VERSION}", "License: Apache-2.0", "Requires-Python: >=3.9",
                 "License-File: LICENSE", "Project-URL: "]:
        assert line in meta, (line, meta[:800])
    assert "# scf-sdk (Python)" in meta, "the README is the long description"
    assert "scf_sdk/py.typed" in names and "scf_sdk/_core.pyi" in names
    assert any(n.startswith("scf_sdk/_core") and n.endswith(".so") for n in names)


def test_import_and_invoke_in_a_fresh_venv_without_cargo(fn_with_venv: Path, tmp_path: Path) -> None:
    run = subprocess.run([str(fn_with_venv / ".venv/bin/python"), "-c", CHECK], cwd=tmp_path,
                         env=system_env(tmp_path / "home"), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert Path(out["file"]).is_relative_to(fn_with_venv / ".venv"), out
    assert out["ok"]["hi"] == "wheel" and out["ok"]["fn"], out
    assert out["dumps"] == '{"a": [1, "é"]}'
    assert out["error"] == ["UnhandledError", 430, True], out


def test_a_real_instance_uses_the_code_directorys_venv(prefix: Prefix, fn_with_venv: Path) -> None:
    run = prefix.invoke(fn_with_venv, "--handler", "index.main_handler", "--event", '{"name":"venv"}')
    assert run.returncode == 0, run.stdout + run.stderr
    body = json.loads(run.stdout)
    assert body["python"] == str(fn_with_venv / ".venv/bin/python"), body
    assert Path(body["sdk"]).is_relative_to(fn_with_venv / ".venv"), "the venv's SDK wins over the bundled one"
    assert body["name"] == "venv"


def test_a_source_build_without_cargo_fails_clearly_and_downloads_nothing(tmp_path: Path) -> None:
    # The PEP 517 hooks pip calls, in an interpreter that has maturin (the build requirement), with no
    # cargo on PATH: no toolchain is asked for, and building stops with a message naming the wheel.
    probe = (
        "import json, sys\n"
        "import scf_sdk_build as b\n"
        "out = {'requires': b.get_requires_for_build_wheel(), 'sdist': b.get_requires_for_build_sdist()}\n"
        "try:\n"
        "    b.build_wheel(sys.argv[1])\n"
        "except SystemExit as e:\n"
        "    out['exit'] = str(e.code)\n"
        "print(json.dumps(out))\n"
    )
    env = system_env(tmp_path / "home")
    env["PYTHONPATH"] = str(ROOT / "sdk-python" / "build_backend")
    run = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=ROOT / "sdk-python", env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert "puccinialin" not in out["requires"] + out["sdist"], out
    assert "needs Rust (cargo on PATH)" in out["exit"] and "pip install scf-sdk" in out["exit"], out
    assert list(tmp_path.glob("*.whl")) == []
