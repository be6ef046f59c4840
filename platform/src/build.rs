//! Rust functions run from their crate.
//!
//! [`build_crate`] is the one place the platform runs cargo: `scf-local invoke` and `serve` build the library
//! the native host loads (or a custom runtime's `bootstrap`) through [`prepare`], `scf-local package` builds
//! what it ships, and a development loop that rebuilds on change calls the same function.
//!
//! - What to build comes from `cargo metadata` (the package whose manifest is the crate's `Cargo.toml`, its
//!   `cdylib` library target and the library's name, or its binary `bootstrap`), never from a guess.
//! - cargo runs with `--message-format json`: its status lines ("Compiling …", "Finished …") and every
//!   diagnostic, rendered as cargo renders it, go to stderr as they come; the first error is kept, bounded,
//!   for the 443 that a function whose crate does not build answers ([`BuildError::to_function_error`]).
//! - It blocks until cargo is done: call it from tokio's blocking pool (as [`prepare`] does) or from a
//!   thread of its own, never on the event loop.

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use scf_protocol::{ErrorKind, FunctionError, HandlerName};

use crate::config::{FunctionConfig, RuntimeKind};

/// The target cargo-zigbuild links against glibc 2.17 with: SCF's execution environment (CentOS 7).
pub const GLIBC_2_17_TARGET: &str = "x86_64-unknown-linux-gnu.2.17";

/// The longest line of cargo's output read at once; the rest of a longer line is dropped.
const MAX_LINE: u64 = 1 << 20;
/// The most of cargo's first error that is kept for the 443.
const MAX_ERROR: usize = 16 * 1024;

/// cargo's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// `dev` (cargo's default): what `scf-local invoke` and `serve` build unless told otherwise.
    #[default]
    Debug,
    /// `--release`: what `scf-local package` builds unless told otherwise.
    Release,
}

impl Profile {
    /// `debug` or `release`, as cargo names the output folder.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// What the instance runs from the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// The `cdylib` library, which the native host loads (`lib<name>.so`, `name` the `[lib] name`).
    Library,
    /// The binary named `bootstrap`: a custom runtime that speaks the runtime API itself.
    Bootstrap,
}

/// One build of one crate.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The crate's directory (it holds the `Cargo.toml`).
    pub crate_dir: PathBuf,
    /// What to build.
    pub artifact: Artifact,
    /// cargo's profile.
    pub profile: Profile,
    /// Link against glibc 2.17 with `cargo zigbuild` ([`GLIBC_2_17_TARGET`]) instead of this machine's glibc.
    pub glibc_2_17: bool,
}

/// A built artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The package's name.
    pub package: String,
    /// The file cargo wrote.
    pub path: PathBuf,
    /// The name it has in a code directory: `lib<name>.so`, or `bootstrap`.
    pub file_name: String,
    /// cargo's target directory.
    pub target_dir: PathBuf,
}

/// Why a crate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// cargo could not be run at all.
    #[error(
        "cannot run `{program}` ({source}): a Rust function's crate is built with cargo (https://rustup.rs); \
         or build the library yourself and run the folder that holds it"
    )]
    Cargo {
        /// The command.
        program: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// The crate does not make what the function needs (no `cdylib`, no `bootstrap`, another library name).
    #[error("{0}")]
    Crate(String),
    /// cargo failed.
    #[error("{summary}")]
    Failed {
        /// One line: which crate, and the first line of cargo's first error.
        summary: String,
        /// cargo's first error, as rendered (bounded).
        first_error: String,
    },
}

impl BuildError {
    /// The 443 a function whose crate does not build answers, on every invocation until it builds.
    pub fn to_function_error(&self) -> FunctionError {
        let trace = match self {
            BuildError::Failed { first_error, .. } => first_error.clone(),
            _ => String::new(),
        };
        FunctionError::new(ErrorKind::InitError, self.to_string(), trace)
    }
}

/// The parts of `cargo metadata` a build needs.
#[derive(Debug, serde::Deserialize)]
struct Metadata {
    packages: Vec<MetaPackage>,
    target_directory: PathBuf,
}

#[derive(Debug, serde::Deserialize)]
struct MetaPackage {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<MetaTarget>,
}

#[derive(Debug, serde::Deserialize)]
struct MetaTarget {
    name: String,
    kind: Vec<String>,
}

/// One line of cargo's `--message-format json` output (the fields read here).
#[derive(Debug, serde::Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<MetaTarget>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Debug, serde::Deserialize)]
struct Diagnostic {
    level: String,
    #[serde(default)]
    rendered: Option<String>,
}

/// Builds `req`'s artifact with cargo, its progress on stderr. Blocks until cargo is done (see the module's
/// documentation).
pub fn build_crate(req: &BuildRequest) -> Result<Built, BuildError> {
    let manifest = req.crate_dir.join("Cargo.toml");
    let meta = metadata(&manifest)?;
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let Some(package) = meta.packages.iter().find(|p| p.manifest_path == manifest) else {
        return Err(BuildError::Crate(format!(
            "{} is a workspace's manifest, not a function's crate: run the crate's own folder",
            manifest.display()
        )));
    };
    let target = match req.artifact {
        Artifact::Library => package
            .targets
            .iter()
            .find(|t| t.kind.iter().any(|k| k == "cdylib")),
        Artifact::Bootstrap => package
            .targets
            .iter()
            .find(|t| t.name == "bootstrap" && t.kind.iter().any(|k| k == "bin")),
    };
    let Some(target) = target else {
        return Err(BuildError::Crate(match req.artifact {
            Artifact::Library => format!(
                "the crate {} has no cdylib library: a native function is a library the shim loads; add \
                 `[lib] name = \"index\"` (for the handler index.main_handler) and `crate-type = [\"cdylib\"]` \
                 to {}",
                package.name,
                manifest.display()
            ),
            Artifact::Bootstrap => format!(
                "the crate {} has no binary named bootstrap: a custom runtime built from a crate is its \
                 `[[bin]] name = \"bootstrap\"` ({})",
                package.name,
                manifest.display()
            ),
        }));
    };

    let mut cmd = Command::new("cargo");
    if req.glibc_2_17 {
        cmd.args(["zigbuild", "--target", GLIBC_2_17_TARGET]);
    } else {
        cmd.arg("build");
    }
    cmd.arg("--manifest-path")
        .arg(&manifest)
        .args(["--message-format", "json"]);
    match req.artifact {
        Artifact::Library => cmd.arg("--lib"),
        Artifact::Bootstrap => cmd.args(["--bin", "bootstrap"]),
    };
    if req.profile == Profile::Release {
        cmd.arg("--release");
    }
    let program = if req.glibc_2_17 {
        "cargo zigbuild"
    } else {
        "cargo build"
    };
    say(&format!(
        "building {} ({}{}) with {program} in {}",
        package.name,
        req.profile.name(),
        if req.glibc_2_17 { ", glibc 2.17" } else { "" },
        req.crate_dir.display()
    ));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BuildError::Cargo {
            program: program.to_owned(),
            source,
        })?;
    // cargo's own errors (a manifest it cannot read, a dependency it cannot fetch) are on its stderr, the
    // compiler's in the JSON on its stdout: both are read as they come.
    let stderr = child.stderr.take().map(|e| {
        std::thread::spawn(move || {
            let mut first = FirstError::default();
            for_each_line(e, |line| {
                echo(line);
                first.stderr_line(line);
            });
            first.finish()
        })
    });
    let mut first_error: Option<String> = None;
    let mut path = None;
    if let Some(out) = child.stdout.take() {
        for_each_line(out, |line| {
            let Ok(msg) = serde_json::from_str::<Message>(line) else {
                echo(line);
                return;
            };
            match msg.reason.as_str() {
                "compiler-message" => {
                    let Some(d) = msg.message else { return };
                    let Some(rendered) = d.rendered else { return };
                    echo(rendered.trim_end());
                    if d.level == "error" && first_error.is_none() {
                        first_error = Some(bounded(rendered.trim_end()));
                    }
                }
                "compiler-artifact"
                    if msg.manifest_path.as_deref() == Some(&manifest)
                        && msg.target.as_ref().is_some_and(|t| t.name == target.name) =>
                {
                    path = match req.artifact {
                        Artifact::Bootstrap => msg.executable,
                        Artifact::Library => msg
                            .filenames
                            .into_iter()
                            .find(|f| f.extension().is_some_and(|e| e == "so")),
                    };
                }
                _ => {}
            }
        });
    }
    let status = child.wait().map_err(|source| BuildError::Cargo {
        program: program.to_owned(),
        source,
    })?;
    let stderr_error = stderr.and_then(|t| t.join().ok()).flatten();
    if !status.success() {
        let first = first_error
            .or(stderr_error)
            .unwrap_or_else(|| format!("{program} exited with {status}"));
        return Err(BuildError::Failed {
            summary: format!(
                "the crate {} does not build: {}",
                package.name,
                first.lines().next().unwrap_or_default()
            ),
            first_error: first,
        });
    }
    let Some(path) = path else {
        return Err(BuildError::Crate(format!(
            "{program} built {} but named no {} file",
            package.name,
            match req.artifact {
                Artifact::Library => "library",
                Artifact::Bootstrap => "bootstrap",
            }
        )));
    };
    let file_name = match req.artifact {
        Artifact::Bootstrap => "bootstrap".to_owned(),
        Artifact::Library => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    say(&format!("built {}", path.display()));
    Ok(Built {
        package: package.name.clone(),
        path,
        file_name,
        target_dir: meta.target_directory,
    })
}

/// `cargo metadata` of the crate (its own package only: quick, and nothing is fetched).
fn metadata(manifest: &Path) -> Result<Metadata, BuildError> {
    let out = Command::new("cargo")
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| BuildError::Cargo {
            program: "cargo metadata".to_owned(),
            source,
        })?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let mut first = FirstError::default();
        for line in text.lines() {
            first.stderr_line(line);
        }
        let first = first
            .finish()
            .unwrap_or_else(|| format!("cargo metadata exited with {}", out.status));
        return Err(BuildError::Failed {
            summary: format!(
                "the crate at {} does not build: {}",
                manifest.display(),
                first.lines().next().unwrap_or_default()
            ),
            first_error: first,
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        BuildError::Crate(format!(
            "cargo metadata for {} printed what it should not ({e})",
            manifest.display()
        ))
    })
}

/// cargo's own first error on its stderr: from its first `error…` line to the end (bounded), which holds
/// the causes it lists under it.
#[derive(Debug, Default)]
struct FirstError {
    text: Option<String>,
}

impl FirstError {
    fn stderr_line(&mut self, line: &str) {
        match &mut self.text {
            None if line.starts_with("error") => self.text = Some(line.to_owned()),
            None => {}
            Some(t) if t.len() + line.len() < MAX_ERROR => {
                t.push('\n');
                t.push_str(line);
            }
            Some(_) => {}
        }
    }

    fn finish(self) -> Option<String> {
        self.text.map(|t| t.trim_end().to_owned())
    }
}

fn bounded(s: &str) -> String {
    if s.len() <= MAX_ERROR {
        return s.to_owned();
    }
    let mut end = MAX_ERROR;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Calls `f` on each line of `r` (without its end), each read bounded by [`MAX_LINE`].
fn for_each_line(r: impl Read, mut f: impl FnMut(&str)) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut r).take(MAX_LINE).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.last() != Some(&b'\n') && buf.len() as u64 == MAX_LINE {
            // Drop the rest of an overlong line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match (&mut r).take(MAX_LINE).read_until(b'\n', &mut rest) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
        }
        let line = String::from_utf8_lossy(&buf);
        f(line.trim_end_matches(['\n', '\r']));
    }
}

fn echo(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
}

fn say(line: &str) {
    echo(&format!("scf-local: {line}"));
}

/// Readies the code of a Rust function ([`FunctionConfig::rust_crate`]) for its instances: builds the crate
/// (on the blocking pool) and points the function's code directory at a folder holding what the instance
/// runs: the library, named as the handler names it, or the `bootstrap` of a custom runtime. When the crate
/// does not build, the function keeps the error ([`FunctionConfig::code_error`]) and every start of one of its
/// instances fails with it (443), as a function that cannot load does. Other functions are left as they are.
pub async fn prepare(function: &mut FunctionConfig, profile: Profile) {
    let Some(crate_dir) = function.rust_crate.clone() else {
        return;
    };
    let req = BuildRequest {
        crate_dir,
        artifact: if function.runtime == RuntimeKind::Custom {
            Artifact::Bootstrap
        } else {
            Artifact::Library
        },
        profile,
        glibc_2_17: false,
    };
    let handler = function.handler.clone();
    let staged = tokio::task::spawn_blocking(move || {
        let built = build_crate(&req)?;
        let at = place(&built, req.artifact, &handler)?;
        stage(
            &built,
            &at,
            &built
                .target_dir
                .join("scf-local")
                .join(&built.package)
                .join(req.profile.name()),
        )
    })
    .await;
    match staged {
        Ok(Ok(dir)) => {
            function.code_dir = dir;
            function.code_error = None;
        }
        Ok(Err(e)) => function.code_error = Some(e.to_function_error()),
        Err(e) => function.code_error = Some(FunctionError::internal(e.to_string())),
    }
}

/// Where the artifact goes in a code directory, relative to it: the library where the handler's file names it
/// (`dir/index.main` → `dir/libindex.so`), the bootstrap at the top. A library the handler does not name is an
/// error that says which name to use.
pub fn place(built: &Built, artifact: Artifact, handler: &str) -> Result<PathBuf, BuildError> {
    if artifact == Artifact::Bootstrap {
        return Ok(PathBuf::from("bootstrap"));
    }
    let name = HandlerName::parse(handler).map_err(|e| BuildError::Crate(e.message))?;
    let (dir, base) = match name.file.rsplit_once('/') {
        Some((d, b)) => (Some(d), b),
        None => (None, name.file.as_str()),
    };
    let wanted = format!("lib{base}.so");
    if built.file_name != wanted {
        let lib = built
            .file_name
            .strip_prefix("lib")
            .and_then(|n| n.strip_suffix(".so"))
            .unwrap_or(&built.file_name);
        return Err(BuildError::Crate(format!(
            "the handler {handler} loads {wanted}, but the crate {} builds {} (`[lib] name = \"{lib}\"`): name \
             the handler {lib}.{}, or the library {base}",
            built.package, built.file_name, name.method
        )));
    }
    Ok(match dir {
        Some(d) => Path::new(d).join(wanted),
        None => PathBuf::from(wanted),
    })
}

/// Copies the artifact to `<dir>/<at>` (a fresh file, renamed into place: an instance still running the old
/// one keeps it) and returns `dir`.
fn stage(built: &Built, at: &Path, dir: &Path) -> Result<PathBuf, BuildError> {
    let io =
        |what: &str, e: std::io::Error| BuildError::Crate(format!("{what} {}: {e}", dir.display()));
    let dest = dir.join(at);
    let parent = dest.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|e| io("making", e))?;
    let tmp = parent.join(format!(".{}.tmp", built.file_name));
    std::fs::copy(&built.path, &tmp).map_err(|e| io("copying the artifact into", e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| io("placing the artifact in", e))?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(file: &str) -> Built {
        Built {
            package: "hello".into(),
            path: PathBuf::from("/t/debug").join(file),
            file_name: file.into(),
            target_dir: PathBuf::from("/t"),
        }
    }

    #[test]
    fn the_handler_places_the_library() {
        assert_eq!(
            place(
                &built("libindex.so"),
                Artifact::Library,
                "index.main_handler"
            )
            .ok(),
            Some(PathBuf::from("libindex.so"))
        );
        assert_eq!(
            place(&built("libindex.so"), Artifact::Library, "fns/index.main").ok(),
            Some(PathBuf::from("fns/libindex.so"))
        );
        let e = place(
            &built("libhello.so"),
            Artifact::Library,
            "index.main_handler",
        )
        .expect_err("another name");
        assert!(
            e.to_string()
                .contains("name the handler hello.main_handler"),
            "{e}"
        );
        assert_eq!(
            place(&built("bootstrap"), Artifact::Bootstrap, "anything").ok(),
            Some(PathBuf::from("bootstrap"))
        );
    }

    #[test]
    fn first_error_of_cargos_stderr() {
        let mut f = FirstError::default();
        for line in [
            "    Updating crates.io index",
            "error: failed to parse manifest at `/x/Cargo.toml`",
            "",
            "Caused by:",
            "  missing field `name`",
            "",
        ] {
            f.stderr_line(line);
        }
        assert_eq!(
            f.finish().as_deref(),
            Some(
                "error: failed to parse manifest at `/x/Cargo.toml`\n\nCaused by:\n  missing field `name`"
            )
        );
    }

    #[test]
    fn lines_are_bounded() {
        let long = "x".repeat(MAX_LINE as usize * 2 + 10);
        let input = format!("a\n{long}\nb\n");
        let mut got = Vec::new();
        for_each_line(input.as_bytes(), |l| got.push(l.len()));
        assert_eq!(got, [1, MAX_LINE as usize, 1]);
        assert_eq!(bounded(&"é".repeat(MAX_ERROR)).chars().last(), Some('…'));
    }
}
