//! The benchmark's native handlers: `bench.noop` and `bench.echo`.

use scf_sdk::Context;
use serde_json::Value;

/// Returns `null`.
pub fn noop(_event: Value, _context: Context) -> Result<Value, String> {
    Ok(Value::Null)
}

/// Returns the event.
pub fn echo(event: Value, _context: Context) -> Result<Value, String> {
    Ok(event)
}

/// Returns how many `Records` the event has (the event is parsed, the result is small).
pub fn size(event: Value, _context: Context) -> Result<Value, String> {
    Ok(Value::from(event["Records"].as_array().map_or(0, Vec::len)))
}

scf_sdk::export!(noop);
scf_sdk::export!(echo);
scf_sdk::export!(size);
