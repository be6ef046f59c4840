"""One handler per error class of the runtime (docs/python.md, docs/errors.md).

Loading errors live in their own files (a file fails to import for every handler in it):
missing_dep.py (ModuleNotFound 443), bad_syntax.py (SyntaxError 443), import_raises.py (InitError 443).
"""

import asyncio
import datetime
import decimal
import logging
import os
import sys

import vendored_pkg  # shipped in the code directory, as SCF users vendor their dependencies

not_callable = 42  # handler "index.not_callable" -> HandlerNotCallable 443
CALLS = {"count": 0}  # survives between warm invocations of one instance


def echo(event, context):
    """Returns the event and the context: marshalling round trip."""
    return {"event": event, "context": context}


def raises(event, context):
    """An uncaught exception -> UnhandledError 430 with the Python traceback."""
    print("about to fail")
    raise Exception("err msg")


def exits(event, context):
    """sys.exit() in the handler -> UnhandledError 430 (SystemExit traceback); the instance lives on."""
    sys.exit(3)


def returns_set(event, context):
    """No JSON form -> MarshalError 430."""
    return {"tags": {1, 2}}


def returns_datetime(event, context):
    return datetime.datetime(2024, 1, 1)


def returns_nan(event, context):
    return {"x": float("nan")}


def returns_cycle(event, context):
    a = []
    a.append(a)
    return a


def returns_decimal_and_tuple(event, context):
    return {"price": decimal.Decimal("19.90"), "pair": (1, "二"), "big": 2**70, "f": 0.1}


def returns_string(event, context):
    """A str is JSON-encoded once: the caller sees "Hello World" with quotes."""
    return "Hello World"


def returns_none(event, context):
    return None


async def async_handler(event, context):
    """async def handlers are awaited on the instance's event loop."""
    await asyncio.sleep(0.01)
    return {"async": True, "event": event}


async def async_raises(event, context):
    await asyncio.sleep(0)
    raise ValueError("async failure")


def returns_awaitable(event, context):
    async def later():
        return "awaited"

    return later()


def logs(event, context):
    """print, sys.stderr and logging reach the request's log as raw lines, in order."""
    logging.getLogger().setLevel(logging.INFO)
    print("line 1 from print")
    sys.stderr.write("line 2 from stderr\n")
    logging.info("line 3 from logging")
    print("line 4 from print")
    return "logged"


def prints_then_exits(event, context):
    """os._exit right after printing (no newline): the output is not lost; the platform reports 439."""
    print("last words", end="")
    os._exit(1)


def segfaults(event, context):
    """A crash in native code -> the platform's 439."""
    import ctypes

    ctypes.string_at(0)


def spins(event, context):
    """An infinite loop -> the platform's timeout 433."""
    while True:
        pass


def too_large(event, context):
    """A result over 6 MB -> ResponseTooLarge 407."""
    return "x" * (7 * 1024 * 1024)


def vendored(event, context):
    """A dependency vendored into the code directory imports."""
    return vendored_pkg.hello()


def counter(event, context):
    CALLS["count"] += 1
    return CALLS["count"]


def cwd(event, context):
    """The code root is the working directory and the first entry of sys.path."""
    return {"cwd": os.getcwd(), "path0": sys.path[0], "executable": sys.executable}
