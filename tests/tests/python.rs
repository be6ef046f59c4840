//! Python functions through the real `scf-local invoke`, `scf-shim` and a real interpreter.
//! Paired by name with `native.rs` and `node.rs`.
//!
//! The interpreter must have the Python SDK installed: `make -C sdk-python build` creates `.venv/` at the
//! repository's root with it; `SCF_PYTHON` overrides the choice. `SCF_PYTHON` is on the short list of the
//! platform's variables an instance inherits (`docs/reliability.md`), so setting it here is how the shim
//! finds that interpreter.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};

use scf_tests::{
    MANY_LINES_EVENT, Run, TempDir, check_log_shape, check_many_lines, invoke_with_env, root,
};
use serde_json::{Value, json};

/// The interpreter with `scf_sdk` installed.
fn python() -> String {
    scf_tests::python_sdk()
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// `scf-local invoke <dir> --runtime python3 --handler <handler> <more…>` with the SDK's interpreter.
fn py_in(dir: &Path, handler: &str, more: &[&str]) -> Run {
    py_with(dir, handler, more, &python())
}

fn py_with(dir: &Path, handler: &str, more: &[&str], interpreter: &str) -> Run {
    let mut args = vec!["--runtime", "python3", "--handler", handler];
    args.extend_from_slice(more);
    invoke_with_env(
        dir,
        &args,
        &[
            ("SCF_PYTHON", interpreter),
            ("PYTHONDONTWRITEBYTECODE", "1"),
        ],
    )
}

/// `scf-local serve` on the function in `dir`, with `data` and the SDK's interpreter.
fn serve(data: &TempDir, dir: &Path) -> scf_tests::Served {
    scf_tests::Served::start_with_env(data.path(), &[dir], &[], &[("SCF_PYTHON", &python())])
}

fn errors(handler: &str, more: &[&str]) -> Run {
    py_in(&example("python-errors"), handler, more)
}

#[test]
fn hello_example_greets_and_logs_in_order() {
    let run = py_in(
        &example("python-hello"),
        "index.main_handler",
        &["--event", r#"{"name":"SCF"}"#],
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
fn success_with_a_unicode_nested_event() {
    let event = json!({"name": "世界 😀", "nested": {"list": [1, 2.5, null, true, "\u{1}\n\"<&>"], "empty": {}},
                       "neg": -0.5e-7});
    let run = errors("index.echo", &["--event", &event.to_string()]);
    let body = run.expect_ok();
    assert_eq!(body["event"], event);
    // json.dumps default separators, non-ASCII kept.
    assert!(run.stdout.starts_with(r#"{"event": {"#), "{}", run.stdout);
    assert!(run.stdout.contains("世界 😀"), "{}", run.stdout);
    assert!(check_log_shape(&run).is_empty());
    let run = errors(
        "index.echo",
        &["--event", r#"{"big": 123456789012345678901234567890}"#],
    );
    assert!(
        run.stdout
            .starts_with(r#"{"event": {"big": 123456789012345678901234567890}"#),
        "big integers stay exact: {}",
        run.stdout
    );
}

#[test]
fn results_follow_json_dumps_rules() {
    let run = errors("index.returns_decimal_and_tuple", &[]);
    run.expect_ok();
    assert_eq!(
        run.stdout.trim_end(),
        r#"{"price": 19.90, "pair": [1, "二"], "big": 1180591620717411303424, "f": 0.1}"#
    );
    let run = errors("index.returns_string", &[]);
    assert_eq!(run.expect_ok(), "Hello World");
    assert_eq!(
        run.stdout.trim_end(),
        r#""Hello World""#,
        "a str is encoded once"
    );
    let run = errors("index.returns_none", &[]);
    assert_eq!(run.stdout.trim_end(), "null");
}

#[test]
fn an_uncaught_exception_is_430_with_the_python_traceback() {
    let run = errors("index.raises", &[]);
    let body = run.expect_error("UnhandledError", 430);
    assert_eq!(body["errorMessage"], "user code exception caught");
    let trace = body["stackTrace"].as_str().unwrap();
    assert!(
        trace.starts_with("Traceback (most recent call last):\n  File \""),
        "{trace}"
    );
    assert!(trace.contains("index.py\", line "), "{trace}");
    assert!(
        trace.contains(", in raises\n    raise Exception(\"err msg\")\n"),
        "{trace}"
    );
    assert!(trace.ends_with("Exception: err msg"), "{trace}");
    assert!(
        !trace.contains("scf_sdk"),
        "frames of the runtime are stripped: {trace}"
    );
    assert_eq!(check_log_shape(&run), ["about to fail"]);
}

#[test]
fn sys_exit_in_the_handler_is_a_classified_430() {
    let run = errors("index.exits", &[]);
    let body = run.expect_error("UnhandledError", 430);
    let trace = body["stackTrace"].as_str().unwrap();
    assert!(
        trace.contains("sys.exit(3)") && trace.ends_with("SystemExit: 3"),
        "{trace}"
    );
}

#[test]
fn values_with_no_json_form_are_marshal_errors_430() {
    for (handler, detail) in [
        (
            "index.returns_set",
            "Object of type set is not JSON serializable",
        ),
        (
            "index.returns_datetime",
            "Object of type datetime is not JSON serializable",
        ),
        (
            "index.returns_nan",
            "Out of range float values are not JSON compliant: nan",
        ),
        ("index.returns_cycle", "Circular reference detected"),
    ] {
        let run = errors(handler, &[]);
        let body = run.expect_error("MarshalError", 430);
        assert_eq!(
            body["errorMessage"],
            format!("Unable to marshal response: {detail}"),
            "{handler}"
        );
    }
}

#[test]
fn async_handlers_and_awaitables_are_awaited() {
    let run = errors("index.async_handler", &["--event", r#"{"k":[1]}"#]);
    assert_eq!(run.expect_ok(), json!({"async": true, "event": {"k": [1]}}));
    let run = errors("index.returns_awaitable", &[]);
    assert_eq!(run.expect_ok(), "awaited");
    let run = errors("index.async_raises", &[]);
    let body = run.expect_error("UnhandledError", 430);
    let trace = body["stackTrace"].as_str().unwrap();
    assert!(
        trace.contains(", in async_raises\n") && trace.ends_with("ValueError: async failure"),
        "{trace}"
    );
    assert!(
        !trace.contains("asyncio"),
        "the event loop's frames are stripped: {trace}"
    );
}

#[test]
fn a_missing_handler_is_437() {
    let run = errors("index.no_such_handler", &[]);
    let body = run.expect_error("HandlerNotFound", 437);
    assert_eq!(
        body["errorMessage"],
        "'module' object has no attribute 'no_such_handler'"
    );
}

#[test]
fn a_handler_that_is_not_callable_is_443() {
    let run = errors("index.not_callable", &[]);
    let body = run.expect_error("HandlerNotCallable", 443);
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not callable"),
        "{body}"
    );
}

#[test]
fn a_missing_dependency_is_443_module_not_found() {
    let run = errors("missing_dep.main_handler", &[]);
    let body = run.expect_error("ModuleNotFound", 443);
    assert_eq!(
        body["errorMessage"],
        "global name 'requests_not_installed' is not defined"
    );
    let trace = body["stackTrace"].as_str().unwrap();
    assert!(
        trace.contains("missing_dep.py\", line 1") && trace.contains("ModuleNotFoundError"),
        "{trace}"
    );
}

#[test]
fn a_missing_handler_file_is_443_module_not_found() {
    let run = errors("nothere.main_handler", &[]);
    let body = run.expect_error("ModuleNotFound", 443);
    assert_eq!(body["errorMessage"], "global name 'nothere' is not defined");
    assert!(
        body["stackTrace"]
            .as_str()
            .unwrap()
            .contains("nothere.py is not in"),
        "{body}"
    );
}

#[test]
fn a_syntax_error_is_443_with_the_traceback() {
    let run = errors("bad_syntax.main_handler", &[]);
    let body = run.expect_error("SyntaxError", 443);
    let msg = body["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("bad_syntax.py\", line 1") && msg.contains("SyntaxError"),
        "{msg}"
    );
    assert_eq!(body["stackTrace"], body["errorMessage"]);
}

#[test]
fn an_exception_during_import_is_443_init_error() {
    let run = errors("import_raises.main_handler", &[]);
    let body = run.expect_error("InitError", 443);
    let msg = body["errorMessage"].as_str().unwrap();
    assert!(
        msg.starts_with("Traceback (most recent call last):"),
        "{msg}"
    );
    assert!(
        msg.ends_with("RuntimeError: cannot start: missing configuration"),
        "{msg}"
    );
}

#[test]
fn malformed_handler_strings_are_443() {
    for handler in ["index", "index..x", "../x.main"] {
        let run = errors(handler, &[]);
        run.expect_error("MalformedHandler", 443);
    }
}

#[test]
fn an_event_that_is_not_json_is_400() {
    let run = errors("index.echo", &["--event", "{not json"]);
    let body = run.expect_error("InvalidEvent", 400);
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Invalid event: not a JSON document"),
        "{body}"
    );
}

#[test]
fn print_stderr_and_logging_reach_the_log_in_order() {
    let run = errors("index.logs", &[]);
    assert_eq!(run.expect_ok(), "logged");
    assert_eq!(
        check_log_shape(&run),
        [
            "line 1 from print",
            "line 2 from stderr",
            "line 3 from logging",
            "line 4 from print"
        ]
    );
}

#[test]
fn os_exit_is_439_and_what_was_printed_is_kept() {
    let run = errors("index.prints_then_exits", &[]);
    run.expect_error("ProcessExit", 439);
    assert!(run.stderr.contains("last words"), "{}", run.stderr);
}

#[test]
fn a_segfault_is_439() {
    let run = errors("index.segfaults", &[]);
    run.expect_error("ProcessExit", 439);
}

#[test]
fn an_infinite_loop_is_433() {
    let run = errors("index.spins", &["--timeout", "1"]);
    let body = run.expect_error("Timeout", 433);
    assert_eq!(
        body["errorMessage"],
        "Invoking task timed out after 1 seconds"
    );
}

#[test]
fn a_result_over_6_mb_is_407() {
    let run = errors("index.too_large", &[]);
    run.expect_error("ResponseTooLarge", 407);
}

#[test]
fn handler_forms_and_vendored_dependencies() {
    assert_eq!(
        errors("dir/sub/handler.main", &[]).expect_ok(),
        "dir/sub/handler.main"
    );
    assert_eq!(
        errors("pkg.module.main", &[]).expect_ok(),
        "pkg.module.main"
    );
    assert_eq!(
        errors("index.vendored", &[]).expect_ok(),
        "hello from a vendored package"
    );
    let body = errors("index.cwd", &[]).expect_ok();
    let dir = example("python-errors").canonicalize().unwrap();
    let cwd = PathBuf::from(body["cwd"].as_str().unwrap())
        .canonicalize()
        .unwrap();
    assert_eq!(cwd, dir, "the code root is the working directory");
    let path0 = PathBuf::from(body["path0"].as_str().unwrap())
        .canonicalize()
        .unwrap();
    assert_eq!(path0, dir, "the code root is first on sys.path");
}

#[test]
fn an_interpreter_without_the_sdk_fails_with_a_classified_443() {
    // A wrapper that starts the same interpreter with `-S` (no site-packages) and without the runtime
    // layout's bundled copy (`_SCF_SDK_PATH`), so no scf_sdk.
    let dir = TempDir::new("py-nosdk");
    let wrapper = dir.path().join("python-without-sdk");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nunset _SCF_SDK_PATH\nexec '{}' -S \"$@\"\n",
            python()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = py_with(
        &example("python-hello"),
        "index.main_handler",
        &[],
        wrapper.to_str().unwrap(),
    );
    let body = run.expect_error("InitError", 443);
    let msg = body["errorMessage"].as_str().unwrap();
    assert!(msg.contains("cannot import scf_sdk._core"), "{msg}");

    let run = py_with(
        &example("python-hello"),
        "index.main_handler",
        &[],
        "/nonexistent/python3",
    );
    let body = run.expect_error("InitError", 443);
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/python3"),
        "{body}"
    );
}

#[test]
fn with_no_runtime_named_index_py_selects_python() {
    let run = invoke_with_env(
        &example("python-hello"),
        &[
            "--handler",
            "index.main_handler",
            "--event",
            r#"{"name":"auto"}"#,
        ],
        &[("SCF_PYTHON", python().as_str())],
    );
    assert_eq!(run.expect_ok()["message"], "Hello, auto!");
}

#[test]
fn sys_exit_is_classified_and_the_warm_instance_lives_on() {
    let dir = TempDir::new("sysexit");
    std::fs::write(
        dir.path().join("index.py"),
        "import os, sys\nCOUNT = {'n': 0}\n\ndef main(event, context):\n    COUNT['n'] += 1\n    if event.get('exit'):\n        sys.exit(3)\n    return {'n': COUNT['n'], 'pid': os.getpid()}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("serverless.yml"),
        "inputs:\n  name: sysexit\n  handler: index.main\n  runtime: Python3.9\n",
    )
    .unwrap();
    let data = TempDir::new("data");
    let p = serve(&data, dir.path());
    let first = p.invoke("sysexit", &json!({}));
    let first: Value = serde_json::from_str(first["Result"]["RetMsg"].as_str().unwrap()).unwrap();
    let failed = p.invoke("sysexit", &json!({"exit": true}));
    let err: Value = serde_json::from_str(failed["Result"]["ErrMsg"].as_str().unwrap()).unwrap();
    assert_eq!(
        (err["errorType"].as_str(), err["statusCode"].as_u64()),
        (Some("UnhandledError"), Some(430))
    );
    assert!(
        err["stackTrace"].as_str().unwrap().contains("SystemExit"),
        "{err}"
    );
    let after = p.invoke("sysexit", &json!({}));
    let after: Value = serde_json::from_str(after["Result"]["RetMsg"].as_str().unwrap()).unwrap();
    assert_eq!(
        after["pid"], first["pid"],
        "the same instance served after sys.exit()"
    );
    assert_eq!(after["n"], 3, "its globals survived");
}

#[test]
fn every_line_printed_before_the_result_is_in_its_log() {
    let dir = root().join("tests/conformance/handlers/python");
    let run = py_in(
        &dir,
        "conformance.logs_many_lines",
        &["--event", MANY_LINES_EVENT, "--timeout", "60"],
    );
    check_many_lines(&run);
}

/// A handler that hangs an object with a finalizer on its event. The object holds the FIFO `event.go` open
/// (made by the first call); the finalizer waits (up to 20 s) for it to become readable, which it does once
/// the test, having the result, writes a byte into it, and prints whether it did.
const FREED: &str = r#"import os, select


class Probe:
    def __init__(self, go):
        if not os.path.exists(go):
            os.mkfifo(go)
        # Read and write: the open does not wait for a writer, and the test's write finds a reader.
        self.fd = os.open(go, os.O_RDWR | os.O_NONBLOCK)

    def __del__(self):
        readable, _, _ = select.select([self.fd], [], [], 20)
        os.close(self.fd)
        print("freed; result sent first:", bool(readable))


def main_handler(event, context):
    event["probe"] = Probe(event["go"])
    return len(event["pad"])
"#;

#[test]
fn a_large_events_objects_are_freed_after_its_result_is_sent() {
    let f = scf_tests::function_dir("freed", "Python3.9", "index.py", FREED, "  timeout: 30\n");
    let (data, files) = (TempDir::new("data"), TempDir::new("freed-files"));
    let p = serve(&data, f.path());
    let go = files.path().join("go");
    // 100 kB of event text: its objects are let go of once its result is out, not on the caller's wait
    // (freed first, the finalizer would wait out its 20 s for a byte written only after the result came).
    let large = p.invoke("freed", &json!({"pad": "x".repeat(100_000), "go": go}));
    assert_eq!(large["Result"]["RetMsg"], "100000", "{large}");
    // The byte stays in the FIFO while the test holds it open (read and write, so the open does not wait):
    // every finalizer from now on finds it readable.
    let mut signal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&go)
        .unwrap();
    std::io::Write::write_all(&mut signal, b"x").unwrap();
    // The next invocation runs once the last one's objects are freed; the finalizer's line is not lost (it is
    // in this log, or the platform's output if it came while the instance was idle).
    let small = p.invoke("freed", &json!({"pad": "x", "go": go}));
    assert_eq!(small["Result"]["RetMsg"], "1", "{small}");
    let logs = format!("{}{}", large["Result"]["Log"], small["Result"]["Log"]);
    assert!(
        !logs.contains("result sent first: False"),
        "the large event was freed before its result was sent: {logs}"
    );
    scf_tests::wait_for(30, "the large event's finalizer line", || {
        let all = format!("{logs}{}", p.stdout());
        (all.matches("result sent first: True").count() == 2).then_some(())
    });
}
