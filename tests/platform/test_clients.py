"""The clients users already have against `scf-local serve`: `tccli` (from PyPI) and the official Node.js SDK
(`tencentcloud-sdk-nodejs-scf`, installed from npm into a temporary folder here), with signatures checked.

Both reach the front door by its endpoint alone (`tccli --endpoint http://127.0.0.1:PORT`, the Node SDK's
`protocol: "http://"`) and call ListFunctions, GetFunction, ListTriggers and Invoke on the multi-scf fixture
project (`tests/fixtures/multi-scf-python`), whose names are those the multi-scf component gives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import ROOT, served

FIXTURE = ROOT / "tests" / "fixtures" / "multi-scf-python"
SECRET_ID = "AKIDlocalplatformEXAMPLE"
SECRET_KEY = "localplatformsecretkeyEXAMPLE"
NAMES = ["demo-dev-shop-greet", "demo-dev-shop-hello", "demo-dev-shop-tick", "items-fn"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("data")
    args = ["--apigw-port", "0", "--data-dir", str(data), "--secret-id", SECRET_ID, "--secret-key", SECRET_KEY,
            str(FIXTURE)]
    with served(args, dict(os.environ, SCF_PYTHON=sys.executable)) as addr:
        yield addr


def tccli(addr: str, home: Path, *args: str) -> Any:
    exe = shutil.which("tccli", path=str(Path(sys.executable).parent))
    assert exe, "tccli is missing: `make venv` installs it (requirements-dev.txt)"
    out = subprocess.run(
        [exe, "scf", *args, "--endpoint", f"http://{addr}", "--region", "ap-guangzhou",
         "--secretId", SECRET_ID, "--secretKey", SECRET_KEY],
        capture_output=True, text=True, env=dict(os.environ, HOME=str(home)), check=False,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


def test_tccli(platform: str, tmp_path: Path) -> None:
    listed = tccli(platform, tmp_path, "ListFunctions")
    assert [f["FunctionName"] for f in listed["Functions"]] == NAMES
    assert listed["TotalCount"] == 4
    got = tccli(platform, tmp_path, "GetFunction", "--FunctionName", "items-fn")
    assert (got["Runtime"], got["Handler"], got["Status"]) == ("Python3.9", "index.items", "Active")
    assert {"Key": "WHERE", "Value": "demo-dev-shop"} in got["Environment"]["Variables"]
    assert [t["Type"] for t in got["Triggers"]] == ["apigw", "apigw", "cos"]
    triggers = tccli(platform, tmp_path, "ListTriggers", "--FunctionName", "demo-dev-shop-tick")
    assert [(t["TriggerName"], t["Enable"]) for t in triggers["Triggers"]] == [("every-second", 1), ("nightly", 0)]
    invoked = tccli(platform, tmp_path, "Invoke", "--FunctionName", "items-fn", "--ClientContext", '{"from": "tccli"}')
    assert invoked["Result"]["InvokeResult"] == 0
    assert json.loads(invoked["Result"]["RetMsg"])["event"] == {"from": "tccli"}


def test_node_sdk(platform: str, tmp_path: Path) -> None:
    npm = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "tencentcloud-sdk-nodejs-scf@4"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert npm.returncode == 0, npm.stderr
    out = subprocess.run(
        ["node", str(Path(__file__).with_name("node_sdk_client.js")), platform, SECRET_ID, SECRET_KEY, "items-fn",
         "demo-dev-shop-tick"],
        capture_output=True, text=True, env=dict(os.environ, NODE_PATH=str(tmp_path / "node_modules")), check=False,
    )
    assert out.returncode == 0, out.stderr
    answers = json.loads(out.stdout)
    assert [f["FunctionName"] for f in answers["ListFunctions"]["Functions"]] == NAMES, answers["ListFunctions"]
    assert answers["GetFunction"]["FunctionName"] == "items-fn", answers["GetFunction"]
    assert answers["GetFunction"]["MemorySize"] == 128
    assert answers["ListTriggers"]["TotalCount"] == 2, answers["ListTriggers"]
    invoked = answers["Invoke"]["Result"]
    assert invoked["InvokeResult"] == 0, answers["Invoke"]
    assert json.loads(invoked["RetMsg"])["event"] == {"from": "node"}
    assert "items got" in invoked["Log"]


def test_a_bad_signature_is_refused_for_the_new_actions(platform: str, tmp_path: Path) -> None:
    exe = shutil.which("tccli", path=str(Path(sys.executable).parent))
    assert exe
    out = subprocess.run(
        [exe, "scf", "ListFunctions", "--endpoint", f"http://{platform}", "--region", "ap-guangzhou",
         "--secretId", SECRET_ID, "--secretKey", "wrong"],
        capture_output=True, text=True, env=dict(os.environ, HOME=str(tmp_path)), check=False,
    )
    assert out.returncode != 0
    assert "AuthFailure.SignatureFailure" in out.stdout + out.stderr
