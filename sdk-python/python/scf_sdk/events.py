"""Typed shapes of the trigger events SCF delivers (Tencent Cloud, "Trigger Event Message Structure Summary").

At run time every event is a plain ``dict``; these ``TypedDict``s only tell your type checker what is in it.
Fields the documentation shows in every sample are required; fields that only some samples show are optional.
"""

from typing import Any, Dict, List, TypedDict, Union

# --- API Gateway (integration request) -------------------------------------------------------------------


class ApiGatewayIdentity(TypedDict, total=False):
    secretId: str


class ApiGatewayRequestContext(TypedDict, total=False):
    serviceId: str
    path: str
    httpMethod: str
    requestId: str
    identity: ApiGatewayIdentity
    sourceIp: str
    stage: str


class _ApiGatewayEventRequired(TypedDict):
    requestContext: ApiGatewayRequestContext
    headers: Dict[str, str]
    path: str
    httpMethod: str


class ApiGatewayEvent(_ApiGatewayEventRequired, total=False):
    """An API Gateway trigger's event. ``body`` is the request body as a string (absent for bodiless requests)."""

    body: str
    pathParameters: Dict[str, str]
    queryStringParameters: Dict[str, str]
    headerParameters: Dict[str, str]
    stageVariables: Dict[str, str]
    queryString: Dict[str, Union[str, List[str]]]
    isBase64Encoded: bool


class ApiGatewayResponse(TypedDict):
    """What an API Gateway integration response expects a function to return."""

    isBase64Encoded: bool
    statusCode: int
    headers: Dict[str, str]
    body: str


# --- Timer ------------------------------------------------------------------------------------------------


class TimerEvent(TypedDict):
    """A Timer trigger's event. ``Type`` is ``"Timer"``; ``Time`` is UTC ISO-8601; ``Message`` is the
    trigger's configured additional information."""

    Type: str
    TriggerName: str
    Time: str
    Message: str


# --- COS ----------------------------------------------------------------------------------------------------


class CosBucket(TypedDict, total=False):
    region: str
    name: str
    appid: str


class CosObject(TypedDict, total=False):
    url: str
    meta: Dict[str, str]
    vid: str
    key: str
    size: int


class CosInfo(TypedDict, total=False):
    cosSchemaVersion: str
    cosObject: CosObject
    cosBucket: CosBucket
    cosNotificationId: str


class CosRequestParameters(TypedDict, total=False):
    requestSourceIP: str
    requestHeaders: Dict[str, str]


class CosEventInfo(TypedDict, total=False):
    eventName: str
    eventVersion: str
    eventTime: Union[int, str]
    eventSource: str
    eventQueue: str
    requestParameters: CosRequestParameters
    reservedInfo: str
    reqid: int


class CosRecord(TypedDict):
    cos: CosInfo
    event: CosEventInfo


class CosEvent(TypedDict):
    """A COS trigger's event: one record per object created or deleted."""

    Records: List[CosRecord]


# --- CMQ topic ----------------------------------------------------------------------------------------------


class CmqTopicMessage(TypedDict, total=False):
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
    CMQ: CmqTopicMessage


class CmqTopicEvent(TypedDict):
    """A CMQ topic trigger's event."""

    Records: List[CmqTopicRecord]


# --- CKafka -------------------------------------------------------------------------------------------------


class CkafkaMessage(TypedDict):
    topic: str
    partition: int
    offset: int
    msgKey: str
    msgBody: str


class CkafkaRecord(TypedDict):
    Ckafka: CkafkaMessage


class CkafkaEvent(TypedDict):
    """A CKafka trigger's event: a batch of messages from one topic."""

    Records: List[CkafkaRecord]


# --- CLB ----------------------------------------------------------------------------------------------------


class _ClbEventRequired(TypedDict):
    headers: Dict[str, str]
    path: str
    httpMethod: str


class ClbEvent(_ClbEventRequired, total=False):
    """A CLB (load balancer) trigger's event: the HTTP request."""

    queryString: Dict[str, Union[str, List[str]]]
    body: str
    isBase64Encoded: bool
    requestContext: Dict[str, Any]


ClbResponse = ApiGatewayResponse
"""CLB expects the same response shape as API Gateway."""
