//! The front door's sync paths (and, through [`OneCpu`], the warm no-op rounds of `instance.rs`) measured
//! again with every process of them on one CPU.
//!
//! On a virtual machine whose idle CPUs halt at once (no guest halt-polling), waking a thread on another CPU
//! that has halted costs tens of µs on both sides, so where the scheduler puts the processes decides most of
//! a sync call's latency: the bare floor's two processes are sometimes placed on one CPU, and a platform
//! with its instance and its caller is not. With this process's threads on one CPU, and so everything it
//! starts after (a child inherits the affinity of the thread that starts it: the platform, its instance, the
//! floor's servers), no wake-up crosses CPUs, neither the path nor its floor depends on the placement, and
//! what is left is the platform's own work.

use std::io::Write as _;
use std::mem::size_of;

use crate::Report;
use crate::floor::{NoopPlatform, SYNC_PATHS, SyncFigures};

/// Every thread of this process on one CPU, the first it may use, until dropped; then back where they
/// were.
pub(crate) struct OneCpu {
    was: libc::cpu_set_t,
    cpu: usize,
}

impl OneCpu {
    /// Pins the process; `None` where it may use only one CPU anyway.
    pub fn pin() -> anyhow::Result<Option<OneCpu>> {
        // SAFETY: a `cpu_set_t` is plain bits, and all zeroes is the empty set.
        let mut was: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `was` is a `cpu_set_t` of the size given, which the call writes.
        if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut was) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `c` is below `CPU_SETSIZE`, inside the set.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &was) })
            .collect();
        let Some(&cpu) = allowed.first().filter(|_| allowed.len() > 1) else {
            return Ok(None);
        };
        // SAFETY: as above.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` is below `CPU_SETSIZE`.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        set_every_thread(&one)?;
        Ok(Some(OneCpu { was, cpu }))
    }

    /// [`OneCpu::pin`], saying on stderr why not where the process may not move its threads: then the
    /// one-CPU figures are left out, not the run.
    pub fn pin_or_say() -> Option<OneCpu> {
        OneCpu::pin().unwrap_or_else(|e| {
            let _ = writeln!(std::io::stderr(), "scf-bench: not measured on one CPU: {e}");
            None
        })
    }

    /// The CPU the threads are on.
    pub fn cpu(&self) -> usize {
        self.cpu
    }
}

impl Drop for OneCpu {
    fn drop(&mut self) {
        if let Err(e) = set_every_thread(&self.was) {
            let _ = writeln!(
                std::io::stderr(),
                "scf-bench: could not give the threads their CPUs back: {e}"
            );
        }
    }
}

/// Runs `work` with every thread of this process on one CPU ([`OneCpu::pin_or_say`]) and puts the threads
/// back after, whether it succeeded or not: the CPU and its result, or `None` where the process may use only
/// one CPU or may not move its threads. `work` is a future not yet polled, so all it starts inherits the CPU.
pub(crate) async fn on_one_cpu<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<(usize, T)>> {
    let Some(pin) = OneCpu::pin_or_say() else {
        return Ok(None);
    };
    let done = work.await;
    let cpu = pin.cpu();
    drop(pin);
    Ok(Some((cpu, done?)))
}

/// Sets the affinity of every thread of this process to `set`.
fn set_every_thread(set: &libc::cpu_set_t) -> std::io::Result<()> {
    for entry in std::fs::read_dir("/proc/self/task")? {
        let name = entry?.file_name();
        let Some(tid) = name.to_str().and_then(|t| t.parse::<libc::pid_t>().ok()) else {
            continue;
        };
        // SAFETY: `set` is a `cpu_set_t` of the size given; the call only reads it.
        if unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), set) } != 0 {
            let e = std::io::Error::last_os_error();
            // A thread that ended meanwhile has nothing to move.
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The sync calls of [`NoopPlatform::sync_calls`] on one CPU, with a platform of their own started on it;
/// `None` where the process may use only one CPU (then the table above was measured so) or may not move its
/// threads.
pub(crate) async fn sync_calls(
    root: &std::path::Path,
    native_dir: &std::path::Path,
    per: usize,
    rounds: usize,
) -> anyhow::Result<Option<(usize, SyncFigures)>> {
    on_one_cpu(async {
        let mut p = NoopPlatform::start(root, native_dir, "one-cpu").await?;
        let figures = p.sync_calls(per, rounds).await;
        p.stop();
        figures
    })
    .await
}

/// The table of the sync calls on one CPU (`pinned`), beside the same figures as run (`as_run`).
pub(crate) fn table(r: &mut Report, cpu: usize, pinned: &SyncFigures, as_run: &SyncFigures) {
    r.line(&format!(
        "The same calls again with every process of them on CPU {cpu} (the bench's threads pinned before it starts a platform of its own, whose instance and the floor's servers inherit the CPU), in {}, each after its own measure of the floor on that CPU. {} On one CPU no wake-up crosses CPUs, so neither the path nor its floor depends on the placement: what is left is the platform's own work. Not a target: the platform pins nothing, and the verdicts above are measured as users run it.",
        rounds(pinned.rounds.len()),
        idle_cpus()
    ));
    r.line("");
    r.line("| | on one CPU (µs) | vs its floor (the median round's; range) | p99 / p50 | as run above (µs) |");
    r.line("|---|---|---|---|---|");
    let floor =
        |f: &SyncFigures| crate::Sample(f.rounds.iter().map(|x| x.floor_us).collect()).median();
    r.line(&format!(
        "| the path's floor: 1 TCP + 2 Unix-socket round trips | {:.1} | 1.00× | | {:.1} |",
        floor(pinned),
        floor(as_run)
    ));
    for (i, (name, _)) in SYNC_PATHS.iter().enumerate() {
        let (lat, ratios) = (&pinned.lat[i], pinned.ratios(i));
        r.line(&format!(
            "| {name} p50 | {:.1} | {:.2}× ({}) | {:.2}× | {:.1} |",
            lat.median(),
            ratios.median(),
            ratios.range(),
            lat.quantile(0.99) / lat.median(),
            as_run.lat[i].median()
        ));
    }
    r.line(&format!(
        "| the platform's CPU per sync `Invoke` | {:.1} | {:.2}× its CPU floor ({:.1} µs: a bare echo server's three exchanges) | | {:.1} |",
        pinned.cpu_us_per_call,
        pinned.cpu_us_per_call / pinned.cpu_floor(),
        pinned.cpu_floor(),
        as_run.cpu_us_per_call
    ));
    r.line("");
}

/// `n` rounds, in words.
pub(crate) fn rounds(n: usize) -> String {
    match n {
        1 => "one round".to_owned(),
        n => format!("{n} rounds"),
    }
}

/// What this machine's idle CPUs do, as far as it says (`cpuidle`'s driver and the guest's halt-polling),
/// and why that matters to the sync calls.
fn idle_cpus() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .ok()
    };
    let driver = read("/sys/devices/system/cpu/cpuidle/current_driver");
    let poll_ns = read("/sys/module/haltpoll/parameters/guest_halt_poll_ns");
    let why = "waking a thread on a CPU that has halted costs tens of µs on both sides, and where the scheduler puts the three processes decides most of a call's latency: the bare floor's two processes are sometimes placed on one CPU, a caller with the platform and its instance are not.";
    match (driver.as_deref(), poll_ns.as_deref()) {
        (Some("haltpoll"), Some("0")) => format!(
            "On this machine (a virtual machine: the `haltpoll` idle driver with `guest_halt_poll_ns` 0) an idle CPU halts at once, so {why}"
        ),
        (driver, _) => format!(
            "Where a machine's idle CPUs halt at once (a virtual machine without guest halt-polling; this one's idle driver: {}), {why}",
            driver.unwrap_or("unknown")
        ),
    }
}
