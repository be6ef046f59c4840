//! The web console of `scf-local serve` in a real browser: headless Chromium (Debian's `chromium`) driven over
//! the DevTools protocol by `tests/console/drive.mjs`: the page loads and goes live, lists the functions, an
//! invocation from its form answers, the invocation and its new warm instance appear live, and its row opens
//! its log. Around it, over plain HTTP: the login token when signatures are verified, and loopback only.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use scf_tests::{Served, TempDir, function_dir, python_sdk, root, wait_for};
use serde_json::Value;

/// The example functions, each with a `serverless.yml` naming it.
fn examples() -> Vec<TempDir> {
    [
        ("python-hello", "Python3.9", "index.py"),
        ("node-hello", "Nodejs16.13", "index.js"),
    ]
    .into_iter()
    .map(|(name, runtime, file)| {
        let code = std::fs::read_to_string(root().join("examples").join(name).join(file)).unwrap();
        function_dir(name, runtime, file, &code, "")
    })
    .collect()
}

/// Runs the browser driver on `url`; returns what it saw.
fn drive(url: &str, function: &str, shots: Option<&Path>) -> Value {
    let chromium = std::env::var("SCF_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: this test needs Debian's chromium (apt-get install chromium; .ci/run does)"
    );
    let out = Command::new("node")
        .arg("--experimental-websocket")
        .arg(root().join("tests/console/drive.mjs"))
        .args([url, function])
        .args(shots)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser driver failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `GET path` with `host` as the Host header: (status, body).
fn get(addr: &str, path: &str, host: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw.split_once("\r\n\r\n").unwrap().1.to_owned())
}

#[test]
fn the_console_in_chromium_lists_functions_invokes_one_and_shows_it_live_with_its_log() {
    let fns = examples();
    let dirs: Vec<&Path> = fns.iter().map(TempDir::path).collect();
    let data = TempDir::new("data");
    let p = Served::start_with_env(data.path(), &dirs, &[], &[("SCF_PYTHON", &python_sdk())]);
    let url = format!("http://{}/console", p.addr);
    wait_for(60, "the console's line in the banner", || {
        p.stderr()
            .contains(&format!("scf-local: console: {url}\n"))
            .then_some(())
    });
    // SCF_CONSOLE_SHOTS=DIR keeps the screenshots (docs/console.md's come from it).
    let shots = std::env::var_os("SCF_CONSOLE_SHOTS").map(std::path::PathBuf::from);
    let seen = drive(&url, "python-hello", shots.as_deref());

    let mut listed: Vec<&str> = seen["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, ["node-hello", "python-hello"], "{seen}");
    let body: Value = serde_json::from_str(seen["result"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["message"], "Hello, the browser!", "{seen}");
    let id = seen["invocation"]["request_id"].as_str().unwrap();
    assert_eq!(body["request_id"], id, "the live row is this invocation");
    assert!(
        seen["result"]["status"].as_str().unwrap().starts_with("ok"),
        "{seen}"
    );
    let row = seen["invocation"]["text"].as_str().unwrap();
    for word in ["python-hello", "sync", "ok", "cold"] {
        assert!(row.split('\t').any(|c| c == word), "{word} in {row:?}");
    }
    let instance = seen["instance"].as_str().unwrap();
    assert!(
        instance.starts_with("python-hello\t") && instance.contains("warm idle"),
        "{instance}"
    );
    let log = seen["log"].as_str().unwrap();
    assert!(
        log.contains(&format!("START RequestId:{id}")) && log.contains("greeting the browser"),
        "{log}"
    );
    assert_eq!(
        seen["foreign"],
        serde_json::json!([]),
        "nothing fetched outside loopback"
    );
    assert_eq!(
        seen["errors"],
        serde_json::json!([]),
        "no script errors on the page"
    );
    // The store agrees: the invocation the page showed is the one logged.
    let logs = p.call(
        "GetFunctionLogs",
        &serde_json::json!({"FunctionName": "python-hello"}),
    );
    assert_eq!(logs["Data"][0]["RequestId"], id, "{logs}");
}

#[test]
fn with_a_signature_key_the_console_wants_the_printed_login_and_answers_loopback_names_only() {
    let fns = examples();
    let dirs: Vec<&Path> = fns.iter().map(TempDir::path).collect();
    let data = TempDir::new("data");
    let p = Served::start_with_env(
        data.path(),
        &dirs,
        &["--secret-id", "AKIDconsole", "--secret-key", "console-key"],
        &[("SCF_PYTHON", &python_sdk())],
    );
    let login = wait_for(60, "the login link in the banner", || {
        p.stderr()
            .lines()
            .find_map(|l| l.strip_prefix("scf-local: console: "))
            .map(str::to_owned)
    });
    assert!(login.contains("/console/login?token="), "{login}");
    let host = p.addr.clone();
    assert_eq!(get(&p.addr, "/console", &host).0, 401);
    assert_eq!(get(&p.addr, "/console/api/state", &host).0, 401);
    let (wrong, _) = get(&p.addr, "/console/login?token=not-the-token", &host);
    assert_eq!(wrong, 403);
    // A page elsewhere whose name was rebound to 127.0.0.1 is refused, login or not.
    let path = login.split_once(&p.addr).unwrap().1;
    assert_eq!(get(&p.addr, path, "evil.example:80").0, 403);
    // In the browser, the printed link logs in and the console works.
    let seen = drive(&login, "node-hello", None);
    let body: Value = serde_json::from_str(seen["result"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["message"], "Hello, the browser!", "{seen}");
    let id = seen["invocation"]["request_id"].as_str().unwrap();
    assert!(
        seen["log"]
            .as_str()
            .unwrap()
            .contains(&format!("Hello from node-hello (request {id})")),
        "{seen}"
    );
}
