"""Typed shapes of the trigger events SCF delivers, and of the answers API Gateway, CLB and a WebSocket
registration function expect (``docs/events.md`` has a section per kind).

At run time every event is a plain ``dict``; these ``TypedDict``s only tell your type checker what is in it.
They are the same description as the Rust types of ``scf_protocol::events``: a key that may be absent is
optional here (``total=False``), every other key is always there. The SDK's tests type-check the samples the
Rust types generate against these types with ``mypy --strict``, so the two cannot drift apart.
"""

from typing import Any, Dict, List, Literal, Mapping, TypedDict, Union

# --- API Gateway (integration request, integration response) -----------------------------------------


class ApiGatewayIdentity(TypedDict, total=False):
    """``requestContext.identity``: ``secretId`` is there for an API protected by a key pair."""

    secretId: str


class _RequestContextRequired(TypedDict):
    path: str
    httpMethod: str
    requestId: str
    identity: ApiGatewayIdentity
    sourceIp: str
    stage: str


class _ApiGatewayRequestContextRequired(_RequestContextRequired):
    serviceId: str


class ApiGatewayRequestContext(_ApiGatewayRequestContextRequired, total=False):
    """``requestContext``: the gateway's service, the API's declared path and method, the request id, the
    caller's identity and address, the stage (``release``, ``prepub``, ``test``)."""

    websocketEnable: bool


QueryValue = Union[str, List[str], bool]
"""One value of ``queryString``: ``a=1`` as ``"1"``, a repeated key as a list, a key without ``=`` as ``True``."""


class _ApiGatewayEventRequired(TypedDict):
    requestContext: ApiGatewayRequestContext
    headers: Dict[str, str]
    path: str
    queryString: Dict[str, QueryValue]
    httpMethod: str


class ApiGatewayEvent(_ApiGatewayEventRequired, total=False):
    """An API Gateway trigger's event (integration request), invoked synchronously. ``body`` is the request
    body as text (base64 when ``isBase64Encoded``), absent for a request without one."""

    body: str
    pathParameters: Dict[str, str]
    queryStringParameters: Dict[str, str]
    headerParameters: Dict[str, str]
    stageVariables: Dict[str, str]
    isBase64Encoded: bool


HeaderValue = Union[str, List[str]]
"""One header of an integration response: a list sends the header once per value."""


class _ApiGatewayResponseRequired(TypedDict):
    statusCode: int
    headers: Mapping[str, HeaderValue]
    body: str


class ApiGatewayResponse(_ApiGatewayResponseRequired, total=False):
    """What an event function behind API Gateway (or CLB) returns with integrated responses: the HTTP
    response to build. ``isBase64Encoded`` (absent: ``False``) says the body is base64 of binary content."""

    isBase64Encoded: bool


# --- Timer --------------------------------------------------------------------------------------------------


class TimerEvent(TypedDict):
    """A timer trigger's event, invoked asynchronously. ``Type`` is ``"Timer"``; ``Time`` is UTC ISO 8601
    (``2024-06-10T08:00:00Z``); ``Message`` is the trigger's configured message (its ``argument``)."""

    Type: str
    TriggerName: str
    Time: str
    Message: str


# --- COS ----------------------------------------------------------------------------------------------------


class CosObject(TypedDict):
    """``cos.cosObject``: ``key`` is ``/<appid>/<bucket>/<key>``, ``size`` in bytes, ``vid`` the version id."""

    url: str
    meta: Dict[str, str]
    vid: str
    key: str
    size: int


class CosBucket(TypedDict):
    """``cos.cosBucket``: ``region`` in COS's short form (``gz``), ``name`` without the appid."""

    region: str
    name: str
    appid: str


class CosEntity(TypedDict):
    """``cos`` of a record: the object and its bucket."""

    cosSchemaVersion: str
    cosObject: CosObject
    cosBucket: CosBucket
    cosNotificationId: str


class CosRequestParameters(TypedDict):
    """``event.requestParameters``: the request that caused the event."""

    requestSourceIP: str
    requestHeaders: Dict[str, str]


class CosEventInfo(TypedDict):
    """``event`` of a record: ``eventName`` (``cos:ObjectCreated:Put``, ``cos:ObjectRemove:Delete``, …),
    ``eventTime`` in seconds since the Unix epoch, ``reqid`` the request's id at COS."""

    eventName: str
    eventVersion: str
    eventTime: int
    eventSource: str
    requestParameters: CosRequestParameters
    eventQueue: str
    reservedInfo: str
    reqid: int


class CosRecord(TypedDict):
    """One object event."""

    cos: CosEntity
    event: CosEventInfo


class CosEvent(TypedDict):
    """A COS trigger's event, invoked asynchronously: one record per object created or deleted."""

    Records: List[CosRecord]


# --- CMQ topic ----------------------------------------------------------------------------------------------


class CmqTopicMessage(TypedDict):
    """``CMQ`` of a record. ``msgTag`` is the tags joined into one string (``"tag1,tag2"``), or a list."""

    type: str
    topicOwner: int
    topicName: str
    subscriptionName: str
    publishTime: str
    msgId: str
    requestId: str
    msgBody: str
    msgTag: Union[str, List[str]]


class CmqTopicRecord(TypedDict):
    """One message."""

    CMQ: CmqTopicMessage


class CmqTopicEvent(TypedDict):
    """A CMQ topic trigger's event, invoked asynchronously."""

    Records: List[CmqTopicRecord]


# --- CKafka -------------------------------------------------------------------------------------------------


class CkafkaMessage(TypedDict):
    """``Ckafka`` of a record: ``msgKey`` is ``"None"`` for a message without a key."""

    topic: str
    partition: int
    offset: int
    msgKey: str
    msgBody: str


class CkafkaRecord(TypedDict):
    """One message."""

    Ckafka: CkafkaMessage


class CkafkaEvent(TypedDict):
    """A CKafka trigger's event, invoked synchronously: a batch of messages from one topic."""

    Records: List[CkafkaRecord]


# --- CLB ----------------------------------------------------------------------------------------------------


class _ClbEventRequired(TypedDict):
    headers: Dict[str, str]


class ClbEvent(_ClbEventRequired, total=False):
    """A CLB (load balancer) trigger's event, invoked synchronously: the request's headers (the method and
    path are the ``X-Method`` and ``X-Uri`` headers when the listener adds them) and its ``payload`` (a JSON
    body as its document, else the text; base64 when ``isBase64Encoded``)."""

    payload: Any
    isBase64Encoded: bool


ClbResponse = ApiGatewayResponse
"""CLB takes the same integrated response as API Gateway."""


# --- API Gateway WebSocket ----------------------------------------------------------------------------------

WebSocketAction = Literal["connecting", "closing", "data send", "data recv"]
"""``websocket.action``."""


class WebSocketRequestContext(_RequestContextRequired, total=False):
    """``requestContext`` of a connection request: API Gateway's, but Tencent's documentation names the
    service ``serviceName`` and its Go type ``serviceId``: either may be there."""

    serviceId: str
    serviceName: str
    websocketEnable: bool


class _WebSocketConnectionRequired(TypedDict):
    action: WebSocketAction
    secConnectionID: str


class WebSocketConnection(_WebSocketConnectionRequired, total=False):
    """``websocket`` of a connection request (what the client asks for) or of its answer (what is chosen)."""

    secWebSocketProtocol: str
    secWebSocketExtensions: str


class WebSocketConnectEvent(TypedDict):
    """The registration function's event: a client asks to connect (invoked synchronously)."""

    requestContext: WebSocketRequestContext
    websocket: WebSocketConnection


class WebSocketConnectResponse(TypedDict):
    """What the registration function answers: ``errNo`` 0 accepts the connection."""

    errNo: int
    errMsg: str
    websocket: WebSocketConnection


class _WebSocketMessageRequired(TypedDict):
    action: WebSocketAction
    secConnectionID: str


class WebSocketMessage(_WebSocketMessageRequired, total=False):
    """``websocket`` of a transfer or cleanup event: ``dataType`` ``"text"`` or ``"binary"`` and ``data``
    (base64 when binary), both absent when closing."""

    dataType: str
    data: str


class WebSocketMessageEvent(TypedDict):
    """The transfer function's event (``"data send"``) and the cleanup function's (``"closing"``), invoked
    synchronously; also the body a function posts to the gateway's push address."""

    websocket: WebSocketMessage
