//! A function's build, run with `--watch` (`serve` and `invoke`) before its instances start and again on
//! each change.
//!
//! - A function whose directory holds a `Cargo.toml` is a Rust crate: `cargo build` builds it, and the
//!   artifacts of that package are copied into the code directory, where an SCF package has them: its
//!   `cdylib` (`lib<name>.so`, for a native handler) and its binaries (a custom runtime's `bootstrap`, a web
//!   function's server). A copy is written beside the file and renamed over it, so running instances keep
//!   the library they mapped; a file whose content did not change is not touched.
//! - `inputs.src.hook` (Tencent's Serverless Framework: a build command run before the code is packaged) runs
//!   with `sh -c` in the function's directory. It wins over a `Cargo.toml`.
//!
//! The build's output is passed on line by line as it comes (cargo's `Compiling …` lines are its progress).
//! A failed build returns the last lines of its output, cargo's errors among them.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::config::{FunctionConfig, RuntimeKind};

/// Lines of a failed build's output kept for its report.
const KEPT_LINES: usize = 60;

/// A function's build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Build {
    /// `cargo build` of the crate whose manifest this is; its artifacts go to `code_dir`.
    Cargo {
        /// The crate's `Cargo.toml`.
        manifest: PathBuf,
        /// Where the artifacts are copied.
        code_dir: PathBuf,
        /// Copy the `cdylib` (a native handler) or the binaries (anything else).
        library: bool,
    },
    /// `inputs.src.hook`, run with `sh -c` in `dir`.
    Hook {
        /// The command.
        command: String,
        /// Where it runs.
        dir: PathBuf,
    },
}

/// What a successful build left in the code directory.
#[derive(Debug, Default)]
pub struct Built {
    /// The files it wrote there (the watcher ignores them: they are its own).
    pub written: Vec<PathBuf>,
}

impl Build {
    /// The build of the function defined in `dir` (the directory of its `serverless.yml`), if it has one.
    pub fn of(dir: &Path, config: &FunctionConfig) -> Option<Build> {
        if let Some(command) = &config.hook {
            return Some(Build::Hook {
                command: command.clone(),
                dir: dir.to_path_buf(),
            });
        }
        let manifest = dir
            .canonicalize()
            .unwrap_or_else(|_| dir.to_path_buf())
            .join("Cargo.toml");
        manifest.is_file().then(|| Build::Cargo {
            manifest,
            code_dir: config.code_dir.clone(),
            library: matches!(config.runtime, RuntimeKind::Native | RuntimeKind::Auto)
                && config.http.is_none(),
        })
    }

    /// What the build is, for the terminal.
    pub fn describe(&self) -> String {
        match self {
            Build::Cargo { manifest, .. } => {
                format!("cargo build --manifest-path {}", manifest.display())
            }
            Build::Hook { command, .. } => format!("src.hook: {command}"),
        }
    }

    /// Runs the build, passing each line of its output to `line` as it comes. On failure, the last lines of
    /// the output (and how it ended).
    pub async fn run(&self, mut line: impl FnMut(&str)) -> Result<Built, String> {
        let mut cmd = match self {
            Build::Cargo { manifest, .. } => {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let mut cmd = tokio::process::Command::new(cargo);
                cmd.arg("build")
                    .arg("--manifest-path")
                    .arg(manifest)
                    .arg("--message-format=json-render-diagnostics");
                cmd
            }
            Build::Hook { command, dir } => {
                let mut cmd = tokio::process::Command::new("/bin/sh");
                cmd.arg("-c").arg(command).current_dir(dir);
                cmd
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{} could not start: {e}", self.describe()))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("the build's output could not be read".into());
        };
        let cargo = matches!(self, Build::Cargo { .. });
        let mut kept = VecDeque::with_capacity(KEPT_LINES);
        let mut keep = |l: &str, line: &mut dyn FnMut(&str)| {
            line(l);
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(l.to_owned());
        };
        let mut artifacts = Vec::new();
        let (mut out, mut err) = (
            BufReader::new(stdout).lines(),
            BufReader::new(stderr).lines(),
        );
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                l = out.next_line(), if out_open => match l {
                    Ok(Some(l)) if cargo => artifacts.extend(self.artifacts_of(&l)),
                    Ok(Some(l)) => keep(&l, &mut line),
                    _ => out_open = false,
                },
                l = err.next_line(), if err_open => match l {
                    Ok(Some(l)) => keep(&l, &mut line),
                    _ => err_open = false,
                },
            }
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("waiting for the build: {e}"))?;
        if !status.success() {
            let mut report: Vec<String> = kept.into_iter().collect();
            report.push(format!("{} failed ({status})", self.describe()));
            return Err(report.join("\n"));
        }
        let Build::Cargo { code_dir, .. } = self else {
            return Ok(Built::default());
        };
        let code_dir = code_dir.clone();
        tokio::task::spawn_blocking(move || copy_artifacts(&artifacts, &code_dir))
            .await
            .map_err(|e| e.to_string())?
    }

    /// The files a line of cargo's JSON messages names that belong in the code directory: the package's
    /// `cdylib` for a native handler, else its binaries.
    fn artifacts_of(&self, line: &str) -> Vec<PathBuf> {
        let Build::Cargo {
            manifest, library, ..
        } = self
        else {
            return Vec::new();
        };
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            return Vec::new();
        };
        if msg["reason"] != "compiler-artifact"
            || msg["manifest_path"].as_str().map(Path::new) != Some(manifest.as_path())
        {
            return Vec::new();
        }
        if *library {
            let files = msg["filenames"].as_array().cloned().unwrap_or_default();
            files
                .iter()
                .filter_map(|f| f.as_str())
                .filter(|f| f.ends_with(".so"))
                .map(PathBuf::from)
                .collect()
        } else {
            msg["executable"]
                .as_str()
                .map(PathBuf::from)
                .into_iter()
                .collect()
        }
    }
}

/// Copies each artifact into `code_dir` under its own name, unless the copy there is the same already.
fn copy_artifacts(artifacts: &[PathBuf], code_dir: &Path) -> Result<Built, String> {
    let mut built = Built::default();
    for from in artifacts {
        let Some(name) = from.file_name() else {
            continue;
        };
        let to = code_dir.join(name);
        let new = std::fs::read(from).map_err(|e| format!("reading {}: {e}", from.display()))?;
        if std::fs::read(&to).is_ok_and(|old| old == new) {
            built.written.push(to);
            continue;
        }
        let partial = code_dir.join(format!(".{}.scf-local-new", name.to_string_lossy()));
        std::fs::copy(from, &partial)
            .and_then(|_| std::fs::rename(&partial, &to))
            .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
        built.written.push(partial);
        built.written.push(to);
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_artifacts_of_the_package_only() {
        let b = Build::Cargo {
            manifest: PathBuf::from("/src/fn/Cargo.toml"),
            code_dir: PathBuf::from("/src/fn"),
            library: true,
        };
        let ours = r#"{"reason":"compiler-artifact","manifest_path":"/src/fn/Cargo.toml","filenames":["/t/debug/libindex.so","/t/debug/libindex.rlib"],"executable":null}"#;
        let dep = r#"{"reason":"compiler-artifact","manifest_path":"/src/dep/Cargo.toml","filenames":["/t/debug/libdep.so"],"executable":null}"#;
        assert_eq!(
            b.artifacts_of(ours),
            [PathBuf::from("/t/debug/libindex.so")]
        );
        assert!(b.artifacts_of(dep).is_empty());
        assert!(b.artifacts_of("not json").is_empty());
        let bin = Build::Cargo {
            manifest: PathBuf::from("/src/fn/Cargo.toml"),
            code_dir: PathBuf::from("/src/fn"),
            library: false,
        };
        let exe = r#"{"reason":"compiler-artifact","manifest_path":"/src/fn/Cargo.toml","filenames":["/t/debug/bootstrap"],"executable":"/t/debug/bootstrap"}"#;
        assert_eq!(bin.artifacts_of(exe), [PathBuf::from("/t/debug/bootstrap")]);
    }

    #[test]
    fn a_hook_runs_and_its_failure_is_reported() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir();
        let ok = Build::Hook {
            command: "echo building; echo done >&2".into(),
            dir: dir.clone(),
        };
        let mut lines = Vec::new();
        rt.block_on(ok.run(|l| lines.push(l.to_owned())))
            .expect("the hook succeeds");
        lines.sort();
        assert_eq!(lines, ["building", "done"]);
        let bad = Build::Hook {
            command: "echo 'error: nope'; exit 3".into(),
            dir,
        };
        let e = rt.block_on(bad.run(|_| {})).expect_err("the hook fails");
        assert!(
            e.contains("error: nope") && e.contains("exit status: 3"),
            "{e}"
        );
    }
}
