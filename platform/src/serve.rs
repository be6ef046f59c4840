//! `scf-local serve`: the platform, running for as long as the developer wants: the banner, the readable
//! terminal (`terminal.rs`), `--debug`, `--watch` and the console.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use scf_store::Store;
use tokio::sync::watch;

use crate::PlatformError;
use crate::activity::Events;
use crate::config::{Overrides, Project};
use crate::console::Console;
use crate::frontdoor::{Credentials, FrontDoor};
use crate::functions::Functions;
use crate::gateway::Gateway;
use crate::instance::Platform;
use crate::router::Role;
use crate::terminal;
use crate::watch::Definition;

/// The front door's default port.
pub const DEFAULT_PORT: u16 = 9100;

/// How `scf-local serve` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Where the queues, dead letters and logs are kept.
    pub data_dir: PathBuf,
    /// One function per directory.
    pub function_dirs: Vec<PathBuf>,
    /// Verify TC3 signatures with these.
    pub credentials: Option<Credentials>,
    /// Port of the API Gateway listener on 127.0.0.1 (0: any free port), started when a function has an API.
    pub apigw_port: u16,
    /// The profile Rust functions' crates are built with.
    pub profile: crate::build::Profile,
    /// Reload a function when its files change (`--watch`).
    pub watch: bool,
    /// Functions run under a debugger (`--debug FUNCTION[=PORT]`), by name, with their port.
    pub debug: Vec<(String, Option<u16>)>,
    /// Debugged instances wait for the debugger (`--debug-wait`).
    pub debug_wait: bool,
    /// No line per request on stdout (`--quiet`).
    pub quiet: bool,
    /// Files no instance may see besides the data directory (the SecretKey file).
    pub hidden: Vec<PathBuf>,
}

impl ServeOptions {
    /// The options of `scf-local serve --port PORT --data-dir DATA_DIR FUNCTION_DIR...`, nothing else.
    pub fn new(port: u16, data_dir: PathBuf, function_dirs: Vec<PathBuf>) -> ServeOptions {
        ServeOptions {
            port,
            data_dir,
            function_dirs,
            credentials: None,
            apigw_port: crate::DEFAULT_APIGW_PORT,
            profile: crate::build::Profile::default(),
            watch: false,
            debug: Vec::new(),
            debug_wait: false,
            quiet: false,
            hidden: Vec::new(),
        }
    }
}

/// Runs the platform until SIGINT or SIGTERM. Writes `listening on http://ADDR` to stderr once it accepts
/// requests, then a line per function and what protects the instances, and the console's address; then a
/// line per finished request on stdout (unless `quiet`) and a line per reload on stderr.
pub async fn serve(opts: ServeOptions) -> Result<(), PlatformError> {
    // The port first: when it is taken, nothing else has started.
    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(PlatformError::Config(format!(
                "port {} on 127.0.0.1 is in use (another scf-local serve?): choose another with --port, or \
                 --port 0 for any free one",
                opts.port
            )));
        }
        Err(e) => return Err(PlatformError::io(format!("binding {addr}"))(e)),
    };
    // Finding the shim and probing cgroups and namespaces read files: off the event loop, like opening the
    // store.
    let mut platform = tokio::task::spawn_blocking(Platform::discover)
        .await
        .map_err(|e| PlatformError::Config(e.to_string()))??;
    platform.keep_ready();
    let data_dir = opts.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
        .await
        .map_err(|e| PlatformError::Config(e.to_string()))??;
    // Other functions' queued events and logs are in the data directory: no instance sees it (made by the
    // store's open just above, so it can be resolved).
    platform.hide(std::iter::once(opts.data_dir.clone()).chain(opts.hidden.iter().cloned()));
    let events = Events::default();
    let _printer = terminal::spawn_printer(&events, opts.quiet)
        .map_err(PlatformError::io("starting the terminal's printer"))?;
    let mut functions = Functions::new();
    // Each function, and how to read it again (`--watch`): its project's directory and its name.
    let mut definitions = Vec::new();
    let mut debugged = Vec::new();
    for dir in &opts.function_dirs {
        // Reading a project reads files: off the event loop too.
        let one = [dir.clone()];
        let (configs, notes) = tokio::task::spawn_blocking(move || Functions::read(&one, load))
            .await
            .map_err(|e| PlatformError::Config(e.to_string()))??;
        for note in notes {
            let _ = writeln!(std::io::stderr(), "scf-local: {note}");
        }
        let dir = dir
            .canonicalize()
            .map_err(|e| PlatformError::Config(format!("code directory {}: {e}", dir.display())))?;
        for mut config in configs {
            let debug = opts
                .debug
                .iter()
                .find(|(n, _)| *n == config.name)
                .map(|(_, port)| (*port, opts.debug_wait));
            if let Some((port, wait)) = debug {
                crate::debug::Debug::apply(&mut config, port, wait)?;
                debugged.push(config.name.clone());
            }
            crate::build::prepare(&mut config, opts.profile).await;
            if opts.watch {
                crate::watch::watching(&mut config);
            }
            definitions.push((
                config.name.clone(),
                Definition {
                    dir: dir.clone(),
                    overrides: Overrides {
                        name: Some(config.name.clone()),
                        ..Overrides::default()
                    },
                    debug,
                    profile: opts.profile,
                },
            ));
            functions.add(config, &platform, &store, &events)?;
        }
    }
    if functions.is_empty() {
        return Err(PlatformError::Config(
            "no function directories given".into(),
        ));
    }
    if let Some((unknown, _)) = opts.debug.iter().find(|(n, _)| !debugged.contains(n)) {
        return Err(PlatformError::Config(format!(
            "--debug {unknown}: no function of that name (the functions are {})",
            functions
                .names()
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let gateway = Gateway::build(&functions)?.map(Arc::new);
    let functions = Arc::new(functions);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (name, pool) in &functions.events {
        tasks.push(tokio::spawn(crate::asyncq::dispatch(
            pool.clone(),
            store.clone(),
            shutdown_rx.clone(),
        )));
        let provisioned = pool.config.serve.provisioned;
        if provisioned > 0 {
            // A long wait at start: said when it begins and when it ends, with how many are ready.
            let _ = writeln!(
                std::io::stderr(),
                "scf-local: {name}: starting {provisioned} provisioned instance{}",
                if provisioned == 1 { "" } else { "s" }
            );
            let (pool, name) = (pool.clone(), name.clone());
            tasks.push(tokio::spawn(async move {
                let began = std::time::Instant::now();
                let mut starts = tokio::task::JoinSet::new();
                for _ in 0..provisioned {
                    let pool = pool.clone();
                    starts.spawn(async move { pool.start_provisioned().await });
                }
                while starts.join_next().await.is_some() {}
                let ready = pool.snapshot().0.iter().filter(|v| v.provisioned).count();
                let _ = writeln!(
                    std::io::stderr(),
                    "scf-local: {name}: {ready} of {provisioned} provisioned instances ready in {:.0} ms{}",
                    began.elapsed().as_secs_f64() * 1e3,
                    if ready < provisioned {
                        " (see the function's log for the failed starts)"
                    } else {
                        ""
                    }
                );
            }));
        }
        tasks.push(tokio::spawn(pool.clone().reap(shutdown_rx.clone())));
    }
    for pool in functions.http.values() {
        tasks.push(tokio::spawn(pool.clone().reap(shutdown_rx.clone())));
    }
    tasks.push(tokio::spawn(timer_anchor(shutdown_rx.clone())));
    let local = listener
        .local_addr()
        .map_err(PlatformError::io("reading the bound address"))?;
    let door = Arc::new(FrontDoor {
        functions: functions.clone(),
        store,
        credentials: opts.credentials.clone(),
        events: events.clone(),
    });
    let console = Arc::new(Console::new(door.clone(), events.clone(), opts.watch));
    let mut banner = banner(&opts, &platform, &functions, local);
    let mut servers = Vec::new();
    if let Some(gateway) = gateway {
        let addr = SocketAddr::from(([127, 0, 0, 1], opts.apigw_port));
        let apigw = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(PlatformError::io(format!(
                "binding the API Gateway's {addr}"
            )))?;
        let at = apigw
            .local_addr()
            .map_err(PlatformError::io("reading the bound address"))?;
        for line in gateway.lines(at) {
            banner.push_str(&format!("scf-local: {line}\n"));
        }
        servers.push(tokio::spawn(crate::router::serve(
            apigw,
            door.clone(),
            Role::Gateway(gateway),
        )));
    }
    for pool in functions.events.values() {
        for (name, cron, argument) in crate::timer::enabled(&pool.config) {
            banner.push_str(&format!(
                "scf-local: timer {name} -> {} ({cron}, UTC+8)\n",
                pool.config.name
            ));
            tasks.push(tokio::spawn(crate::timer::run(
                door.clone(),
                pool.config.name.clone(),
                name,
                cron,
                argument,
                shutdown_rx.clone(),
            )));
        }
    }
    banner.push_str(&crate::ondemand::banner(&functions));
    banner.push_str(&format!(
        "scf-local: console: http://{local}{}\n",
        console.entry()
    ));
    if opts.watch {
        let skip: Vec<PathBuf> = opts.data_dir.canonicalize().into_iter().collect();
        tasks.push(tokio::spawn(crate::watch::serve(
            functions.clone(),
            definitions,
            events.clone(),
            skip,
            shutdown_rx.clone(),
        )));
        banner.push_str(&format!(
            "scf-local: watching {} function director{} for changes (node_modules, target, .git and __pycache__ ignored)\n",
            opts.function_dirs.len(),
            if opts.function_dirs.len() == 1 { "y" } else { "ies" }
        ));
    }
    servers.push(tokio::spawn(crate::router::serve(
        listener,
        door,
        Role::FrontDoor(console),
    )));
    let _ = std::io::stderr().write_all(banner.as_bytes());

    wait_for_signal().await;
    let _ = std::io::stderr()
        .write_all(b"scf-local: shutting down; queued events stay in the data directory\n");
    for server in servers {
        server.abort();
    }
    let _ = shutdown_tx.send(true);
    for t in tasks {
        t.abort();
    }
    for pool in functions.events.values() {
        pool.stop_all().await;
    }
    for pool in functions.http.values() {
        pool.stop_all().await;
    }
    Ok(())
}

/// A function's definition for `serve`, which has only its folder: a folder that cannot define one says
/// which folder, and what it lacks.
fn load(dir: &Path) -> Result<Project, PlatformError> {
    Project::load(dir, &Overrides::default()).map_err(|e| {
        let has_file = ["serverless.yml", "serverless.yaml"]
            .iter()
            .any(|n| dir.join(n).is_file());
        match e {
            PlatformError::Config(_) if dir.is_dir() && !has_file => PlatformError::Config(format!(
                "{} has no serverless.yml: scf-local serve takes each function's settings (inputs.handler, \
                 inputs.runtime, …) from it; write one, or run the folder with `scf-local invoke {} --handler \
                 FILE.METHOD`",
                dir.display(),
                dir.display()
            )),
            PlatformError::Config(m) if !m.contains(&dir.display().to_string()) => {
                PlatformError::Config(format!("{}: {m}", dir.display()))
            }
            other => other,
        }
    })
}

fn banner(
    opts: &ServeOptions,
    platform: &Platform,
    functions: &Functions,
    local: SocketAddr,
) -> String {
    let mut banner = format!("scf-local: listening on http://{local}\n");
    let mut names: Vec<&String> = functions.events.keys().collect();
    names.sort();
    for name in names {
        let c = &functions.events[name].config;
        banner.push_str(&format!(
            "scf-local: function {name} ({} {}, {} MB, timeout {} s, concurrency {}, provisioned {}) from {}\n",
            match c.runtime.env_name() {
                "" => "auto",
                name => name,
            },
            c.handler,
            c.memory_mb,
            c.timeout.as_secs_f64(),
            c.serve.concurrency,
            c.serve.provisioned,
            c.rust_crate.as_ref().unwrap_or(&c.code_dir).display()
        ));
        if let Some(e) = &c.code_error {
            banner.push_str(&format!(
                "scf-local: function {name} cannot start: {} (its invocations answer {} until it does)\n",
                e.message,
                e.kind.status_code()
            ));
        }
    }
    let mut web_names: Vec<&String> = functions.http.keys().collect();
    web_names.sort();
    for name in &web_names {
        let w = &functions.http[*name];
        let c = &w.config;
        banner.push_str(&format!(
            "scf-local: {} function {name} ({}, {} MB, timeout {} s, concurrency {}, {} per instance){}\n",
            if w.is_web() { "web" } else { "image-style event" },
            c.handler,
            c.memory_mb,
            c.timeout.as_secs_f64(),
            c.serve.concurrency,
            w.instance_concurrency(),
            if w.is_web() {
                format!(" at http://{local}/web/{name}/")
            } else {
                String::new()
            },
        ));
    }
    let mut debugged: Vec<(&String, &crate::debug::Debug)> = functions
        .events
        .iter()
        .filter_map(|(name, pool)| pool.config.debug.as_ref().map(|d| (name, d)))
        .collect();
    debugged.sort_by_key(|(name, _)| *name);
    for (name, d) in debugged {
        banner.push_str(&format!("scf-local: {}\n", d.describe(name)));
    }
    for line in platform.describe() {
        if web_names.is_empty() && line.starts_with("web instances:") {
            continue;
        }
        banner.push_str(&format!("scf-local: {line}\n"));
    }
    banner.push_str(&format!(
        "scf-local: data in {}; signatures {}\n",
        opts.data_dir.display(),
        if opts.credentials.is_some() {
            "verified"
        } else {
            "not checked"
        }
    ));
    banner
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the platform still runs; it stops when killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// How far ahead the runtime's timer wheel always has a wake-up ([`timer_anchor`]).
const TIMER_ANCHOR: std::time::Duration = std::time::Duration::from_millis(500);

/// Keeps a timer due within [`TIMER_ANCHOR`] at all times. Every invocation arms its deadline (its
/// timeout, normally seconds away); when no timer is due sooner, arming it moves the driver's next wake-up
/// earlier, which costs an eventfd write and an extra turn of the event loop per invocation. With a timer
/// always due sooner, a deadline further away than this never has to; idle, it wakes the platform twice a
/// second.
async fn timer_anchor(mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TIMER_ANCHOR) => {}
            _ = stop.changed() => return,
        }
    }
}
