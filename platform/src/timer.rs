//! Timer triggers: each enabled timer fires on its cron expression ([`crate::cron`]) while `scf-local serve`
//! runs, and each firing is an async event committed to the function's durable queue, exactly as an
//! `Invoke` with `InvocationType: Event` is (so it is retried, dead-lettered and logged like one, and an event
//! queued before a stop runs after the next start). The event is the timer event of
//! [`scf_protocol::events`] (`Type: "Timer"`, `TriggerName`, `Time`, `Message`). Firings missed while the
//! platform was not running are not made up, as on the cloud.

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use scf_protocol::events::{self, Kind};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::cron::Cron;
use crate::frontdoor::FrontDoor;

/// Fires `trigger` (named `name`, with `argument`) of `function` until `shutdown` turns true.
pub(crate) async fn run(
    door: Arc<FrontDoor>,
    function: String,
    name: String,
    cron: Cron,
    argument: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let say = |what: String| {
        let _ = writeln!(
            std::io::stderr(),
            "scf-local: timer {name} of {function}: {what}"
        );
    };
    let Some(pool) = door.functions.events.get(&function).cloned() else {
        say("the function takes no async events; the timer does not run".into());
        return;
    };
    // A sleep may end a moment before the wall clock reaches the firing: never fire one time twice.
    let mut last: Option<OffsetDateTime> = None;
    loop {
        let now = OffsetDateTime::now_utc();
        let from = match last {
            Some(l) if l > now => l,
            _ => now,
        };
        let Some(next) = cron.next_after(from) else {
            say(format!("{cron} fires no more (its years are past)"));
            return;
        };
        let wait = std::time::Duration::try_from(next - now).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        last = Some(next);
        let time = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            next.year(),
            u8::from(next.month()),
            next.day(),
            next.hour(),
            next.minute(),
            next.second()
        );
        let event = match events::generate(
            Kind::Timer,
            &[
                ("trigger-name", name.as_str()),
                ("time", time.as_str()),
                ("message", argument.as_str()),
            ],
        ) {
            Ok(e) => e,
            Err(e) => {
                say(format!("the event cannot be made: {e}"));
                return;
            }
        };
        let request_id = crate::requestlog::new_request_id();
        let body = Bytes::from(event.to_string());
        if let Err(e) = door.enqueue(&pool.config, &request_id, body).await {
            say(format!(
                "the firing at {time} was not queued: {} ({})",
                e.message, e.code
            ));
        }
    }
}

/// The timers of a function's configuration that fire: `(name, cron, argument)`.
pub(crate) fn enabled(config: &crate::config::FunctionConfig) -> Vec<(String, Cron, String)> {
    config
        .triggers
        .iter()
        .filter(|t| t.enable)
        .filter_map(|t| match &t.spec {
            crate::config::TriggerSpec::Timer { cron, argument } => {
                Some((t.name.clone(), cron.clone(), argument.clone()))
            }
            _ => None,
        })
        .collect()
}
