"""Helpers for API Gateway (and CLB) integration responses."""

import base64
from typing import Any, Dict, Optional, Union

from scf_sdk.events import ApiGatewayEvent, ApiGatewayResponse


def response(
    body: Union[str, bytes, Any] = "",
    status_code: int = 200,
    headers: Optional[Dict[str, str]] = None,
    *,
    content_type: Optional[str] = None,
) -> ApiGatewayResponse:
    """An integration response. ``str`` bodies go as they are (``text/plain`` unless said otherwise),
    ``bytes`` base64-encoded with ``isBase64Encoded`` (``application/octet-stream``), anything else as JSON
    text with the runtime's encoder (``application/json``)."""
    hs = dict(headers or {})
    b64 = False
    if isinstance(body, bytes):
        text = base64.b64encode(body).decode("ascii")
        b64 = True
        default_type = "application/octet-stream"
    elif isinstance(body, str):
        text = body
        default_type = "text/plain; charset=utf-8"
    else:
        from scf_sdk._core import dumps

        text = dumps(body)
        default_type = "application/json"
    if not any(k.lower() == "content-type" for k in hs):
        hs["Content-Type"] = content_type or default_type
    return ApiGatewayResponse(isBase64Encoded=b64, statusCode=status_code, headers=hs, body=text)


def json_response(data: Any, status_code: int = 200, headers: Optional[Dict[str, str]] = None) -> ApiGatewayResponse:
    """A JSON integration response (``application/json``)."""
    return response(data, status_code, headers, content_type="application/json")


def request_body(event: ApiGatewayEvent) -> bytes:
    """The request body as bytes (base64-decoded when the gateway says so)."""
    body = event.get("body", "") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")


def request_json(event: ApiGatewayEvent) -> Any:
    """The request body decoded as JSON (``None`` for an empty body). Raises ``ValueError`` if not JSON."""
    raw = request_body(event)
    if not raw.strip():
        return None
    from scf_sdk._core import loads

    return loads(raw)
