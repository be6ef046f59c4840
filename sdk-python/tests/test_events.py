"""The ``TypedDict``s of ``scf_sdk.events`` against the Rust types of ``scf_protocol::events`` (paired with
``sdk-node/test/events.test.js``).

The sample sets of ``protocol/src/events/samples/`` (regenerated from the Rust types by a Rust test) hold, per
shape, the generated sample, a document with every optional field (``full``), one with none (``minimal``),
and the changes the Rust type refuses. Every document is written as a variable of its ``TypedDict`` into one
file, which ``mypy --strict`` checks: the accepted documents must type-check, every refused change must be an
error on its own line. The ``TypedDict``s must also declare nothing the ``full`` document lacks.
"""

import copy
import importlib.util
import json
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import pytest

import scf_sdk.events as events

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "protocol" / "src" / "events" / "samples"

# Each shape's TypedDict in scf_sdk.events (the Rust type's name is in the sample set).
TYPES: Dict[str, str] = {
    "apigw": "ApiGatewayEvent",
    "apigw-response": "ApiGatewayResponse",
    "timer": "TimerEvent",
    "cos": "CosEvent",
    "cmq": "CmqTopicEvent",
    "ckafka": "CkafkaEvent",
    "clb": "ClbEvent",
    "websocket-connect": "WebSocketConnectEvent",
    "websocket-connect-response": "WebSocketConnectResponse",
    "websocket-data": "WebSocketMessageEvent",
    "websocket-close": "WebSocketMessageEvent",
}


def _sets() -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for f in sorted(SAMPLES.glob("*.json")):
        out[f.stem] = json.loads(f.read_text(encoding="utf-8"))
    return out


SETS = _sets()


def _apply(doc: Any, change: Dict[str, Any]) -> Any:
    out = copy.deepcopy(doc)
    *parents, last = change["path"]
    node = out
    for step in parents:
        node = node[step]
    if change.get("remove"):
        del node[last]
    else:
        node[last] = change["set"]
    return out


# One line per document: (shape, what, accepted?, the Python source of the document).
Entry = Tuple[str, str, bool, str]


def _entries() -> List[Entry]:
    out: List[Entry] = []
    for shape, s in SETS.items():
        for what in ("sample", "full", "minimal"):
            if s[what] is not None:
                out.append((shape, what, True, repr(s[what])))
        for i, change in enumerate(s["rejected"]):
            out.append((shape, f"rejected[{i}] {change}", False, repr(_apply(s[change["from"]], change))))
    return out


def _mypy() -> List[str]:
    if importlib.util.find_spec("mypy") is not None:
        return [sys.executable, "-m", "mypy"]
    # A fresh install of the SDK with only pytest: the repository's mypy checks that install's types.
    repo_mypy = ROOT / ".venv" / "bin" / "mypy"
    if repo_mypy.exists():
        return [str(repo_mypy)]
    pytest.fail("mypy is needed to type-check the events: pip install mypy")


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Tuple[List[Entry], Dict[int, List[str]], str]:
    """Writes every document as a typed variable, runs ``mypy --strict`` once, and gives each line's errors."""
    tmp = tmp_path_factory.mktemp("events")
    entries = _entries()
    names = sorted(set(TYPES.values()))
    lines = [f"from scf_sdk.events import {', '.join(names)}", ""]
    first = len(lines) + 1
    for i, (shape, _, _, source) in enumerate(entries):
        lines.append(f"doc_{i}: {TYPES[shape]} = {source}")
    file = tmp / "typed_events.py"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.run(
        [
            *_mypy(),
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp / ".mypy_cache"),
            "--python-executable",
            sys.executable,
            str(file),
        ],
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    errors: Dict[int, List[str]] = {}
    other: List[str] = []
    for line in proc.stdout.splitlines():
        m = re.match(r"^(.*?):(\d+): error: (.*)$", line)
        if m and Path(m.group(1)).name == file.name:
            errors.setdefault(int(m.group(2)) - first, []).append(m.group(3))
        elif ": error:" in line:
            other.append(line)
    assert not other, "mypy reports errors outside the documents:\n" + "\n".join(other)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return entries, errors, proc.stdout


def test_every_shape_has_its_typed_dict() -> None:
    assert sorted(SETS) == sorted(TYPES), "a sample set without a TypedDict here, or the reverse"
    for shape, name in TYPES.items():
        assert getattr(events, name), shape


@pytest.mark.parametrize("shape", sorted(TYPES))
def test_accepted_documents_type_check(shape: str, checked: Tuple[List[Entry], Dict[int, List[str]], str]) -> None:
    entries, errors, _ = checked
    bad = [
        f"{what}: {errors[i]}"
        for i, (s, what, ok, _) in enumerate(entries)
        if s == shape and ok and i in errors
    ]
    assert not bad, f"{TYPES[shape]} refuses what the Rust type accepts:\n" + "\n".join(bad)


@pytest.mark.parametrize("shape", sorted(TYPES))
def test_refused_changes_do_not_type_check(
    shape: str, checked: Tuple[List[Entry], Dict[int, List[str]], str]
) -> None:
    entries, errors, _ = checked
    cases = [(i, what) for i, (s, what, ok, _) in enumerate(entries) if s == shape and not ok]
    assert cases, f"{shape}: no refused change to check"
    missed = [what for i, what in cases if i not in errors]
    assert not missed, f"{TYPES[shape]} accepts what the Rust type refuses:\n" + "\n".join(missed)


def _undeclared_in(tp: Any, value: Any, where: str) -> List[str]:
    """Keys ``tp`` (a TypedDict, or a list or mapping of them) declares that ``value`` lacks."""
    out: List[str] = []
    if typing.is_typeddict(tp):
        for key, sub in typing.get_type_hints(tp).items():
            if key not in value:
                out.append(f"{where}.{key}")
            else:
                out += _undeclared_in(sub, value[key], f"{where}.{key}")
    elif typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        for i, v in enumerate(value):
            out += _undeclared_in(item, v, f"{where}[{i}]")
    elif typing.get_origin(tp) in (dict, Mapping):
        _, item = typing.get_args(tp)
        for k, v in value.items():
            out += _undeclared_in(item, v, f"{where}[{k!r}]")
    return out


@pytest.mark.parametrize("shape", sorted(TYPES))
def test_typed_dicts_declare_nothing_the_rust_type_lacks(shape: str) -> None:
    tp = getattr(events, TYPES[shape])
    missing = _undeclared_in(tp, SETS[shape]["full"], TYPES[shape])
    assert not missing, f"declared in Python, unknown to the Rust type: {missing}"


def test_the_check_catches_a_drifted_type(tmp_path: Path) -> None:
    # The method itself, on a type that drifted: a TypedDict that wants a str where Rust has an int fails.
    src = (
        "from typing import List, TypedDict\n"
        "class Obj(TypedDict):\n    size: str\n"
        f"doc: Obj = {SETS['cos']['full']['Records'][0]['cos']['cosObject']!r}\n"
    )
    (tmp_path / "drift.py").write_text(src, encoding="utf-8")
    proc = subprocess.run(
        [*_mypy(), "--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "c"), "drift.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout
    assert "[typeddict-unknown-key]" in proc.stdout, proc.stdout
    assert 'TypedDict item "size" has type "str"' in proc.stdout, proc.stdout
