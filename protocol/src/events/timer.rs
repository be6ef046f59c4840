//! Timer: the event a timer trigger sends on each firing of its cron expression.

use serde::{Deserialize, Serialize};

use super::{GenerateError, OverrideKey, Overrides, key};

/// The event of a timer trigger, invoked asynchronously each time its cron expression fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimerEvent {
    /// `"Timer"`.
    pub r#type: String,
    /// The trigger's name.
    pub trigger_name: String,
    /// When it fired, UTC, ISO 8601 to the second (`2024-06-10T08:00:00Z`).
    pub time: String,
    /// The trigger's configured message (its `argument`); empty when it has none.
    pub message: String,
}

pub(super) const KEYS: &[OverrideKey] = &[
    key(
        "trigger-name",
        "the trigger's name (`TriggerName`)",
        "daily-report",
    ),
    key(
        "time",
        "the firing time, UTC ISO 8601 (`Time`)",
        "2024-06-10T08:00:00Z",
    ),
    key(
        "message",
        "the trigger's message, its `argument` (`Message`)",
        "generate the daily report",
    ),
];

pub(super) fn sample(o: &Overrides<'_>) -> Result<TimerEvent, GenerateError> {
    Ok(TimerEvent {
        r#type: "Timer".to_owned(),
        trigger_name: o.text("trigger-name"),
        time: o.utc_time("time")?,
        message: o.text("message"),
    })
}
