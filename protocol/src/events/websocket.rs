//! API Gateway WebSocket: the events of an event function behind a WebSocket API (a client connects,
//! sends data, disconnects), and the registration function's answer.

use serde::{Deserialize, Serialize};

use super::{ApiGatewayIdentity, GenerateError, OverrideKey, Overrides, key};

/// The event of the registration function: a client asks to connect. Invoked synchronously; the
/// function answers with a [`WebSocketConnectResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketConnectEvent {
    /// The gateway's side of the request.
    pub request_context: WebSocketRequestContext,
    /// The connection.
    pub websocket: WebSocketConnection,
}

/// `requestContext` of a [`WebSocketConnectEvent`]. Tencent's documentation names the service
/// `serviceName`, Tencent's Go type `serviceId` (its HTTP context): both are read, neither is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketRequestContext {
    /// The gateway service's id (Tencent's Go type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// The gateway service (Tencent's documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The API's path as declared.
    pub path: String,
    /// The API's method as declared.
    pub http_method: String,
    /// The request's id at the gateway.
    pub request_id: String,
    /// How the caller authenticated.
    pub identity: ApiGatewayIdentity,
    /// The client's address.
    pub source_ip: String,
    /// The stage (environment) the API is published in.
    pub stage: String,
    /// `true`: the API is a WebSocket API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket_enable: Option<bool>,
}

/// `websocket` of a connection request or of its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSocketConnection {
    /// [`WebSocketAction::Connecting`].
    pub action: WebSocketAction,
    /// The connection's id: 128 bits in base64 (32 characters).
    #[serde(rename = "secConnectionID")]
    pub sec_connection_id: String,
    /// The sub-protocols the client asks for (`Sec-WebSocket-Protocol`); in the answer, the one
    /// chosen. Absent when the client asked for none.
    #[serde(
        rename = "secWebSocketProtocol",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sec_web_socket_protocol: Option<String>,
    /// The extensions the client asks for (`Sec-WebSocket-Extensions`); in the answer, the one
    /// chosen. Absent when the client asked for none.
    #[serde(
        rename = "secWebSocketExtensions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sec_web_socket_extensions: Option<String>,
}

/// What the registration function answers: `errNo` 0 accepts the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSocketConnectResponse {
    /// 0 accepts the connection; anything else refuses it.
    #[serde(rename = "errNo")]
    pub err_no: i64,
    /// Why it is refused (read when `errNo` is not 0).
    #[serde(rename = "errMsg")]
    pub err_msg: String,
    /// The connection, with the sub-protocol and extension chosen.
    pub websocket: WebSocketConnection,
}

/// The event of the transfer function (a client sent data) and of the cleanup function (a client
/// disconnects). Invoked synchronously; the gateway reads only the answer's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSocketMessageEvent {
    /// The data, or the disconnection.
    pub websocket: WebSocketMessage,
}

/// `websocket` of a transfer or cleanup event (also the body a function posts to the gateway's push
/// address to send data or to disconnect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSocketMessage {
    /// [`WebSocketAction::DataSend`] for data, [`WebSocketAction::Closing`] for a disconnection.
    pub action: WebSocketAction,
    /// The connection's id.
    #[serde(rename = "secConnectionID")]
    pub sec_connection_id: String,
    /// `"text"` or `"binary"`; absent when closing.
    #[serde(rename = "dataType", default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    /// The data: the text, or base64 of the binary; absent when closing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `websocket.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebSocketAction {
    /// `"connecting"`: a client connects.
    #[serde(rename = "connecting")]
    Connecting,
    /// `"closing"`: a client (or the function) disconnects.
    #[serde(rename = "closing")]
    Closing,
    /// `"data send"`: data from a client (or, posted by the function, to it).
    #[serde(rename = "data send")]
    DataSend,
    /// `"data recv"` (Tencent's Go type names it; no documented event carries it).
    #[serde(rename = "data recv")]
    DataRecv,
}

const CONNECTION_ID: OverrideKey = key(
    "connection-id",
    "the connection's id (`secConnectionID`)",
    "Xk3qLm8vT2pR9sWcYbN4hA==",
);

pub(super) const CONNECT_KEYS: &[OverrideKey] = &[
    CONNECTION_ID,
    key(
        "protocol",
        "the sub-protocols asked for (`secWebSocketProtocol`)",
        "chat,json",
    ),
    key(
        "extensions",
        "the extensions asked for (`secWebSocketExtensions`)",
        "permessage-deflate",
    ),
    key("path", "the API's path (`requestContext.path`)", "/ws"),
    key("stage", "the stage (`requestContext.stage`)", "release"),
    key(
        "service",
        "the gateway service (`requestContext.serviceName`)",
        "chat-service",
    ),
    key(
        "source-ip",
        "the client's address (`requestContext.sourceIp`)",
        "203.0.113.10",
    ),
];

pub(super) const DATA_KEYS: &[OverrideKey] = &[
    CONNECTION_ID,
    key("data", "the data (`data`)", "{\"say\":\"hello\"}"),
    key("data-type", "text or binary (`dataType`)", "text"),
];

pub(super) const CLOSE_KEYS: &[OverrideKey] = &[CONNECTION_ID];

pub(super) fn connect_sample(o: &Overrides<'_>) -> Result<WebSocketConnectEvent, GenerateError> {
    Ok(WebSocketConnectEvent {
        request_context: WebSocketRequestContext {
            service_id: None,
            service_name: Some(o.text("service")),
            path: o.text("path"),
            http_method: "GET".to_owned(),
            request_id: "6b1f3c2e-0d4a-4e8b-9f7c-2a5d8e1b4c3f".to_owned(),
            identity: ApiGatewayIdentity::default(),
            source_ip: o.text("source-ip"),
            stage: o.text("stage"),
            websocket_enable: Some(true),
        },
        websocket: WebSocketConnection {
            action: WebSocketAction::Connecting,
            sec_connection_id: o.text("connection-id"),
            sec_web_socket_protocol: Some(o.text("protocol")).filter(|p| !p.is_empty()),
            sec_web_socket_extensions: Some(o.text("extensions")).filter(|e| !e.is_empty()),
        },
    })
}

pub(super) fn data_sample(o: &Overrides<'_>) -> Result<WebSocketMessageEvent, GenerateError> {
    let data_type = o.text("data-type");
    if !matches!(data_type.as_str(), "text" | "binary") {
        return Err(o.invalid("data-type", "expected text or binary"));
    }
    Ok(WebSocketMessageEvent {
        websocket: WebSocketMessage {
            action: WebSocketAction::DataSend,
            sec_connection_id: o.text("connection-id"),
            data_type: Some(data_type),
            data: Some(o.text("data")),
        },
    })
}

pub(super) fn close_sample(o: &Overrides<'_>) -> Result<WebSocketMessageEvent, GenerateError> {
    Ok(WebSocketMessageEvent {
        websocket: WebSocketMessage {
            action: WebSocketAction::Closing,
            sec_connection_id: o.text("connection-id"),
            data_type: None,
            data: None,
        },
    })
}
