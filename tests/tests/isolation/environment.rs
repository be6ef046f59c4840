//! What an instance's environment holds: the documented set and nothing of the platform's (its secrets, its
//! settings); the SecretKey in neither the platform's environment nor its command line.

use super::*;

/// A custom runtime whose `bootstrap` logs the names of its own whole environment (`/proc/$$/environ`: what
/// the platform started it with), then answers one invocation.
const ENV_BOOTSTRAP: &str = r#"#!/bin/bash
set -euo pipefail
tr '\0' '\n' < /proc/$$/environ | cut -d= -f1 | sed 's/^/ENV /'
API="http://$SCF_RUNTIME_API:$SCF_RUNTIME_API_PORT"
curl -sS -d " " -X POST "$API/runtime/init/ready"
while true; do
  curl -sS -o /dev/null -X GET "$API/runtime/invocation/next"
  curl -sS -X POST "$API/runtime/invocation/response" -d '"listed"'
done
"#;

#[test]
fn an_instances_whole_environment_is_the_documented_set_and_nothing_of_the_platforms() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("env-custom");
    let p = dir.path().join("bootstrap");
    std::fs::write(&p, ENV_BOOTSTRAP).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = invoke_with_secrets(
        dir.path(),
        &[
            "--runtime",
            "CustomRuntime",
            "--handler",
            "index.main",
            "--env",
            "MY_SETTING=mine",
        ],
    );
    assert_eq!(run.expect_ok(), "listed");
    let names: BTreeSet<&str> = run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .filter_map(|l| l.strip_prefix("ENV "))
        .collect();
    // docs/reliability.md: the documented SCF variables, the runtime API's, the function's own, and the
    // allowlisted variables the platform has (here PATH, HOME, LANG, TZ, SCF_PYTHON).
    let expected: BTreeSet<&str> = [
        "_HANDLER",
        "SCF_RUNTIME",
        "SCF_RUNTIME_API",
        "SCF_RUNTIME_API_PORT",
        "USER_CODE_ROOT",
        "SCF_FUNCTIONNAME",
        "SCF_NAMESPACE",
        "SCF_FUNCTIONVERSION",
        "TENCENTCLOUD_REGION",
        "TENCENTCLOUD_APPID",
        "TENCENTCLOUD_UIN",
        "TENCENTCLOUD_RUNENV",
        "TMPDIR",
        "SCF_FUNCTION_ENV_KEYS",
        "MY_SETTING",
        "PATH",
        "HOME",
        "LANG",
        "TZ",
        "SCF_PYTHON",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, expected, "{run:#?}");
}

#[test]
fn a_python_function_finds_no_platform_secret_in_its_environment() {
    // What the interpreter was started with (`/proc/self/environ`) and what it holds now (`os.environ`).
    let code = r#"import os

def main_handler(event, context):
    with open("/proc/self/environ", "rb") as f:
        started = f.read().decode("utf-8", "replace")
    return {"environ": dict(os.environ), "started": started}
"#;
    let f = function_dir("env-python", "Python3.9", "index.py", code, "");
    let run = invoke_with_secrets(f.path(), &[]);
    let body = run.expect_ok();
    let text = body.to_string();
    for (k, v) in SECRETS {
        assert!(!text.contains(k), "{k} reached the function: {text}");
        assert!(
            !text.contains(v),
            "the value of {k} reached the function: {text}"
        );
    }
    assert_eq!(body["environ"]["SCF_FUNCTIONNAME"], "env-python");
}

/// Whether `/proc/<pid>/<file>` mentions `text`.
fn proc_mentions(pid: u32, file: &str, text: &str) -> bool {
    let raw = std::fs::read(format!("/proc/{pid}/{file}")).unwrap();
    raw.windows(text.len()).any(|w| w == text.as_bytes())
}

/// A `serve` given its SecretKey in `TENCENTCLOUD_SECRETKEY` or `--secret-key-file` holds it (unsigned
/// calls are refused) but shows it in neither its `/proc/PID/environ` nor its `/proc/PID/cmdline`, which
/// processes of the same user (its functions, without PID namespaces) can read.
#[test]
fn the_secret_key_is_in_neither_the_platforms_environ_nor_its_cmdline() {
    let key = "isolation-test-secret-key-value";
    let f = native_function_dir();
    let check = |p: &scf_tests::Served| {
        let r = p.invoke("hello", &serde_json::json!({}));
        assert_eq!(
            r["Error"]["Code"], "AuthFailure.InvalidAuthorization",
            "the key was received: unsigned calls are refused: {r}"
        );
        for file in ["environ", "cmdline"] {
            assert!(
                !proc_mentions(p.pid(), file, key),
                "the SecretKey is in /proc/{}/{file}",
                p.pid()
            );
        }
    };
    let data = TempDir::new("secret-env");
    let p = scf_tests::Served::start_with_env(
        data.path(),
        &[f.path()],
        &[],
        &[
            ("TENCENTCLOUD_SECRETID", "AKIDisolationtest"),
            ("TENCENTCLOUD_SECRETKEY", key),
        ],
    );
    check(&p);
    drop(p);

    let files = TempDir::new("secret-file");
    let key_file = files.path().join("key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let key_file = key_file.display().to_string();
    let p = scf_tests::Served::start(
        files.path(),
        &[f.path()],
        &[
            "--secret-id",
            "AKIDisolationtest",
            "--secret-key-file",
            &key_file,
        ],
    );
    check(&p);
    assert!(!p.stderr().contains("warning"), "{}", p.stderr());
    // The banner says which isolation is in force (its lines may follow the `listening` one).
    scf_tests::wait_for(60, "the isolation line of the banner", || {
        p.stderr()
            .contains("scf-local: isolation: environment built from nothing: on; ")
            .then_some(())
    });
}

/// A native function `hello` (the `errors` example library).
fn native_function_dir() -> TempDir {
    scf_tests::native_function("hello", "  handler: errors.echo\n")
}
