//! The trigger events SCF delivers, described once: the types, and a sample generator.
//!
//! Each trigger passes its own JSON document as the function's `event` (`docs/events.md` has a section per
//! kind). The types here are that document, field for field: JSON names, types and which fields may be
//! absent follow Tencent's documentation ("Trigger Event Message Structure Summary" and each trigger's page)
//! and Tencent's own Go types (`scf-go-lib`, `cloudevents/scf`); where the two disagree, the choice is said
//! on the field. Fields that may be absent are `Option`s and are left out when `None`, so a document read
//! and written again is the same document. Fields the types do not know are ignored when reading.
//!
//! | kind | type | trigger | invocation |
//! |---|---|---|---|
//! | `apigw` | [`ApiGatewayEvent`] (answer: [`ApiGatewayResponse`]) | API Gateway | synchronous |
//! | `timer` | [`TimerEvent`] | Timer | asynchronous |
//! | `cos` | [`CosEvent`] | COS (object storage) | asynchronous |
//! | `cmq` | [`CmqTopicEvent`] | CMQ topic | asynchronous |
//! | `ckafka` | [`CkafkaEvent`] | CKafka | synchronous |
//! | `clb` | [`ClbEvent`] (answer: [`ClbResponse`]) | CLB (load balancer) | synchronous |
//! | `websocket-connect` | [`WebSocketConnectEvent`] (answer: [`WebSocketConnectResponse`]) | API Gateway WebSocket, registration function | synchronous |
//! | `websocket-data` | [`WebSocketMessageEvent`] | API Gateway WebSocket, transfer function | synchronous |
//! | `websocket-close` | [`WebSocketMessageEvent`] | API Gateway WebSocket, cleanup function | synchronous |
//!
//! [`generate`] builds a kind's documented sample, realistic values throughout, with a few values chosen
//! by key (the kind's [`KindInfo::keys`]), the way `sam local generate-event` does:
//!
//! ```
//! use scf_protocol::events::{self, CosEvent, InvocationType, Kind};
//!
//! let event = events::generate(Kind::Cos, &[("bucket", "photos"), ("key", "cat.jpg")])?;
//! let cos: CosEvent = serde_json::from_value(event)?;
//! assert_eq!(cos.records[0].cos.cos_bucket.name, "photos");
//! assert_eq!(Kind::Cos.info().invocation, InvocationType::Event);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `samples/` beside this file holds every kind's sample, a variant with every optional field and one
//! with none, and the variants the types refuse; the Python and TypeScript SDKs' tests type-check their
//! event types against those files, and a test here regenerates them, so the four descriptions cannot
//! drift apart.

use std::fmt;

use serde_json::Value;

mod apigw;
mod ckafka;
mod clb;
mod cmq;
mod cos;
mod timer;
mod websocket;

#[cfg(test)]
mod tests;

pub use apigw::{
    ApiGatewayEvent, ApiGatewayIdentity, ApiGatewayRequestContext, ApiGatewayResponse, HeaderValue,
    QueryValue,
};
pub use ckafka::{CkafkaEvent, CkafkaMessage, CkafkaRecord};
pub use clb::{ClbEvent, ClbResponse};
pub use cmq::{CmqTags, CmqTopicEvent, CmqTopicMessage, CmqTopicRecord};
pub use cos::{
    CosBucket, CosEntity, CosEvent, CosEventInfo, CosObject, CosRecord, CosRequestParameters,
};
pub use timer::TimerEvent;
pub use websocket::{
    WebSocketAction, WebSocketConnectEvent, WebSocketConnectResponse, WebSocketConnection,
    WebSocketMessage, WebSocketMessageEvent, WebSocketRequestContext,
};

/// How a trigger invokes its function, in the TencentCloud API's words (`InvocationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvocationType {
    /// Synchronous: the trigger waits for the function's answer (`RequestResponse`).
    RequestResponse,
    /// Asynchronous: the event is queued and delivered with the retry policy (`Event`).
    Event,
}

impl InvocationType {
    /// The TencentCloud API's name: `RequestResponse` or `Event`.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationType::RequestResponse => "RequestResponse",
            InvocationType::Event => "Event",
        }
    }
}

impl fmt::Display for InvocationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind of trigger event [`generate`] can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// API Gateway, integration request: [`ApiGatewayEvent`].
    ApiGateway,
    /// Timer: [`TimerEvent`].
    Timer,
    /// COS object storage: [`CosEvent`].
    Cos,
    /// CMQ topic: [`CmqTopicEvent`].
    Cmq,
    /// CKafka: [`CkafkaEvent`].
    Ckafka,
    /// CLB load balancer: [`ClbEvent`].
    Clb,
    /// API Gateway WebSocket, a client connects (registration function): [`WebSocketConnectEvent`].
    WebSocketConnect,
    /// API Gateway WebSocket, a client sends data (transfer function): [`WebSocketMessageEvent`].
    WebSocketData,
    /// API Gateway WebSocket, a client disconnects (cleanup function): [`WebSocketMessageEvent`].
    WebSocketClose,
}

/// A key [`generate`] accepts for a kind, with the value it takes when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverrideKey {
    /// The key (`bucket`, `path`, …); a command line writes it `--bucket`.
    pub name: &'static str,
    /// What the key sets.
    pub help: &'static str,
    /// The value used when the key is not given.
    pub default: &'static str,
}

/// What there is to know about a kind: its name, its type, the trigger that sends it, how that trigger
/// invokes, and the keys [`generate`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// The kind.
    pub kind: Kind,
    /// Its name on a command line (`cos`, `apigw`, …).
    pub name: &'static str,
    /// The Rust type of the event.
    pub type_name: &'static str,
    /// The trigger that sends it.
    pub trigger: &'static str,
    /// How that trigger invokes the function.
    pub invocation: InvocationType,
    /// The keys [`generate`] accepts for it.
    pub keys: &'static [OverrideKey],
}

const fn key(name: &'static str, help: &'static str, default: &'static str) -> OverrideKey {
    OverrideKey {
        name,
        help,
        default,
    }
}

/// Every kind, in the order of `docs/events.md`.
pub const KINDS: &[KindInfo] = &[
    KindInfo {
        kind: Kind::ApiGateway,
        name: "apigw",
        type_name: "ApiGatewayEvent",
        trigger: "API Gateway",
        invocation: InvocationType::RequestResponse,
        keys: apigw::KEYS,
    },
    KindInfo {
        kind: Kind::Timer,
        name: "timer",
        type_name: "TimerEvent",
        trigger: "Timer",
        invocation: InvocationType::Event,
        keys: timer::KEYS,
    },
    KindInfo {
        kind: Kind::Cos,
        name: "cos",
        type_name: "CosEvent",
        trigger: "COS",
        invocation: InvocationType::Event,
        keys: cos::KEYS,
    },
    KindInfo {
        kind: Kind::Cmq,
        name: "cmq",
        type_name: "CmqTopicEvent",
        trigger: "CMQ topic",
        invocation: InvocationType::Event,
        keys: cmq::KEYS,
    },
    KindInfo {
        kind: Kind::Ckafka,
        name: "ckafka",
        type_name: "CkafkaEvent",
        trigger: "CKafka",
        invocation: InvocationType::RequestResponse,
        keys: ckafka::KEYS,
    },
    KindInfo {
        kind: Kind::Clb,
        name: "clb",
        type_name: "ClbEvent",
        trigger: "CLB",
        invocation: InvocationType::RequestResponse,
        keys: clb::KEYS,
    },
    KindInfo {
        kind: Kind::WebSocketConnect,
        name: "websocket-connect",
        type_name: "WebSocketConnectEvent",
        trigger: "API Gateway WebSocket (registration function)",
        invocation: InvocationType::RequestResponse,
        keys: websocket::CONNECT_KEYS,
    },
    KindInfo {
        kind: Kind::WebSocketData,
        name: "websocket-data",
        type_name: "WebSocketMessageEvent",
        trigger: "API Gateway WebSocket (transfer function)",
        invocation: InvocationType::RequestResponse,
        keys: websocket::DATA_KEYS,
    },
    KindInfo {
        kind: Kind::WebSocketClose,
        name: "websocket-close",
        type_name: "WebSocketMessageEvent",
        trigger: "API Gateway WebSocket (cleanup function)",
        invocation: InvocationType::RequestResponse,
        keys: websocket::CLOSE_KEYS,
    },
];

impl Kind {
    /// Every kind, in the order of [`KINDS`].
    pub fn all() -> impl Iterator<Item = Kind> {
        KINDS.iter().map(|i| i.kind)
    }

    /// The kind named `name` (`cos`, `apigw`, …; case does not matter).
    pub fn parse(name: &str) -> Result<Kind, GenerateError> {
        let wanted = name.trim();
        KINDS
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(wanted))
            .map(|i| i.kind)
            .ok_or_else(|| GenerateError::UnknownKind {
                name: name.to_owned(),
                expected: KINDS.iter().map(|i| i.name).collect::<Vec<_>>().join(", "),
            })
    }

    /// What there is to know about this kind.
    pub fn info(self) -> &'static KindInfo {
        // The entries of KINDS in order (a test checks that each one is its kind's).
        let index = match self {
            Kind::ApiGateway => 0,
            Kind::Timer => 1,
            Kind::Cos => 2,
            Kind::Cmq => 3,
            Kind::Ckafka => 4,
            Kind::Clb => 5,
            Kind::WebSocketConnect => 6,
            Kind::WebSocketData => 7,
            Kind::WebSocketClose => 8,
        };
        &KINDS[index]
    }

    /// The kind's name on a command line.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Reads `event` as this kind's type and writes it back: the document as the type sees it, or why
    /// the type refuses it (a field missing, of the wrong type, …).
    pub fn check(self, event: &Value) -> Result<Value, serde_json::Error> {
        struct Through<'a>(&'a Value);
        impl EventTypeVisitor for Through<'_> {
            type Output = Result<Value, serde_json::Error>;
            fn visit<T: EventType>(self) -> Self::Output {
                serde_json::to_value(T::deserialize(self.0)?)
            }
        }
        self.visit_type(Through(event))
    }

    /// Calls `visitor` with this kind's event type: code that works on any event type (a typed handler
    /// in a test, a check) is written once for every kind.
    pub fn visit_type<V: EventTypeVisitor>(self, visitor: V) -> V::Output {
        match self {
            Kind::ApiGateway => visitor.visit::<ApiGatewayEvent>(),
            Kind::Timer => visitor.visit::<TimerEvent>(),
            Kind::Cos => visitor.visit::<CosEvent>(),
            Kind::Cmq => visitor.visit::<CmqTopicEvent>(),
            Kind::Ckafka => visitor.visit::<CkafkaEvent>(),
            Kind::Clb => visitor.visit::<ClbEvent>(),
            Kind::WebSocketConnect => visitor.visit::<WebSocketConnectEvent>(),
            Kind::WebSocketData | Kind::WebSocketClose => visitor.visit::<WebSocketMessageEvent>(),
        }
    }
}

/// What every event type is: read from and written to JSON, compared, printed.
pub trait EventType:
    serde::de::DeserializeOwned + serde::Serialize + Clone + PartialEq + fmt::Debug + 'static
{
}

impl<T> EventType for T where
    T: serde::de::DeserializeOwned + serde::Serialize + Clone + PartialEq + fmt::Debug + 'static
{
}

/// Work done with an event type chosen by a [`Kind`] at run time ([`Kind::visit_type`]).
pub trait EventTypeVisitor {
    /// What the work gives.
    type Output;
    /// Does the work with the event type `T`.
    fn visit<T: EventType>(self) -> Self::Output;
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why [`generate`] (or [`Kind::parse`]) refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// No kind has that name.
    #[error("unknown event kind '{name}': expected one of {expected}")]
    UnknownKind {
        /// The name given.
        name: String,
        /// The names there are.
        expected: String,
    },
    /// The kind has no such key.
    #[error("the {kind} event has no key '{key}': its keys are {expected}")]
    UnknownKey {
        /// The kind's name.
        kind: &'static str,
        /// The key given.
        key: String,
        /// The kind's keys.
        expected: String,
    },
    /// The same key was given more than once.
    #[error("the key '{key}' is given more than once")]
    RepeatedKey {
        /// The key.
        key: String,
    },
    /// A value the key cannot take.
    #[error("'{key}' cannot be '{value}': {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What the key takes.
        reason: String,
    },
}

/// Builds the documented sample event of `kind`, with the values of `overrides` (key, value) in place of
/// the defaults (see the kind's [`KindInfo::keys`] and `docs/events.md`).
pub fn generate<K: AsRef<str>, V: AsRef<str>>(
    kind: Kind,
    overrides: &[(K, V)],
) -> Result<Value, GenerateError> {
    Ok(build(kind, overrides)?.to_value())
}

/// [`generate`]'s event as indented JSON text, its fields in the documented order.
pub fn generate_pretty<K: AsRef<str>, V: AsRef<str>>(
    kind: Kind,
    overrides: &[(K, V)],
) -> Result<String, GenerateError> {
    Ok(build(kind, overrides)?.to_pretty())
}

/// One generated event, as its type.
enum Sample {
    ApiGateway(ApiGatewayEvent),
    Timer(TimerEvent),
    Cos(CosEvent),
    Cmq(CmqTopicEvent),
    Ckafka(CkafkaEvent),
    Clb(ClbEvent),
    WebSocketConnect(WebSocketConnectEvent),
    WebSocketMessage(WebSocketMessageEvent),
}

/// `$body` with `$e` bound to the event inside a [`Sample`], whatever its type.
macro_rules! each_sample {
    ($sample:expr, $e:ident => $body:expr) => {
        match $sample {
            Sample::ApiGateway($e) => $body,
            Sample::Timer($e) => $body,
            Sample::Cos($e) => $body,
            Sample::Cmq($e) => $body,
            Sample::Ckafka($e) => $body,
            Sample::Clb($e) => $body,
            Sample::WebSocketConnect($e) => $body,
            Sample::WebSocketMessage($e) => $body,
        }
    };
}

impl Sample {
    // The types have string keys and no floats: serialising them cannot fail.
    fn to_value(&self) -> Value {
        each_sample!(self, e => serde_json::to_value(e)).unwrap_or(Value::Null)
    }

    fn to_pretty(&self) -> String {
        each_sample!(self, e => serde_json::to_string_pretty(e)).unwrap_or_default()
    }
}

fn build<K: AsRef<str>, V: AsRef<str>>(
    kind: Kind,
    overrides: &[(K, V)],
) -> Result<Sample, GenerateError> {
    let o = Overrides::new(kind, overrides)?;
    Ok(match kind {
        Kind::ApiGateway => Sample::ApiGateway(apigw::sample(&o)?),
        Kind::Timer => Sample::Timer(timer::sample(&o)?),
        Kind::Cos => Sample::Cos(cos::sample(&o)?),
        Kind::Cmq => Sample::Cmq(cmq::sample(&o)?),
        Kind::Ckafka => Sample::Ckafka(ckafka::sample(&o)?),
        Kind::Clb => Sample::Clb(clb::sample(&o)?),
        Kind::WebSocketConnect => Sample::WebSocketConnect(websocket::connect_sample(&o)?),
        Kind::WebSocketData => Sample::WebSocketMessage(websocket::data_sample(&o)?),
        Kind::WebSocketClose => Sample::WebSocketMessage(websocket::close_sample(&o)?),
    })
}

/// The overrides of one [`generate`] call, checked against the kind's keys.
struct Overrides<'a> {
    given: Vec<(&'a str, &'a str)>,
    keys: &'static [OverrideKey],
}

impl<'a> Overrides<'a> {
    fn new<K: AsRef<str>, V: AsRef<str>>(
        kind: Kind,
        overrides: &'a [(K, V)],
    ) -> Result<Self, GenerateError> {
        let info = kind.info();
        let mut given: Vec<(&str, &str)> = Vec::with_capacity(overrides.len());
        for (k, v) in overrides {
            let (k, v) = (k.as_ref(), v.as_ref());
            if !info.keys.iter().any(|known| known.name == k) {
                return Err(GenerateError::UnknownKey {
                    kind: info.name,
                    key: k.to_owned(),
                    expected: info
                        .keys
                        .iter()
                        .map(|known| known.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            if given.iter().any(|(seen, _)| *seen == k) {
                return Err(GenerateError::RepeatedKey { key: k.to_owned() });
            }
            given.push((k, v));
        }
        Ok(Overrides {
            given,
            keys: info.keys,
        })
    }

    /// The value of `key`: given, else its default.
    fn text(&self, key: &str) -> String {
        self.given
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .or_else(|| self.keys.iter().find(|k| k.name == key).map(|k| k.default))
            .unwrap_or_default()
            .to_owned()
    }

    /// Whether `key` was given.
    fn has(&self, key: &str) -> bool {
        self.given.iter().any(|(k, _)| *k == key)
    }

    fn invalid(&self, key: &str, reason: &str) -> GenerateError {
        GenerateError::InvalidValue {
            key: key.to_owned(),
            value: self.text(key),
            reason: reason.to_owned(),
        }
    }

    /// The value of `key` as a whole number.
    fn integer(&self, key: &str) -> Result<i64, GenerateError> {
        self.text(key)
            .trim()
            .parse()
            .map_err(|_| self.invalid(key, "expected a whole number"))
    }

    /// The value of `key` as a UTC time to the second, `YYYY-MM-DDTHH:MM:SSZ`.
    fn utc_time(&self, key: &str) -> Result<String, GenerateError> {
        let text = self.text(key);
        let shape = text.len() == 20
            && text.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 => b == b':',
                19 => b == b'Z',
                _ => b.is_ascii_digit(),
            });
        if shape {
            Ok(text)
        } else {
            Err(self.invalid(key, "expected a UTC time such as 2024-06-10T08:00:00Z"))
        }
    }

    /// The value of `key` as `true` or `false`.
    fn boolean(&self, key: &str) -> Result<bool, GenerateError> {
        match self.text(key).trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.invalid(key, "expected true or false")),
        }
    }

    /// The value of `key` as a JSON object of strings (`{"Name": "value"}`), when given.
    fn string_map(
        &self,
        key: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, GenerateError> {
        if !self.has(key) {
            return Ok(None);
        }
        serde_json::from_str(&self.text(key))
            .map(Some)
            .map_err(|_| {
                self.invalid(
                    key,
                    "expected a JSON object of strings, {\"Name\": \"value\"}",
                )
            })
    }
}

/// `a=1&b=2&b=3&flag` as API Gateway and CLB show a query: one value as a string, a repeated key as a list,
/// a key without `=` as `true`. Values are taken as written (no percent-decoding). The generator and the
/// platform's API Gateway both build `queryString` with it.
pub fn parse_query(query: &str) -> std::collections::BTreeMap<String, QueryValue> {
    let mut out = std::collections::BTreeMap::new();
    for part in query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (part, None),
        };
        let entry = out.remove(name);
        let merged = match (entry, value) {
            (None, None) => QueryValue::Flag(true),
            (None, Some(v)) => QueryValue::One(v),
            (Some(QueryValue::One(first)), Some(v)) => QueryValue::Many(vec![first, v]),
            (Some(QueryValue::Many(mut all)), Some(v)) => {
                all.push(v);
                QueryValue::Many(all)
            }
            (Some(QueryValue::Flag(_)), Some(v)) => QueryValue::One(v),
            (Some(previous), None) => previous,
        };
        out.insert(name.to_owned(), merged);
    }
    out
}
