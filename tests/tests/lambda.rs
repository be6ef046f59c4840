//! The Lambda Runtime API dialect, both directions, through the real platform: AWS's own runtime clients
//! (`awslambdaric` from PyPI, `aws-lambda-ric` from npm, `lambda_runtime` from crates.io) run as instances of
//! `scf-local`, and our `scf-shim` (native and Python hosts) speaks the Lambda dialect to it.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use scf_tests::{Run, check_log_shape, invoke, invoke_with_env, native_code_dir, python_sdk, root};
use serde_json::json;

/// Runs `command` as a custom runtime speaking the Lambda dialect, with handler `handler`, on `event`.
fn run_lambda_client(dir: &Path, handler: &str, command: &str, event: &str) -> Run {
    invoke(
        dir,
        &[
            "--handler",
            handler,
            "--runtime",
            "custom",
            "--dialect",
            "lambda",
            "--command",
            command,
            "--name",
            "awsfn",
            "--event",
            event,
        ],
    )
}

/// awslambdaric running `handler` (a module of tests/fixtures/aws-python).
fn awslambdaric(handler: &str, event: &str) -> Run {
    let dir = root().join("tests/fixtures/aws-python");
    let command = format!("{} -m awslambdaric {handler}", python_sdk());
    run_lambda_client(&dir, handler, &command, event)
}

#[test]
fn awslambdaric_runs_on_scf_local() {
    let run = awslambdaric("index.handler", r#"{"a":1}"#);
    let body = run.expect_ok();
    assert_eq!(
        body,
        json!({"echo": {"a": 1}, "function": "awsfn", "has_time": true})
    );
    let rid = run.log()[0]
        .trim_start_matches("START RequestId:")
        .to_owned();
    let lines = check_log_shape(&run);
    assert_eq!(
        lines,
        [format!("hello from awslambdaric {rid}")],
        "the client saw our request id"
    );
}

#[test]
fn an_awslambdaric_exception_becomes_an_unhandled_error() {
    let v = awslambdaric("index.handler", r#"{"fail":true}"#).expect_error("UnhandledError", 430);
    assert_eq!(v["errorMessage"], "user code exception caught");
    let trace = v["stackTrace"].as_str().unwrap();
    assert!(trace.starts_with("ValueError: bad value\n"), "{trace}");
    assert!(trace.contains("index.py\", line 7, in handler"), "{trace}");
}

#[test]
fn an_awslambdaric_import_failure_is_a_load_error() {
    let run = awslambdaric("nothere.handler", "{}");
    let v = run.expect_error("InitError", 443);
    assert_eq!(v["errorMessage"], "Runtime.ImportModuleError");
    assert!(
        v["stackTrace"]
            .as_str()
            .unwrap()
            .contains("No module named 'nothere'"),
        "{v}"
    );
}

#[test]
fn scf_shim_speaks_the_lambda_dialect_native() {
    let dir = native_code_dir("errors");
    let body = invoke(
        &dir.0,
        &[
            "--handler",
            "errors.echo",
            "--dialect",
            "lambda",
            "--timeout",
            "900",
            "--event",
            r#"{"x":[1,2]}"#,
        ],
    )
    .expect_ok();
    assert_eq!(body["event"], json!({"x": [1, 2]}));
    // Lambda sends a deadline, not a timeout: what is left of it when the shim reads it. It is the 900 s
    // timeout's, not the default 3 s (however slow the machine is, far less than 897 s pass meanwhile).
    let left = body["context"]["time_limit_in_ms"].as_u64().unwrap();
    assert!(
        left > 3000 && left <= 900_000,
        "the deadline carried the timeout: {left}"
    );
    let v = invoke(
        &dir.0,
        &["--handler", "errors.returned_error", "--dialect", "lambda"],
    )
    .expect_error("HandledError", 430);
    assert_eq!(
        v["stackTrace"],
        "alloc::string::String: the order id is missing"
    );
    let v = invoke(&dir.0, &["--handler", "errors.nope", "--dialect", "lambda"])
        .expect_error("HandlerNotFound", 437);
    assert_eq!(v["errorMessage"], "'module' object has no attribute 'nope'");
}

#[test]
fn scf_shim_speaks_the_lambda_dialect_python() {
    let dir = root().join("examples/python-hello");
    let py = python_sdk();
    let run = invoke_with_env(
        &dir,
        &[
            "--handler",
            "index.main_handler",
            "--runtime",
            "python3",
            "--dialect",
            "lambda",
            "--event",
            r#"{"name":"Lambda"}"#,
        ],
        &[("SCF_PYTHON", py.as_str())],
    );
    let body = run.expect_ok();
    assert!(body.to_string().contains("Lambda"), "{body}");
}

/// A peer runtime client installed by `make peers` (`bench/peers/setup.sh`).
fn peer(path: &str) -> String {
    let p = root().join("bench/peers").join(path);
    assert!(
        p.is_file(),
        "{} is missing: run `make peers` (make test does)",
        p.display()
    );
    p.display().to_string()
}

#[test]
fn aws_lambda_ric_node_runs_on_scf_local() {
    let dir = root().join("bench/functions/node");
    let ric = peer("node/node_modules/aws-lambda-ric/index.mjs");
    let run = run_lambda_client(
        &dir,
        "index.echo",
        &format!("node {ric} index.echo"),
        r#"{"n":[1,"ü"]}"#,
    );
    assert_eq!(run.expect_ok(), json!({"n": [1, "ü"]}));
    let run = run_lambda_client(
        &dir,
        "index.nothere",
        &format!("node {ric} index.nothere"),
        "{}",
    );
    let v = run.expect_error("InitError", 443);
    assert!(
        v["errorMessage"].as_str().unwrap().starts_with("Runtime."),
        "{v}"
    );
}

#[test]
fn lambda_runtime_rust_runs_on_scf_local() {
    let dir = native_code_dir("errors");
    let cmd = format!("{} bench.echo", peer("rust/target/release/aws-rust-bench"));
    let run = run_lambda_client(&dir.0, "bench.echo", &cmd, r#"{"deep":{"x":true}}"#);
    assert_eq!(run.expect_ok(), json!({"deep": {"x": true}}));
    let log = run.log();
    assert!(log[1].contains("Coldstart:"), "{log:?}");
}
