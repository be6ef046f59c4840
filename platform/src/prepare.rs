//! A function's `inputs.src.hook` (Tencent's Serverless Framework: a build command run before the code is
//! packaged), run with `--watch` (`serve` and `invoke`) before its instances start and again on each change,
//! with `sh -c` in the function's directory. Its output is passed on line by line as it comes; a failed hook
//! returns the last lines of its output. A Rust crate is built by [`crate::build`] (with or without
//! `--watch`), after the hook.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::config::FunctionConfig;

/// Lines of a failed build's output kept for its report.
const KEPT_LINES: usize = 60;

/// A function's build: its `inputs.src.hook`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The command.
    pub command: String,
    /// Where it runs.
    pub dir: PathBuf,
}

impl Build {
    /// The build of the function defined in `dir` (the directory of its `serverless.yml`), if it has one.
    pub fn of(dir: &Path, config: &FunctionConfig) -> Option<Build> {
        config.hook.as_ref().map(|command| Build {
            command: command.clone(),
            dir: dir.to_path_buf(),
        })
    }

    /// What the build is, for the terminal.
    pub fn describe(&self) -> String {
        format!("src.hook: {}", self.command)
    }

    /// Runs the build, passing each line of its output to `line` as it comes. On failure, the last lines of
    /// the output (and how it ended).
    pub async fn run(&self, mut line: impl FnMut(&str)) -> Result<(), String> {
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(&self.command)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{} could not start: {e}", self.describe()))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("the build's output could not be read".into());
        };
        let mut kept = VecDeque::with_capacity(KEPT_LINES);
        let mut keep = |l: &str| {
            line(l);
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(l.to_owned());
        };
        let (mut out, mut err) = (
            BufReader::new(stdout).lines(),
            BufReader::new(stderr).lines(),
        );
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                l = out.next_line(), if out_open => match l {
                    Ok(Some(l)) => keep(&l),
                    _ => out_open = false,
                },
                l = err.next_line(), if err_open => match l {
                    Ok(Some(l)) => keep(&l),
                    _ => err_open = false,
                },
            }
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("waiting for the build: {e}"))?;
        if status.success() {
            return Ok(());
        }
        let mut report: Vec<String> = kept.into_iter().collect();
        report.push(format!("{} failed ({status})", self.describe()));
        Err(report.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_runs_and_its_failure_is_reported() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir();
        let ok = Build {
            command: "echo building; echo done >&2".into(),
            dir: dir.clone(),
        };
        let mut lines = Vec::new();
        rt.block_on(ok.run(|l| lines.push(l.to_owned())))
            .expect("the hook succeeds");
        lines.sort();
        assert_eq!(lines, ["building", "done"]);
        let bad = Build {
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
