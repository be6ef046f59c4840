"""The conformance cases through the local ``invoke`` (paired with conformance.test.js and sdk-rust's
tests/conformance.rs): a handler run by ``scf_sdk.invoke_raw`` gives what the deployed function gives, body for
body and error for error, checked against the same ``case.json`` expectations ``scf-local conformance`` uses.

Skipped, with the reason, are only the cases that need an instance or the platform: timeouts, exits, memory,
warm state, the function's configuration (its name, memory, environment), events the platform's runner
generates, and expectations about the log (the platform's lines around the function's).
"""

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from scf_sdk import FunctionError, invoke_raw

SUITE = Path(__file__).resolve().parents[2] / "tests" / "conformance"
HANDLERS = SUITE / "handlers" / "python"
REQUEST_ID = "local-request-id"

# Cases whose outcome comes from the platform or from an instance that lives on, not from one call.
NEEDS_AN_INSTANCE = {
    "error_timeout": "the platform times an instance out",
    "error_memory": "the platform measures an instance's memory",
    "error_process_exit": "a process exit ends the instance (the platform reports it)",
    "fresh_after_exit": "a process exit ends the instance (the platform reports it)",
    "warm_globals": "warm state lives in an instance across invocations",
    "warm_after_error": "warm state lives in an instance across invocations",
    "warm_tmp_dir": "the instance's private temporary directory is the platform's",
    "logs_many_lines": "its 1 MB of output is the platform's log to check (here it would flood the test runner's)",
}


def _cases() -> List[Tuple[str, Dict[str, Any]]]:
    out = []
    for f in sorted((SUITE / "cases").glob("*/case.json")):
        out.append((f.parent.name, json.loads(f.read_text(encoding="utf-8"))))
    return out


def _skip_reason(name: str, case: Dict[str, Any]) -> Optional[str]:
    na = case.get("languages", {}).get("python", {}).get("na")
    if na:
        return f"not applicable in Python: {na}"
    if name in NEEDS_AN_INSTANCE:
        return NEEDS_AN_INSTANCE[name]
    if case.get("config"):
        return "configures the platform's function (name, memory, timeout, environment)"
    return None


def _event(case_dir: Path, inv: Dict[str, Any]) -> Optional[bytes]:
    if "event" in inv:
        return json.dumps(inv["event"], separators=(",", ":"), ensure_ascii=False).encode()
    if "eventText" in inv:
        return str(inv["eventText"]).encode()
    if "eventFile" in inv:
        return (case_dir / str(inv["eventFile"])).read_bytes()
    if "eventGenerate" in inv:
        return None
    return b"{}"


def _substitute(v: Any) -> Any:
    if v == "${requestId}":
        return REQUEST_ID
    if isinstance(v, dict):
        return {k: _substitute(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_substitute(x) for x in v]
    return v


def _check(expect: Dict[str, Any], event: bytes, ok: bool, body: str) -> None:
    err = expect.get("error")
    if err is None:
        assert ok, f"expected success, got {body}"
        if "body" in expect:
            assert body == expect["body"].replace("${requestId}", REQUEST_ID)
        if "json" in expect:
            assert json.loads(body) == _substitute(expect["json"])
        if expect.get("echo"):
            assert json.loads(body) == json.loads(event)
        if "bodyPattern" in expect:
            assert re.search(expect["bodyPattern"], body), body
        return
    assert not ok, f"expected {err['errorType']}, got the result {body[:200]}"
    got = json.loads(body)
    assert list(got) == ["errorCode", "errorMessage", "errorType", "requestId", "stackTrace", "statusCode"]
    assert (got["errorType"], got["statusCode"]) == (err["errorType"], err["statusCode"]), got
    assert got["requestId"] == REQUEST_ID
    if "errorMessage" in err:
        assert got["errorMessage"] == err["errorMessage"]
    if "errorMessagePattern" in err:
        assert re.search(err["errorMessagePattern"], got["errorMessage"]), got["errorMessage"]
    if "stackTracePattern" in err:
        assert re.search(err["stackTracePattern"], got["stackTrace"]), got["stackTrace"]


CHECKED = ("body", "json", "echo", "bodyPattern", "error")


@pytest.mark.parametrize("name, case", _cases(), ids=[n for n, _ in _cases()])
def test_case_through_the_local_invoke(name: str, case: Dict[str, Any]) -> None:
    reason = _skip_reason(name, case)
    if reason:
        pytest.skip(reason)
    handler = case.get("languages", {}).get("python", {}).get("handler") or case.get("handler") or f"conformance.{name}"
    checked = 0
    for inv in case["invocations"]:
        expect = inv.get("python") or inv["expect"]
        if not any(k in expect and expect[k] not in (None, False) for k in CHECKED):
            continue  # only log expectations: the platform's runner checks those
        event = _event(SUITE / "cases" / name, inv)
        if event is None:
            pytest.skip("the event is generated by the platform's runner (eventGenerate)")
        try:
            body, ok = invoke_raw(handler, raw_event=event, code_root=str(HANDLERS), context={"request_id": REQUEST_ID}), True
        except FunctionError as e:
            body, ok = e.body, False
        _check(expect, event, ok, body)
        checked += 1
    if checked == 0:
        pytest.skip("only the log is expected: the platform's runner checks it")
