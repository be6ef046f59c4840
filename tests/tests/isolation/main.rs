//! Isolation, tried the way a hostile function would (`docs/reliability.md`): what an instance can see of
//! the platform and of other functions.
//!
//! Each test runs the real `scf-local` with real instances (`make build` first).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use scf_tests::{Run, TempDir, bin, function_dir, python_sdk};

/// Platform variables no instance may see: credentials and anything not on the documented allowlist.
const SECRETS: &[(&str, &str)] = &[
    ("TENCENTCLOUD_SECRETKEY", "platform-secret-key"),
    ("AWS_SECRET_ACCESS_KEY", "platform-aws-secret"),
    ("HTTPS_PROXY", "http://user:password@proxy.invalid:3128"),
    ("SOME_PLATFORM_SETTING", "the-platform-only"),
];

/// `scf-local invoke <dir> <args…>` with exactly `SECRETS` and an allowlisted `PATH`, `HOME`, `LANG`, `TZ`
/// (plus `SCF_PYTHON`) as the platform's environment.
fn invoke_with_secrets(dir: &std::path::Path, args: &[&str]) -> Run {
    invoke_isolated(dir, args, &[])
}

/// [`invoke_with_secrets`] with `settings` added to the platform's environment (`SCF_LOCAL_NAMESPACES=off`…).
fn invoke_isolated(dir: &std::path::Path, args: &[&str], settings: &[(&str, &str)]) -> Run {
    let out = Command::new(bin("scf-local"))
        .arg("invoke")
        .arg(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .env("TZ", "UTC")
        .env("SCF_PYTHON", python_sdk())
        .envs(SECRETS.iter().copied())
        .envs(settings.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from(out)
}

/// The function's result in an `Invoke` answer that succeeded.
fn ok_body(r: &serde_json::Value) -> serde_json::Value {
    assert_eq!(r["Result"]["InvokeResult"], 0, "{r}");
    serde_json::from_str(r["Result"]["RetMsg"].as_str().unwrap()).unwrap()
}

mod environment;
mod files;
mod namespaces;
mod processes;
