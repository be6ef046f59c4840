//! `scf-local serve`: the platform, running for as long as the developer wants.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::PlatformError;
use crate::config::{FunctionConfig, Overrides};
use crate::frontdoor::{Credentials, FrontDoor};
use crate::instance::Platform;
use crate::scheduler::Pool;
use crate::store::Store;

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
}

/// Runs the platform until SIGINT or SIGTERM. Writes `listening on http://ADDR` to stderr once it accepts
/// requests.
pub async fn serve(opts: ServeOptions) -> Result<(), PlatformError> {
    let platform = Platform::discover()?;
    let store = Arc::new(Store::open(&opts.data_dir)?);
    store.start_log_writer();
    let mut pools: HashMap<String, Arc<Pool>> = HashMap::new();
    let mut web: HashMap<String, Arc<crate::web::WebPool>> = HashMap::new();
    for dir in &opts.function_dirs {
        let config = FunctionConfig::load(dir, &Overrides::default())?;
        if pools.contains_key(&config.name) || web.contains_key(&config.name) {
            return Err(PlatformError::Config(format!(
                "two functions are named {}",
                config.name
            )));
        }
        if config.http.is_some() {
            let name = config.name.clone();
            if let Some(w) = crate::web::WebPool::new(config, &platform, store.clone()) {
                web.insert(name, w);
            }
            continue;
        }
        pools.insert(
            config.name.clone(),
            Pool::new(config, platform.clone(), store.clone()),
        );
    }
    if pools.is_empty() && web.is_empty() {
        return Err(PlatformError::Config(
            "no function directories given".into(),
        ));
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut wakes = HashMap::new();
    let mut tasks = Vec::new();
    for (name, pool) in &pools {
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
        let pool = pool.clone();
        let mut stop = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let tick = (pool.config.serve.idle_timeout / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(tick) => pool.reap_idle().await,
                    _ = stop.changed() => return,
                }
            }
        }));
    }
    if !web.is_empty() {
        tasks.push(tokio::spawn(crate::web::reap(
            web.values().cloned().collect(),
            shutdown_rx.clone(),
        )));
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(PlatformError::io(format!("binding {addr}")))?;
    let local = listener
        .local_addr()
        .map_err(PlatformError::io("reading the bound address"))?;
    let door = Arc::new(FrontDoor {
        pools: pools.clone(),
        wakes,
        store,
        credentials: opts.credentials.clone(),
        web: web.clone(),
    });
    let server = tokio::spawn(crate::web::serve(listener, door));

    let mut banner = format!("scf-local: listening on http://{local}\n");
    let mut names: Vec<&String> = pools.keys().collect();
    names.sort();
    for name in names {
        let c = &pools[name].config;
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
            c.code_dir.display()
        ));
    }
    let mut web_names: Vec<&String> = web.keys().collect();
    web_names.sort();
    for name in &web_names {
        let w = &web[*name];
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
    if !web_names.is_empty() {
        banner.push_str(&format!(
            "scf-local: web instances: {}\n",
            crate::web::net_mode().describe()
        ));
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
    let _ = std::io::stderr().write_all(banner.as_bytes());

    wait_for_signal().await;
    let _ = std::io::stderr()
        .write_all(b"scf-local: shutting down; queued events stay in the data directory\n");
    server.abort();
    let _ = shutdown_tx.send(true);
    for pool in pools.values() {
        pool.kill_all();
    }
    for pool in web.values() {
        pool.kill_all();
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
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
