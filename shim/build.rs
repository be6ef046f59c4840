//! Build script: the commit a binary is built from, for its `--version` line.
//!
//! Sets `SCF_BUILD_COMMIT` for the crate's code (`env!("SCF_BUILD_COMMIT")`): the variable of the same name
//! when the build's environment has it (a build outside git, e.g. from a source archive, names its commit
//! that way), else `git rev-parse --short=12 HEAD` of the checkout, else `unknown`. Cargo reruns it when
//! `HEAD`, the branch it points at, or the packed refs change. Any crate of the workspace can use the same
//! script with `build = "../shim/build.rs"` in its `[package]`.
#![allow(
    clippy::print_stdout,
    reason = "a build script talks to cargo on stdout"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

const VAR: &str = "SCF_BUILD_COMMIT";

fn main() {
    println!("cargo:rerun-if-env-changed={VAR}");
    let commit = std::env::var(VAR)
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env={VAR}={commit}");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// A path inside the git directory (a worktree's own, or the common one for refs), made absolute.
fn git_path(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(git(&["rev-parse", "--git-path", name])?);
    Some(if p.is_absolute() {
        p
    } else {
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").ok()?).join(p)
    })
}

fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watch = vec![git_path("HEAD"), git_path("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(git_path(&branch));
    }
    // Only files that exist: cargo reruns a script every build while a watched file is missing.
    for p in watch.into_iter().flatten().filter(|p| p.is_file()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    Some(commit)
}
