//! `scf-local serve`: the instance model and invocation semantics, through the real platform, its front
//! door and real instances (`docs/scf-platform.md` §3–6).
#![allow(clippy::unwrap_used, reason = "tests")]

use scf_tests::{
    Served, TempDir, err_body, function_dir, native_function, ok_body, process_gone, python_sdk,
    wait_for,
};
use serde_json::{Value, json};

fn result(r: &Value) -> &Value {
    assert!(r.get("Error").is_none(), "API error: {r}");
    &r["Result"]
}

#[test]
fn cold_then_warm_reuse_keeps_globals_and_tmp_then_idle_instances_are_repossessed() {
    let f = native_function(
        "counter",
        "  handler: errors.counter\n  local:\n    idleTimeout: 1\n",
    );
    let p = Served::one(f.path());

    let first = p.invoke("counter", &json!({}));
    let b1 = ok_body(&first);
    assert_eq!(
        (b1["invocations"].as_u64(), b1["tmp_lines"].as_u64()),
        (Some(1), Some(1))
    );
    let log = result(&first)["Log"].as_str().unwrap();
    assert!(
        log.contains("Init Report RequestId:"),
        "the cold start has an Init Report: {log}"
    );

    let second = p.invoke("counter", &json!({}));
    let b2 = ok_body(&second);
    assert_eq!(b2["pid"], b1["pid"], "the warm instance is reused");
    assert_eq!(
        (b2["invocations"].as_u64(), b2["tmp_lines"].as_u64()),
        (Some(2), Some(2)),
        "globals and /tmp survive"
    );
    assert!(
        !result(&second)["Log"]
            .as_str()
            .unwrap()
            .contains("Init Report"),
        "no Init Report when warm"
    );

    // Idle for longer than idleTimeout: repossessed (its process is gone); the next call is a cold start on
    // a fresh instance.
    let pid = b1["pid"].as_u64().unwrap();
    wait_for(120, "the idle instance to be repossessed", || {
        process_gone(pid).then_some(())
    });
    let third = p.invoke("counter", &json!({}));
    let b3 = ok_body(&third);
    assert_ne!(b3["pid"], b1["pid"]);
    assert_eq!(
        (b3["invocations"].as_u64(), b3["tmp_lines"].as_u64()),
        (Some(1), Some(1)),
        "a fresh instance has a fresh /tmp"
    );
    assert!(
        result(&third)["Log"]
            .as_str()
            .unwrap()
            .contains("Init Report")
    );
}

#[test]
fn provisioned_instances_start_ahead_and_serve_warm() {
    let f = native_function(
        "prov",
        "  handler: errors.counter\n  local:\n    provisioned: 1\n    concurrency: 2\n",
    );
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    wait_for(60, "the Provisioned Report", || {
        let r = p.call("GetFunctionLogs", &json!({"FunctionName": "prov"}));
        let data = r["Data"].as_array()?.clone();
        data.iter()
            .any(|d| {
                d["Log"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("Provisioned Report RequestId: "))
            })
            .then_some(())
    });
    // The wait at start is said as it begins and as it ends.
    wait_for(60, "the provisioned instances' ready line", || {
        p.stderr()
            .contains("scf-local: prov: 1 of 1 provisioned instances ready in ")
            .then_some(())
    });
    assert!(
        p.stderr()
            .contains("scf-local: prov: starting 1 provisioned instance\n"),
        "{}",
        p.stderr()
    );
    let r = p.invoke("prov", &json!({}));
    assert_eq!(ok_body(&r)["invocations"], 1);
    assert!(
        !result(&r)["Log"].as_str().unwrap().contains("Init Report"),
        "served by the provisioned instance: {r}"
    );
}

#[test]
fn exec_timeout_kills_the_instance_and_the_next_call_recovers() {
    let f = native_function("slow", "  handler: errors.sleeps\n  timeout: 1\n");
    let p = Served::one(f.path());
    let e = err_body(&p.invoke("slow", &json!({"seconds": 20})));
    assert_eq!(
        (e["statusCode"].as_u64(), e["errorMessage"].as_str()),
        (Some(433), Some("Invoking task timed out after 1 seconds"))
    );
    let r = p.invoke("slow", &json!({"seconds": 0}));
    assert_eq!(result(&r)["RetMsg"], "\"woke up\"");
    assert!(
        result(&r)["Log"].as_str().unwrap().contains("Init Report"),
        "a fresh instance after the kill"
    );
}

#[test]
fn memory_limit_and_process_exit_are_classified() {
    let mem = native_function("hog", "  handler: errors.allocates\n  memorySize: 128\n");
    let exit = native_function("quitter", "  handler: errors.exits\n");
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[mem.path(), exit.path()], &[]);
    let e = err_body(&p.invoke("hog", &json!({"mb": 400})));
    assert_eq!(
        (e["statusCode"].as_u64(), e["errorType"].as_str()),
        (Some(434), Some("MemoryLimitExceeded"))
    );
    let e = err_body(&p.invoke("quitter", &json!({})));
    assert_eq!(
        (e["statusCode"].as_u64(), e["errorType"].as_str()),
        (Some(439), Some("ProcessExit"))
    );
}

#[test]
fn init_timeout_is_450() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("slowinit");
    std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(
        dir.path().join("bootstrap"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("serverless.yml"),
        "inputs:\n  name: neverready\n  handler: index.main\n  runtime: CustomRuntime\n  initTimeout: 1\n",
    )
    .unwrap();
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[dir.path()], &[]);
    let e = err_body(&p.invoke("neverready", &json!({})));
    assert_eq!(
        (e["statusCode"].as_u64(), e["errorType"].as_str()),
        (Some(450), Some("InitTimeout"))
    );
}

/// A Python handler that marks its start (a file in `event.started_dir`, or the file `event.started`) and
/// holds its instance until the file `event.go` exists; then prints its last line and answers.
const HELD: &str = r#"import os, time, uuid

def main_handler(event, context):
    if "started_dir" in event:
        open(os.path.join(event["started_dir"], uuid.uuid4().hex), "w").close()
    if "started" in event:
        open(event["started"], "w").close()
    while not os.path.exists(event["go"]):
        time.sleep(0.01)
    print("last line of", context["request_id"])
    if event.get("fail"):
        raise ValueError("fails on purpose")
    return {"finished": True, "pid": os.getpid()}
"#;

/// A platform serving one Python function `name` running [`HELD`] (with `yml`), and the files its calls
/// name: where a call marks its start, and the file that lets it go.
struct Held {
    p: Served,
    started: std::path::PathBuf,
    go: std::path::PathBuf,
    _dirs: [TempDir; 3],
}

fn held(name: &str, yml: &str) -> Held {
    let f = function_dir(name, "Python3.9", "index.py", HELD, yml);
    let data = TempDir::new("data");
    let p = serve_python(&data, &[f.path()]);
    let files = TempDir::new(&format!("{name}-files"));
    let (started, go) = (files.path().join("started"), files.path().join("go"));
    Held {
        p,
        started,
        go,
        _dirs: [f, data, files],
    }
}

/// The platform with Python functions (`HELD`) and the native ones.
fn serve_python(data: &TempDir, dirs: &[&std::path::Path]) -> Served {
    Served::start_with_env(data.path(), dirs, &[], &[("SCF_PYTHON", &python_sdk())])
}

#[test]
fn a_burst_over_the_concurrency_limit_gets_exact_432s_and_never_overshoots() {
    let f = function_dir(
        "narrow",
        "Python3.9",
        "index.py",
        HELD,
        "  timeout: 900\n  local:\n    concurrency: 3\n",
    );
    let data = TempDir::new("data");
    let p = std::sync::Arc::new(serve_python(&data, &[f.path()]));
    let started = TempDir::new("started");
    let go = started.path().join("go");
    let event = json!({"started_dir": started.path().join("in"), "go": go});
    std::fs::create_dir_all(started.path().join("in")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(10));
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let (p, barrier, tx, event) = (p.clone(), barrier.clone(), tx.clone(), event.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let _ = tx.send(p.invoke("narrow", &event));
            })
        })
        .collect();
    // Every call either runs (its handler has started and holds its instance) or was answered: only then
    // are the handlers let go, so the calls overlap however slowly they arrive.
    let mut results: Vec<Value> = Vec::new();
    wait_for(300, "every call to run or be refused", || {
        results.extend(rx.try_iter());
        let running = std::fs::read_dir(started.path().join("in"))
            .unwrap()
            .count();
        (running + results.len() == 10).then_some(())
    });
    let running = std::fs::read_dir(started.path().join("in"))
        .unwrap()
        .count();
    std::fs::write(&go, "").unwrap();
    for h in handles {
        h.join().unwrap();
    }
    results.extend(rx.try_iter());
    let ok = results
        .iter()
        .filter(|r| r["Result"]["InvokeResult"] == 0)
        .count();
    let throttled: Vec<Value> = results
        .iter()
        .filter(|r| r["Result"]["InvokeResult"] == -1)
        .map(err_body)
        .collect();
    assert_eq!((running, ok, throttled.len()), (3, 3, 7), "{results:#?}");
    for e in throttled {
        assert_eq!(e["statusCode"], 432);
        assert_eq!(
            e["errorMessage"],
            "Resource limit exceed for function [narrow]"
        );
    }
    let logged = p.call(
        "GetFunctionLogs",
        &json!({"FunctionName": "narrow", "Filter": {"RetCode": "not0"}}),
    );
    assert_eq!(
        logged["TotalCount"], 7,
        "the refused calls are in the logs: {logged}"
    );
    assert!(
        logged["Data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["RetCode"] == 432)
    );
    let pids: std::collections::HashSet<String> = results
        .iter()
        .filter(|r| r["Result"]["InvokeResult"] == 0)
        .map(|r| ok_body(r)["pid"].to_string())
        .collect();
    assert_eq!(pids.len(), 3, "three instances ran at once, no more");
}

fn dead_letters(p: &Served, function: &str) -> Vec<Value> {
    let out = std::process::Command::new(scf_tests::bin("scf-local"))
        .args(["dlq", function, "--data-dir"])
        .arg(&p.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn attempts_of(p: &Served, function: &str, request_id: &str) -> Vec<Value> {
    let r = p.call(
        "GetFunctionLogs",
        &json!({"FunctionName": function, "FunctionRequestId": request_id, "Order": "asc"}),
    );
    r["Data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn async_events_succeed_retry_and_go_to_the_dead_letter_store() {
    let good = native_function("good", "  handler: errors.counter\n");
    let bad = native_function(
        "bad",
        "  handler: errors.returned_error\n  retryNum: 2\n  local:\n    retryInterval: 0.2\n",
    );
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[good.path(), bad.path()], &[]);

    let id = p.invoke_async("good", &json!({"k": 1}));
    let logs = wait_for(60, "the async success", || {
        let a = attempts_of(&p, "good", &id);
        (!a.is_empty()).then_some(a)
    });
    assert_eq!((logs.len(), logs[0]["RetCode"].as_i64()), (1, Some(0)));
    assert_eq!(logs[0]["Source"], "Event");

    let id = p.invoke_async("bad", &json!({"order": 7}));
    let letters = wait_for(60, "the dead letter", || {
        let l = dead_letters(&p, "bad");
        (!l.is_empty()).then_some(l)
    });
    let attempts = attempts_of(&p, "bad", &id);
    assert_eq!(
        attempts.len(),
        3,
        "one attempt and retryNum=2 retries: {attempts:#?}"
    );
    let retry_nums: Vec<i64> = attempts
        .iter()
        .map(|a| a["RetryNum"].as_i64().unwrap())
        .collect();
    assert_eq!(retry_nums, [0, 1, 2]);
    let l = &letters[0];
    assert_eq!(l["RequestId"], id.as_str());
    assert_eq!(l["ErrorCode"], 430);
    assert_eq!(l["Body"]["ClientContext"], r#"{"order":7}"#);
    assert_eq!(l["Body"]["RetryNum"], 2);
    let err: Value = serde_json::from_str(l["ErrorMessage"].as_str().unwrap()).unwrap();
    assert_eq!(err["errorType"], "HandledError");
}

/// An event waiting for its retry does not hold up the queue: one accepted meanwhile (handed to the
/// dispatcher, which waits for it and for the retry's time) runs at once, while the first still has one
/// attempt.
#[test]
fn new_async_events_run_while_an_earlier_one_waits_for_its_retry() {
    let f = native_function(
        "flaky",
        "  handler: errors.returned_error\n  retryNum: 1\n  local:\n    retryInterval: 600\n",
    );
    let p = Served::one(f.path());
    let first = p.invoke_async("flaky", &json!({"n": 1}));
    wait_for(60, "the first attempt", || {
        (!attempts_of(&p, "flaky", &first).is_empty()).then_some(())
    });
    for n in 2..5 {
        let id = p.invoke_async("flaky", &json!({"n": n}));
        let a = wait_for(60, "a later event's attempt", || {
            let a = attempts_of(&p, "flaky", &id);
            (!a.is_empty()).then_some(a)
        });
        assert_eq!(a[0]["RetryNum"], 0);
    }
    assert_eq!(
        attempts_of(&p, "flaky", &first).len(),
        1,
        "the first event waits for its retry, 600 s away"
    );
}

#[test]
fn async_events_past_their_maximum_age_go_to_the_dead_letter_store() {
    let f = native_function(
        "aging",
        "  handler: errors.returned_error\n  retryNum: 1000\n  msgTTL: 1\n  local:\n    retryInterval: 0.3\n",
    );
    let p = Served::one(f.path());
    let id = p.invoke_async("aging", &json!({}));
    let letters = wait_for(60, "the dead letter", || {
        let l = dead_letters(&p, "aging");
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(letters[0]["RequestId"], id.as_str());
    let attempts = attempts_of(&p, "aging", &id).len();
    assert!(
        (1..20).contains(&attempts),
        "retried until the age ran out, not 1000 times: {attempts}"
    );
}

#[test]
fn a_full_async_queue_refuses_the_next_event() {
    let f = native_function(
        "busy",
        "  handler: errors.sleeps\n  timeout: 60\n  local:\n    concurrency: 1\n    queueLimit: 3\n",
    );
    let p = Served::one(f.path());
    for _ in 0..3 {
        p.invoke_async("busy", &json!({"seconds": 30}));
    }
    let r = p.call(
        "Invoke",
        &json!({"FunctionName": "busy", "InvocationType": "Event", "ClientContext": "{}"}),
    );
    assert_eq!(r["Error"]["Code"], "LimitExceeded.AsyncQueue", "{r}");
    assert!(
        r["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("is full (3 events)")
    );
}

#[test]
fn kill_9_with_a_backlog_loses_nothing() {
    let f = native_function(
        "durable",
        "  handler: errors.counter\n  local:\n    concurrency: 1\n",
    );
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let ids: Vec<String> = (0..20)
        .map(|i| p.invoke_async("durable", &json!({"i": i, "sleep_ms": 100})))
        .collect();
    // Killed once delivery is under way (one event done), with the rest still queued.
    wait_for(120, "the first event delivered", || {
        attempts_of(&p, "durable", &ids[0])
            .iter()
            .any(|a| a["RetCode"] == 0)
            .then_some(())
    });
    p.kill9();
    let p = Served::start(data.path(), &[f.path()], &[]);
    for id in &ids {
        wait_for(120, "every acknowledged event delivered", || {
            attempts_of(&p, "durable", id)
                .iter()
                .any(|a| a["RetCode"] == 0)
                .then_some(())
        });
    }
}

#[test]
fn limits_and_bad_parameters() {
    let f = native_function("limits", "  handler: errors.too_large\n");
    let p = Served::one(f.path());
    let e = err_body(&p.invoke("limits", &json!({})));
    assert_eq!(e["statusCode"], 407);

    let big = format!("\"{}\"", "x".repeat(6 * 1024 * 1024 + 1));
    let r = p.call(
        "Invoke",
        &json!({"FunctionName": "limits", "ClientContext": big}),
    );
    assert_eq!(r["Error"]["Code"], "InvalidParameterValue.ClientContext");
    assert!(
        r["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("406 RequestTooLarge"),
        "{r}"
    );
    let big = format!("\"{}\"", "x".repeat(128 * 1024 + 1));
    let r = p.call(
        "Invoke",
        &json!({"FunctionName": "limits", "ClientContext": big, "InvocationType": "Event"}),
    );
    assert!(
        r["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("406 RequestTooLarge"),
        "{r}"
    );

    let r = p.call("Invoke", &json!({"FunctionName": "nope"}));
    assert_eq!(r["Error"]["Code"], "ResourceNotFound.Function");
    let r = p.call(
        "Invoke",
        &json!({"FunctionName": "limits", "ClientContext": "{not json"}),
    );
    assert_eq!(r["Error"]["Code"], "InvalidParameterValue.ClientContext");
    let r = p.call(
        "Invoke",
        &json!({"FunctionName": "limits", "InvocationType": "Sometimes"}),
    );
    assert_eq!(r["Error"]["Code"], "InvalidParameterValue.InvocationType");
    let r = p.call("Nope", &json!({}));
    assert_eq!(r["Error"]["Code"], "InvalidAction");
    assert!(r["RequestId"].is_string());
}

#[test]
fn logs_are_stored_and_printed_by_the_logs_command() {
    let f = native_function("logged", "  handler: errors.returned_error\n");
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let r = p.invoke("logged", &json!({}));
    let id = result(&r)["FunctionRequestId"].as_str().unwrap().to_owned();
    // Logs are written by a background writer, off the invocation's path: another process sees them
    // a moment later.
    let text = wait_for(30, "the request's log in the database", || {
        let out = std::process::Command::new(scf_tests::bin("scf-local"))
            .args(["logs", "logged", "--request-id", &id, "--data-dir"])
            .arg(data.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (!text.is_empty()).then_some(text)
    });
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("START RequestId:{id}"));
    assert!(lines[1].starts_with("Init Report"));
    assert_eq!(lines[2], "about to refuse");
    assert!(lines[3].starts_with(&format!("ERROR RequestId:{id} Result:")));
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with(&format!("Report RequestId:{id} Duration:"))
    );
    let r = p.call(
        "GetFunctionLogs",
        &json!({"FunctionName": "logged", "Filter": {"RetCode": "not0"}}),
    );
    assert_eq!(r["TotalCount"], 1);
    assert_eq!(r["Data"][0]["RetCode"], 430);
    let r = p.call(
        "GetFunctionLogs",
        &json!({"FunctionName": "logged", "Filter": {"RetCode": "is0"}}),
    );
    assert_eq!(r["TotalCount"], 0);
}

#[test]
fn sigterm_stops_the_platform_and_its_instances() {
    let f = native_function("term", "  handler: errors.counter\n");
    let p = Served::one(f.path());
    let pid = ok_body(&p.invoke("term", &json!({})))["pid"]
        .as_u64()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let platform_pid = p.pid();
    drop(p); // SIGTERM, then wait
    assert!(
        !std::path::Path::new(&format!("/proc/{platform_pid}/status")).exists() || {
            let s =
                std::fs::read_to_string(format!("/proc/{platform_pid}/status")).unwrap_or_default();
            s.contains("State:\tZ")
        }
    );
    wait_for(60, "the instance to be gone", || {
        process_gone(pid).then_some(())
    });
}

#[test]
fn an_instance_that_dies_after_answering_is_never_handed_the_next_call() {
    // The Node host posts an uncaught async exception as the invocation's error, then its process exits;
    // this one takes a moment to exit (its `exit` listener works for 150 ms), so the next call arrives
    // while it is still alive but will never pull another invocation.
    let f = function_dir(
        "thrower",
        "Nodejs16.13",
        "index.js",
        "process.on('exit', () => { const end = Date.now() + 150; while (Date.now() < end) {} });\n\
         exports.main_handler = () => {\n  setTimeout(() => { throw new Error('async boom'); }, 0);\n  return new Promise(() => {});\n};\n",
        "",
    );
    let p = Served::one(f.path());
    for i in 0..10 {
        let e = err_body(&p.invoke("thrower", &json!({"i": i})));
        assert_eq!(
            (e["statusCode"].as_u64(), e["errorType"].as_str()),
            (Some(430), Some("UnhandledError")),
            "call {i} ran on an instance of its own: {e}"
        );
        assert!(
            e["stackTrace"].as_str().unwrap().contains("async boom"),
            "{e}"
        );
    }
}

/// Sends one request to the front door; the caller goes away (without reading the answer) when the
/// returned connection is dropped.
fn call_and_leave(addr: &str, action: &str, params: &Value) -> std::net::TcpStream {
    use std::io::Write as _;
    let body = params.to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-TC-Action: {action}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

#[test]
fn a_sync_call_runs_to_completion_when_its_caller_goes_away() {
    let Held {
        p,
        started,
        go,
        _dirs,
    } = held("abandoned", "  timeout: 900\n");
    let event = json!({"started": started, "go": go});
    let caller = call_and_leave(
        &p.addr,
        "Invoke",
        &json!({"FunctionName": "abandoned", "ClientContext": event.to_string()}),
    );
    wait_for(120, "the handler to start", || {
        started.exists().then_some(())
    });
    // The caller goes away while the handler runs; the platform notices, and the invocation goes on.
    drop(caller);
    wait_for(120, "the platform to notice the caller left", || {
        p.stderr()
            .contains("went away; the invocation runs to completion")
            .then_some(())
    });
    std::fs::write(&go, "").unwrap();
    let logged = wait_for(120, "the abandoned call's log", || {
        let r = p.call("GetFunctionLogs", &json!({"FunctionName": "abandoned"}));
        r["Data"].as_array().and_then(|d| d.first().cloned())
    });
    assert_eq!(logged["RetCode"], 0, "{logged}");
    let log = logged["Log"].as_str().unwrap();
    assert!(
        log.contains("last line of"),
        "the handler's last line ran: {log}"
    );
    let pid =
        serde_json::from_str::<Value>(logged["RetMsg"].as_str().unwrap()).unwrap()["pid"].clone();
    // Its instance was kept, as after any successful call.
    let again = ok_body(&p.invoke("abandoned", &event));
    assert_eq!(again["pid"], pid, "the instance is reused");
}

#[test]
fn an_async_event_whose_dead_letter_cannot_be_written_is_written_once_the_store_can() {
    let held = held("stranded", "  timeout: 900\n  retryNum: 0\n");
    let (p, started, go) = (&held.p, &held.started, &held.go);
    let data_dir = p.data_dir.clone();
    let id = p.invoke_async(
        "stranded",
        &json!({"started": started, "go": go, "fail": true}),
    );
    wait_for(120, "the event to be leased and running", || {
        started.exists().then_some(())
    });
    // Another process takes the database's write lock while the event runs: its outcome cannot be written.
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\nc.execute('BEGIN IMMEDIATE')\nprint('locked', flush=True)\nsys.stdin.readline()\nc.execute('ROLLBACK')\n",
        ])
        .arg(data_dir.join("scf-local.db"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    std::fs::write(go, "").unwrap();
    wait_for(120, "the failed write to be said", || {
        p.stderr()
            .contains(&format!(
                "the store failed writing its dead letter of async event {id}"
            ))
            .then_some(())
    });
    drop(holder.stdin.take()); // the lock holder rolls back and exits
    holder.wait().unwrap();
    let letters = wait_for(120, "the dead letter", || {
        let l = dead_letters(p, "stranded");
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(letters[0]["RequestId"], id.as_str());
    assert_eq!(letters[0]["ErrorCode"], 430);
    wait_for(60, "the recovery to be said", || {
        p.stderr()
            .contains(&format!(
                "the store took its dead letter of async event {id} after"
            ))
            .then_some(())
    });
}
