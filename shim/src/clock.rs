//! The InitRuntime clock: the shim's start time, carried across `exec` into the language runtime.

/// Environment variable holding the shim's start time (`CLOCK_MONOTONIC`, ns). The shim sets it before it
/// execs a language runtime, so the core loaded inside that runtime can measure InitRuntime from the true start.
pub const SHIM_START_ENV: &str = "_SCF_SHIM_START_NS";

/// Nanoseconds on the system-wide monotonic clock (the same clock in every process of the machine).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_MONOTONIC is always available on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Time since the shim started, if the start was recorded in the environment.
pub(crate) fn since_shim_start() -> Option<std::time::Duration> {
    let start: u64 = std::env::var(SHIM_START_ENV).ok()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(
        monotonic_ns().saturating_sub(start),
    ))
}
