"""Run a handler locally the way the platform runs it: for unit tests.

``invoke`` goes through the production path of the runtime (the same native code the instance runs): the
event crosses as JSON text and is decoded by the runtime's decoder, the context is the platform's dict,
awaitables are awaited on the runtime's event loop, the result is encoded with the runtime's encoder and
every failure is classified into the same error body the caller of a deployed function would get.
"""

from typing import Any, Callable, Dict, Mapping, Optional, Union

from scf_sdk import _core
from scf_sdk.context import Context, make_context

Handler = Callable[[Any, Context], Any]


class FunctionError(Exception):
    """A classified failure of an invocation, carrying the caller-visible error body.

    ``body`` is the JSON text the platform returns; ``status_code`` (430, 437, 443, …), ``error_type``
    (``UnhandledError``, ``MarshalError``, …), ``error_message`` and ``stack_trace`` are its fields.
    """

    def __init__(self, body: str) -> None:
        self.body: str = body
        fields: Dict[str, Any] = _core.loads(body)
        self.status_code: int = int(fields.get("statusCode", 0))
        self.error_type: str = str(fields.get("errorType", ""))
        self.error_message: str = str(fields.get("errorMessage", ""))
        self.stack_trace: str = str(fields.get("stackTrace", ""))
        self.request_id: str = str(fields.get("requestId", ""))
        super().__init__(f"{self.error_type} ({self.status_code}): {self.error_message}")


def resolve(handler: str, code_root: Optional[str] = None) -> Handler:
    """Resolves ``file.method`` like the runtime does (``dir/sub/file.method``, ``pkg.module.method``).

    With ``code_root``, that directory becomes the working directory and the first entry of ``sys.path``,
    as in production. Raises :class:`FunctionError` with the load error (437, 443) when it cannot.
    """
    ok, found = _core.resolve(handler, code_root)
    if not ok:
        raise FunctionError(found)
    return found  # type: ignore[no-any-return]


def invoke_raw(
    handler: Union[Handler, str],
    event: Any = None,
    context: Optional[Mapping[str, Any]] = None,
    *,
    raw_event: Union[str, bytes, None] = None,
    code_root: Optional[str] = None,
) -> str:
    """Like :func:`invoke`, but returns the result's JSON text, exactly the body the platform returns."""
    ctx: Dict[str, Any] = dict(make_context())
    if context:
        ctx.update(context)
    request_id = str(ctx.get("request_id", "local-request-id"))
    fn: Any = handler
    if isinstance(handler, str):
        # A load error's body names this invocation's request id, as production's does.
        ok, found = _core.resolve(handler, code_root, request_id)
        if not ok:
            raise FunctionError(found)
        fn = found
    event_json: Union[str, bytes] = raw_event if raw_event is not None else _core.dumps(event)
    ok, body = _core.invoke(fn, event_json, ctx, request_id)
    if not ok:
        raise FunctionError(body)
    return body


def invoke(
    handler: Union[Handler, str],
    event: Any = None,
    context: Optional[Mapping[str, Any]] = None,
    *,
    raw_event: Union[str, bytes, None] = None,
    code_root: Optional[str] = None,
) -> Any:
    """Invokes ``handler`` (a callable, or a ``file.method`` string) with ``event`` and returns the result as
    the caller of the deployed function would see it, decoded from JSON (tuples come back as lists, a
    ``Decimal`` as a number).

    ``event`` must have a JSON form (it is what a trigger could send); ``raw_event`` passes JSON text as it is
    instead (to test an invalid event). ``context`` overrides fields of the default context. Raises
    :class:`FunctionError` carrying the same error body as production: 430 for an exception escaping the
    handler or a result with no JSON form, 437/443 for load failures, 400 for an event that is not JSON.
    """
    return _core.loads(invoke_raw(handler, event, context, raw_event=raw_event, code_root=code_root))
