//! `scf-local serve`: the platform, running for as long as the developer wants.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use scf_store::Store;
use tokio::sync::{Notify, watch};

use crate::PlatformError;
use crate::config::{FunctionConfig, Overrides};
use crate::event::EventPool;
use crate::frontdoor::{Credentials, FrontDoor};
use crate::functions::Functions;
use crate::http::HttpPool;
use crate::instance::Platform;

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
    /// The profile Rust functions' crates are built with.
    pub profile: crate::build::Profile,
}

/// Runs the platform until SIGINT or SIGTERM. Writes `listening on http://ADDR` to stderr once it accepts
/// requests, then a line per function and what protects the instances.
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
    let mut functions = Functions::default();
    for dir in &opts.function_dirs {
        let mut config = load(dir)?;
        crate::build::prepare(&mut config, opts.profile).await;
        if functions.contains(&config.name) {
            return Err(PlatformError::Config(format!(
                "two functions are named {}",
                config.name
            )));
        }
        let name = config.name.clone();
        if config.http.is_some() {
            functions
                .http
                .insert(name, HttpPool::new(config, platform.clone(), store.clone()));
        } else {
            functions.events.insert(
                name,
                EventPool::new(config, platform.clone(), store.clone()),
            );
        }
    }
    if functions.is_empty() {
        return Err(PlatformError::Config(
            "no function directories given".into(),
        ));
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
    });
    let server = tokio::spawn(crate::router::serve(listener, door));
    let _ = std::io::stderr().write_all(banner(&opts, &platform, &functions, local).as_bytes());

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

/// A function's definition for `serve`, which has only its folder: a folder that cannot define one says
/// which folder, and what it lacks.
fn load(dir: &Path) -> Result<FunctionConfig, PlatformError> {
    FunctionConfig::load(dir, &Overrides::default()).map_err(|e| {
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

async fn wait_for_signal() {
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
