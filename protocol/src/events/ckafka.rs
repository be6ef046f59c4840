//! CKafka: the event SCF's consumer of a CKafka topic sends with a batch of messages.

use serde::{Deserialize, Serialize};

use super::{GenerateError, OverrideKey, Overrides, key};

/// The event of a CKafka trigger: a batch of messages from one topic, invoked synchronously by SCF's
/// consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CkafkaEvent {
    /// The messages, in offset order.
    #[serde(rename = "Records")]
    pub records: Vec<CkafkaRecord>,
}

/// One message of a [`CkafkaEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CkafkaRecord {
    /// The message.
    #[serde(rename = "Ckafka")]
    pub ckafka: CkafkaMessage,
}

/// `Ckafka` of a record: one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CkafkaMessage {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i64,
    /// The message's offset in its partition.
    pub offset: i64,
    /// The message's key (`"None"` for a message without one).
    pub msg_key: String,
    /// The message.
    pub msg_body: String,
}

pub(super) const KEYS: &[OverrideKey] = &[
    key("topic", "the topic (`topic`)", "clickstream"),
    key(
        "message",
        "the messages' body (`msgBody`)",
        "{\"page\":\"/home\",\"user\":\"u-1001\"}",
    ),
    key("key", "the messages' key (`msgKey`)", "None"),
    key("partition", "the partition (`partition`)", "0"),
    key("offset", "the first message's offset (`offset`)", "1024"),
    key("count", "how many messages (1 to 100)", "2"),
];

/// The most messages a generated batch holds.
const MAX_COUNT: i64 = 100;

pub(super) fn sample(o: &Overrides<'_>) -> Result<CkafkaEvent, GenerateError> {
    let count = o.integer("count")?;
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(o.invalid("count", "expected 1 to 100 messages"));
    }
    let partition = o.integer("partition")?;
    let offset = o.integer("offset")?;
    if partition < 0 || offset < 0 {
        let which = if partition < 0 { "partition" } else { "offset" };
        return Err(o.invalid(which, "expected 0 or more"));
    }
    let body = o.text("message");
    let records = (0..count)
        .map(|i| CkafkaRecord {
            ckafka: CkafkaMessage {
                topic: o.text("topic"),
                partition,
                offset: offset.saturating_add(i),
                msg_key: o.text("key"),
                msg_body: body.clone(),
            },
        })
        .collect();
    Ok(CkafkaEvent { records })
}
