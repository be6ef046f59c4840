"""scf_sdk.invoke: the production marshalling and error classification, locally (paired with python.rs)."""

import asyncio
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

import scf_sdk
from scf_sdk import FunctionError, apigw, invoke, invoke_raw
from scf_sdk.context import Context, make_context
from scf_sdk.events import ApiGatewayEvent

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def echo(event: Any, context: Context) -> Dict[str, Any]:
    return {"event": event, "context": context}


def test_returns_the_decoded_result_and_the_context_has_eleven_fields() -> None:
    out = invoke(echo, {"a": (1, 2)}, {"function_name": "f1"})
    assert out["event"] == {"a": [1, 2]}
    ctx = out["context"]
    assert len(ctx) == 11
    assert ctx["function_name"] == "f1"
    assert isinstance(ctx["memory_limit_in_mb"], int) and isinstance(ctx["time_limit_in_ms"], int)
    assert json.loads(ctx["environment"])["SCF_NAMESPACE"] == "default"


def test_invoke_raw_returns_the_body_text() -> None:
    assert invoke_raw(lambda e, c: {"ü": [1, 2.0]}, None) == '{"ü": [1, 2.0]}'
    assert invoke_raw(lambda e, c: "Hello World", None) == '"Hello World"'


def test_an_exception_is_430_with_the_traceback() -> None:
    def handler(event: Any, context: Any) -> Any:
        raise Exception("err msg")

    with pytest.raises(FunctionError) as e:
        invoke(handler, {})
    err = e.value
    assert err.status_code == 430
    assert err.error_type == "UnhandledError"
    assert err.error_message == "user code exception caught"
    assert err.stack_trace.startswith("Traceback (most recent call last):\n")
    assert ", in handler\n" in err.stack_trace
    assert err.stack_trace.endswith("Exception: err msg")
    body = json.loads(err.body)
    assert list(body) == ["errorCode", "errorMessage", "errorType", "requestId", "stackTrace", "statusCode"]


def test_sys_exit_is_classified_and_the_process_lives_on() -> None:
    with pytest.raises(FunctionError) as e:
        invoke(lambda ev, ctx: sys.exit(2), {})
    assert e.value.error_type == "UnhandledError"
    assert e.value.stack_trace.endswith("SystemExit: 2")
    assert invoke(lambda ev, ctx: "still here", {}) == "still here"


@pytest.mark.parametrize(
    "value, detail",
    [
        ({1}, "Object of type set is not JSON serializable"),
        (datetime.date(2024, 1, 1), "Object of type date is not JSON serializable"),
        (float("nan"), "Out of range float values are not JSON compliant: nan"),
    ],
)
def test_values_with_no_json_form_are_marshal_errors(value: Any, detail: str) -> None:
    with pytest.raises(FunctionError) as e:
        invoke(lambda ev, ctx: value, {})
    assert e.value.status_code == 430
    assert e.value.error_type == "MarshalError"
    assert e.value.error_message == f"Unable to marshal response: {detail}"


def test_async_handlers_and_awaitables() -> None:
    async def handler(event: Any, context: Any) -> Any:
        await asyncio.sleep(0)
        return {"got": event}

    assert invoke(handler, [1]) == {"got": [1]}

    async def later() -> str:
        return "later"

    assert invoke(lambda e, c: later(), None) == "later"

    async def fails(event: Any, context: Any) -> Any:
        raise ValueError("async failure")

    with pytest.raises(FunctionError) as e:
        invoke(fails, None)
    assert "asyncio" not in e.value.stack_trace
    assert e.value.stack_trace.endswith("ValueError: async failure")


def test_an_event_that_is_not_json_is_400() -> None:
    with pytest.raises(FunctionError) as e:
        invoke(echo, raw_event="{not json")
    assert e.value.status_code == 400
    assert e.value.error_type == "InvalidEvent"


def test_an_event_with_no_json_form_is_the_callers_mistake() -> None:
    with pytest.raises(TypeError):
        invoke(echo, {1, 2})


def test_handler_strings_resolve_like_production() -> None:
    root = str(EXAMPLES / "python-errors")
    assert invoke("pkg.module.main", None, code_root=root) == "pkg.module.main"
    assert invoke("dir/sub/handler.main", None, code_root=root) == "dir/sub/handler.main"
    cases = [
        ("index.no_such_handler", 437, "HandlerNotFound", "'module' object has no attribute 'no_such_handler'"),
        ("index.not_callable", 443, "HandlerNotCallable", None),
        ("missing_dep.main_handler", 443, "ModuleNotFound", "global name 'requests_not_installed' is not defined"),
        ("nothere.main_handler", 443, "ModuleNotFound", "global name 'nothere' is not defined"),
        ("bad_syntax.main_handler", 443, "SyntaxError", None),
        ("import_raises.main_handler", 443, "InitError", None),
        ("index", 443, "MalformedHandler", None),
    ]
    cwd = os.getcwd()
    try:
        for handler, status, kind, message in cases:
            with pytest.raises(FunctionError) as e:
                invoke(handler, None, code_root=root)
            assert (e.value.status_code, e.value.error_type) == (status, kind), handler
            if message is not None:
                assert e.value.error_message == message
    finally:
        os.chdir(cwd)


def test_apigw_response_helper() -> None:
    r = apigw.response("<b>hi</b>", 201, content_type="text/html")
    assert r == {"isBase64Encoded": False, "statusCode": 201, "headers": {"Content-Type": "text/html"}, "body": "<b>hi</b>"}
    r = apigw.json_response({"ok": True})
    assert r["body"] == '{"ok": true}' and r["headers"]["Content-Type"] == "application/json"
    r = apigw.response(b"\x00\x01")
    assert r["isBase64Encoded"] is True and r["body"] == "AAE="
    event: ApiGatewayEvent = {
        "requestContext": {
            "serviceId": "service-1",
            "path": "/",
            "httpMethod": "POST",
            "requestId": "r",
            "identity": {},
            "sourceIp": "203.0.113.10",
            "stage": "release",
        },
        "headers": {},
        "path": "/",
        "queryString": {},
        "httpMethod": "POST",
        "body": '{"x": 1}',
    }
    assert apigw.request_json(event) == {"x": 1}


def test_lazy_top_level_names() -> None:
    assert scf_sdk.loads("[1]") == [1]
    assert scf_sdk.dumps({"a": 1}) == '{"a": 1}'
    assert scf_sdk.make_context(request_id="r")["request_id"] == "r"
    assert scf_sdk.Context is Context
    assert make_context()["function_version"] == "$LATEST"
    with pytest.raises(AttributeError):
        getattr(scf_sdk, "nope")
