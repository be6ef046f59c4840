"""scf_sdk: write, type and test Tencent SCF-style Python functions, and run them under scf-shim.

- ``scf_sdk.Context`` and the trigger events in ``scf_sdk.events`` (``ApiGatewayEvent``, ``CosEvent``,
  ``TimerEvent``, ``CmqTopicEvent``, ``CkafkaEvent``, ``ClbEvent``): ``TypedDict``s for your type checker;
  at run time both are plain ``dict``s.
- ``scf_sdk.apigw.response(...)``: an API Gateway / CLB integration response.
- ``scf_sdk.invoke(handler, event, context=None)``: run a handler locally through the production
  marshalling and error classification; raises ``scf_sdk.FunctionError`` with the platform's error body.
- ``scf_sdk.loads`` / ``scf_sdk.dumps``: the runtime's JSON codec (``json.dumps`` rules, faster).

Names are loaded on first use, so importing the runtime's native core (``scf_sdk._core``) costs nothing more
at a function's cold start.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from scf_sdk import apigw as apigw
    from scf_sdk import events as events
    from scf_sdk._core import dumps as dumps
    from scf_sdk._core import loads as loads
    from scf_sdk.context import Context as Context
    from scf_sdk.context import make_context as make_context
    from scf_sdk.events import ApiGatewayEvent as ApiGatewayEvent
    from scf_sdk.events import ApiGatewayResponse as ApiGatewayResponse
    from scf_sdk.events import CkafkaEvent as CkafkaEvent
    from scf_sdk.events import ClbEvent as ClbEvent
    from scf_sdk.events import CmqTopicEvent as CmqTopicEvent
    from scf_sdk.events import CosEvent as CosEvent
    from scf_sdk.events import TimerEvent as TimerEvent
    from scf_sdk.events import WebSocketMessageEvent as WebSocketMessageEvent
    from scf_sdk.events import WebSocketConnectResponse as WebSocketConnectResponse
    from scf_sdk.events import WebSocketConnectEvent as WebSocketConnectEvent
    from scf_sdk.events import ClbResponse as ClbResponse
    from scf_sdk.testing import FunctionError as FunctionError
    from scf_sdk.testing import invoke as invoke
    from scf_sdk.testing import invoke_raw as invoke_raw
    from scf_sdk.testing import resolve as resolve

__all__ = [
    "ApiGatewayEvent",
    "ApiGatewayResponse",
    "CkafkaEvent",
    "ClbEvent",
    "ClbResponse",
    "CmqTopicEvent",
    "Context",
    "CosEvent",
    "FunctionError",
    "TimerEvent",
    "WebSocketConnectEvent",
    "WebSocketConnectResponse",
    "WebSocketMessageEvent",
    "apigw",
    "dumps",
    "events",
    "invoke",
    "invoke_raw",
    "loads",
    "make_context",
    "resolve",
]

_WHERE = {
    "dumps": "scf_sdk._core",
    "loads": "scf_sdk._core",
    "Context": "scf_sdk.context",
    "make_context": "scf_sdk.context",
    "ApiGatewayEvent": "scf_sdk.events",
    "ApiGatewayResponse": "scf_sdk.events",
    "CkafkaEvent": "scf_sdk.events",
    "ClbEvent": "scf_sdk.events",
    "CmqTopicEvent": "scf_sdk.events",
    "CosEvent": "scf_sdk.events",
    "TimerEvent": "scf_sdk.events",
    "WebSocketMessageEvent": "scf_sdk.events",
    "WebSocketConnectResponse": "scf_sdk.events",
    "WebSocketConnectEvent": "scf_sdk.events",
    "ClbResponse": "scf_sdk.events",
    "FunctionError": "scf_sdk.testing",
    "invoke": "scf_sdk.testing",
    "invoke_raw": "scf_sdk.testing",
    "resolve": "scf_sdk.testing",
}


def __getattr__(name: str) -> object:
    import importlib

    if name in ("apigw", "events"):
        return importlib.import_module(f"scf_sdk.{name}")
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'scf_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value
