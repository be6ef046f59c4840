"""A handler whose module imports a handful of heavy standard modules at load, as real functions do: the
zygote's gain on it is stated apart from the no-op's (`bench/src/zygote.rs`)."""

import asyncio  # noqa: F401
import decimal  # noqa: F401
import email  # noqa: F401
import http.client  # noqa: F401
import json  # noqa: F401


def noop(event, context):
    return None
