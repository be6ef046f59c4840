//! The conformance cases through the local [`scf_sdk::invoke`] (paired with sdk-python's
//! `test_conformance.py` and sdk-node's `conformance.test.js`): the suite's Rust handlers run locally give what
//! the deployed function gives, body for body and error for error, checked against the same `case.json`
//! expectations `scf-local conformance` uses.
//!
//! Left out, each with its reason printed, are only the cases that need an instance or the platform:
//! timeouts, exits, memory, warm state, the function's configuration, events the platform's runner generates,
//! and expectations about the log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "tests"
)]

use std::path::Path;

use serde_json::Value;

const REQUEST_ID: &str = "local-request-id";

const NEEDS_AN_INSTANCE: &[(&str, &str)] = &[
    ("error_timeout", "the platform times an instance out"),
    ("error_memory", "the platform measures an instance's memory"),
    (
        "error_process_exit",
        "a process exit ends the instance (the platform reports it)",
    ),
    (
        "fresh_after_exit",
        "a process exit ends the instance (the platform reports it)",
    ),
    (
        "warm_globals",
        "warm state lives in an instance across invocations",
    ),
    (
        "warm_after_error",
        "warm state lives in an instance across invocations",
    ),
    (
        "warm_tmp_dir",
        "the instance's private temporary directory is the platform's",
    ),
    (
        "logs_many_lines",
        "its 1 MB of output is the platform's log to check (here it would flood the test runner's)",
    ),
];

const CHECKED: &[&str] = &["body", "json", "echo", "bodyPattern", "error"];

fn skip_reason(name: &str, case: &Value) -> Option<String> {
    if let Some(na) = case["languages"]["rust"]["na"].as_str() {
        return Some(format!("not applicable in Rust: {na}"));
    }
    if let Some((_, why)) = NEEDS_AN_INSTANCE.iter().find(|(n, _)| *n == name) {
        return Some((*why).to_owned());
    }
    if !case["config"].is_null() {
        return Some(
            "configures the platform's function (name, memory, timeout, environment)".into(),
        );
    }
    None
}

fn event_text(dir: &Path, inv: &Value) -> Option<String> {
    if let Some(v) = inv.get("event") {
        return Some(v.to_string());
    }
    if let Some(t) = inv.get("eventText") {
        return t.as_str().map(str::to_owned);
    }
    if let Some(f) = inv.get("eventFile").and_then(Value::as_str) {
        return Some(std::fs::read_to_string(dir.join(f)).unwrap());
    }
    if inv.get("eventGenerate").is_some() {
        return None;
    }
    Some("{}".into())
}

fn substitute(v: &Value) -> Value {
    match v {
        Value::String(s) if s == "${requestId}" => Value::from(REQUEST_ID),
        Value::Array(a) => Value::Array(a.iter().map(substitute).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), substitute(x))).collect())
        }
        other => other.clone(),
    }
}

fn matches(pattern: &Value, text: &str) -> bool {
    regex_lite::Regex::new(pattern.as_str().unwrap())
        .unwrap()
        .is_match(text)
}

/// Checks one outcome against one expectation; the error's text says which.
fn check(
    expect: &Value,
    event: &str,
    got: &Result<String, scf_sdk::FunctionError>,
) -> Result<(), String> {
    let Some(err) = expect.get("error") else {
        let body = got
            .as_ref()
            .map_err(|e| format!("expected success, got {e}"))?;
        if let Some(b) = expect["body"].as_str() {
            let want = b.replace("${requestId}", REQUEST_ID);
            if *body != want {
                return Err(format!("body {body:?}, not {want:?}"));
            }
        }
        let parsed = || serde_json::from_str::<Value>(body).map_err(|e| e.to_string());
        if let Some(j) = expect.get("json") {
            if parsed()? != substitute(j) {
                return Err(format!("body {body}, not {j}"));
            }
        }
        if expect["echo"] == true && parsed()? != serde_json::from_str::<Value>(event).unwrap() {
            return Err(format!("body {body} is not the event"));
        }
        if let Some(p) = expect.get("bodyPattern") {
            if !matches(p, body) {
                return Err(format!("body {body} does not match {p}"));
            }
        }
        return Ok(());
    };
    let e = match got {
        Ok(body) => return Err(format!("expected {err}, got the result {body:.200}")),
        Err(e) => e,
    };
    let body: Value = serde_json::from_str(&e.to_body(REQUEST_ID)).unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    if keys
        != [
            "errorCode",
            "errorMessage",
            "errorType",
            "requestId",
            "stackTrace",
            "statusCode",
        ]
    {
        return Err(format!("keys {keys:?}"));
    }
    if body["errorType"] != err["errorType"] || body["statusCode"] != err["statusCode"] {
        return Err(format!("got {body}, expected {err}"));
    }
    if let Some(m) = err.get("errorMessage") {
        if body["errorMessage"] != *m {
            return Err(format!("errorMessage {}, not {m}", body["errorMessage"]));
        }
    }
    if let Some(p) = err.get("errorMessagePattern") {
        if !matches(p, body["errorMessage"].as_str().unwrap()) {
            return Err(format!(
                "errorMessage {} does not match {p}",
                body["errorMessage"]
            ));
        }
    }
    if let Some(p) = err.get("stackTracePattern") {
        if !matches(p, body["stackTrace"].as_str().unwrap()) {
            return Err(format!(
                "stackTrace {} does not match {p}",
                body["stackTrace"]
            ));
        }
    }
    Ok(())
}

#[test]
fn every_case_through_the_local_invoke() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/cases");
    let mut names: Vec<String> = std::fs::read_dir(&suite)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("case.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 40, "{} cases", names.len());
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for name in &names {
        let dir = suite.join(name);
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
        if let Some(why) = skip_reason(name, &case) {
            println!("skip {name}: {why}");
            skipped += 1;
            continue;
        }
        let handler = case["languages"]["rust"]["handler"]
            .as_str()
            .or(case["handler"].as_str())
            .map_or_else(|| format!("conformance.{name}"), str::to_owned);
        let mut checked = 0;
        let mut why_not = None;
        for inv in case["invocations"].as_array().unwrap() {
            let expect = inv.get("rust").unwrap_or(&inv["expect"]);
            if !CHECKED
                .iter()
                .any(|k| expect.get(*k).is_some_and(|v| *v != false))
            {
                continue;
            }
            let Some(event) = event_text(&dir, inv) else {
                why_not = Some("the event is generated by the platform's runner (eventGenerate)");
                break;
            };
            let context = scf_sdk::Context {
                request_id: REQUEST_ID.into(),
                ..scf_sdk::Context::default()
            };
            // A handler string the library cannot resolve fails to load as production's native host does:
            // the same parser and the same texts.
            let got = match resolve(&handler) {
                Err(e) => Err(e),
                Ok(method) => match conformance::invoke_local(&method, &event, Some(context)) {
                    Some(got) => got,
                    None => Err(scf_sdk::FunctionError::handler_not_found(&method)),
                },
            };
            if let Err(why) = check(expect, &event, &got) {
                failures.push(format!("{name}: {why}"));
            }
            checked += 1;
        }
        if checked == 0 {
            println!(
                "skip {name}: {}",
                why_not.unwrap_or("only the log is expected: the platform's runner checks it")
            );
            skipped += 1;
        } else {
            passed += 1;
        }
    }
    println!("{passed} cases checked, {skipped} left to the platform's runner");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passed >= 30, "only {passed} cases checked");
}

/// The method a handler string names in the conformance library (`conformance.<method>`), parsed as the
/// native host parses it; a file other than `conformance` is a missing library, as production reports it.
fn resolve(handler: &str) -> Result<String, scf_sdk::FunctionError> {
    let name = scf_sdk::HandlerName::parse(handler)?;
    if name.file != "conformance" {
        return Err(scf_sdk::FunctionError::module_not_found(&name.file));
    }
    Ok(name.method)
}
