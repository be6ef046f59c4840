"""The runtime tarball as a user installs it: extracted into a prefix, run from any directory with a PATH of
that prefix, /usr/bin and /bin (no cargo, no venv, no SDK installed, no variables), for a Python, a Node.js
(CommonJS and ES module), a native and two custom-runtime functions, through `scf-local invoke` and `serve`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, VERSION, Prefix, Served, native_library, serve, system_env, write

PY_HANDLER = """\
import os, sys
import scf_sdk

def main_handler(event, context):
    print("python got", event.get("name"))
    return {"hello": event.get("name"), "sdk": scf_sdk.__file__, "python": sys.executable,
            "leaked": "_SCF_SDK_PATH" in os.environ, "request": context["request_id"]}
"""

NODE_CJS = """\
exports.main_handler = async (event, context) => {
  console.log('node got', event.name);
  return { hello: event.name, bootstrap: require.main.filename, left: context.getRemainingTimeInMillis() > 0 };
};
"""

NODE_ESM = """\
export const main_handler = async (event) => ({ hello: event.name, esm: true });
"""

# SCF's documented custom runtime: a shell bootstrap that speaks the runtime API with curl.
CURL_BOOTSTRAP = """\
#!/bin/bash
set -euo pipefail
API="http://$SCF_RUNTIME_API:$SCF_RUNTIME_API_PORT"
curl -sS -d " " -X POST "$API/runtime/init/ready"
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -D "$HEADERS" -X GET "$API/runtime/invocation/next")
  curl -sS -X POST "$API/runtime/invocation/response" -d "{\\"curl\\":$EVENT}"
done
"""

# A custom runtime whose bootstrap is scf-shim itself, found on PATH (how a deployment with the runtime as a
# layer starts it): the shim picks the Python host from index.py and finds its layout from its own path.
SHIM_BOOTSTRAP = "#!/bin/sh\nexec scf-shim\n"


def functions(base: Path) -> dict[str, Path]:
    """One code directory per kind, each with its serverless.yml."""
    dirs = {
        "py": write(base / "py", {"index.py": PY_HANDLER}),
        "cjs": write(base / "cjs", {"index.js": NODE_CJS}),
        "esm": write(base / "esm", {"index.mjs": NODE_ESM}),
        "native": base / "native",
        "curl": write(base / "curl", {"bootstrap": CURL_BOOTSTRAP}, executable=("bootstrap",)),
        "shim": write(base / "shim", {"bootstrap": SHIM_BOOTSTRAP, "index.py": PY_HANDLER},
                      executable=("bootstrap",)),
    }
    dirs["native"].mkdir()
    shutil.copy(native_library(), dirs["native"] / "libindex.so")
    runtimes = {"py": "Python3.9", "cjs": "Nodejs16.13", "esm": "Nodejs16.13", "native": "native",
                "curl": "CustomRuntime", "shim": "CustomRuntime"}
    for name, d in dirs.items():
        (d / "serverless.yml").write_text(
            f"component: scf\ninputs:\n  name: {name}\n  handler: index.main_handler\n  runtime: {runtimes[name]}\n"
        )
    return dirs


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return functions(tmp_path_factory.mktemp("functions"))


def ok(run: subprocess.CompletedProcess[str]) -> Any:
    assert run.returncode == 0, f"exit {run.returncode}\nstdout: {run.stdout}\nstderr: {run.stderr}"
    return json.loads(run.stdout)


def check_python(body: dict[str, Any], prefix: Path, name: str) -> None:
    assert body["hello"] == name
    assert Path(body["sdk"]) == prefix / "lib/scf-runtime/python/scf_sdk/__init__.py", body
    assert body["python"] == "/usr/bin/python3", "python3 on PATH"
    assert body["leaked"] is False, "the bootstrap's variable is gone before user code runs"


def test_versions_name_the_release_and_the_commit(prefix: Prefix) -> None:
    shim = prefix.run("scf-shim", "--version")
    assert shim.returncode == 0, shim
    m = re.fullmatch(rf"scf-shim {re.escape(VERSION)} \(commit ([0-9a-f]{{12}}|unknown)\)\n", shim.stdout)
    assert m, shim.stdout
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert m.group(1) == head.stdout.strip(), "the dist is built from this checkout's HEAD"
    local = prefix.run("scf-local", "--version")
    assert local.returncode == 0, local
    assert local.stdout == f"scf-local {VERSION} (commit {m.group(1)})\n", "both binaries name one commit"


def test_the_tarball_holds_the_layout(prefix: Prefix) -> None:
    for rel in ["bin/scf-local", "bin/scf-shim", "README.md", "LICENSE",
                "lib/scf-runtime/python/scf_sdk/__init__.py", "lib/scf-runtime/python/scf_sdk/py.typed",
                "lib/scf-runtime/node/bootstrap.js", "lib/scf-runtime/node/package.json",
                "lib/scf-runtime/node/prebuilds/linux-x64/scf_sdk_node.node"]:
        assert (prefix.root / rel).is_file(), rel
    assert list((prefix.root / "lib/scf-runtime/python/scf_sdk").glob("_core*.so")), "the Python core"


def test_invoke_python_with_the_systems_python_and_the_bundled_sdk(prefix: Prefix, code: dict[str, Path]) -> None:
    run = prefix.invoke(code["py"], "--event", '{"name":"py"}')
    check_python(ok(run), prefix.root, "py")
    assert "python got py" in run.stderr and "Init Report RequestId:" in run.stderr, run.stderr


def test_invoke_nodejs_commonjs_and_esm_with_the_bundled_sdk(prefix: Prefix, code: dict[str, Path]) -> None:
    run = prefix.invoke(code["cjs"], "--event", '{"name":"cjs"}')
    body = ok(run)
    assert body == {"hello": "cjs", "bootstrap": str(prefix.root / "lib/scf-runtime/node/bootstrap.js"),
                    "left": True}
    assert "\tnode got cjs" in run.stderr, run.stderr
    assert ok(prefix.invoke(code["esm"], "--event", '{"name":"esm"}')) == {"hello": "esm", "esm": True}


def test_invoke_native(prefix: Prefix, code: dict[str, Path]) -> None:
    body = ok(prefix.invoke(code["native"], "--event", '{"name":"SCF"}'))
    assert body["message"] == "Hello, SCF!", body


def test_invoke_custom_runtimes(prefix: Prefix, code: dict[str, Path]) -> None:
    assert ok(prefix.invoke(code["curl"], "--event", '{"n":1}')) == {"curl": {"n": 1}}
    check_python(ok(prefix.invoke(code["shim"], "--event", '{"name":"shim"}')), prefix.root, "shim")


def test_a_vendored_sdk_wins_over_the_bundled_one(prefix: Prefix, tmp_path: Path) -> None:
    fn = write(tmp_path / "vendored", {"index.py": PY_HANDLER})
    shutil.copytree(prefix.root / "lib/scf-runtime/python/scf_sdk", fn / "scf_sdk")
    body = ok(prefix.invoke(fn, "--handler", "index.main_handler", "--event", '{"name":"v"}'))
    assert Path(body["sdk"]) == fn / "scf_sdk/__init__.py", body


def test_without_the_bundled_sdk_the_443_names_the_install_command(prefix: Prefix, tmp_path: Path) -> None:
    # The same binaries in a prefix that lacks lib/scf-runtime/python.
    bare = tmp_path / "bare"
    (bare / "bin").mkdir(parents=True)
    for b in ["scf-local", "scf-shim"]:
        shutil.copy2(prefix.bin / b, bare / "bin" / b)
    fn = write(tmp_path / "fn", {"index.py": PY_HANDLER})
    run = subprocess.run([str(bare / "bin/scf-local"), "invoke", str(fn), "--handler", "index.main_handler"],
                         env=system_env(tmp_path / "home", bare / "bin"), capture_output=True, text=True)
    assert run.returncode == 1, run
    body = json.loads(run.stdout)
    assert (body["errorType"], body["statusCode"]) == ("InitError", 443), body
    msg = body["errorMessage"]
    assert "/usr/bin/python3 cannot import scf_sdk._core" in msg, msg
    assert "/usr/bin/python3 -m pip install scf-sdk" in msg, msg
    assert str(bare / "lib/scf-runtime/python") in msg, msg


@pytest.fixture(scope="module")
def served(prefix: Prefix, code: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(prefix, tmp_path_factory.mktemp("data"), list(code.values()))


def retmsg(result: dict[str, Any]) -> Any:
    assert result["InvokeResult"] == 0, result
    return json.loads(result["RetMsg"])


def test_serve_runs_every_kind_warm(prefix: Prefix, served: Served) -> None:
    for attempt in range(2):
        py = served.invoke("py", {"name": "served"})
        check_python(retmsg(py), prefix.root, "served")
        assert ("Init Report" in py["Log"]) == (attempt == 0), py["Log"]
        assert retmsg(served.invoke("cjs", {"name": "served"}))["hello"] == "served"
        assert retmsg(served.invoke("esm", {"name": "served"})) == {"hello": "served", "esm": True}
        assert retmsg(served.invoke("native", {"name": "served"}))["message"] == "Hello, served!"
        assert retmsg(served.invoke("curl", {"k": attempt})) == {"curl": {"k": attempt}}
        check_python(retmsg(served.invoke("shim", {"name": "served"})), prefix.root, "served")
