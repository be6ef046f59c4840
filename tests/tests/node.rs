//! Node.js functions through the real `scf-local invoke`, `scf-shim` and a real `node`.
//! Paired by name with `native.rs` and `python.rs`.
//!
//! The Node SDK's add-on must be built: `make -C sdk-node build` writes `sdk-node/index.node`. The shim
//! finds `sdk-node/bootstrap.js` from its own location (`target/debug/../../sdk-node`), and `node` on
//! `PATH` (or `SCF_NODE`).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};

use scf_tests::{
    MANY_LINES_EVENT, Run, Served, TempDir, check_log_shape, check_many_lines, err_body,
    function_dir, invoke_with_env, ok_body, root,
};
use serde_json::json;

fn addon_built() {
    let addon = root().join("sdk-node/index.node");
    assert!(
        addon.is_file(),
        "{} is missing: run `make -C sdk-node build` first",
        addon.display()
    );
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// `scf-local invoke <dir> --runtime nodejs --handler <handler> <more…>`.
fn node_in(dir: &Path, handler: &str, more: &[&str]) -> Run {
    addon_built();
    let mut args = vec!["--runtime", "nodejs", "--handler", handler];
    args.extend_from_slice(more);
    invoke_with_env(dir, &args, &[])
}

/// A code directory with the given files.
fn code(name: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new(name);
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

const ECHO: &str = "exports.echo = async (event, context) => ({ event, context });\n";

/// A console line: `<ISO-8601 ms Z>\t<request id>\t<message>`.
fn console_line(line: &str, request_id: &str) -> String {
    let mut parts = line.splitn(3, '\t');
    let ts = parts.next().unwrap();
    assert!(
        ts.len() == 24
            && ts.ends_with('Z')
            && ts.as_bytes()[10] == b'T'
            && ts.as_bytes()[19] == b'.',
        "ISO-8601 with ms: {line:?}"
    );
    assert_eq!(parts.next(), Some(request_id), "{line:?}");
    parts.next().unwrap().to_owned()
}

fn request_id(run: &Run) -> String {
    run.log()[0]
        .trim_start_matches("START RequestId:")
        .to_owned()
}

#[test]
fn success_with_a_unicode_nested_event() {
    let dir = code("node-echo", &[("index.js", ECHO)]);
    let event = json!({"name": "世界 😀", "nested": {"list": [1, 2.5, null, true, "\u{1}\n\"<&>"], "empty": {}}});
    let run = node_in(dir.path(), "index.echo", &["--event", &event.to_string()]);
    let body = run.expect_ok();
    assert_eq!(body["event"], event);
    assert!(check_log_shape(&run).is_empty());
}

#[test]
fn hello_example_greets_and_logs_in_order() {
    let run = node_in(
        &example("node-hello"),
        "index.main_handler",
        &["--event", r#"{"name":"SCF"}"#],
    );
    let body = run.expect_ok();
    assert_eq!(body["message"], "Hello, SCF!");
    assert_eq!(body["remainingMs"], true, "getRemainingTimeInMillis() > 0");
    let rid = request_id(&run);
    let lines = check_log_shape(&run);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        console_line(&lines[0], &rid),
        format!("Hello from node-hello (request {rid})")
    );
}

#[test]
fn callback_handler_answers_once_the_event_loop_is_empty() {
    let run = node_in(
        &example("node-hello"),
        "index.callback_handler",
        &["--event", r#"{"name":"cb"}"#],
    );
    assert_eq!(
        run.expect_ok(),
        json!({"message": "Hello, cb!", "style": "callback"})
    );
    let rid = request_id(&run);
    let lines = check_log_shape(&run);
    assert_eq!(
        lines
            .iter()
            .map(|l| console_line(l, &rid))
            .collect::<Vec<_>>(),
        ["a timer that ran before the answer was posted"],
        "the timer ran before the answer (callbackWaitsForEmptyEventLoop = true)"
    );
}

#[test]
fn callback_without_waiting_answers_at_once() {
    let dir = code(
        "node-nowait",
        &[(
            "index.js",
            "exports.h = (event, context, callback) => {\n  context.callbackWaitsForEmptyEventLoop = false;\n  \
             setTimeout(() => {}, 20000);\n  callback(null, 'fast');\n};\n",
        )],
    );
    // Waiting for the 20 s timer would meet the 10 s timeout (433), not answer.
    let run = node_in(dir.path(), "index.h", &["--timeout", "10"]);
    assert_eq!(run.expect_ok(), json!("fast"));
}

#[test]
fn nested_path_sync_handler_and_undefined_result() {
    let hello = example("node-hello");
    assert_eq!(
        node_in(
            &hello,
            "index.handlers.greet",
            &["--event", r#"{"name":"n"}"#]
        )
        .expect_ok(),
        json!("Hi n")
    );
    assert_eq!(
        node_in(&hello, "index.sync_handler", &["--event", "[1,2]"]).expect_ok(),
        json!({"length": 5})
    );
    let dir = code(
        "node-undef",
        &[("index.js", "exports.h = async () => {};\n")],
    );
    let run = node_in(dir.path(), "index.h", &[]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout.trim_end(), "null");
}

#[test]
fn esm_example_awaits_at_top_level_during_init() {
    let run = node_in(
        &example("node-esm"),
        "index.main_handler",
        &["--event", r#"{"name":"SCF"}"#],
    );
    assert_eq!(run.expect_ok()["message"], "Hello, SCF!");
    let init = &run.log()[1];
    let ms: f64 = init
        .split("InitFunction: ")
        .nth(1)
        .and_then(|s| s.split("ms").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{init}"));
    assert!(
        ms >= 15.0,
        "the 20 ms top-level await is part of InitFunction: {init}"
    );
    let default = node_in(&example("node-esm"), "index.default_handler", &[]);
    assert_eq!(default.expect_ok(), json!("from the default export"));
}

#[test]
fn module_forms_mjs_cjs_extensionless_and_node_modules() {
    let dir = code(
        "node-forms",
        &[
            ("a.mjs", "export const h = async () => 'mjs';\n"),
            ("b.cjs", "exports.h = async () => 'cjs';\n"),
            ("c", "exports.h = async () => 'extensionless';\n"),
            (
                "node_modules/pkg-handler/package.json",
                r#"{"name":"pkg-handler","main":"main.js"}"#,
            ),
            (
                "node_modules/pkg-handler/main.js",
                "exports.h = async () => 'node_modules';\n",
            ),
            ("esm/package.json", r#"{"type":"module"}"#),
            ("esm/d.js", "export const h = async () => 'esm .js';\n"),
        ],
    );
    for (handler, want) in [
        ("a.h", "mjs"),
        ("b.h", "cjs"),
        ("c.h", "extensionless"),
        ("pkg-handler.h", "node_modules"),
        ("esm/d.h", "esm .js"),
    ] {
        assert_eq!(
            node_in(dir.path(), handler, &[]).expect_ok(),
            json!(want),
            "{handler}"
        );
    }
}

#[test]
fn console_levels_and_raw_stdout_reach_the_log() {
    let dir = code(
        "node-logs",
        &[(
            "index.js",
            "exports.h = async () => {\n  console.log('log %d', 1, {a: [1]});\n  console.info('info');\n  \
             console.warn('warn');\n  console.error(new Error('shown'));\n  console.debug('debug');\n  \
             process.stdout.write('raw\\n');\n  return 1;\n};\n",
        )],
    );
    let run = node_in(dir.path(), "index.h", &[]);
    run.expect_ok();
    let rid = request_id(&run);
    let lines = check_log_shape(&run);
    assert_eq!(console_line(&lines[0], &rid), "log 1 { a: [ 1 ] }");
    assert_eq!(console_line(&lines[1], &rid), "info");
    assert_eq!(console_line(&lines[2], &rid), "warn");
    assert_eq!(console_line(&lines[3], &rid), "Error: shown");
    assert!(
        lines[4].trim_start().starts_with("at "),
        "the stack follows: {lines:?}"
    );
    let debug = lines.iter().position(|l| l.ends_with("\tdebug")).unwrap();
    assert_eq!(lines[debug + 1], "raw", "process.stdout.write passes raw");
}

#[test]
fn a_thrown_error_is_unhandled_430_with_its_stack() {
    let run = node_in(&example("node-errors"), "index.throws", &[]);
    let v = run.expect_error("UnhandledError", 430);
    assert_eq!(v["errorMessage"], "user code exception caught");
    let trace = v["stackTrace"].as_str().unwrap();
    assert!(
        trace.starts_with("TypeError: something went wrong\n    at "),
        "{trace}"
    );
    assert!(trace.contains("node-errors/index.js:"), "{trace}");
    assert!(
        !trace.contains("sdk-node"),
        "the runtime's own frames are trimmed: {trace}"
    );
}

#[test]
fn thrown_non_errors_are_430_with_a_readable_trace() {
    let dir = example("node-errors");
    for (handler, trace) in [
        ("index.throws_string", "Uncaught 'a plain string'"),
        ("index.throws_undefined", "Uncaught undefined"),
    ] {
        let v = node_in(&dir, handler, &[]).expect_error("UnhandledError", 430);
        assert_eq!(v["stackTrace"], trace, "{handler}");
    }
}

#[test]
fn a_returned_error_is_handled_430() {
    let dir = example("node-errors");
    let v = node_in(&dir, "index.callback_error", &[]).expect_error("HandledError", 430);
    assert_eq!(v["errorMessage"], "user code exception caught");
    assert!(
        v["stackTrace"]
            .as_str()
            .unwrap()
            .starts_with("Error: refused on purpose\n"),
        "{v}"
    );
    let v = node_in(&dir, "index.context_fail", &[]).expect_error("HandledError", 430);
    assert_eq!(v["stackTrace"], "bad input");
}

#[test]
fn results_without_a_json_form_are_marshal_errors_430() {
    let dir = example("node-errors");
    let v = node_in(&dir, "index.cycle", &[]).expect_error("MarshalError", 430);
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Unable to marshal response: Converting circular structure to JSON"),
        "{v}"
    );
    let v = node_in(&dir, "index.bigint", &[]).expect_error("MarshalError", 430);
    assert_eq!(
        v["errorMessage"],
        "Unable to marshal response: Do not know how to serialize a BigInt"
    );
}

#[test]
fn a_promise_never_settled_or_a_callback_never_called_is_430_not_a_hang() {
    let dir = example("node-errors");
    let v = node_in(&dir, "index.never_settles", &["--timeout", "20"])
        .expect_error("UnhandledError", 430);
    assert_eq!(v["errorMessage"], "user code exception caught", "{v}");
    assert!(
        v["stackTrace"]
            .as_str()
            .unwrap()
            .contains("promise never settled"),
        "{v}"
    );
    let v = node_in(&dir, "index.callback_never_called", &["--timeout", "20"])
        .expect_error("UnhandledError", 430);
    assert_eq!(v["errorMessage"], "user code exception caught", "{v}");
    assert!(
        v["stackTrace"]
            .as_str()
            .unwrap()
            .contains("never called its callback"),
        "{v}"
    );
}

#[test]
fn a_missing_handler_is_437() {
    let v = node_in(&example("node-errors"), "index.no_such_handler", &[])
        .expect_error("HandlerNotFound", 437);
    assert_eq!(
        v["errorMessage"],
        "'module' object has no attribute 'no_such_handler'"
    );
}

#[test]
fn a_handler_that_is_not_a_function_is_443() {
    let v = node_in(&example("node-errors"), "index.not_a_function", &[])
        .expect_error("HandlerNotCallable", 443);
    assert!(
        v["errorMessage"].as_str().unwrap().contains("not callable"),
        "{v}"
    );
}

#[test]
fn a_missing_module_or_dependency_is_443() {
    let dir = example("node-errors");
    let v = node_in(&dir, "nothere.main_handler", &[]).expect_error("ModuleNotFound", 443);
    assert_eq!(v["errorMessage"], "global name 'nothere' is not defined");
    let v = node_in(&dir, "missing_dep.main_handler", &[]).expect_error("ModuleNotFound", 443);
    assert_eq!(
        v["errorMessage"],
        "global name 'left-pad-not-installed' is not defined"
    );
}

#[test]
fn a_syntax_error_is_443_with_its_location() {
    let v = node_in(&example("node-errors"), "syntax.main_handler", &[])
        .expect_error("SyntaxError", 443);
    assert_eq!(
        v["errorMessage"],
        "SyntaxError: Unexpected token ';' (syntax.js:4)"
    );
    assert!(
        v["stackTrace"]
            .as_str()
            .unwrap()
            .contains("syntax.js:4\n  return 1 +;"),
        "{v}"
    );
    let dir = code(
        "node-esm-syntax",
        &[(
            "index.mjs",
            "export const h = async () => {\n  return 1 +;\n};\n",
        )],
    );
    let v = node_in(dir.path(), "index.h", &[]).expect_error("SyntaxError", 443);
    assert_eq!(
        v["errorMessage"],
        "SyntaxError: Unexpected token ';' (index.mjs:2)"
    );
}

#[test]
fn an_exception_while_loading_is_443_on_every_invocation() {
    let v = node_in(&example("node-errors"), "throws_at_load.main_handler", &[])
        .expect_error("InitError", 443);
    assert_eq!(
        v["errorMessage"],
        "Error: cannot initialise: DATABASE_URL is not set"
    );
    assert!(
        v["stackTrace"]
            .as_str()
            .unwrap()
            .contains("throws_at_load.js:3"),
        "{v}"
    );
}

#[test]
fn malformed_handler_strings_are_443() {
    let dir = example("node-errors");
    for handler in ["index", "a..b", "../x.y"] {
        let v = node_in(&dir, handler, &[]).expect_error("MalformedHandler", 443);
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
    let v = node_in(
        &example("node-errors"),
        "index.throws",
        &["--event", "{not json"],
    )
    .expect_error("InvalidEvent", 400);
    assert_eq!(
        v["errorMessage"],
        "Invalid event: not a JSON document (key must be a string at line 1 column 2)"
    );
}

#[test]
fn a_result_over_6_mb_is_407() {
    let v = node_in(&example("node-errors"), "index.too_large", &[])
        .expect_error("ResponseTooLarge", 407);
    assert_eq!(
        v["errorMessage"],
        "The size of response exceeds the upper limit (6MB)"
    );
}

#[test]
fn a_result_is_measured_in_utf8_bytes_at_the_limit() {
    // A JSON string of `n` characters and its two quotes. '中' is three bytes of UTF-8: a string can be under
    // the 6 MB limit (6,291,456 bytes) in characters and over it in bytes, or under it by one byte. A string
    // over the limit in characters is refused before it is copied; both messages give its size in bytes.
    let dir = code(
        "node-result-limit",
        &[(
            "index.js",
            "exports.wide = async (e) => '中'.repeat(e.n);\nexports.ascii = async (e) => 'x'.repeat(e.n);\n",
        )],
    );
    let run = |handler: &str, n: usize| {
        node_in(
            dir.path(),
            handler,
            &["--event", &format!(r#"{{"n": {n}}}"#)],
        )
    };
    let under = run("index.wide", 2_097_151).expect_ok();
    assert_eq!(under.as_str().map(|s| s.chars().count()), Some(2_097_151));
    let exact = run("index.ascii", 6_291_454).expect_ok();
    assert_eq!(exact.as_str().map(str::len), Some(6_291_454));
    for (handler, n, bytes) in [
        ("index.wide", 2_097_152, 6_291_458),
        ("index.ascii", 6_291_455, 6_291_457),
        ("index.wide", 6_291_455, 3 * 6_291_455 + 2),
    ] {
        let v = run(handler, n).expect_error("ResponseTooLarge", 407);
        assert_eq!(
            v["stackTrace"],
            format!("response of {bytes} bytes; the limit is 6291456 bytes"),
            "{handler} of {n} characters"
        );
    }
}

#[test]
fn sleeping_past_the_timeout_is_433() {
    let v = node_in(
        &example("node-errors"),
        "index.sleeps",
        &["--timeout", "1", "--event", r#"{"seconds": 30}"#],
    )
    .expect_error("Timeout", 433);
    assert_eq!(v["errorMessage"], "Invoking task timed out after 1 seconds");
}

#[test]
fn exiting_during_an_invocation_is_439() {
    let run = node_in(&example("node-errors"), "index.exits", &[]);
    let v = run.expect_error("ProcessExit", 439);
    assert_eq!(v["errorMessage"], "User process exit when running");
    assert_eq!(v["stackTrace"], "exit status 2");
    let rid = request_id(&run);
    let lines = check_log_shape(&run);
    assert_eq!(
        lines
            .iter()
            .map(|l| console_line(l, &rid))
            .collect::<Vec<_>>(),
        ["about to exit"],
        "output printed just before the exit is kept"
    );
}

#[test]
fn using_more_than_the_memory_size_is_434() {
    let v = node_in(
        &example("node-errors"),
        "index.allocates",
        &["--memory", "128", "--event", r#"{"mb": 400}"#],
    )
    .expect_error("MemoryLimitExceeded", 434);
    assert_eq!(v["errorMessage"], "Task memory exceeded 128 MB");
}

#[test]
fn a_crash_after_the_response_keeps_the_result() {
    let run = node_in(&example("node-errors"), "index.crash_after_response", &[]);
    assert_eq!(run.expect_ok(), json!("answered"));
}

#[test]
fn with_no_runtime_named_index_js_selects_node() {
    addon_built();
    let run = scf_tests::invoke(
        &example("node-hello"),
        &[
            "--handler",
            "index.main_handler",
            "--event",
            r#"{"name":"auto"}"#,
        ],
    );
    assert_eq!(run.expect_ok()["message"], "Hello, auto!");
    // The module is the text before the first dot: a nested property path still finds index.js.
    let dir = code(
        "nested",
        &[(
            "index.js",
            "exports.handlers = { main: async () => 'nested' };\n",
        )],
    );
    let run = scf_tests::invoke(dir.path(), &["--handler", "index.handlers.main"]);
    assert_eq!(run.expect_ok(), "nested");
}

#[test]
fn every_line_printed_before_the_result_is_in_its_log() {
    let dir = root().join("tests/conformance/handlers/node");
    let run = node_in(
        &dir,
        "conformance.logs_many_lines",
        &["--event", MANY_LINES_EVENT, "--timeout", "60"],
    );
    check_many_lines(&run);
}

#[test]
fn a_panic_in_the_add_on_s_worker_is_500_not_a_hang() {
    // The handler reaches the add-on the bootstrap loaded (Node caches it by path) and arms its hidden test
    // hook: the worker panics when it next posts an outcome, i.e. this invocation's.
    let addon = root().join("sdk-node/index.node");
    let js = format!(
        "exports.h = async () => {{ require({:?}).__panicOnNextPost(); return 'never posted'; }};\n",
        addon.display().to_string()
    );
    let dir = code("node-panic", &[("index.js", &js)]);
    let run = node_in(dir.path(), "index.h", &[]);
    let v = run.expect_error("InternalError", 500);
    assert_eq!(v["errorMessage"], "InternalError", "{v}");
    assert!(
        v["stackTrace"].as_str().unwrap().contains(
            "the Node.js add-on's worker panicked: a panic asked for by __panicOnNextPost()"
        ),
        "{v}"
    );
}

/// A warm instance waits for its invocations on Node's own event loop (`docs/node.md`); a large event, too big
/// for that wait's buffer, is read by the add-on's worker thread instead. Every kind, in turn, on one instance.
#[test]
fn a_warm_instance_answers_small_large_and_failing_invocations_in_turn() {
    addon_built();
    let f = function_dir(
        "warm-node",
        "Nodejs16.13",
        "index.js",
        "exports.main_handler = async (event) => {\n  if (event.fail) throw new Error('boom');\n  return { n: event.n, pid: process.pid, size: JSON.stringify(event).length };\n};\n",
        "",
    );
    let p = Served::one(f.path());
    let big = "x".repeat(200 * 1024);
    let mut pids = Vec::new();
    for (n, event) in [
        (1, json!({"n": 1})),
        (2, json!({"n": 2})),
        (3, json!({"n": 3, "big": big})),
        (4, json!({"n": 4, "fail": true})),
        (5, json!({"n": 5})),
        (6, json!({"n": 6, "big": big})),
        (7, json!({"n": 7})),
    ] {
        let r = p.invoke("warm-node", &event);
        if n == 4 {
            assert_eq!(err_body(&r)["errorType"], "UnhandledError", "{r}");
            continue;
        }
        let body = ok_body(&r);
        assert_eq!(body["n"], n, "{body}");
        assert_eq!(body["size"], event.to_string().len(), "{body}");
        pids.push(body["pid"].as_u64().unwrap());
    }
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "one warm instance: {pids:?}"
    );
}

/// Large events' text does not pile up: 1 MB events one after another stay within a 128 MB instance (each an
/// object holding one large string, as an API Gateway event with a base64 body is). Made as an external string
/// of its own over the add-on's memory, each event's text was freed only in a full collection, which such
/// events never bring on: the instance was killed for its memory after about 125. The add-on now writes each
/// into the one string it keeps (`sdk-node/src/kept.rs`).
#[test]
fn large_events_one_after_another_stay_within_the_memory_size() {
    addon_built();
    let f = function_dir(
        "big-body-node",
        "Nodejs16.13",
        "index.js",
        "exports.main_handler = async (event) => ({ n: event.n, pid: process.pid, size: event.body.length });\n",
        "  memorySize: 128\n",
    );
    let p = Served::one(f.path());
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let body: String = (0..1024 * 1024)
        .map(|i| char::from(ALPHABET[(i * 7 + i / 64) % 64]))
        .collect();
    let mut pids = Vec::new();
    // Twice the memory size in events: what the text of each left behind would not fit.
    for n in 0..256 {
        let r = p.invoke("big-body-node", &json!({"n": n, "body": body}));
        let v = ok_body(&r);
        assert_eq!(
            (v["n"].as_u64(), v["size"].as_u64()),
            (Some(n), Some(1024 * 1024)),
            "{v}"
        );
        pids.push(v["pid"].as_u64().unwrap());
    }
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "one warm instance took every event: {pids:?}"
    );
}

/// Large events of changing sizes each reach the function whole, in one instance: written into the string the
/// add-on keeps for their form when they fit its room (shorter ones with spaces after them), else into new
/// room, and copied once too many rooms wait for V8 to collect them or when small (`sdk-node/src/kept.rs`);
/// ASCII text, text escaped to ASCII (a `中` in 97) and text sent as UTF-16 (half of it CJK) alike. A unit of
/// an earlier event left in the string would change the length or the hash.
#[test]
fn large_events_of_changing_sizes_each_reach_the_function_whole() {
    addon_built();
    let f = function_dir(
        "sizes-node",
        "Nodejs16.13",
        "index.js",
        "exports.main_handler = async (event) => { let h = 0; for (let i = 0; i < event.body.length; i++) h = (h * 31 + event.body.charCodeAt(i)) >>> 0; return { n: event.n, len: event.body.length, h, pid: process.pid }; };\n",
        "",
    );
    let p = Served::one(f.path());
    let sizes = [
        600_000, 590_000, 620_000, 200_000, 1_200_000, 150_000, 600_000, 540_000, 100_000,
    ];
    let mut pids = Vec::new();
    for (n, &size) in sizes.iter().chain(sizes.iter().rev()).enumerate() {
        let body: Vec<u16> = (0..size)
            .map(|i| match (n % 3, i % 97) {
                (1, _) if i % 2 == 0 => u16::try_from(0x4E00 + (i + n) % 500).unwrap(),
                (2, 0) => 0x4E2D,
                (_, k) => u16::try_from(b'a' as usize + (k + n) % 26).unwrap(),
            })
            .collect();
        let hash = body
            .iter()
            .fold(0u32, |h, &u| h.wrapping_mul(31).wrapping_add(u32::from(u)));
        let event = json!({"n": n, "body": String::from_utf16(&body).unwrap()});
        let v = ok_body(&p.invoke("sizes-node", &event));
        assert_eq!(
            (v["n"].as_u64(), v["len"].as_u64(), v["h"].as_u64()),
            (Some(n as u64), Some(size as u64), Some(u64::from(hash))),
            "event {n} of {size} units"
        );
        pids.push(v["pid"].as_u64().unwrap());
    }
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "one instance: {pids:?}"
    );
}

const HEAP: &str = "exports.heap = async () => ({ limitMb: require('v8').getHeapStatistics().heap_size_limit / 1048576, nodeOptions: process.env.NODE_OPTIONS ?? null, own: Object.keys(process.env).filter((k) => k.startsWith('_SCF_NODE')) });\n";

/// V8's heap is sized for the instance's memory (`shim/src/host/node.rs`, `heap_options`), unless the
/// function's own `NODE_OPTIONS` sizes it; either way the function's code sees its own `NODE_OPTIONS` only.
#[test]
fn the_heap_is_sized_for_the_memory_and_node_options_stay_the_functions() {
    let dir = code("node-heap", &[("index.js", HEAP)]);
    let heap = |memory: &str, env: &[&str]| {
        let mut args = vec!["--memory", memory];
        for e in env {
            args.extend(["--env", e]);
        }
        node_in(dir.path(), "index.heap", &args).expect_ok()
    };
    // 84 MB of old generation and 3 × 4 MB of young: V8's own floor is 256 MB of old generation.
    let v = heap("128", &[]);
    assert!(v["limitMb"].as_f64().unwrap() <= 128.0, "{v}");
    assert_eq!(
        (&v["nodeOptions"], &v["own"]),
        (&json!(null), &json!([])),
        "{v}"
    );
    let v = heap("1024", &["NODE_OPTIONS=--enable-source-maps"]);
    let limit = v["limitMb"].as_f64().unwrap();
    assert!((700.0..=800.0).contains(&limit), "{v}");
    assert_eq!(v["nodeOptions"], "--enable-source-maps", "{v}");
    // The function's own size wins, and nothing is added to it.
    let v = heap("128", &["NODE_OPTIONS=--max-old-space-size=300"]);
    assert!(v["limitMb"].as_f64().unwrap() > 300.0, "{v}");
    assert_eq!(v["nodeOptions"], "--max-old-space-size=300", "{v}");
}

/// A function's own copy of an SDK whose bootstrap does not put `NODE_OPTIONS` back (one from before the heap
/// was sized) gets no sizes: its code sees its environment as it is, and V8 keeps its own sizes. A current copy
/// is sized as the runtime's own bootstrap is.
#[test]
fn a_vendored_bootstrap_that_does_not_restore_node_options_gets_no_heap_sizes() {
    let sdk = root().join("sdk-node");
    let current = std::fs::read_to_string(sdk.join("bootstrap.js")).unwrap();
    let start = current.find("if (process.env._SCF_NODE_OPTIONS").unwrap();
    let end = start + current[start..].find("\n}\n").unwrap() + 3;
    let older = format!("{}{}", &current[..start], &current[end..]);
    assert!(!older.contains("_SCF_NODE_OPTIONS"), "{older}");
    for (bootstrap, sized) in [(older.as_str(), false), (current.as_str(), true)] {
        let dir = code(
            "node-vendored",
            &[
                ("index.js", HEAP),
                ("node_modules/scf-sdk/bootstrap.js", bootstrap),
            ],
        );
        let vendored = dir.path().join("node_modules/scf-sdk");
        for linked in ["lib", "package.json", "index.node"] {
            std::os::unix::fs::symlink(sdk.join(linked), vendored.join(linked)).unwrap();
        }
        let v = node_in(dir.path(), "index.heap", &["--memory", "128"]).expect_ok();
        let limit = v["limitMb"].as_f64().unwrap();
        assert_eq!(limit <= 128.0, sized, "{v}");
        assert_eq!(
            (&v["nodeOptions"], &v["own"]),
            (&json!(null), &json!([])),
            "{v}"
        );
    }
}
