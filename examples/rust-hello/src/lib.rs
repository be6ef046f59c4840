//! A greeting built from the event and the context.
#![allow(clippy::print_stdout, reason = "a function's stdout is its log")]

use scf_sdk::Context;
use serde::{Deserialize, Serialize};

/// The event this function reads.
#[derive(Debug, Deserialize)]
pub struct Event {
    /// Who to greet; "world" when absent.
    #[serde(default)]
    pub name: Option<String>,
}

/// The result it returns.
#[derive(Debug, Serialize)]
pub struct Greeting {
    /// The greeting.
    pub message: String,
    /// The function's name, from the context.
    pub function: String,
    /// The invocation's id, from the context.
    pub request_id: String,
}

/// `index.main_handler`.
pub fn main_handler(event: Event, context: Context) -> Result<Greeting, String> {
    let name = event.name.unwrap_or_else(|| "world".to_owned());
    println!("greeting {name}");
    Ok(Greeting {
        message: format!("Hello, {name}!"),
        function: context.function_name,
        request_id: context.request_id,
    })
}

scf_sdk::export!(main_handler);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name() {
        let out = scf_sdk::invoke(main_handler, r#"{"name":"SCF"}"#, None).expect("ok");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["message"], "Hello, SCF!");
    }
}
