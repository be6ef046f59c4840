//! An instance's memory, by one method chosen once per platform:
//!
//! - **a memory cgroup** per instance where the machine allows it (cgroup v2 with the memory controller
//!   delegated to the platform's cgroup, or the cgroup v1 memory controller, writable): its limit is the
//!   function's memory size (`memory.max` / `memory.limit_in_bytes`, swap off), the kernel enforces it and
//!   kills the instance when it passes it (the OOM kill is read back from `memory.events` /
//!   `memory.oom_control`), usage and peak are O(1) reads, and the cgroup is how everything the instance
//!   started is found and killed at teardown;
//! - otherwise **the instance's process group's resident memory**, sampled by one supervisor thread every
//!   [`SAMPLE_EVERY`] while the instance works (nothing is sampled while it idles), which kills the group
//!   when it passes the size.
//!
//! `SCF_LOCAL_CGROUP=off` forces the second method.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

/// How often the fallback sampler reads a working instance's memory.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Which method this platform uses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryMode {
    /// One cgroup v2 per instance.
    CgroupV2,
    /// One cgroup of the v1 memory controller per instance.
    CgroupV1,
    /// The process group's resident memory, sampled; why cgroups are not used.
    ProcessGroup(String),
}

impl MemoryMode {
    /// One line for the platform's banner.
    pub fn describe(&self) -> String {
        match self {
            MemoryMode::CgroupV2 | MemoryMode::CgroupV1 => format!(
                "each instance has its own memory cgroup ({}): the kernel enforces the memory size, and teardown kills everything the instance started",
                if *self == MemoryMode::CgroupV2 {
                    "cgroup v2"
                } else {
                    "cgroup v1 memory controller"
                }
            ),
            MemoryMode::ProcessGroup(why) => format!(
                "no memory cgroups ({why}): the resident memory of the instance's process group is sampled every {} ms while it works",
                SAMPLE_EVERY.as_millis()
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The platform's own cgroup, under which each instance gets one.
#[derive(Debug)]
pub(crate) struct CgroupRoot {
    version: Version,
    dir: PathBuf,
}

impl CgroupRoot {
    /// Finds a memory cgroup hierarchy the platform may use, makes its own cgroup in it, and clears what
    /// platforms that died left behind.
    pub(crate) fn probe() -> Result<CgroupRoot, String> {
        if let Ok(v) = std::env::var("SCF_LOCAL_CGROUP")
            && matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "off" | "no" | "false"
            )
        {
            return Err(format!("SCF_LOCAL_CGROUP={v}"));
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
        let mut reasons = Vec::new();
        match Self::v2(&mounts, &own) {
            Ok(root) => return Ok(root),
            Err(e) => reasons.push(e),
        }
        match Self::v1(&mounts, &own) {
            Ok(root) => return Ok(root),
            Err(e) => reasons.push(e),
        }
        Err(reasons.join("; "))
    }

    fn v2(mounts: &str, own: &str) -> Result<CgroupRoot, String> {
        let cgroup = v2_dir(mounts, own)?;
        let controllers =
            std::fs::read_to_string(cgroup.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Err(format!(
                "cgroup v2: the memory controller is not delegated to {}",
                cgroup.display()
            ));
        }
        let subtree = cgroup.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&subtree).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == "memory") {
            // Only a cgroup with no processes of its own may hand the controller down.
            write_file(&subtree, "+memory").map_err(|e| {
                format!(
                    "cgroup v2: cannot enable the memory controller below {} ({e}); run the platform in a cgroup of its own with the controller delegated",
                    cgroup.display()
                )
            })?;
        }
        let dir = cgroup.join(format!("scf-local-{}", std::process::id()));
        clear_stale(&cgroup);
        std::fs::create_dir_all(&dir)
            .and_then(|()| write_file(&dir.join("cgroup.subtree_control"), "+memory"))
            .map_err(|e| format!("cgroup v2: {}: {e}", dir.display()))?;
        Ok(CgroupRoot {
            version: Version::V2,
            dir,
        })
    }

    fn v1(mounts: &str, own: &str) -> Result<CgroupRoot, String> {
        let cgroup = v1_dir(mounts, own)?;
        let dir = cgroup.join(format!("scf-local-{}", std::process::id()));
        clear_stale(&cgroup);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cgroup v1: {}: {e}", dir.display()))?;
        Ok(CgroupRoot {
            version: Version::V1,
            dir,
        })
    }

    pub(crate) fn mode(&self) -> MemoryMode {
        match self.version {
            Version::V1 => MemoryMode::CgroupV1,
            Version::V2 => MemoryMode::CgroupV2,
        }
    }

    /// Makes the cgroup of instance `id`, without a limit yet (and the platform's own again, if another
    /// supervisor of this process removed it when it ended). Blocking.
    pub(crate) fn create(&self, id: &str) -> std::io::Result<Cgroup> {
        let dir = self.dir.join(format!("instance-{id}"));
        if let Err(e) = std::fs::create_dir(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(e);
            }
            std::fs::create_dir_all(&self.dir)?;
            if self.version == Version::V2 {
                write_file(&self.dir.join("cgroup.subtree_control"), "+memory")?;
            }
            std::fs::create_dir(&dir)?;
        }
        let made = || -> std::io::Result<Cgroup> {
            let usage = match self.version {
                Version::V1 => File::open(dir.join("memory.usage_in_bytes"))?,
                Version::V2 => {
                    // An OOM kill takes the whole instance, not one of its processes.
                    let _ = write_file(&dir.join("memory.oom.group"), "1");
                    File::open(dir.join("memory.current"))?
                }
            };
            let peak = match self.version {
                Version::V1 => "memory.max_usage_in_bytes",
                Version::V2 => "memory.peak",
            };
            Ok(Cgroup {
                version: self.version,
                procs: File::options().write(true).open(dir.join("cgroup.procs"))?,
                usage,
                // Older kernels have no `memory.peak` (cgroup v2 before 5.19): no peak then.
                peak: File::open(dir.join(peak)).ok(),
                dir: dir.clone(),
                suffix: format!(
                    "/{}/instance-{id}",
                    self.dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
            })
        };
        made().inspect_err(|_| {
            let _ = std::fs::remove_dir(&dir);
        })
    }

    /// Removes the platform's own cgroup (at shutdown, once the instances are gone). Blocking.
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Removes the `scf-local-<pid>` cgroups of platforms that are no longer running, with their instance
/// cgroups, killing what is still running in them (instances of a platform that was killed with `kill -9`).
fn clear_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("scf-local-")) else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        if let Ok(children) = std::fs::read_dir(entry.path()) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    kill_all_in(&c.path());
                    let _ = std::fs::remove_dir(c.path());
                }
            }
        }
        let _ = std::fs::remove_dir(entry.path());
    }
}

/// Kills every process the cgroup `dir` lists until it lists none (at most a second; v2's `cgroup.kill`
/// first, where the kernel has it). Blocking.
fn kill_all_in(dir: &Path) {
    let _ = write_file(&dir.join("cgroup.kill"), "1");
    for _ in 0..200 {
        let pids = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let mut any = false;
        for pid in pids.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
            any = true;
            // SAFETY: kill(2) of a process listed in an instance's cgroup; no memory involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if !any {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` is in the cgroup whose path ends with `suffix` (reads `/proc/PID/cgroup`; blocking).
pub(crate) fn in_cgroup(pid: u32, suffix: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|text| {
        text.lines()
            .any(|l| l.splitn(3, ':').nth(2).unwrap_or("").ends_with(suffix))
    })
}

/// This process's cgroup v2 directory (its `0::` line of `/proc/self/cgroup` under the cgroup2 mount).
fn v2_dir(mounts: &str, own: &str) -> Result<PathBuf, String> {
    let mount = mount_point(mounts, |fstype, _| fstype == "cgroup2")
        .ok_or_else(|| "no cgroup v2 mount".to_owned())?;
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| "the platform is in no cgroup v2".to_owned())?;
    Ok(mount.join(path.trim_start_matches('/')))
}

/// This process's cgroup v1 memory directory (its `memory` line of `/proc/self/cgroup` under that
/// controller's mount), or the hierarchy's root where that directory is not visible.
fn v1_dir(mounts: &str, own: &str) -> Result<PathBuf, String> {
    let mount = mount_point(mounts, |fstype, options| {
        fstype == "cgroup" && options.split(',').any(|o| o == "memory")
    })
    .ok_or_else(|| "no cgroup v1 memory controller".to_owned())?;
    let path = own
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then_some(path)
        })
        .unwrap_or("/");
    let cgroup = mount.join(path.trim_start_matches('/'));
    Ok(if cgroup.is_dir() { cgroup } else { mount })
}

/// The memory limit of this process's own memory cgroup, in bytes: what the kernel holds it to (in an
/// instance of `scf-local serve`, its function's memory size), or `None` where it has
/// none (no memory cgroup, or one without a limit). Blocking (a few small reads).
pub fn own_memory_limit() -> Option<u64> {
    /// cgroup v1 writes "no limit" as the largest page-aligned `i64`; anything past a petabyte is no limit.
    const NO_LIMIT: u64 = 1 << 50;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let read = |path: PathBuf| std::fs::read_to_string(path).ok();
    let text = v2_dir(&mounts, &own)
        .ok()
        .and_then(|d| read(d.join("memory.max")))
        .or_else(|| {
            v1_dir(&mounts, &own)
                .ok()
                .and_then(|d| read(d.join("memory.limit_in_bytes")))
        })?;
    // cgroup v2's "max" is no limit, and parses as none.
    text.trim().parse().ok().filter(|&b| b < NO_LIMIT)
}

fn mount_point(mountinfo: &str, wanted: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    // mountinfo: id parent major:minor root mount-point options [optional…] - fstype source super-options
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split_whitespace();
        let (fstype, _source, options) = (r.next()?, r.next()?, r.next().unwrap_or(""));
        let point = left.split_whitespace().nth(4)?;
        wanted(fstype, options).then(|| PathBuf::from(point))
    })
}

/// A kernel counter file's number, read from its start with one `pread`.
fn read_counter(file: &File) -> Option<u64> {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    File::options()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// One instance's cgroup.
#[derive(Debug)]
pub(crate) struct Cgroup {
    version: Version,
    dir: PathBuf,
    /// `cgroup.procs`, open for the child to write itself into between fork and exec.
    procs: File,
    /// `memory.current` / `memory.usage_in_bytes`, kept open: one `pread` per reading.
    usage: File,
    /// `memory.peak` / `memory.max_usage_in_bytes`, kept open likewise, where the kernel has it.
    peak: Option<File>,
    /// How the cgroup's path ends in `/proc/PID/cgroup` (`/scf-local-<pid>/instance-<id>`).
    suffix: String,
}

impl Cgroup {
    /// Sets the memory size, `limit` bytes, swap off. Blocking.
    pub(crate) fn set_limit(&self, limit: u64) -> std::io::Result<()> {
        match self.version {
            Version::V1 => {
                write_file(&self.dir.join("memory.limit_in_bytes"), &limit.to_string())?;
                // Without swap accounting this file is absent: there is nothing to turn off then.
                let _ = write_file(
                    &self.dir.join("memory.memsw.limit_in_bytes"),
                    &limit.to_string(),
                );
            }
            Version::V2 => {
                write_file(&self.dir.join("memory.max"), &limit.to_string())?;
                let _ = write_file(&self.dir.join("memory.swap.max"), "0");
            }
        }
        Ok(())
    }

    /// How the cgroup's path ends in `/proc/PID/cgroup`, for [`in_cgroup`].
    pub(crate) fn suffix(&self) -> &str {
        &self.suffix
    }

    /// Its `cgroup.procs` file.
    pub(crate) fn procs_path(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The descriptor the child writes `0` to (itself) before exec.
    pub(crate) fn procs_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd as _;
        self.procs.as_raw_fd()
    }

    /// Memory in use now, bytes: one read of a kernel counter.
    pub(crate) fn usage(&self) -> u64 {
        read_counter(&self.usage).unwrap_or(0)
    }

    /// The most memory the instance has used, bytes, where the kernel keeps it: one read.
    pub(crate) fn peak(&self) -> Option<u64> {
        self.peak.as_ref().and_then(read_counter)
    }

    /// How many times the kernel's OOM killer killed a process of the instance.
    pub(crate) fn oom_kills(&self) -> u64 {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let mut text = String::new();
        if File::open(self.dir.join(file))
            .and_then(|mut f| f.read_to_string(&mut text))
            .is_err()
        {
            return 0;
        }
        // `oom_kill` counts the kills; v2's `oom` counts the times the limit was hit (it is counted before
        // the kill, so it is there when the instance's exit is).
        let count = |key: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        count("oom_kill ").max(count("oom "))
    }

    /// On cgroup v1: an eventfd the kernel signals on each OOM in the cgroup (so the whole instance can be
    /// killed when the OOM killer took only one of its processes). Cgroup v2 kills the whole group itself
    /// (`memory.oom.group`).
    pub(crate) fn oom_events(&self) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::{AsRawFd as _, FromRawFd as _};
        if self.version != Version::V1 {
            return None;
        }
        // SAFETY: eventfd(2) with constant flags; the result is checked before use.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return None;
        }
        // SAFETY: efd is a new descriptor that nothing else owns.
        let efd = unsafe { std::os::fd::OwnedFd::from_raw_fd(efd) };
        let control = File::open(self.dir.join("memory.oom_control")).ok()?;
        let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
        write_file(&self.dir.join("cgroup.event_control"), &line).ok()?;
        Some(efd)
    }

    /// Kills every process in the cgroup (v2: `cgroup.kill` where the kernel has it) and waits until it is
    /// empty, then removes it. Blocking.
    pub(crate) fn kill_and_remove(&self) {
        kill_all_in(&self.dir);
        let _ = std::fs::remove_dir(&self.dir);
    }

    /// Kills every process in the cgroup now where one write can (v2); v1 waits for
    /// [`Cgroup::kill_and_remove`].
    pub(crate) fn kill(&self) {
        if self.version == Version::V2 {
            let _ = write_file(&self.dir.join("cgroup.kill"), "1");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The fallback: one thread samples the process groups of the instances that work.

/// One instance the sampler may watch.
#[derive(Debug)]
pub(crate) struct Watched {
    /// The instance's init (its outer process): what is measured is the tree below its inner one.
    leader: i32,
    limit: u64,
    /// Work in progress (the sampler reads the group only while it is above zero).
    busy: AtomicUsize,
    /// The last reading, bytes.
    pub(crate) mem: AtomicU64,
    /// The sampler killed the group for passing its limit.
    pub(crate) exceeded: AtomicBool,
}

/// The sampler thread and the instances it knows.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    shared: Arc<(Mutex<Vec<Weak<Watched>>>, Condvar)>,
    pace: Arc<Pace>,
}

/// When the sampler looks. While work starts now and then, it looks every [`SAMPLE_EVERY`] by itself, so
/// the start of an invocation costs no wake-up of its thread; after [`PARK_AFTER`] without a start it
/// sleeps until the next start wakes it (no timer while the platform idles).
#[derive(Debug, Default)]
struct Pace {
    /// Work started on some instance, counted (the sampler compares it between its looks).
    starts: AtomicU64,
    /// The sampler sleeps until woken.
    parked: AtomicBool,
}

/// How long the sampler keeps its period after the last start of work.
const PARK_AFTER: Duration = Duration::from_secs(1);

impl Sampler {
    pub(crate) fn start() -> Sampler {
        let shared: Arc<(Mutex<Vec<Weak<Watched>>>, Condvar)> = Arc::default();
        let s = Sampler {
            shared,
            pace: Arc::default(),
        };
        let (weak, pace) = (Arc::downgrade(&s.shared), s.pace.clone());
        let _ = std::thread::Builder::new()
            .name("scf-memory".into())
            .spawn(move || sample_loop(&weak, &pace));
        s
    }

    pub(crate) fn watch(&self, leader: i32, limit: u64) -> Arc<Watched> {
        let w = Arc::new(Watched {
            leader,
            limit,
            busy: AtomicUsize::new(0),
            mem: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
        });
        if let Ok(mut all) = self.shared.0.lock() {
            all.push(Arc::downgrade(&w));
        }
        w
    }

    /// Work starts on `w`: the sampler reads it until the guard is dropped.
    pub(crate) fn busy(&self, w: &Arc<Watched>) -> Busy {
        w.busy.fetch_add(1, Ordering::SeqCst);
        self.pace.starts.fetch_add(1, Ordering::SeqCst);
        // Only a parked sampler is woken (one that keeps its period finds the work at its next look). The
        // lock makes sure it is waiting already: it parks holding it, after looking at `busy` once more.
        if self.pace.parked.load(Ordering::SeqCst) {
            let _held = self.shared.0.lock();
            self.shared.1.notify_all();
        }
        Busy(w.clone())
    }
}

/// Work in progress on a watched instance; the sampler stops reading it when the last guard goes.
#[derive(Debug)]
pub struct Busy(Arc<Watched>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

fn sample_loop(shared: &Weak<(Mutex<Vec<Weak<Watched>>>, Condvar)>, pace: &Pace) {
    let mut seen = pace.starts.load(Ordering::SeqCst);
    let mut last_start = std::time::Instant::now();
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (lock, wake) = &*shared;
        let Ok(mut all) = lock.lock() else {
            return;
        };
        all.retain(|w| w.strong_count() > 0);
        let working = |all: &Vec<Weak<Watched>>| -> Vec<Arc<Watched>> {
            all.iter()
                .filter_map(Weak::upgrade)
                .filter(|w| w.busy.load(Ordering::SeqCst) > 0)
                .collect()
        };
        let starts = pace.starts.load(Ordering::SeqCst);
        if starts != seen {
            (seen, last_start) = (starts, std::time::Instant::now());
        }
        let mut now_working = working(&all);
        if now_working.is_empty() && last_start.elapsed() >= PARK_AFTER {
            // Nothing works, nor has started for a while: park until a start wakes us. `parked` is set
            // before `busy` is looked at again, so a start either sees it (and wakes us once we wait) or is
            // seen here.
            pace.parked.store(true, Ordering::SeqCst);
            now_working = working(&all);
            if now_working.is_empty() {
                all = match wake.wait_timeout(all, Duration::from_secs(60)) {
                    Ok((all, _)) => all,
                    Err(_) => return,
                };
            }
            pace.parked.store(false, Ordering::SeqCst);
            drop(all);
            seen = pace.starts.load(Ordering::SeqCst);
            last_start = std::time::Instant::now();
            if now_working.is_empty() {
                continue;
            }
        } else {
            drop(all);
        }
        let working = now_working;
        for w in &working {
            let (rss, pids) = instance_tree(w.leader);
            w.mem.store(rss, Ordering::Relaxed);
            if rss > w.limit && !w.exceeded.swap(true, Ordering::SeqCst) {
                for pid in pids {
                    // SAFETY: kill(2) of a process of the instance just read from /proc; no memory involved.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                // SAFETY: kill(2) of the process group of the instance's init, which the platform started
                // and has not reaped (so the group's id is still its); no memory involved.
                unsafe { libc::kill(-w.leader, libc::SIGKILL) };
            }
        }
        drop(working);
        drop(shared);
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// Resident memory of an instance's processes, bytes, and their pids: every process below the inner
/// process of the instance's init `leader` (the function's process, whatever it started, and the orphans the
/// init adopted), found through `/proc/PID/task/TID/children`, or, where the kernel has no `children` files,
/// through the parents of every process in `/proc`. The two processes of the init are not counted. Blocking.
pub(crate) fn instance_tree(leader: i32) -> (u64, Vec<i32>) {
    let page = page_size();
    let has_children_files = Path::new("/proc")
        .join(leader.to_string())
        .join("task")
        .join(leader.to_string())
        .join("children")
        .exists();
    let parents = if has_children_files {
        None
    } else {
        Some(parents())
    };
    let children_of = |pid: i32| -> Vec<i32> {
        match &parents {
            Some(map) => map
                .iter()
                .filter(|(_, ppid)| *ppid == pid)
                .map(|(p, _)| *p)
                .collect(),
            None => {
                let mut out = Vec::new();
                if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                    for t in tasks.flatten() {
                        if let Ok(children) = std::fs::read_to_string(t.path().join("children")) {
                            out.extend(
                                children
                                    .split_whitespace()
                                    .filter_map(|c| c.parse::<i32>().ok()),
                            );
                        }
                    }
                }
                out
            }
        }
    };
    let mut seen = HashSet::new();
    // (pid, depth below the leader): the leader is the outer init, depth 1 its inner process.
    let mut todo = vec![(leader, 0u32)];
    let (mut pages, mut pids) = (0, Vec::new());
    while let Some((pid, depth)) = todo.pop() {
        if !seen.insert(pid) || depth > 4096 {
            continue;
        }
        if depth >= 2 {
            if let Some(rss) = stat_rss(pid) {
                pages += rss;
                pids.push(pid);
            }
        }
        todo.extend(children_of(pid).into_iter().map(|c| (c, depth + 1)));
    }
    (pages * page, pids)
}

/// Every process's parent, from a scan of `/proc`.
fn parents() -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat_fields(pid)?.0)))
        .collect()
}

/// Resident pages of `pid`, from `/proc/PID/stat`.
fn stat_rss(pid: i32) -> Option<u64> {
    stat_fields(pid).map(|(_, rss)| rss)
}

/// (parent, resident pages) of `pid`, from `/proc/PID/stat`.
fn stat_fields(pid: i32) -> Option<(i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state, ppid, pgrp, …; rss is field 24 of stat(5).
    Some((fields.get(1)?.parse().ok()?, fields.get(21)?.parse().ok()?))
}

/// The parent of `pid` (blocking: reads `/proc`).
/// The children of process `pid` (`/proc/PID/task/*/children`).
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    out
}

/// The pid process `pid` has inside its own PID namespace (the last `NSpid` field of its status).
pub(crate) fn pid_inside(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

pub(crate) fn parent_of(pid: i32) -> Option<i32> {
    stat_fields(pid).map(|(ppid, _)| ppid)
}

fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_is_read() {
        let info = "25 1 0:22 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n\
                    26 1 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            mount_point(info, |t, o| t == "cgroup"
                && o.split(',').any(|x| x == "memory")),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            mount_point(info, |t, _| t == "cgroup2"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn a_process_tree_is_measured_below_its_two_init_processes() {
        // This test's process is the "leader"; a child and a grandchild of it stand for the init's inner
        // process and the function's.
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 60 & wait"])
            .spawn()
            .expect("sh");
        let me = std::process::id() as i32;
        let mut found = (0, Vec::new());
        for _ in 0..2000 {
            found = instance_tree(me);
            // Until the grandchild is there and has memory (a process just forked, or not yet exec'd, may
            // show none).
            if found.0 > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for pid in &found.1 {
            // SAFETY: kill(2) of the test's own grandchild.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.0 > 0, "the grandchild's memory is counted");
        assert!(
            !found.1.contains(&(child.id() as i32)),
            "the child (the init's inner process) is not counted: {found:?}"
        );
    }
}
