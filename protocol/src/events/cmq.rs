//! CMQ topic: the event a topic subscription sends for each message published to the topic.

use serde::{Deserialize, Serialize};

use super::{GenerateError, OverrideKey, Overrides, key};

/// The event of a CMQ topic trigger, invoked asynchronously.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmqTopicEvent {
    /// The messages.
    #[serde(rename = "Records")]
    pub records: Vec<CmqTopicRecord>,
}

/// One message of a [`CmqTopicEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmqTopicRecord {
    /// The message.
    #[serde(rename = "CMQ")]
    pub cmq: CmqTopicMessage,
}

/// `CMQ` of a record: the message and where it was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmqTopicMessage {
    /// `"topic"`.
    pub r#type: String,
    /// The topic owner's account id (a number, as Tencent's Go type reads it; a documentation sample
    /// shows it as a string).
    pub topic_owner: i64,
    /// The topic's name.
    pub topic_name: String,
    /// The subscription's name.
    pub subscription_name: String,
    /// When the message was published, UTC ISO 8601 with milliseconds.
    pub publish_time: String,
    /// The message's id.
    pub msg_id: String,
    /// The publishing request's id.
    pub request_id: String,
    /// The message.
    pub msg_body: String,
    /// The message's tags.
    pub msg_tag: CmqTags,
}

/// `msgTag`: the tags joined into one string (`"tag1,tag2"`, as the platform sends them), or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CmqTags {
    /// The tags in one string (`"tag1,tag2"`; Tencent's Go type splits it at `", "`).
    Joined(String),
    /// The tags as a list.
    List(Vec<String>),
}

impl CmqTags {
    /// The tags one by one (a joined string split at its commas, each tag trimmed; none when empty).
    pub fn tags(&self) -> Vec<&str> {
        match self {
            CmqTags::Joined(s) => s
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect(),
            CmqTags::List(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

pub(super) const KEYS: &[OverrideKey] = &[
    key("topic", "the topic (`topicName`)", "order-events"),
    key(
        "subscription",
        "the subscription (`subscriptionName`)",
        "order-events-scf",
    ),
    key(
        "message",
        "the message (`msgBody`)",
        "{\"orderId\":\"A1024\",\"status\":\"paid\"}",
    ),
    key(
        "tags",
        "the tags, comma-separated (`msgTag`)",
        "orders,paid",
    ),
    key(
        "owner",
        "the topic owner's account id (`topicOwner`)",
        "100000000001",
    ),
    key(
        "publish-time",
        "when it was published (`publishTime`)",
        "2024-06-10T08:00:00.000Z",
    ),
];

pub(super) fn sample(o: &Overrides<'_>) -> Result<CmqTopicEvent, GenerateError> {
    Ok(CmqTopicEvent {
        records: vec![CmqTopicRecord {
            cmq: CmqTopicMessage {
                r#type: "topic".to_owned(),
                topic_owner: o.integer("owner")?,
                topic_name: o.text("topic"),
                subscription_name: o.text("subscription"),
                publish_time: o.text("publish-time"),
                msg_id: "12345678901234567".to_owned(),
                request_id: "9876543210987654321".to_owned(),
                msg_body: o.text("message"),
                msg_tag: CmqTags::Joined(o.text("tags")),
            },
        }],
    })
}
