//! Limits of the real platform (`docs/scf-platform.md` §6).

/// Largest result a function may return (407 above it).
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Largest event of a synchronous invocation (406 above it).
pub const MAX_SYNC_EVENT_BYTES: usize = 6 * 1024 * 1024;
/// Largest event of an asynchronous invocation (406 above it).
pub const MAX_ASYNC_EVENT_BYTES: usize = 128 * 1024;
/// Longest log line kept; the rest of the line is dropped.
pub const MAX_LOG_LINE_BYTES: usize = 8 * 1024;
/// Most of a function's own output one request's log keeps (2 MB, newlines counted); past it lines are
/// dropped and a line says how many. The cloud keeps 1 MB and 5,000 lines per 5 s of a request; a whole
/// invocation is kept here, so the cap is per invocation and room enough for 5,000 lines of 200 bytes with
/// Node.js's time and request id before each.
pub const MAX_INVOCATION_LOG_BYTES: usize = 2 * 1024 * 1024;
/// Default execution timeout in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3;
/// Default memory size in MB.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Default init timeout in seconds.
pub const DEFAULT_INIT_TIMEOUT_SECS: u64 = 60;
/// Deepest nesting of arrays and objects an event may have (400 `InvalidEvent` beyond it). Every runtime
/// parses at least this deep (serde_json stops at 127, so a Rust handler's own parser is the tightest), so an
/// event the platform accepts is an event every language can read. Checked at the door by
/// [`crate::json::check_depth`].
pub const MAX_EVENT_DEPTH: usize = 100;
/// Size of an instance's private `/tmp`, bytes (as on the cloud).
pub const TMP_BYTES: u64 = 512 * 1024 * 1024;
