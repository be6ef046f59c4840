//! The warm-instance curve of the scale section: sync `Invoke` while the platform holds 1 to 400 warm
//! instances, each size measured in rounds that alternate with a platform holding one instance and with
//! the machine's own floors, so every ratio compares figures taken at the same moments.

use std::path::{Path, PathBuf};
use std::process::Child;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::Sample;
use crate::scale::{provisioned_function, requests, serve_ready, stop, temp};

/// Rounds per size, alternating: the size's platform, the one-instance platform, then the two floors.
const ROUNDS: usize = 5;

/// What one side (a platform, or a floor) measured over a size's rounds.
#[derive(Default)]
pub struct Side {
    /// Every call's latency, µs.
    lat: Vec<f64>,
    /// The platform's CPU time over the calls, ns (0 for a floor).
    cpu_ns: f64,
}

impl Side {
    pub fn p50_us(&self) -> f64 {
        Sample(self.lat.clone()).median()
    }
    pub fn p99_us(&self) -> f64 {
        Sample(self.lat.clone()).quantile(0.99)
    }
    pub fn cpu_us_per_call(&self) -> f64 {
        self.cpu_ns / 1e3 / self.lat.len().max(1) as f64
    }
}

/// One size of the warm-instance curve.
pub struct WarmPoint {
    /// Warm instances held by the platform.
    pub instances: usize,
    /// Functions they belong to (calls go round-robin over them).
    pub functions: usize,
    /// Sync `Invoke` through the front door of the platform holding them, one client.
    pub held: Side,
    /// The same calls to a platform holding one instance, in the rounds between.
    pub one: Side,
    /// The platform's CPU while every instance sits idle, % of one core (`NaN` where not measured).
    pub idle_cpu_percent: f64,
    /// The machine's own growth: one client's round trips to as many bare echo servers as there are
    /// functions (a process and a kept-alive Unix connection each), round-robin, and to one such server, in
    /// the same rounds.
    pub floor: Side,
    pub floor_one: Side,
}

impl WarmPoint {
    /// The worst of p50, p99 and CPU per call against the one-instance platform's.
    pub fn worst(&self) -> f64 {
        (self.held.p50_us() / self.one.p50_us())
            .max(self.held.p99_us() / self.one.p99_us())
            .max(self.held.cpu_us_per_call() / self.one.cpu_us_per_call())
    }
    /// What the p50 grew beyond the floor's growth, µs: the platform's own part of the growth.
    pub fn p50_growth_beyond_floor_us(&self) -> f64 {
        (self.held.p50_us() - self.one.p50_us()) - (self.floor.p50_us() - self.floor_one.p50_us())
    }
    /// Its row's label: warm instances (functions).
    pub fn label(&self) -> String {
        format!("{} ({})", self.instances, self.functions)
    }
    /// The p50 and the CPU per call against the one-instance platform's, and the floor's p50 against one
    /// server's.
    pub fn growth(&self) -> (f64, f64, f64) {
        (
            self.held.p50_us() / self.one.p50_us(),
            self.held.cpu_us_per_call() / self.one.cpu_us_per_call(),
            self.floor.p50_us() / self.floor_one.p50_us(),
        )
    }
    /// The same for the floor: as many servers against one.
    pub fn floor_worst(&self) -> f64 {
        (self.floor.p50_us() / self.floor_one.p50_us())
            .max(self.floor.p99_us() / self.floor_one.p99_us())
    }
}

/// `scf-local serve` holding `functions × per_function` warm (provisioned) native instances, every
/// function called once (connections made, first-call allocations done).
struct Held {
    child: Child,
    addr: String,
    dir: PathBuf,
    functions: usize,
}

impl Held {
    async fn start(
        root: &Path,
        lib: &Path,
        functions: usize,
        per_function: usize,
        which: &str,
    ) -> anyhow::Result<Held> {
        let dir = temp(&format!("scale-warm-{which}"), functions * per_function);
        let dirs = (0..functions)
            .map(|i| provisioned_function(&dir, lib, &format!("f{i}"), per_function))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (root_, data, dirs_) = (root.to_path_buf(), dir.join("data"), dirs.clone());
        let (child, addr) =
            tokio::task::spawn_blocking(move || serve_ready(&root_, &data, &dirs_, functions))
                .await??;
        let held = Held {
            child,
            addr,
            dir,
            functions,
        };
        held.calls(functions).await?;
        Ok(held)
    }

    /// `n` sync invocations round-robin over the functions, one client.
    async fn calls(&self, n: usize) -> anyhow::Result<Sample> {
        let body = |i: usize| {
            Bytes::from(format!(
                r#"{{"FunctionName":"f{}","ClientContext":"{{}}"}}"#,
                i % self.functions
            ))
        };
        requests(&self.addr, "Invoke", (0..n).map(body).collect()).await
    }

    /// A round of `n` calls, added to `side`.
    async fn round(&self, n: usize, side: &mut Side) -> anyhow::Result<()> {
        let pid = self.child.id();
        let from = crate::floor::cpu_ns(pid);
        let lat = self.calls(n).await?;
        side.cpu_ns += crate::floor::cpu_ns(pid) - from;
        side.lat.extend(lat.0);
        Ok(())
    }

    /// The platform's CPU over `idle` with nothing called, % of one core (`NaN`, not measured, when `idle`
    /// is zero).
    async fn idle_cpu_percent(&self, idle: std::time::Duration) -> f64 {
        if idle.is_zero() {
            return f64::NAN;
        }
        let from = crate::floor::cpu_ns(self.child.id());
        tokio::time::sleep(idle).await;
        (crate::floor::cpu_ns(self.child.id()) - from) / idle.as_nanos() as f64 * 100.0
    }

    fn stop(self) {
        stop(self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `n` bare echo servers (`scf-bench echo-server`, one process each, one kept-alive Unix connection each),
/// called round-robin as the curve calls its functions.
struct Servers {
    servers: Vec<(Child, PathBuf)>,
    senders: Vec<SendRequest<Full<Bytes>>>,
}

impl Servers {
    async fn start(n: usize, which: &str) -> anyhow::Result<Servers> {
        let mut s = Servers {
            servers: Vec::with_capacity(n),
            senders: Vec::with_capacity(n),
        };
        let started = async {
            for i in 0..n {
                let path = temp(&format!("echo-{which}-{i}"), n).with_extension("sock");
                let _ = std::fs::remove_file(&path);
                let (child, at) = crate::floor::spawn_echo(&format!("unix:{}", path.display()))?;
                s.servers.push((child, path));
                let stream = tokio::net::UnixStream::connect(&at).await?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                s.senders.push(sender);
            }
            // A first call to every server warms up.
            s.round(n, &mut Side::default()).await
        }
        .await;
        match started {
            Ok(()) => Ok(s),
            Err(e) => {
                // The servers already started do not outlive a failed start.
                s.stop();
                Err(e)
            }
        }
    }

    /// A round of `calls` round trips, round-robin, added to `side`.
    async fn round(&mut self, calls: usize, side: &mut Side) -> anyhow::Result<()> {
        let n = self.senders.len();
        for i in 0..calls {
            let one =
                crate::floor::exchange(&mut self.senders[i % n], &[], [Bytes::from_static(b"{}")])
                    .await?;
            side.lat.extend(one.0);
        }
        Ok(())
    }

    fn stop(self) {
        drop(self.senders);
        for (mut child, path) in self.servers {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Every size of `warm` (functions, instances each): its platform and floor started, its idle CPU (over
/// `idle`; none when that is zero), then
/// [`ROUNDS`] rounds of `calls / ROUNDS` calls each on it, on the one-instance platform and on both floors,
/// in turn. The one-instance platform and floor stay up for the whole curve; the first size is normally
/// (1, 1) itself, a second platform like the first: what the figures vary with nothing changed.
pub async fn measure(
    root: &Path,
    lib: &Path,
    warm: &[(usize, usize)],
    calls: usize,
    idle: std::time::Duration,
) -> anyhow::Result<Vec<WarmPoint>> {
    let one = Held::start(root, lib, 1, 1, "one").await?;
    let mut floor_one = match Servers::start(1, "one").await {
        Ok(f) => f,
        Err(e) => {
            one.stop();
            return Err(e);
        }
    };
    let per_round = (calls / ROUNDS).max(1);
    let mut points = Vec::new();
    let mut measured = Ok(());
    for &size in warm {
        match point(root, lib, size, (&one, &mut floor_one), per_round, idle).await {
            Ok(p) => points.push(p),
            Err(e) => {
                measured = Err(e);
                break;
            }
        }
    }
    one.stop();
    floor_one.stop();
    measured.map(|()| points)
}

/// One size of the curve: its platform and floor started, its idle CPU, its [`ROUNDS`] rounds beside the
/// one-instance platform and floor (`one`), and its platform and floor stopped again.
async fn point(
    root: &Path,
    lib: &Path,
    (functions, each): (usize, usize),
    (one, floor_one): (&Held, &mut Servers),
    per_round: usize,
    idle: std::time::Duration,
) -> anyhow::Result<WarmPoint> {
    let held = Held::start(root, lib, functions, each, "held").await?;
    let idle_cpu_percent = held.idle_cpu_percent(idle).await;
    let mut floor = match Servers::start(functions, "held").await {
        Ok(f) => f,
        Err(e) => {
            held.stop();
            return Err(e);
        }
    };
    let mut p = WarmPoint {
        instances: functions * each,
        functions,
        held: Side::default(),
        one: Side::default(),
        idle_cpu_percent,
        floor: Side::default(),
        floor_one: Side::default(),
    };
    let rounds = async {
        for _ in 0..ROUNDS {
            held.round(per_round, &mut p.held).await?;
            one.round(per_round, &mut p.one).await?;
            floor.round(per_round, &mut p.floor).await?;
            floor_one.round(per_round, &mut p.floor_one).await?;
        }
        anyhow::Ok(())
    }
    .await;
    floor.stop();
    held.stop();
    rounds.map(|()| p)
}

/// The scale section's warm-instance curve: sync latency and the platform's CPU per invocation with 1 to 400
/// warm instances held, each against a platform holding one instance in the same rounds; and the
/// platform's CPU while they idle.
pub fn report(r: &mut crate::Report, points: &[WarmPoint]) {
    r.line(&format!("Sync `Invoke` through the front door (one client, calls round-robin over the functions, native no-op, provisioned instances) while the platform holds more warm instances; and the platform's CPU while they all sit idle. Each size runs {ROUNDS} rounds that alternate with a second platform holding one instance and with the machine's own floors, so each size is compared with one instance measured at the same moments (the first row is two platforms of one instance each: what the figures vary with nothing changed)."));
    r.line("");
    r.line("| warm instances (functions) | p50 (µs) | p99 (µs) | CPU per call (µs) | one instance, same rounds: p50 / p99 / CPU | worst vs one instance | target | | idle CPU (% of a core) | target | | floor with as many servers: p50 / p99 (µs) | floor's worst vs one server | p50 growth beyond the floor's (µs) |");
    r.line("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for p in points {
        let worst = p.worst();
        let verdict = if p.instances == 1 {
            ""
        } else {
            r.target(
                &format!(
                    "sync p50/p99/CPU with {} warm instances within 1.2× of 1",
                    p.instances
                ),
                worst <= 1.2,
            )
        };
        let idle = r.target(
            &format!(
                "idle platform CPU with {} warm instances < 1 % of a core",
                p.instances
            ),
            p.idle_cpu_percent < 1.0,
        );
        r.line(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} / {:.1} | {worst:.2}× | ≤ 1.2× | {verdict} | {:.2} | < 1 % | {idle} | {:.1} / {:.1} | {:.2}× | {:+.1} |",
            p.label(),
            p.held.p50_us(),
            p.held.p99_us(),
            p.held.cpu_us_per_call(),
            p.one.p50_us(),
            p.one.p99_us(),
            p.one.cpu_us_per_call(),
            p.idle_cpu_percent,
            p.floor.p50_us(),
            p.floor.p99_us(),
            p.floor_worst(),
            p.p50_growth_beyond_floor_us()
        ));
    }
    r.line("");
    r.line("The last two columns are the machine's own growth in the same rounds: one client calling as many bare echo servers (one process each, one kept-alive Unix connection each) round-robin, against one such server. What the platform's figures grow beyond the floor's is the platform's: the last column is the p50's growth less the floor's, in µs.");
    r.line("");
}

/// [`measure`] again with every process on one CPU (`one_cpu.rs`), without the idle CPU; `None` where the
/// process may use only one CPU or may not move its threads.
pub async fn measure_one_cpu(
    root: &Path,
    lib: &Path,
    warm: &[(usize, usize)],
    calls: usize,
) -> anyhow::Result<Option<(usize, Vec<WarmPoint>)>> {
    crate::one_cpu::on_one_cpu(measure(root, lib, warm, calls, std::time::Duration::ZERO)).await
}

/// The curve on one CPU: the platform's own growth with what it holds, which the figures as run hide
/// behind where the scheduler puts the processes (their first row varies with nothing changed).
pub fn report_one_cpu(r: &mut crate::Report, cpu: usize, points: &[WarmPoint]) {
    r.line(&format!("The same curve again with every process on CPU {cpu} (the bench's threads pinned, and so the platforms, their instances and the echo servers it starts; {ROUNDS} rounds per size as above): no wake-up crosses CPUs, so the figures do not move with where the scheduler puts the processes, and what grows is what the platform and the machine do with more of them. Calls go round-robin over the functions, so with more functions each call goes to an instance that has not run for longer; the floor's columns are the same for bare echo servers. Not a target: the verdicts above are measured as users run the platform."));
    r.line("");
    r.line("| on one CPU: warm instances (functions) | p50 (µs) | CPU per call (µs) | one instance, same rounds: p50 / CPU | p50 vs one instance | CPU vs one instance | floor with as many servers: p50 (µs) | floor's p50 vs one server |");
    r.line("|---|---|---|---|---|---|---|---|");
    for p in points {
        let (p50, cpu, floor) = p.growth();
        let (held, one) = (&p.held, &p.one);
        r.line(&format!(
            "| {} | {:.1} | {:.1} | {:.1} / {:.1} | {p50:.2}× | {cpu:.2}× | {:.1} | {floor:.2}× |",
            p.label(),
            held.p50_us(),
            held.cpu_us_per_call(),
            one.p50_us(),
            one.cpu_us_per_call(),
            p.floor.p50_us(),
        ));
    }
    r.line("");
}
