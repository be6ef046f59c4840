//! Native (Rust) functions through the real `scf-local invoke` and `scf-shim`.
//! Paired by name with `python.rs` and `node.rs`.
#![allow(clippy::unwrap_used, reason = "tests")]

use scf_tests::{
    MANY_LINES_EVENT, TempDir, check_log_shape, check_many_lines, invoke, native_code_dir,
};
use serde_json::json;

#[test]
fn success_with_a_unicode_nested_event() {
    let dir = native_code_dir("errors");
    let event = json!({"name": "世界 😀", "nested": {"list": [1, 2.5, null, true, "\u{1}\n\"<&>"], "empty": {}}});
    let run = invoke(
        dir.path(),
        &["--handler", "errors.echo", "--event", &event.to_string()],
    );
    let body = run.expect_ok();
    assert_eq!(body["event"], event);
    let user_lines = check_log_shape(&run);
    assert!(user_lines.is_empty(), "{user_lines:?}");
}

#[test]
fn hello_example_greets_and_logs_in_order() {
    let dir = native_code_dir("index");
    let run = invoke(
        dir.path(),
        &[
            "--handler",
            "index.main_handler",
            "--event",
            r#"{"name":"SCF"}"#,
        ],
    );
    let body = run.expect_ok();
    assert_eq!(body["message"], "Hello, SCF!");
    assert_eq!(check_log_shape(&run), ["greeting SCF"]);
    let log = run.log();
    assert!(
        log[log.len() - 3].ends_with(run.stdout.trim_end()),
        "RetMsg is the body: {log:?}"
    );
}

#[test]
fn a_returned_error_is_handled_430() {
    let dir = native_code_dir("errors");
    let run = invoke(dir.path(), &["--handler", "errors.returned_error"]);
    let v = run.expect_error("HandledError", 430);
    assert_eq!(v["errorMessage"], "user code exception caught");
    assert_eq!(
        v["stackTrace"],
        "alloc::string::String: the order id is missing"
    );
    assert_eq!(
        check_log_shape(&run),
        ["about to refuse"],
        "output printed just before a failure is kept"
    );
}

#[test]
fn a_panic_is_unhandled_430_with_its_message_and_location() {
    let dir = native_code_dir("errors");
    let run = invoke(dir.path(), &["--handler", "errors.panics"]);
    let v = run.expect_error("UnhandledError", 430);
    assert_eq!(v["errorMessage"], "user code exception caught");
    let trace = v["stackTrace"].as_str().unwrap();
    assert!(
        trace.contains("something went badly wrong") && trace.contains("lib.rs:"),
        "{trace}"
    );
    let lines = check_log_shape(&run);
    assert_eq!(lines[0], "about to panic");
    assert!(
        lines.iter().any(|l| l.contains("panicked at")),
        "the panic message reaches the log: {lines:?}"
    );
}

#[test]
fn a_missing_symbol_is_437() {
    let dir = native_code_dir("errors");
    let run = invoke(dir.path(), &["--handler", "errors.no_such_handler"]);
    let v = run.expect_error("HandlerNotFound", 437);
    assert_eq!(
        v["errorMessage"],
        "'module' object has no attribute 'no_such_handler'"
    );
}

#[test]
fn a_missing_library_is_443() {
    let dir = native_code_dir("errors");
    let run = invoke(dir.path(), &["--handler", "nothere.main_handler"]);
    let v = run.expect_error("ModuleNotFound", 443);
    assert_eq!(v["errorMessage"], "global name 'nothere' is not defined");
    assert!(v["stackTrace"].as_str().unwrap().contains("libnothere.so"));
}

#[test]
fn malformed_handler_strings_are_443() {
    let dir = native_code_dir("errors");
    for handler in ["index", "a..b", "../x.y"] {
        let run = invoke(dir.path(), &["--handler", handler]);
        let v = run.expect_error("MalformedHandler", 443);
        assert!(
            v["errorMessage"]
                .as_str()
                .unwrap()
                .starts_with(&format!("Bad handler '{handler}'")),
            "{v}"
        );
    }
}

#[test]
fn an_event_that_is_not_json_is_400() {
    let dir = native_code_dir("errors");
    let run = invoke(
        dir.path(),
        &["--handler", "errors.echo", "--event", "{not json"],
    );
    let v = run.expect_error("InvalidEvent", 400);
    assert_eq!(
        v["errorMessage"],
        "Invalid event: not a JSON document (key must be a string at line 1 column 2)"
    );
}

#[test]
fn a_result_over_6_mb_is_407() {
    let dir = native_code_dir("errors");
    let run = invoke(dir.path(), &["--handler", "errors.too_large"]);
    let v = run.expect_error("ResponseTooLarge", 407);
    assert_eq!(
        v["errorMessage"],
        "The size of response exceeds the upper limit (6MB)"
    );
}

#[test]
fn sleeping_past_the_timeout_is_433() {
    let dir = native_code_dir("errors");
    let run = invoke(
        dir.path(),
        &[
            "--handler",
            "errors.sleeps",
            "--timeout",
            "1",
            "--event",
            r#"{"seconds": 30}"#,
        ],
    );
    let v = run.expect_error("Timeout", 433);
    assert_eq!(v["errorMessage"], "Invoking task timed out after 1 seconds");
}

#[test]
fn exiting_during_an_invocation_is_439() {
    let dir = native_code_dir("errors");
    let run = invoke(dir.path(), &["--handler", "errors.exits"]);
    let v = run.expect_error("ProcessExit", 439);
    assert_eq!(v["errorMessage"], "User process exit when running");
    assert_eq!(v["stackTrace"], "exit status 3");
    assert_eq!(
        check_log_shape(&run),
        ["exiting now"],
        "output printed just before the exit is kept"
    );
}

#[test]
fn using_more_than_the_memory_size_is_434() {
    let dir = native_code_dir("errors");
    let run = invoke(
        dir.path(),
        &[
            "--handler",
            "errors.allocates",
            "--memory",
            "128",
            "--event",
            r#"{"mb": 400}"#,
        ],
    );
    let v = run.expect_error("MemoryLimitExceeded", 434);
    assert_eq!(v["errorMessage"], "Task memory exceeded 128 MB");
}

#[test]
fn serverless_yml_configures_the_function_and_flags_win() {
    let dir = native_code_dir("errors");
    std::fs::write(
        dir.path().join("serverless.yml"),
        "component: scf\ninputs:\n  name: from-yml\n  handler: errors.echo\n  runtime: native\n  memorySize: 512\n  timeout: 9\n  environment:\n    variables:\n      COLOR: blue\n",
    )
    .unwrap();
    let body = invoke(dir.path(), &[]).expect_ok();
    assert_eq!(body["context"]["function_name"], "from-yml");
    assert_eq!(body["context"]["memory_limit_in_mb"], 512);
    assert!(
        body["context"]["environ"]
            .as_str()
            .unwrap()
            .contains("COLOR=blue")
    );
    let body = invoke(dir.path(), &["--timeout", "2"]).expect_ok();
    assert_eq!(body["context"]["time_limit_in_ms"], 2000);
}

#[test]
fn bad_configuration_is_a_usage_error() {
    let dir = native_code_dir("errors");
    let run = invoke(
        dir.path(),
        &["--handler", "errors.echo", "--env", "SCF_SECRET=1"],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("the prefix SCF_ is reserved"),
        "{}",
        run.stderr
    );
    let run = invoke(dir.path(), &["--handler", "errors.echo", "--memory", "100"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("memory size 100 MB"), "{}", run.stderr);
}

/// Tencent's documented custom runtime: a shell `bootstrap` that speaks the runtime API with curl.
const CURL_BOOTSTRAP: &str = r#"#!/bin/bash
set -euo pipefail
API="http://$SCF_RUNTIME_API:$SCF_RUNTIME_API_PORT"
echo "custom runtime starting, handler $_HANDLER"
curl -sS -d " " -X POST "$API/runtime/init/ready"
while true; do
  HEADERS="$(mktemp)"
  EVENT_DATA=$(curl -sS -D "$HEADERS" -X GET "$API/runtime/invocation/next")
  REQUEST_ID=$(grep -i '^request_id:' "$HEADERS" | cut -d' ' -f2 | tr -d '\r')
  echo "got request $REQUEST_ID"
  if [ "$EVENT_DATA" = '{"fail":true}' ]; then
    curl -sS -X POST "$API/runtime/invocation/error" -d "something broke"
  else
    curl -sS -X POST "$API/runtime/invocation/response" -d "{\"echo\":$EVENT_DATA,\"id\":\"$REQUEST_ID\"}"
  fi
done
"#;

fn custom_runtime_dir() -> TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("custom");
    let p = dir.path().join("bootstrap");
    std::fs::write(&p, CURL_BOOTSTRAP).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn a_curl_bootstrap_runs_as_a_custom_runtime() {
    let dir = custom_runtime_dir();
    let run = invoke(
        dir.path(),
        &[
            "--runtime",
            "CustomRuntime",
            "--handler",
            "index.main",
            "--event",
            r#"{"a":1}"#,
        ],
    );
    let body = run.expect_ok();
    assert_eq!(body["echo"], json!({"a": 1}));
    let rid = run.log()[0]
        .trim_start_matches("START RequestId:")
        .to_owned();
    assert_eq!(
        body["id"],
        rid.as_str(),
        "the bootstrap read request_id from the headers"
    );
    let lines = check_log_shape(&run);
    assert_eq!(
        lines,
        [
            "custom runtime starting, handler index.main".to_owned(),
            format!("got request {rid}")
        ]
    );
}

#[test]
fn a_custom_runtime_error_that_is_not_the_canonical_shape_is_wrapped() {
    let dir = custom_runtime_dir();
    let run = invoke(
        dir.path(),
        &[
            "--runtime",
            "custom",
            "--handler",
            "index.main",
            "--event",
            r#"{"fail":true}"#,
        ],
    );
    let v = run.expect_error("UnhandledError", 430);
    assert_eq!(v["stackTrace"], "something broke");
}

#[test]
fn a_custom_runtime_without_an_executable_bootstrap_is_443() {
    let dir = TempDir::new("nobootstrap");
    std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\n").unwrap();
    let run = invoke(
        dir.path(),
        &["--runtime", "custom", "--handler", "index.main"],
    );
    let v = run.expect_error("InitError", 443);
    assert_eq!(v["errorMessage"], "bootstrap is not an executable file");
}

#[test]
fn an_instance_that_never_becomes_ready_is_450() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("slowinit");
    let p = dir.path().join("bootstrap");
    std::fs::write(&p, "#!/bin/sh\necho initialising forever\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = invoke(
        dir.path(),
        &[
            "--runtime",
            "custom",
            "--handler",
            "index.main",
            "--init-timeout",
            "1",
        ],
    );
    let v = run.expect_error("InitTimeout", 450);
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .contains("within 1 seconds"),
        "{v}"
    );
    assert!(
        run.stderr.contains("initialising forever"),
        "init output is in the log: {}",
        run.stderr
    );
}

#[test]
fn a_rust_bootstrap_built_with_scf_sdk_run_is_a_custom_runtime() {
    let dir = TempDir::new("rust-bootstrap");
    std::fs::copy(scf_tests::bin("bootstrap"), dir.path().join("bootstrap")).unwrap();
    let run = invoke(
        dir.path(),
        &[
            "--runtime",
            "custom",
            "--handler",
            "index.add",
            "--event",
            r#"{"a":2,"b":3}"#,
        ],
    );
    let body = run.expect_ok();
    assert_eq!(body["sum"], 5);
    let run = invoke(
        dir.path(),
        &[
            "--runtime",
            "custom",
            "--handler",
            "index.add",
            "--event",
            &format!(r#"{{"a":{},"b":1}}"#, i64::MAX),
        ],
    );
    let v = run.expect_error("HandledError", 430);
    assert!(
        v["stackTrace"]
            .as_str()
            .unwrap()
            .ends_with("the sum overflows"),
        "{v}"
    );
    let log = run.log();
    assert!(
        log[1].contains("InitRuntime: ") && log[1].contains("InitFunction: "),
        "{log:?}"
    );
}

#[test]
fn every_line_printed_before_the_result_is_in_its_log() {
    let dir = native_code_dir("conformance");
    let run = invoke(
        dir.path(),
        &[
            "--handler",
            "conformance.logs_many_lines",
            "--event",
            MANY_LINES_EVENT,
            "--timeout",
            "60",
        ],
    );
    check_many_lines(&run);
}
