//! Rust functions run from their crate: `scf-local invoke DIR` / `serve DIR` on a directory with a
//! `Cargo.toml` build it with cargo (debug, or `--release`) and run what it builds: the `cdylib` the native
//! host loads, or the binary `bootstrap` of a custom runtime. A crate that does not build is a 443 with
//! cargo's first error.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use scf_tests::{Served, TempDir, check_log_shape, invoke, root};
use serde_json::json;

/// The log of a run that built a crate: from its `START` line on (cargo's lines come first).
fn log_after_build(run: &scf_tests::Run) -> scf_tests::Run {
    let start = run
        .stderr
        .find("START RequestId:")
        .unwrap_or_else(|| panic!("no request log: {run:#?}"));
    scf_tests::Run {
        code: run.code,
        stdout: run.stdout.clone(),
        stderr: run.stderr[start..].to_owned(),
    }
}

/// A crate of its own (no dependencies: it builds in a second) in a fresh directory.
fn small_crate(name: &str, manifest_tail: &str, file: &str, code: &str, yml: &str) -> TempDir {
    let dir = TempDir::new(name);
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n\n{manifest_tail}"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src").join(file), code).unwrap();
    if !yml.is_empty() {
        std::fs::write(dir.path().join("serverless.yml"), yml).unwrap();
    }
    dir
}

/// A library crate whose code does not compile: two errors, of which only the first is the 443's.
fn broken_crate() -> TempDir {
    small_crate(
        "broken-fn",
        "[lib]\nname = \"index\"\ncrate-type = [\"cdylib\"]\n",
        "lib.rs",
        "pub fn first() -> u32 { \"not a number\" }\npub fn second() { let _: bool = 7_u8; }\n",
        "component: scf\ninputs:\n  name: broken\n  handler: index.main_handler\n",
    )
}

#[test]
fn invoke_builds_the_example_crate_and_runs_its_library() {
    let run = invoke(
        &root().join("examples/rust-hello"),
        &["--event", r#"{"name":"crate"}"#],
    );
    let body = run.expect_ok();
    assert_eq!(body["message"], "Hello, crate!", "{run:#?}");
    assert_eq!(body["function"], "rust-hello", "serverless.yml's name");
    assert!(
        run.stderr
            .contains("scf-local: building rust-hello (debug) with cargo build"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("/debug/libindex.so"),
        "the debug library: {}",
        run.stderr
    );
    let lines = check_log_shape(&log_after_build(&run));
    assert_eq!(lines, ["greeting crate"]);
}

#[test]
fn the_errors_example_runs_each_handler_from_its_crate() {
    let dir = root().join("examples/rust-errors");
    let run = invoke(&dir, &["--handler", "errors.returned_error"]);
    run.expect_error("HandledError", 430);
    let run = invoke(&dir, &["--handler", "errors.nope"]);
    run.expect_error("HandlerNotFound", 437);
}

#[test]
fn a_custom_runtime_crate_runs_its_bootstrap_binary() {
    let run = invoke(
        &root().join("examples/rust-bootstrap"),
        &["--event", r#"{"a":2,"b":3}"#],
    );
    assert_eq!(run.expect_ok()["sum"], 5, "{run:#?}");
    assert!(run.stderr.contains("/debug/bootstrap"), "{}", run.stderr);
}

#[test]
fn a_crate_that_does_not_build_is_a_443_with_cargos_first_error() {
    let dir = broken_crate();
    let run = invoke(dir.path(), &[]);
    let body = run.expect_error("InitError", 443);
    let message = body["errorMessage"].as_str().unwrap();
    assert_eq!(
        message, "the crate broken-fn does not build: error[E0308]: mismatched types",
        "{run:#?}"
    );
    let trace = body["stackTrace"].as_str().unwrap();
    assert!(
        trace.contains("src/lib.rs:1:") && trace.contains("expected `u32`"),
        "the first error, rendered: {trace}"
    );
    assert!(
        !trace.contains("src/lib.rs:2:"),
        "only the first error: {trace}"
    );
    // Cargo's own output was on the terminal, as cargo prints it, before the request's log.
    assert!(run.stderr.contains("error[E0308]"), "{}", run.stderr);
    let log = log_after_build(&run);
    assert!(
        log.stderr.contains(&format!(
            "ERROR RequestId:{}",
            body["requestId"].as_str().unwrap()
        )),
        "{}",
        log.stderr
    );
}

#[test]
fn a_handler_naming_another_library_says_which_name_to_use() {
    let run = invoke(
        &root().join("examples/rust-hello"),
        &["--handler", "hello.main_handler"],
    );
    let body = run.expect_error("InitError", 443);
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("loads libhello.so")
            && message.contains("builds libindex.so")
            && message.contains("name the handler index.main_handler"),
        "{message}"
    );
}

/// A custom runtime in plain Rust (std only): one invocation over the runtime API, named by the platform's
/// variables, then it waits for the next.
const TINY_BOOTSTRAP: &str = r#"
use std::io::{Read, Write};

fn call(method: &str, path: &str, body: &str) -> String {
    let host = std::env::var("SCF_RUNTIME_API").unwrap();
    let port = std::env::var("SCF_RUNTIME_API_PORT").unwrap();
    let mut s = std::net::TcpStream::connect(format!("{host}:{port}")).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

fn main() {
    println!("tiny bootstrap, built {}", if cfg!(debug_assertions) { "debug" } else { "release" });
    call("POST", "/runtime/init/ready", " ");
    loop {
        let event = call("GET", "/runtime/invocation/next", "");
        call("POST", "/runtime/invocation/response", &format!("{{\"got\":{event}}}"));
    }
}
"#;

#[test]
fn release_builds_the_crate_with_the_release_profile() {
    let dir = small_crate(
        "tiny-runtime",
        "[[bin]]\nname = \"bootstrap\"\npath = \"src/main.rs\"\n",
        "main.rs",
        TINY_BOOTSTRAP,
        "component: scf\ninputs:\n  name: tiny\n  handler: index.main\n  runtime: CustomRuntime\n",
    );
    let run = invoke(dir.path(), &["--release", "--event", r#"{"n":1}"#]);
    assert_eq!(run.expect_ok(), json!({"got": {"n": 1}}), "{run:#?}");
    assert!(
        run.stderr.contains("(release) with cargo build")
            && run.stderr.contains("/release/bootstrap"),
        "{}",
        run.stderr
    );
    let lines = check_log_shape(&log_after_build(&run));
    assert_eq!(lines, ["tiny bootstrap, built release"]);
    // Without --release: cargo's debug profile.
    let run = invoke(dir.path(), &["--event", r#"{"n":2}"#]);
    assert_eq!(run.expect_ok(), json!({"got": {"n": 2}}), "{run:#?}");
    assert_eq!(
        check_log_shape(&log_after_build(&run)),
        ["tiny bootstrap, built debug"]
    );
}

#[test]
fn serve_builds_each_crate_and_a_broken_one_answers_443_while_the_others_run() {
    let data = TempDir::new("crates-serve");
    let broken = broken_crate();
    let hello = root().join("examples/rust-hello");
    let served = Served::start(data.path(), &[hello.as_path(), broken.path()], &[]);
    let banner = served.stderr();
    assert!(
        banner.contains(
            "scf-local: function broken cannot start: the crate broken-fn does not build"
        ),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("from {}", Path::new(&hello).display())),
        "the banner names the crate: {banner}"
    );
    let ok = served.invoke("rust-hello", &json!({"name": "served"}));
    assert_eq!(ok["Result"]["InvokeResult"], 0, "{ok}");
    let ret: serde_json::Value =
        serde_json::from_str(ok["Result"]["RetMsg"].as_str().unwrap()).unwrap();
    assert_eq!(ret["message"], "Hello, served!", "{ok}");
    for _ in 0..2 {
        let failed = served.invoke("broken", &json!({}));
        assert_eq!(failed["Result"]["InvokeResult"], -1, "{failed}");
        let err: serde_json::Value =
            serde_json::from_str(failed["Result"]["ErrMsg"].as_str().unwrap()).unwrap();
        assert_eq!(
            (err["statusCode"].as_u64(), err["errorType"].as_str()),
            (Some(443), Some("InitError")),
            "{failed}"
        );
    }
}
