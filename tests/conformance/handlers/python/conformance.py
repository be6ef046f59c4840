"""The conformance suite's handlers in Python: one function per case, named after the case.

tests/conformance/README.md says what each must do. The handler of case `<case>` is `conformance.<case>`.
"""
import asyncio
import json
import os
import sys
import tempfile
import time


def _echo(event, context):
    return event


# Cases whose handler returns its event unchanged.
echo_nested = echo_empty_object = echo_empty_containers = echo_string_event = _echo
echo_array_event = echo_unicode_bmp = echo_unicode_astral = echo_unicode_escaped_input = _echo
echo_escapes = echo_control_chars = echo_html_chars = echo_duplicate_keys = echo_large_1mb = _echo
number_big_integer = number_above_2_53 = number_floats = number_negative_zero = number_extremes = _echo
error_invalid_event = error_invalid_event_nan = echo_nested_100_deep = _echo


def event_near_6mb(event, context):
    data = event["data"]
    return {"length": len(data), "head": data[:8], "tail": data[-8:]}


def return_string(event, context):
    return "Hello World"


def return_number(event, context):
    return 42


def return_float(event, context):
    return 3.25


def return_bool(event, context):
    return True


def return_null(event, context):
    return None


def return_nothing(event, context):
    pass


def return_list(event, context):
    return [1, "two", None, True, {"three": 3}]


def return_key_order(event, context):
    return {"zeta": 1, "alpha": 2, "mid": {"y": 1, "x": 2}}


def return_unicode(event, context):
    return "héllo 世界 😀 <&> \u2028"


def _json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def context_fields(event, context):
    return {k: _json_type(v) for k, v in context.items()}


def context_values(event, context):
    keys = ["function_name", "namespace", "function_version", "memory_limit_in_mb", "time_limit_in_ms",
            "request_id", "tencentcloud_region", "tencentcloud_appid", "tencentcloud_uin"]
    return {k: context[k] for k in keys}


def context_environment(event, context):
    env = json.loads(context["environment"])
    return {
        "APP_MODE": env.get("APP_MODE"),
        "EMPTY_VALUE": env.get("EMPTY_VALUE"),
        "WITH_EQUALS": env.get("WITH_EQUALS"),
        "SCF_NAMESPACE": env.get("SCF_NAMESPACE"),
        "environ_has_app_mode": "APP_MODE=conformance" in context["environ"].split(";"),
    }


def env_from_config(event, context):
    return {
        "GREETING": os.environ.get("GREETING"),
        "EMPTY_VALUE": os.environ.get("EMPTY_VALUE"),
        "UNICODE_VALUE": os.environ.get("UNICODE_VALUE"),
        "NOT_SET": os.environ.get("CONFORMANCE_NOT_SET"),
    }


def env_platform(event, context):
    keys = ["SCF_FUNCTIONNAME", "SCF_NAMESPACE", "SCF_FUNCTIONVERSION", "TENCENTCLOUD_REGION", "TENCENTCLOUD_RUNENV"]
    return {k: os.environ.get(k) for k in keys}


COUNT = 0


def _count():
    global COUNT
    COUNT += 1
    return COUNT


def warm_globals(event, context):
    return {"count": _count()}


def warm_tmp_dir(event, context):
    path = os.path.join(tempfile.gettempdir(), "conformance-warm.txt")
    with open(path, "a") as f:
        f.write("x\n")
    with open(path) as f:
        lines = len(f.read().splitlines())
    tmpdir = os.environ.get("TMPDIR", "")
    return {"lines": lines, "in_tmpdir": bool(tmpdir) and path.startswith(tmpdir)}


def warm_after_error(event, context):
    n = _count()
    if event.get("fail"):
        raise RuntimeError("requested failure")
    return {"count": n}


def fresh_after_exit(event, context):
    n = _count()
    if event.get("exit"):
        os._exit(3)
    return {"count": n}


def error_uncaught(event, context):
    raise ValueError("conformance failure")




error_not_callable = 42


def error_marshal(event, context):
    return {1, 2}


def error_marshal_cycle(event, context):
    a = {}
    a["self"] = a
    return a


def error_nan(event, context):
    return {"value": float("nan")}


def error_timeout(event, context):
    print("started")
    time.sleep(10)
    return "woke up"


def error_memory(event, context):
    block = b"\x01" * (256 * 1024 * 1024)
    time.sleep(3)
    return len(block)


def error_process_exit(event, context):
    print("exiting with status 3")
    os._exit(3)


def error_response_too_large(event, context):
    return "x" * (7 * 1024 * 1024)


def error_message_escaping(event, context):
    raise ValueError("bad <input> & \u2028")


def logs_in_order(event, context):
    print("first")
    print("second", file=sys.stderr)
    print("third")
    print("fourth", file=sys.stderr)
    return "done"


def logs_before_exception(event, context):
    print("last words before the exception")
    raise RuntimeError("failing after printing")


def logs_long_line(event, context):
    print("x" * 10000)
    print("after")
    return "done"


def logs_unicode(event, context):
    print("héllo 世界 😀")
    return "done"


async def async_handler(event, context):
    await asyncio.sleep(0)
    return {"awaited": True}


def logs_many_lines(event, context):
    n, width = int(event["lines"]), int(event["width"])
    for i in range(n):
        head = "line %d " % i
        print(head + "x" * (width - len(head)))
    return {"printed": n}
