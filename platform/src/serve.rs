//! `scf-local serve`: the platform, running for as long as the developer wants: the banner, the readable
//! terminal (`terminal.rs`), the functions' builds, `--debug`, `--watch` and the console.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use scf_store::Store;
use tokio::sync::{Notify, watch};

use crate::PlatformError;
use crate::config::Overrides;
use crate::console::Console;
use crate::event::EventPool;
use crate::events::Events;
use crate::frontdoor::{Credentials, FrontDoor};
use crate::functions::Functions;
use crate::http::HttpPool;
use crate::instance::Platform;
use crate::terminal::{self, Style};
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
    /// Reload a function when its files change (`--watch`).
    pub watch: bool,
    /// Functions run under a debugger (`--debug FUNCTION[=PORT]`), by name, with their port.
    pub debug: Vec<(String, Option<u16>)>,
    /// Debugged instances wait for the debugger (`--debug-wait`).
    pub debug_wait: bool,
    /// No line per request on stdout (`--quiet`).
    pub quiet: bool,
    /// The profile Rust functions' crates are built with.
    pub profile: crate::build::Profile,
}

impl ServeOptions {
    /// The options of `scf-local serve --port PORT --data-dir DATA_DIR FUNCTION_DIR...`, nothing else.
    pub fn new(port: u16, data_dir: PathBuf, function_dirs: Vec<PathBuf>) -> ServeOptions {
        ServeOptions {
            port,
            data_dir,
            function_dirs,
            credentials: None,
            watch: false,
            debug: Vec::new(),
            debug_wait: false,
            quiet: false,
            profile: crate::build::Profile::default(),
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
    let platform = tokio::task::spawn_blocking(Platform::discover)
        .await
        .map_err(|e| PlatformError::Config(e.to_string()))??;
    let data_dir = opts.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
        .await
        .map_err(|e| PlatformError::Config(e.to_string()))??;
    let events = Events::default();
    let _printer = terminal::spawn_printer(&events, opts.quiet)
        .map_err(PlatformError::io("starting the terminal's printer"))?;
    let mut functions = Functions::default();
    let mut definitions = Vec::new();
    let mut debugged = Vec::new();
    let err_style = Style::stderr();
    for dir in &opts.function_dirs {
        let mut definition = Definition {
            dir: dir.canonicalize().map_err(|e| {
                PlatformError::Config(format!("code directory {}: {e}", dir.display()))
            })?,
            overrides: Overrides::default(),
            debug: None,
            profile: opts.profile,
        };
        let name = definition.load().await.map_err(|e| explain(dir, e))?.name;
        if let Some((_, port)) = opts.debug.iter().find(|(n, _)| *n == name) {
            definition.debug = Some((*port, opts.debug_wait));
            debugged.push(name.clone());
        }
        // With --watch, a Rust crate or a src.hook is built first (and again on each change).
        let built = if opts.watch {
            definition
                .prepare(|line| {
                    let _ = std::io::stderr()
                        .write_all(terminal::build_line(&name, line, err_style).as_bytes());
                })
                .await
                .map(|(config, ..)| config)
        } else {
            definition.ready().await
        };
        let config = match built {
            Ok(config) => config,
            // With --watch the platform starts anyway, and the next change builds again.
            Err(e) if opts.watch => {
                let _ = writeln!(
                    std::io::stderr(),
                    "scf-local: function {name}: {e}\nscf-local: function {name}: the build failed; fix it and save (--watch builds again)"
                );
                definition.load().await?
            }
            Err(e) => return Err(PlatformError::Config(format!("function {name}: {e}"))),
        };
        definitions.push((name.clone(), definition));
        if functions.contains(&config.name) {
            return Err(PlatformError::Config(format!(
                "two functions are named {}",
                config.name
            )));
        }
        let name = config.name.clone();
        let (platform, store, events) = (platform.clone(), store.clone(), events.clone());
        if config.http.is_some() {
            functions
                .http
                .insert(name, HttpPool::new(config, platform, store, events));
        } else {
            functions
                .events
                .insert(name, EventPool::new(config, platform, store, events));
        }
    }
    if functions.is_empty() {
        return Err(PlatformError::Config(
            "no function directories given".into(),
        ));
    }
    if let Some((unknown, _)) = opts.debug.iter().find(|(n, _)| !debugged.contains(n)) {
        let names = functions.names();
        return Err(PlatformError::Config(format!(
            "--debug {unknown}: no function of that name (the functions are {})",
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let functions = Arc::new(functions);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut wakes = HashMap::new();
    let mut tasks = Vec::new();
    for (name, pool) in &functions.events {
        let wake = Arc::new(Notify::new());
        wakes.insert(name.clone(), wake.clone());
        tasks.push(tokio::spawn(crate::asyncq::dispatch(
            pool.clone(),
            store.clone(),
            wake,
            shutdown_rx.clone(),
        )));
        for _ in 0..pool.config.serve.provisioned {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move { pool.start_provisioned().await }));
        }
        tasks.push(tokio::spawn(pool.clone().reap(shutdown_rx.clone())));
    }
    for pool in functions.http.values() {
        tasks.push(tokio::spawn(pool.clone().reap(shutdown_rx.clone())));
    }
    let local = listener
        .local_addr()
        .map_err(PlatformError::io("reading the bound address"))?;
    let door = Arc::new(FrontDoor {
        functions: functions.clone(),
        wakes,
        store,
        credentials: opts.credentials.clone(),
        events: events.clone(),
    });
    let console = Arc::new(Console::new(door.clone(), events.clone(), opts.watch));
    let entry = console.entry();
    let server = tokio::spawn(crate::router::serve(listener, door, console));
    let mut text = banner(&opts, &platform, &functions, local);
    text.push_str(&format!("scf-local: console: http://{local}{entry}\n"));
    if opts.watch {
        let skip: Vec<PathBuf> = opts.data_dir.canonicalize().into_iter().collect();
        tasks.push(tokio::spawn(crate::watch::serve(
            functions.clone(),
            definitions,
            events.clone(),
            skip,
            shutdown_rx.clone(),
        )));
        text.push_str(&format!(
            "scf-local: watching {} function director{} for changes (node_modules, target, .git and __pycache__ ignored)\n",
            opts.function_dirs.len(),
            if opts.function_dirs.len() == 1 { "y" } else { "ies" }
        ));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());

    wait_for_signal().await;
    let _ = std::io::stderr()
        .write_all(b"scf-local: shutting down; queued events stay in the data directory\n");
    server.abort();
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

/// Why `dir` does not define a function, for `serve`, which has only its folder: which folder, and what it
/// lacks.
fn explain(dir: &Path, e: PlatformError) -> PlatformError {
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

/// Returns on SIGINT or SIGTERM.
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
