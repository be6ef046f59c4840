"""The npm package as a function author installs it: `npm install scf-sdk-<version>.tgz` into a fresh folder
with no cargo on PATH (the prebuilt N-API add-on is used, nothing is built), then the SDK from CommonJS and
ES modules, and a real instance whose bootstrap is the function's own copy in node_modules.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import ROOT, VERSION, Artifacts, Prefix, system_env, write


@pytest.fixture(scope="module")
def project(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    fn = write(tmp_path_factory.mktemp("project"), {
        "package.json": json.dumps({"name": "fn", "version": "1.0.0", "private": True}),
        "index.js": "exports.main_handler = async (event) => ({ name: event.name, bootstrap: require.main.filename });\n",
    })
    env = system_env(tmp_path_factory.mktemp("home"))
    run = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--foreground-scripts", str(artifacts.npm)],
        cwd=fn, env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "building it from source" not in run.stdout + run.stderr, "the prebuilt add-on is used"
    return fn


def test_the_package_carries_the_prebuilt_add_on_and_no_rust_sources(artifacts: Artifacts) -> None:
    with tarfile.open(artifacts.npm) as t:
        names = set(t.getnames())
        pkg = json.loads(t.extractfile("package/package.json").read())  # type: ignore[union-attr]
    assert "package/prebuilds/linux-x64/scf_sdk_node.node" in names
    assert {"package/LICENSE", "package/README.md", "package/bootstrap.js", "package/index.d.ts",
            "package/index.d.mts", "package/scripts/install.js"} <= names
    assert not any(n.startswith("package/src/") or n.endswith("Cargo.toml") for n in names), names
    assert (pkg["name"], pkg["version"], pkg["license"]) == ("scf-sdk", VERSION, "Apache-2.0")
    assert pkg["repository"]["url"] and pkg["engines"]["node"] == ">=18"


def test_installed_without_cargo_it_works_from_commonjs_and_esm(project: Path, tmp_path: Path) -> None:
    installed = project / "node_modules" / "scf-sdk"
    assert (installed / "prebuilds/linux-x64/scf_sdk_node.node").is_file()
    assert not (installed / "index.node").exists(), "nothing was built"
    run = subprocess.run(["node", str(ROOT / "sdk-node/scripts/check-install.js"), str(project), "prebuilt"],
                         env=system_env(tmp_path / "home"), capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "cjs: ok" in run.stdout and "esm: ok" in run.stdout, run.stdout


def test_a_real_instance_runs_the_functions_own_copy(prefix: Prefix, project: Path) -> None:
    run = prefix.invoke(project, "--handler", "index.main_handler", "--event", '{"name":"npm"}')
    assert run.returncode == 0, run.stdout + run.stderr
    body = json.loads(run.stdout)
    assert body == {"name": "npm", "bootstrap": str(project / "node_modules/scf-sdk/bootstrap.js")}, body
