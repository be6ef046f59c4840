//! One handler per class of failure a Rust function can cause (see `docs/errors.md`).
#![allow(clippy::print_stdout, reason = "a function's stdout is its log")]

use scf_sdk::Context;
use serde_json::Value;

/// `errors.returned_error`: returns an `Err` on purpose → 430 `HandledError`.
pub fn returned_error(_event: Value, _context: Context) -> Result<Value, String> {
    println!("about to refuse");
    Err("the order id is missing".to_owned())
}

/// `errors.panics`: panics → 430 `UnhandledError` with the panic's message and location.
pub fn panics(_event: Value, _context: Context) -> Result<Value, String> {
    println!("about to panic");
    panic!("something went badly wrong")
}

/// `errors.sleeps`: sleeps `event.seconds` seconds → 433 when that is past the timeout.
pub fn sleeps(event: Value, _context: Context) -> Result<Value, String> {
    let secs = event["seconds"].as_f64().unwrap_or(10.0);
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    Ok(Value::from("woke up"))
}

/// `errors.exits`: the process exits mid-invocation → 439.
pub fn exits(_event: Value, _context: Context) -> Result<Value, String> {
    println!("exiting now");
    std::process::exit(3)
}

/// `errors.too_large`: returns a result over the 6 MB limit → 407.
pub fn too_large(_event: Value, _context: Context) -> Result<Value, String> {
    Ok(Value::from("x".repeat(7 * 1024 * 1024)))
}

/// `errors.allocates`: holds `event.mb` MB of touched memory → 434 when that is past the memory size.
pub fn allocates(event: Value, _context: Context) -> Result<Value, String> {
    let mb = usize::try_from(event["mb"].as_u64().unwrap_or(256)).unwrap_or(256);
    let block = vec![1u8; mb * 1024 * 1024];
    std::thread::sleep(std::time::Duration::from_secs(2));
    Ok(Value::from(
        block.iter().map(|b| usize::from(*b)).sum::<usize>(),
    ))
}

/// Invocations this instance has served (a global survives warm reuse).
static INVOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `errors.counter`: counts this instance's invocations in a global and in a file in its temp directory,
/// and sleeps `event.sleep_ms`, for the platform's instance-reuse and concurrency tests.
pub fn counter(event: Value, _context: Context) -> Result<Value, String> {
    let n = INVOCATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let path = std::env::temp_dir().join("count.txt");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str("x\n");
    std::fs::write(&path, &text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    if let Some(ms) = event["sleep_ms"].as_u64() {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    Ok(
        serde_json::json!({ "invocations": n, "tmp_lines": text.lines().count(), "pid": std::process::id() }),
    )
}

/// `errors.echo`: returns its event and context, for the protocol's own tests.
pub fn echo(event: Value, context: Context) -> Result<Value, String> {
    Ok(serde_json::json!({ "event": event, "context": context }))
}

scf_sdk::export!(returned_error);
scf_sdk::export!(panics);
scf_sdk::export!(sleeps);
scf_sdk::export!(exits);
scf_sdk::export!(too_large);
scf_sdk::export!(allocates);
scf_sdk::export!(echo);
scf_sdk::export!(counter);
