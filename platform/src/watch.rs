//! Reload on save: `scf-local serve --watch` and `scf-local invoke --watch`.
//!
//! Every directory under a function's directory (the one holding its `serverless.yml`) and its code
//! directory is watched (inotify, one watch per directory, at most [`MAX_DIRS`]), except `node_modules`,
//! `target`, `.git`, `__pycache__`, the platform's data directory, editors' temporary files, and the files
//! the function's own build writes. Changes are gathered until [`DEBOUNCE`] passes without another, then:
//!
//! 1. the function is built again (its project's `src.hook`, `config::run_build_hooks`; then a Rust crate with cargo,
//!    [`crate::build::prepare`]), its output shown as it comes; a failed build keeps the old instances and
//!    shows the build's errors;
//! 2. its `serverless.yml` is read again (a configuration that does not load keeps the old one, and says why);
//! 3. `serve`: the pool takes the new configuration (`Pool::reload` in `pool.rs`): idle instances are
//!    retired at once, busy ones finish their request first, and the next call cold-starts the new code.
//!    Settings the platform holds for the function rather than its instances (its name, namespace, kind, and
//!    `inputs.local` / retry settings; for web and image-style functions also timeout and memory size) apply
//!    when `scf-local` starts again, and the reload line names them;
//!    `invoke`: the invocation runs again on a fresh instance.
//!
//! Changes made while a `src.hook` runs (and until its output settles) are the hook's own and do not
//! trigger another reload; a cargo build writes under cargo's target directory (where the artifact is
//! staged too), which is not watched.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{Notify, watch};

use crate::PlatformError;
use crate::activity::{Event, Events, Reload};
use crate::build::Profile;
use crate::config::{FunctionConfig, Overrides};
use crate::functions::{Function, Functions};
use crate::instance::Platform;
use crate::invoke::Invoked;
use crate::terminal::{self, Style};

/// Quiet time after the last change before a reload starts.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// Directories watched at most (each is one inotify watch).
pub const MAX_DIRS: usize = 4096;
/// Changed paths kept until the next reload (more only say "something changed").
const MAX_PENDING: usize = 4096;
/// Paths a reload line names.
const NAMED: usize = 3;
/// Directories whose changes never reload a function.
pub const IGNORED_DIRS: &[&str] = &["node_modules", "target", ".git", "__pycache__"];

/// Whether a file or directory name is never watched: the ignored directories, and editors' temporary files
/// (`.x.swp`, `x~`, `.#x`, vim's `4913` probe), and the build's partial copies.
fn ignored_name(name: &str) -> bool {
    IGNORED_DIRS.contains(&name)
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with('~')
        || name.starts_with(".#")
        || name == "4913"
        || name.ends_with(".scf-local-new")
}

/// How a function is defined, to read it again.
#[derive(Debug, Clone)]
pub struct Definition {
    /// The directory holding its `serverless.yml` (canonical).
    pub dir: PathBuf,
    /// The command line's settings.
    pub overrides: Overrides,
    /// `--debug`: its port (or the debugger's default) and `--debug-wait`.
    pub debug: Option<(Option<u16>, bool)>,
    /// The profile a Rust function's crate is built with.
    pub profile: Profile,
}

impl Definition {
    /// Reads the definition (off the event loop: it reads files).
    pub async fn load(&self) -> Result<FunctionConfig, PlatformError> {
        let d = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut config = FunctionConfig::load(&d.dir, &d.overrides)?;
            if let Some((port, wait)) = d.debug {
                crate::debug::Debug::apply(&mut config, port, wait)?;
            }
            Ok(config)
        })
        .await
        .map_err(|e| PlatformError::Config(e.to_string()))?
    }

    /// Reads the definition and builds a Rust function's crate ([`crate::build::prepare`]: a crate that
    /// does not build leaves [`FunctionConfig::code_error`] set).
    pub async fn ready(&self) -> Result<FunctionConfig, PlatformError> {
        let mut config = self.load().await?;
        crate::build::prepare(&mut config, self.profile).await;
        Ok(config)
    }

    /// Reads the definition, runs its project's `src.hook` (`config::run_build_hooks`, its output shown as
    /// it comes) and builds a Rust function's crate; returns the configuration and whether a hook ran.
    pub async fn prepare(&self) -> Result<(FunctionConfig, bool), PlatformError> {
        let dir = self.dir.clone();
        let hooked = tokio::task::spawn_blocking(move || {
            let hook = crate::config::Project::load(&dir, &Overrides::default())?.hook;
            if hook.is_some() {
                crate::config::run_build_hooks(&dir)?;
            }
            Ok::<_, PlatformError>(hook.is_some())
        })
        .await
        .map_err(|e| PlatformError::Config(e.to_string()))??;
        let mut config = self.ready().await?;
        watching(&mut config);
        Ok((config, hooked))
    }
}

/// Readies a watched function's configuration: Python writes no bytecode cache, whose check (the source's
/// mtime in seconds and its size) would miss an edit saved within the second of the last with the same size.
pub fn watching(config: &mut FunctionConfig) {
    config
        .env
        .entry("PYTHONDONTWRITEBYTECODE".to_owned())
        .or_insert_with(|| "1".to_owned());
}

#[derive(Default)]
struct Pending {
    paths: Vec<PathBuf>,
    overflow: bool,
}

/// The watched directories and the changes seen in them.
struct Tree {
    watcher: Mutex<notify::RecommendedWatcher>,
    pending: Arc<Mutex<Pending>>,
    wake: Arc<Notify>,
    watched: Mutex<HashSet<PathBuf>>,
    /// Never watched (the data directory).
    skip: Vec<PathBuf>,
    full: std::sync::atomic::AtomicBool,
}

impl Tree {
    fn new(skip: Vec<PathBuf>) -> Result<Arc<Tree>, PlatformError> {
        let pending = Arc::new(Mutex::new(Pending::default()));
        let wake = Arc::new(Notify::new());
        let (p, w) = (pending.clone(), wake.clone());
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            if matches!(ev.kind, EventKind::Access(_)) {
                return;
            }
            let paths: Vec<PathBuf> = ev
                .paths
                .into_iter()
                .filter(|p| {
                    !p.components()
                        .any(|c| c.as_os_str().to_str().is_some_and(ignored_name))
                })
                .collect();
            if paths.is_empty() {
                return;
            }
            if let Ok(mut pending) = p.lock() {
                for path in paths {
                    if pending.paths.len() < MAX_PENDING {
                        pending.paths.push(path);
                    } else {
                        pending.overflow = true;
                    }
                }
            }
            w.notify_one();
        })
        .map_err(|e| PlatformError::Config(format!("watching files: {e}")))?;
        Ok(Arc::new(Tree {
            watcher: Mutex::new(watcher),
            pending,
            wake,
            watched: Mutex::new(HashSet::new()),
            skip,
            full: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Watches `root` and every directory under it that is not ignored (blocking: it walks the tree).
    fn add(&self, root: &Path) {
        let mut todo = vec![root.to_path_buf()];
        while let Some(dir) = todo.pop() {
            if self.skip.iter().any(|s| dir.starts_with(s)) {
                continue;
            }
            {
                let Ok(mut watched) = self.watched.lock() else {
                    return;
                };
                if watched.contains(&dir) {
                    continue;
                }
                if watched.len() >= MAX_DIRS {
                    if !self.full.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        let _ = writeln!(
                            std::io::stderr(),
                            "scf-local: watching {MAX_DIRS} directories already; changes under {} and further ones are not seen",
                            dir.display()
                        );
                    }
                    return;
                }
                let ok = self
                    .watcher
                    .lock()
                    .map(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).is_ok())
                    .unwrap_or(false);
                if !ok {
                    continue;
                }
                watched.insert(dir.clone());
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir && !name.to_str().is_some_and(ignored_name) {
                    todo.push(entry.path());
                }
            }
        }
    }

    async fn add_async(self: &Arc<Self>, roots: Vec<PathBuf>) {
        let tree = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for r in roots {
                tree.add(&r);
            }
        })
        .await;
    }

    /// Waits for changes, then until [`DEBOUNCE`] passes without another; returns the changed paths (and
    /// whether more changed than were kept). New directories among them are watched from then on.
    async fn changes(self: &Arc<Self>) -> (Vec<PathBuf>, bool) {
        loop {
            self.wake.notified().await;
            self.settle().await;
            let taken = self
                .pending
                .lock()
                .map(|mut p| std::mem::take(&mut *p))
                .unwrap_or_default();
            let mut seen = HashSet::new();
            let paths: Vec<PathBuf> = taken
                .paths
                .into_iter()
                .filter(|p| !self.skip.iter().any(|s| p.starts_with(s)))
                .filter(|p| seen.insert(p.clone()))
                .collect();
            // A path that is gone again was most often an editor's or a tool's temporary file (written, then
            // renamed over the real one): the paths still there name the change, unless none is. (Off the
            // event loop: these are file system calls.)
            let (paths, dirs) = tokio::task::spawn_blocking(move || {
                let (present, gone): (Vec<PathBuf>, Vec<PathBuf>) =
                    paths.into_iter().partition(|p| p.exists());
                let paths = if present.is_empty() { gone } else { present };
                let dirs: Vec<PathBuf> = paths.iter().filter(|p| p.is_dir()).cloned().collect();
                (paths, dirs)
            })
            .await
            .unwrap_or_default();
            if !dirs.is_empty() {
                self.add_async(dirs).await;
            }
            if !paths.is_empty() || taken.overflow {
                return (paths, taken.overflow);
            }
        }
    }

    /// Waits until [`DEBOUNCE`] passes without a change.
    async fn settle(&self) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(DEBOUNCE) => return,
            }
        }
    }

    /// Forgets the changes seen so far (a hook's own), once they settle.
    async fn discard(&self) {
        self.settle().await;
        if let Ok(mut p) = self.pending.lock() {
            *p = Pending::default();
        }
    }
}

/// The paths of `changed` under `roots`, relative to the first root that holds each.
fn relative(changed: &[PathBuf], roots: &[PathBuf]) -> Vec<String> {
    changed
        .iter()
        .filter_map(|p| {
            roots
                .iter()
                .find_map(|r| p.strip_prefix(r).ok())
                .map(|rel| rel.display().to_string())
        })
        .collect()
}

/// One function's reload in `serve`.
struct Watched {
    name: String,
    definition: Definition,
    function: Function,
}

impl Watched {
    fn roots(&self) -> Vec<PathBuf> {
        let code_dir = match &self.function {
            Function::Event(p) => p.current().code_dir.clone(),
            Function::Http(p) => p.current().code_dir.clone(),
        };
        let mut roots = vec![self.definition.dir.clone()];
        // A crate's artifact is staged under cargo's target directory: not watched.
        if self.function.config().rust_crate.is_none()
            && !code_dir.starts_with(&self.definition.dir)
        {
            roots.push(code_dir);
        }
        roots
    }

    async fn reload(
        &self,
        tree: &Arc<Tree>,
        changed: Vec<String>,
        changes: usize,
        events: &Events,
    ) {
        let report = |outcome: &str, retired, draining, detail| {
            let mut shown = changed.clone();
            shown.truncate(NAMED);
            events.emit(|| {
                Event::Reload(Reload {
                    function: self.name.clone(),
                    changed: shown,
                    changes,
                    outcome: outcome.to_owned(),
                    retired,
                    draining,
                    detail,
                })
            });
        };
        let prepared = self.definition.prepare().await;
        let (mut config, hooked) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let outcome = match self.definition.load().await {
                    Ok(_) => "build failed",
                    Err(_) => "config error",
                };
                return report(outcome, 0, 0, Some(e.to_string()));
            }
        };
        if hooked {
            tree.discard().await;
        }
        if let Some(e) = &config.code_error {
            // The crate does not build: the instances that run keep running.
            return report(
                "build failed: the old instances stay",
                0,
                0,
                Some(
                    format!("{}\n{}", e.message, e.stack_trace)
                        .trim_end()
                        .to_owned(),
                ),
            );
        }
        let started_with = self.function.config();
        if config.name != started_with.name {
            return report(
                "config error",
                0,
                0,
                Some(format!(
                    "the function's name changed to {}: restart scf-local to serve it under that name",
                    config.name
                )),
            );
        }
        let mut later = Vec::new();
        if config.namespace != started_with.namespace {
            later.push("namespace");
        }
        if config.serve != started_with.serve {
            later.push("inputs.local, retryNum, msgTTL");
        }
        if config.http != started_with.http {
            later.push("type, image, instanceConcurrencyConfig");
        }
        if started_with.http.is_some() {
            // The proxy reads these from the configuration the function started with.
            if config.timeout != started_with.timeout {
                later.push("timeout");
            }
            if config.memory_mb != started_with.memory_mb {
                later.push("memorySize");
            }
            config.timeout = started_with.timeout;
            config.memory_mb = started_with.memory_mb;
        }
        let detail = (!later.is_empty()).then(|| {
            format!(
                "changed settings that apply when scf-local starts again: {}",
                later.join("; ")
            )
        });
        let (retired, draining) = match &self.function {
            Function::Event(p) => p.reload(config),
            Function::Http(p) => p.reload(config),
        };
        report("reloaded", retired, draining, detail);
        tree.add_async(self.roots()).await;
    }
}

/// `serve --watch`: reloads the functions defined in `definitions` (by name) as their files change, until
/// `stop` turns true. `skip`: directories never watched (the data directory).
pub(crate) async fn serve(
    functions: Arc<Functions>,
    definitions: Vec<(String, Definition)>,
    events: Events,
    skip: Vec<PathBuf>,
    mut stop: watch::Receiver<bool>,
) {
    let tree = match Tree::new(skip) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "scf-local: {e}; --watch is off");
            return;
        }
    };
    let watched: Vec<Watched> = definitions
        .into_iter()
        .filter_map(|(name, definition)| {
            let function = functions.get(&name)?;
            Some(Watched {
                name,
                definition,
                function,
            })
        })
        .collect();
    tree.add_async(watched.iter().flat_map(Watched::roots).collect())
        .await;
    loop {
        let (paths, overflow) = tokio::select! {
            c = tree.changes() => c,
            _ = stop.changed() => return,
        };
        for w in &watched {
            let roots = w.roots();
            let mine: Vec<PathBuf> = paths
                .iter()
                .filter(|p| roots.iter().any(|r| p.starts_with(r)))
                .cloned()
                .collect();
            if mine.is_empty() && !overflow {
                continue;
            }
            let changes = mine.len();
            let changed = relative(&mine, &roots);
            tokio::select! {
                _ = w.reload(&tree, changed, changes, &events) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// `invoke --watch`: runs `event` on a fresh instance of the function `definition` defines, then again each
/// time its files change, until SIGINT or SIGTERM; `ran` shows each run. `skip`: directories never watched.
pub async fn invoke(
    platform: &Platform,
    definition: &Definition,
    event: Bytes,
    mut ran: impl FnMut(&Invoked),
) -> Result<(), PlatformError> {
    let tree = Tree::new(Vec::new())?;
    let err = Style::stderr();
    let signal = crate::serve::wait_for_signal();
    tokio::pin!(signal);
    let mut name = definition
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let mut roots = vec![definition.dir.clone()];
        let prepared = definition.prepare().await;
        match prepared {
            Ok((config, _)) => {
                name = config.name.clone();
                // A crate's artifact is staged under cargo's target directory: not watched.
                if config.rust_crate.is_none() && !config.code_dir.starts_with(&definition.dir) {
                    roots.push(config.code_dir.clone());
                }
                crate::debug::port_free(&config).await;
                let invoked = tokio::select! {
                    i = crate::invoke::invoke_once(platform, &config, event.clone()) => i,
                    _ = &mut signal => return Ok(()),
                };
                ran(&invoked);
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "scf-local: {name}: {e}");
            }
        }
        tree.add_async(roots.clone()).await;
        let _ = writeln!(
            std::io::stderr(),
            "scf-local: watching {} for changes (Ctrl-C stops)",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        );
        let (paths, _) = tokio::select! {
            c = tree.changes() => c,
            _ = &mut signal => return Ok(()),
        };
        let r = Reload {
            function: name.clone(),
            changes: paths.len(),
            changed: relative(&paths, &roots).into_iter().take(NAMED).collect(),
            outcome: "invoking again".into(),
            retired: 0,
            draining: 0,
            detail: None,
        };
        let _ = std::io::stderr().write_all(terminal::reload(&r, err).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_names() {
        for n in [
            "node_modules",
            "target",
            ".git",
            "__pycache__",
            ".index.py.swp",
            "index.py~",
            ".#index.py",
            "4913",
        ] {
            assert!(ignored_name(n), "{n}");
        }
        for n in ["index.py", "src", "serverless.yml", ".venv", "lib"] {
            assert!(!ignored_name(n), "{n}");
        }
    }

    #[test]
    fn changes_are_named_relative_to_their_function() {
        let paths = vec![PathBuf::from("/a/index.py"), PathBuf::from("/b/src/lib.rs")];
        assert_eq!(
            relative(&paths, &[PathBuf::from("/a"), PathBuf::from("/b")]),
            ["index.py", "src/lib.rs"]
        );
    }

    #[test]
    fn a_write_is_seen_once_it_settles_and_ignored_directories_are_not() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("scf-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("node_modules/x")).expect("dirs");
        let dir = dir.canonicalize().expect("canonical");
        rt.block_on(async {
            let tree = Tree::new(Vec::new()).expect("watcher");
            tree.add_async(vec![dir.clone()]).await;
            assert!(
                !tree
                    .watched
                    .lock()
                    .expect("lock")
                    .iter()
                    .any(|d| d.ends_with("node_modules") || d.ends_with("x"))
            );
            std::fs::write(dir.join("node_modules/x/ignored.js"), "1").expect("write");
            std::fs::write(dir.join("index.py"), "x = 1\n").expect("write");
            let (paths, overflow) = tree.changes().await;
            assert!(!overflow);
            assert_eq!(paths, [dir.join("index.py")]);
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
