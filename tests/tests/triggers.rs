//! Triggers end to end, through the real `scf-local` and real Python functions: `scf-local event generate`,
//! the API Gateway listener of `scf-local serve` (routes, stage prefix, path parameters, integrated
//! responses, CORS, 404), timers firing through the durable queue, `scf-local trigger` with each trigger's
//! own invocation type, and the reading actions (`ListFunctions`, `GetFunction`, `ListTriggers`), on the
//! multi-scf project of `tests/fixtures/multi-scf-python` (names as the component gives them, variables and
//! `.env`, a warning for its misspelt key).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::process::{Command, Stdio};

use scf_tests::{Served, TempDir, bin, http_request as request, python_sdk, root, wait_for};
use serde_json::{Value, json};

/// The fixture's directory.
fn fixture() -> std::path::PathBuf {
    root().join("tests/fixtures/multi-scf-python")
}

/// The names the multi-scf component gives the fixture's functions (`${name}-${stage}-${app}-${key}` unless
/// the function has a `name`).
const HELLO: &str = "demo-dev-shop-hello";
const ITEMS: &str = "items-fn";
const TICK: &str = "demo-dev-shop-tick";
const GREET: &str = "demo-dev-shop-greet";

/// `scf-local serve` on the fixture, and the API Gateway's `127.0.0.1:PORT`.
fn serve(data: &TempDir) -> (Served, String) {
    let p = Served::start_with_env(
        data.path(),
        &[&fixture()],
        &["--apigw-port", "0"],
        &[("SCF_PYTHON", &python_sdk())],
    );
    let apigw = apigw_of(&p);
    (p, apigw)
}

/// The API Gateway's `127.0.0.1:PORT`, from `p`'s banner.
fn apigw_of(p: &Served) -> String {
    wait_for(60, "the API Gateway's banner line", || {
        p.stderr().lines().find_map(|l| {
            let rest = l.strip_prefix("scf-local: apigw listening on http://")?;
            Some(rest.split_whitespace().next()?.to_owned())
        })
    })
}

/// Runs `scf-local ARGS`: exit code, stdout, stderr.
fn scf_local(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("scf-local"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The logs of `function` (newest first), or of one of its requests.
fn logs(p: &Served, function: &str, request_id: Option<&str>) -> Vec<Value> {
    let mut params = json!({"FunctionName": function, "Limit": 100});
    if let Some(id) = request_id {
        params["FunctionRequestId"] = json!(id);
    }
    let r = p.call("GetFunctionLogs", &params);
    r["Data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn event_generate_prints_every_kind_with_its_keys() {
    for kind in ["cos", "cmq", "ckafka", "clb", "timer", "apigw"] {
        let (code, out, err) = scf_local(&["event", "generate", kind]);
        assert_eq!(code, 0, "{kind}: {err}");
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{kind}: {e}: {out}"));
        assert!(v.is_object(), "{kind}: {v}");
    }
    let (code, out, err) = scf_local(&[
        "event",
        "generate",
        "cos",
        "--bucket",
        "photos",
        "--key=a/b.jpg",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Records"][0]["cos"]["cosBucket"]["name"], "photos");
    assert!(
        v["Records"][0]["cos"]["cosObject"]["key"]
            .as_str()
            .is_some_and(|k| k.ends_with("/photos/a/b.jpg")),
        "{v}"
    );
    let (code, out, _) = scf_local(&[
        "event",
        "generate",
        "timer",
        "--message",
        "m",
        "--trigger-name",
        "t",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            v["Type"].as_str(),
            v["TriggerName"].as_str(),
            v["Message"].as_str()
        ),
        (Some("Timer"), Some("t"), Some("m"))
    );
    let (code, out, _) = scf_local(&[
        "event",
        "generate",
        "apigw",
        "--method",
        "GET",
        "--path",
        "/users/7",
        "--resource",
        "/users/{id}",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["httpMethod"].as_str(), v["pathParameters"]["id"].as_str()),
        (Some("GET"), Some("7")),
        "{v}"
    );

    // Mistakes are named, with exit code 2.
    let (code, _, err) = scf_local(&["event", "generate", "sqs"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown event kind 'sqs'") && err.contains("cos"),
        "{err}"
    );
    let (code, _, err) = scf_local(&["event", "generate", "cos", "--colour", "red"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no key 'colour'") && err.contains("bucket"),
        "{err}"
    );
    let (code, _, err) = scf_local(&["event", "generate", "cos", "--bucket"]);
    assert_eq!(code, 2);
    assert!(err.contains("--bucket needs a value"), "{err}");

    // `event list` names each kind's invocation type.
    let (code, out, _) = scf_local(&["event", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("cos  (COS, asynchronous)"), "{out}");
    assert!(out.contains("clb  (CLB, synchronous)"), "{out}");
}

#[test]
fn a_multi_scf_project_is_named_configured_and_warned_about_as_deployed() {
    let data = TempDir::new("triggers-names");
    let (p, apigw) = serve(&data);
    let banner = p.stderr();
    for line in [
        format!("scf-local: apigw GET http://{apigw}/hello/{{name}} -> {HELLO}"),
        format!("scf-local: apigw POST http://{apigw}/items -> {ITEMS}"),
        format!("scf-local: timer every-second -> {TICK} (* * * * * * *, UTC+8)"),
        format!("scf-local: timer nightly of {TICK} is disabled"),
        format!(
            "scf-local: cos trigger cos-demo-dev of {ITEMS}: on demand, `scf-local trigger {ITEMS} cos`"
        ),
    ] {
        assert!(banner.contains(&line), "no {line:?} in:\n{banner}");
    }
    assert!(
        banner.contains("timeOut") && banner.contains("did you mean timeout?"),
        "the misspelt key is warned about:\n{banner}"
    );
    // The names a client's FunctionName uses, and the variables (`.env`, `${name}-${stage}-${app}`).
    let listed = p.call("ListFunctions", &json!({}));
    let names: Vec<&str> = listed["Functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["FunctionName"].as_str())
        .collect();
    assert_eq!(names, [GREET, HELLO, TICK, ITEMS], "{listed}");
    assert_eq!(listed["TotalCount"], 4);
    let got = p.call("GetFunction", &json!({"FunctionName": ITEMS}));
    assert_eq!(got["Runtime"], "Python3.9", "{got}");
    assert_eq!(got["Handler"], "index.items");
    assert_eq!(got["Timeout"], 3, "the misspelt timeOut is not read: {got}");
    let vars = got["Environment"]["Variables"].as_array().unwrap();
    assert!(
        vars.contains(&json!({"Key": "GREETING", "Value": "hello from .env"})),
        "{got}"
    );
    assert!(
        vars.contains(&json!({"Key": "WHERE", "Value": "demo-dev-shop"})),
        "{got}"
    );
    let triggers = p.call("ListTriggers", &json!({"FunctionName": TICK}));
    assert_eq!(triggers["TotalCount"], 2, "{triggers}");
    let t = &triggers["Triggers"][0];
    assert_eq!(
        (
            t["TriggerName"].as_str(),
            t["Type"].as_str(),
            t["Enable"].as_i64()
        ),
        (Some("every-second"), Some("timer"), Some(1))
    );
    assert_eq!(t["CustomArgument"], "tick-tock");
    let desc: Value = serde_json::from_str(t["TriggerDesc"].as_str().unwrap()).unwrap();
    assert_eq!(desc["cron"], "* * * * * * *");
    assert_eq!(triggers["Triggers"][1]["Enable"], 0);
    let missing = p.call("GetFunction", &json!({"FunctionName": "nope"}));
    assert_eq!(
        missing["Error"]["Code"], "ResourceNotFound.Function",
        "{missing}"
    );
    let bad = p.call("ListFunctions", &json!({"Limit": 1000}));
    assert_eq!(bad["Error"]["Code"], "InvalidParameterValue.Limit", "{bad}");
}

#[test]
fn api_gateway_routes_reach_event_functions_as_the_gateway_does() {
    let data = TempDir::new("triggers-apigw");
    let (_p, apigw) = serve(&data);

    // A path parameter, an integrated response (status, headers, body), at the path and under the stage.
    for target in ["/hello/ann?lang=en", "/release/hello/ann?lang=en"] {
        let a = request(&apigw, "GET", target, &[], b"");
        assert_eq!(a.status, 201, "{target}: {}", a.text());
        assert_eq!(a.text(), "hello ann (en)");
        assert_eq!(a.header("content-type"), Some("text/plain"));
        assert_eq!(a.header("x-greeting"), Some("hello from .env"));
        assert!(a.header("x-api-requestid").is_some());
    }
    // An integrated response that breaks the contract: the gateway's error.
    let a = request(&apigw, "GET", "/hello/broken", &[], b"");
    assert_eq!(a.status, 502, "{}", a.text());
    assert_eq!(a.json()["errno"], 403, "{}", a.text());

    // The return value as JSON; the integration-request event as the gateway builds it.
    let a = request(
        &apigw,
        "POST",
        "/release/items?tag=a&tag=b&flag",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "http://example.com"),
        ],
        br#"{"n":1}"#,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("http://example.com")
    );
    let v = a.json();
    assert_eq!(
        (v["where"].as_str(), v["function"].as_str()),
        (Some("demo-dev-shop"), Some(ITEMS))
    );
    let e = &v["event"];
    assert_eq!(e["httpMethod"], "POST");
    assert_eq!(e["path"], "/items");
    assert_eq!(e["body"], r#"{"n":1}"#);
    assert_eq!(e["isBase64Encoded"], false);
    assert_eq!(
        e["queryString"],
        json!({"tag": ["a", "b"], "flag": true}),
        "{e}"
    );
    assert_eq!(e["headers"]["content-type"], "application/json");
    let rc = &e["requestContext"];
    assert_eq!(
        (
            rc["stage"].as_str(),
            rc["path"].as_str(),
            rc["httpMethod"].as_str()
        ),
        (Some("release"), Some("/items"), Some("POST"))
    );
    assert!(
        rc["serviceId"]
            .as_str()
            .is_some_and(|s| s.starts_with("service-")),
        "{rc}"
    );
    assert_eq!(rc["requestId"].as_str(), a.header("x-api-requestid"));
    assert_eq!(rc["sourceIp"], "127.0.0.1");

    // A Node.js function behind an ANY API, at the path and under the stage.
    for (method, target) in [("GET", "/greet/zoe"), ("PUT", "/release/greet/zoe")] {
        let a = request(&apigw, method, target, &[], b"");
        assert_eq!(a.status, 200, "{method} {target}: {}", a.text());
        assert_eq!(
            a.json(),
            json!({"hello": "zoe", "method": method, "stage": "release", "function": GREET}),
            "{method} {target}"
        );
    }

    // isBase64Trigger: a body of a media type of the rules arrives base64-encoded, others as text; the
    // declared parameters, with their defaults.
    let a = request(
        &apigw,
        "POST",
        "/upload",
        &[("Content-Type", "image/png"), ("X-Client", "cli")],
        b"\x89PNG",
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let e = &a.json()["event"];
    assert_eq!(
        (e["isBase64Encoded"].as_bool(), e["body"].as_str()),
        (Some(true), Some("iVBORw==")),
        "{e}"
    );
    assert_eq!(e["queryStringParameters"], json!({"lang": "en"}), "{e}");
    assert_eq!(e["headerParameters"], json!({"X-Client": "cli"}), "{e}");
    let a = request(
        &apigw,
        "POST",
        "/upload?lang=fr",
        &[("Content-Type", "text/plain")],
        b"plain",
    );
    let e = &a.json()["event"];
    assert_eq!(
        (e["isBase64Encoded"].as_bool(), e["body"].as_str()),
        (Some(false), Some("plain")),
        "{e}"
    );
    assert_eq!(e["queryStringParameters"], json!({"lang": "fr"}), "{e}");

    // CORS preflight, answered by the gateway.
    let a = request(
        &apigw,
        "OPTIONS",
        "/items",
        &[
            ("Origin", "http://example.com"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.header("access-control-allow-methods"),
        Some("POST,OPTIONS")
    );

    // No API: the gateway's 404; a method the API does not take is no API either.
    for (method, target) in [
        ("GET", "/nothing"),
        ("GET", "/items"),
        ("DELETE", "/release/hello/ann"),
    ] {
        let a = request(&apigw, method, target, &[], b"");
        assert_eq!(a.status, 404, "{method} {target}: {}", a.text());
        let message = a.json()["message"].as_str().unwrap_or_default().to_owned();
        assert!(
            message.starts_with("There is no api match uri"),
            "{message}"
        );
    }
}

#[test]
fn timers_fire_through_the_queue_with_the_timer_event() {
    let data = TempDir::new("triggers-timer");
    let (p, _) = serve(&data);
    // Every second: wait for two firings in the function's log.
    let firings = wait_for(
        120,
        "two firings of the timer in the function's log",
        || {
            let all: Vec<String> = logs(&p, TICK, None)
                .iter()
                .filter_map(|r| r["Log"].as_str().map(str::to_owned))
                .filter(|l| l.contains("tick {"))
                .collect();
            (all.len() >= 2).then_some(all)
        },
    );
    for log in &firings {
        let line = log
            .lines()
            .find_map(|l| l.split_once("tick ").map(|(_, rest)| rest.to_owned()))
            .unwrap_or_else(|| panic!("{log}"));
        let (event, source) = line.rsplit_once(' ').unwrap();
        let event: Value = serde_json::from_str(event).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(
            (
                event["Type"].as_str(),
                event["TriggerName"].as_str(),
                event["Message"].as_str()
            ),
            (Some("Timer"), Some("every-second"), Some("tick-tock")),
            "{event}"
        );
        assert!(
            event["Time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{event}"
        );
        assert_eq!(source, "Timer", "TRIGGER_SRC: {line}");
    }
    // Two firings are two seconds, not one.
    let times: std::collections::BTreeSet<&str> = firings
        .iter()
        .filter_map(|l| l.split("\"Time\": \"").nth(1)?.split('"').next())
        .collect();
    assert!(times.len() >= 2, "{firings:?}");
    // The disabled timer does not fire.
    assert!(
        !firings.iter().any(|l| l.contains("nightly")),
        "{firings:?}"
    );
}

#[test]
fn trigger_invokes_with_each_kinds_own_invocation_type() {
    let data = TempDir::new("triggers-ondemand");
    let (p, _) = serve(&data);
    let endpoint = format!("http://{}", p.addr);

    // COS and CMQ are queued: the request id at once, the invocation in the function's log.
    for (kind, keys, marker) in [
        ("cos", vec!["--key", "cat.jpg"], "cos:ObjectCreated"),
        ("cmq", vec!["--message", "from the queue"], "from the queue"),
    ] {
        let mut args = vec!["trigger", ITEMS, kind, "--endpoint", &endpoint];
        args.extend(keys);
        let (code, out, err) = scf_local(&args);
        assert_eq!(code, 0, "{kind}: {err}");
        let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(v["InvocationType"], "Event", "{kind}: {v}");
        let id = v["FunctionRequestId"].as_str().unwrap().to_owned();
        let log = wait_for(120, "the queued trigger's log", || {
            logs(&p, ITEMS, Some(&id))
                .iter()
                .filter_map(|r| r["Log"].as_str().map(str::to_owned))
                .find(|l| l.contains("items got"))
        });
        assert!(log.contains(marker), "{kind}: {log}");
    }
    // The COS trigger's own bucket is the event's default.
    let logged = logs(&p, ITEMS, None);
    assert!(
        logged.iter().any(|r| r["Log"]
            .as_str()
            .is_some_and(|l| l.contains(r#""name": "photos""#))),
        "{logged:?}"
    );

    // CKafka and CLB are synchronous: the result on stdout, the log on stderr.
    for (kind, field) in [("ckafka", "Records"), ("clb", "headers")] {
        let (code, out, err) = scf_local(&["trigger", ITEMS, kind, "--endpoint", &endpoint]);
        assert_eq!(code, 0, "{kind}: {err}");
        let v: Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{kind}: {e}: {out}"));
        assert!(v["event"].get(field).is_some(), "{kind}: {v}");
        assert!(
            err.contains("items got"),
            "{kind}: the log on stderr: {err}"
        );
    }

    // The route for scripts answers as Invoke does, with the invocation type.
    let a = request(
        &p.addr,
        "POST",
        &format!("/trigger/{ITEMS}/clb"),
        &[("Content-Type", "application/json")],
        br#"{"method": "PUT"}"#,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("x-scf-invocation-type"), Some("RequestResponse"));
    let result = &a.json()["Response"]["Result"];
    let ret: Value = serde_json::from_str(result["RetMsg"].as_str().unwrap()).unwrap();
    assert_eq!(ret["event"]["headers"]["X-Method"], "PUT", "{ret}");

    // Mistakes are classified errors, and the platform keeps going.
    let (code, _, err) = scf_local(&["trigger", "nope", "cos", "--endpoint", &endpoint]);
    assert_eq!(code, 2);
    assert!(err.contains("ResourceNotFound.Function"), "{err}");
    let a = request(&p.addr, "POST", &format!("/trigger/{ITEMS}/sqs"), &[], b"");
    assert_eq!(
        a.json()["Response"]["Error"]["Code"],
        "InvalidParameterValue",
        "{}",
        a.text()
    );
    let a = request(
        &p.addr,
        "POST",
        &format!("/trigger/{ITEMS}/cos"),
        &[],
        b"[1]",
    );
    assert_eq!(
        a.json()["Response"]["Error"]["Code"],
        "InvalidParameter",
        "{}",
        a.text()
    );
    let r = p.invoke(ITEMS, &json!({"still": "up"}));
    assert_eq!(r["Result"]["InvokeResult"], 0, "{r}");
}

/// A copy of the fixture `name` (its files, not its folders) in a fresh temporary directory.
fn copy_fixture(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    for entry in std::fs::read_dir(root().join("tests/fixtures").join(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn an_http_component_with_express_is_proxied_through_the_gateway() {
    let app = copy_fixture("http-express");
    let npm = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(app.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        npm.status.success(),
        "npm install express: {}",
        String::from_utf8_lossy(&npm.stderr)
    );
    let data = TempDir::new("triggers-express");
    let p = Served::start(data.path(), &[app.path()], &["--apigw-port", "0"]);
    let apigw = apigw_of(&p);
    let banner = p.stderr();
    assert!(
        banner.contains(&format!(
            "scf-local: apigw ANY http://{apigw}/ -> expressDemo"
        )),
        "{banner}"
    );
    assert!(
        banner.contains(
            "function expressDemo: its code has no scf_bootstrap: started with `node app.js`"
        ),
        "{banner}"
    );
    for target in ["/users/7?x=1", "/release/users/7?x=1"] {
        let a = request(&apigw, "GET", target, &[], b"");
        assert_eq!(a.status, 200, "{target}: {}", a.text());
        assert_eq!(a.header("x-framework"), Some("express"));
        assert_eq!(
            a.json(),
            json!({"id": "7", "query": {"x": "1"}, "path": "/users/7"}),
            "{target}"
        );
    }
    let a = request(
        &apigw,
        "POST",
        "/echo",
        &[("Content-Type", "application/json")],
        br#"{"a":[1,2]}"#,
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(
        a.json(),
        json!({"got": {"a": [1, 2]}, "function": "expressDemo"})
    );
    // express's own 404 (the component's API takes every path).
    let a = request(&apigw, "GET", "/no/such/page", &[], b"");
    assert_eq!(a.status, 404, "{}", a.text());
    assert!(
        a.text().contains("Cannot GET /no/such/page"),
        "{}",
        a.text()
    );
}

#[test]
fn two_functions_claiming_one_route_are_refused_with_both_names() {
    let dir = TempDir::new("triggers-duplicate");
    std::fs::write(dir.path().join("index.py"), "def a(e, c):\n    return 1\n").unwrap();
    std::fs::write(
        dir.path().join("serverless.yml"),
        "component: multi-scf\nname: dup\ninputs:\n  runtime: Python3.9\n  functions:\n    one: {handler: index.a}\n    two: {handler: index.a}\n  triggers:\n    - type: apigw\n      parameters:\n        apis:\n          - {path: '/users/{id}', method: GET, function: one}\n          - {path: '/users/{name}', method: GET, function: two}\n",
    )
    .unwrap();
    let data = TempDir::new("triggers-duplicate-data");
    let (code, _, err) = scf_local(&[
        "serve",
        "--port",
        "0",
        "--apigw-port",
        "0",
        "--data-dir",
        &data.path().display().to_string(),
        &dir.path().display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("GET /users/{name} is claimed by dup-dev-")
            && err.contains("-one and by dup-dev-")
            && err.contains("-two"),
        "{err}"
    );
}

#[test]
fn service_timeout_answers_504_and_build_runs_the_hook_first() {
    let dir = TempDir::new("triggers-slow");
    let release = dir.path().join("release");
    std::fs::write(
        dir.path().join("index.py"),
        "import os, time\n\n\ndef main_handler(event, context):\n    for _ in range(12000):\n        if os.path.exists(os.environ['RELEASE']):\n            return 'released'\n        time.sleep(0.01)\n    return 'gave up'\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("serverless.yml"),
        format!(
            "component: scf\nname: slow\napp: t\ninputs:\n  src:\n    src: ./\n    hook: echo built-by-hook && touch built.txt\n  runtime: Python3.9\n  timeout: 120\n  environment:\n    variables:\n      RELEASE: {}\n  events:\n    - apigw:\n        parameters:\n          serviceName: slow\n          endpoints:\n            - path: /slow\n              method: GET\n              serviceTimeout: 1\n",
            release.display()
        ),
    )
    .unwrap();
    let data = TempDir::new("triggers-slow-data");
    let p = Served::start_with_env(
        data.path(),
        &[dir.path()],
        &["--apigw-port", "0", "--build"],
        &[("SCF_PYTHON", &python_sdk())],
    );
    // --build ran the hook before the platform started, its output shown.
    assert!(dir.path().join("built.txt").is_file());
    let banner = p.stderr();
    assert!(
        banner.contains("scf-local: build: echo built-by-hook")
            && banner.contains("\nbuilt-by-hook\n"),
        "{banner}"
    );
    let apigw = apigw_of(&p);
    // The function is held until the test releases it: past serviceTimeout the caller gets the gateway's 504.
    let a = request(&apigw, "GET", "/slow", &[], b"");
    assert_eq!(a.status, 504, "{}", a.text());
    assert_eq!(a.json()["errno"], 504, "{}", a.text());
    std::fs::write(&release, b"go").unwrap();
    // The invocation runs on and is logged.
    let log = wait_for(120, "the timed-out invocation's log", || {
        logs(&p, "slow-dev-t", None)
            .first()
            .and_then(|r| r["RetMsg"].as_str().map(str::to_owned))
    });
    assert_eq!(log, "\"released\"");
}

#[test]
fn a_body_that_stalls_is_answered_408_and_the_gateway_keeps_going() {
    use std::io::{Read as _, Write as _};
    let data = TempDir::new("triggers-stall");
    let p = Served::start_with_env(
        data.path(),
        &[&fixture()],
        &["--apigw-port", "0"],
        &[
            ("SCF_PYTHON", &python_sdk()),
            ("SCF_LOCAL_BODY_TIMEOUT", "1"),
        ],
    );
    let apigw = apigw_of(&p);
    // Five bytes of the hundred announced, then nothing: the gateway gives up on the body.
    let mut s = std::net::TcpStream::connect(&apigw).unwrap();
    s.write_all(
        format!("POST /items HTTP/1.1\r\nHost: {apigw}\r\nContent-Length: 100\r\n\r\n{{\"n\":")
            .as_bytes(),
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&raw).contains("\"errno\"") {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed without an answer: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let a = request(&apigw, "POST", "/items", &[], br#"{"n":1}"#);
    assert_eq!(a.status, 200, "{}", a.text());
}
