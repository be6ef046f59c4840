//! Reload on save: `serve --watch` for an edited handler, a broken edit and its fix, a Rust crate rebuilt
//! with cargo, and `invoke --watch`.

use super::*;

/// A handler returning `VERSION` and its pid; with `hold`, it marks its start (`started`) and waits for the
/// file `go` first.
fn versioned(version: &str) -> String {
    format!(
        r#"import os, time
VERSION = {version}

def main_handler(event, context):
    if event.get("hold"):
        open(event["started"], "w").close()
        while not os.path.exists(event["go"]):
            time.sleep(0.01)
    return {{"version": VERSION, "pid": os.getpid()}}
"#
    )
}

#[test]
fn watch_reloads_an_edited_handler_and_a_busy_invocation_finishes_on_the_old_code() {
    let f = function_dir(
        "watched",
        "Python3.9",
        "index.py",
        &versioned("1"),
        "  timeout: 60\n  local:\n    concurrency: 2\n",
    );
    let data = TempDir::new("data");
    let marks = TempDir::new("marks");
    let p = Served::start_with_env(
        data.path(),
        &[f.path()],
        &["--watch"],
        &[("SCF_PYTHON", &python_sdk())],
    );
    nth_line(&p, "watching 1 function directory for changes", 1);
    let v1 = ok_body(&p.invoke("watched", &json!({})));
    assert_eq!(v1["version"], 1);

    // A call holds the warm instance while the file changes.
    let (started, go) = (marks.path().join("started"), marks.path().join("go"));
    let held = {
        let addr = p.addr.clone();
        let event = json!({"hold": true, "started": started, "go": go});
        std::thread::spawn(move || {
            let body =
                json!({"FunctionName": "watched", "ClientContext": event.to_string()}).to_string();
            let raw = scf_tests::http_post(&addr, &[("X-TC-Action", "Invoke")], body.as_bytes());
            serde_json::from_slice::<Value>(&raw).unwrap()["Response"].clone()
        })
    };
    wait_for(60, "the held call to start", || {
        started.exists().then_some(())
    });
    save(&f.path().join("index.py"), &versioned("2"));
    let line = nth_line(&p, "reload watched:", 1);
    assert!(
        line.contains("index.py changed; 0 idle instances retired, 1 busy finishing first"),
        "{line}"
    );

    // The next call cold-starts the new code, with no restart, while the busy one is still running.
    let v2 = ok_body(&p.invoke("watched", &json!({})));
    assert_eq!(v2["version"], 2);
    assert_ne!(v2["pid"], v1["pid"]);
    assert!(!held.is_finished(), "the held call is still running");
    std::fs::write(&go, "").unwrap();
    let old = ok_body(&held.join().unwrap());
    assert_eq!(
        (old["version"].as_i64(), &old["pid"]),
        (Some(1), &v1["pid"]),
        "the busy invocation finished on its old instance, unharmed"
    );
    // Its instance is retired after its request: the process goes away.
    let pid = v1["pid"].as_u64().unwrap();
    wait_for(60, "the old instance to be retired", || {
        scf_tests::process_gone(pid).then_some(())
    });
    let again = ok_body(&p.invoke("watched", &json!({})));
    assert_eq!(
        (again["version"].as_i64(), &again["pid"]),
        (Some(2), &v2["pid"])
    );
}

#[test]
fn watch_a_broken_edit_reports_its_load_error_and_a_fixed_edit_recovers() {
    let f = function_dir("fixme", "Python3.9", "index.py", &versioned("1"), "");
    let data = TempDir::new("data");
    let p = Served::start_with_env(
        data.path(),
        &[f.path()],
        &["--watch"],
        &[("SCF_PYTHON", &python_sdk())],
    );
    assert_eq!(ok_body(&p.invoke("fixme", &json!({})))["version"], 1);
    save(
        &f.path().join("index.py"),
        "def main_handler(event, context)\n    return 1\n",
    );
    nth_line(&p, "reload fixme:", 1);
    let e = err_body(&p.invoke("fixme", &json!({})));
    assert_eq!(e["statusCode"], 443, "{e}");
    assert!(
        e["stackTrace"].as_str().unwrap().contains("SyntaxError"),
        "the load error says what is wrong: {e}"
    );
    save(&f.path().join("index.py"), &versioned("3"));
    nth_line(&p, "reload fixme:", 2);
    assert_eq!(ok_body(&p.invoke("fixme", &json!({})))["version"], 3);
    // Changes under ignored directories reload nothing.
    std::fs::create_dir_all(f.path().join("node_modules/dep")).unwrap();
    std::fs::write(f.path().join("node_modules/dep/index.js"), "1").unwrap();
    std::fs::create_dir_all(f.path().join("__pycache__")).unwrap();
    std::fs::write(f.path().join("__pycache__/x.pyc"), "1").unwrap();
    // A later real change is the next reload: nothing came between.
    save(
        &f.path().join("serverless.yml"),
        &format!(
            "{}  timeout: 7\n",
            std::fs::read_to_string(f.path().join("serverless.yml")).unwrap()
        ),
    );
    let third = nth_line(&p, "reload fixme:", 3);
    assert!(third.contains("serverless.yml changed"), "{third}");
}

/// A Rust handler crate with no dependencies (so its first build takes a second): the C ABI by hand,
/// returning `{"version": N}`.
fn handler_crate(version: &str) -> String {
    format!(
        r#"#[repr(C)]
pub struct Request {{ abi: u32, event: *const u8, event_len: usize, context: *const u8, context_len: usize }}
#[repr(C)]
pub struct Buffer {{ data: *const u8, len: usize, cap: usize, free: usize, opaque: usize }}
static OUT: &[u8] = b"{{\"version\": {version}}}";
/// # Safety
/// The platform passes a valid buffer.
#[no_mangle]
pub unsafe extern "C" fn main_handler(_request: *const Request, out: *mut Buffer) -> i32 {{
    unsafe {{ *out = Buffer {{ data: OUT.as_ptr(), len: OUT.len(), cap: OUT.len(), free: 0, opaque: 0 }} }};
    0
}}
"#
    )
}

#[test]
fn watch_rebuilds_a_rust_crate_first_and_a_failed_build_keeps_the_old_instances() {
    let f = TempDir::new("crate");
    std::fs::create_dir_all(f.path().join("src")).unwrap();
    std::fs::write(
        f.path().join("Cargo.toml"),
        "[package]\nname = \"watched-crate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\nname = \"index\"\ncrate-type = [\"cdylib\"]\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(f.path().join("src/lib.rs"), handler_crate("1")).unwrap();
    std::fs::write(
        f.path().join("serverless.yml"),
        "inputs:\n  name: crate\n  runtime: native\n  handler: index.main_handler\n",
    )
    .unwrap();
    let data = TempDir::new("data");
    let target = TempDir::new("crate-target");
    let p = Served::start_with_env(
        data.path(),
        &[f.path()],
        &["--watch"],
        &[("CARGO_TARGET_DIR", target.path().to_str().unwrap())],
    );
    // The first build ran before the platform listened, its progress shown.
    let err = p.stderr();
    assert!(
        err.contains("scf-local: building watched-crate (debug) with cargo build"),
        "{err}"
    );
    assert!(
        err.contains("Compiling watched-crate"),
        "cargo's progress: {err}"
    );
    let v1 = p.invoke("crate", &json!({}));
    assert_eq!(ok_body(&v1)["version"], 1);

    save(&f.path().join("src/lib.rs"), &handler_crate("2"));
    let line = nth_line(&p, "reload crate:", 1);
    assert!(
        line.contains("src/lib.rs changed; 1 idle instance retired"),
        "{line}"
    );
    assert_eq!(ok_body(&p.invoke("crate", &json!({})))["version"], 2);

    // A build that fails keeps the instance that runs, and says what cargo said.
    save(&f.path().join("src/lib.rs"), "pub fn broken( {\n");
    let line = nth_line(&p, "reload crate:", 2);
    assert!(
        line.contains("build failed: the old instances stay"),
        "{line}"
    );
    assert!(
        p.stderr().contains("error"),
        "cargo's error is shown: {}",
        p.stderr()
    );
    let kept = p.invoke("crate", &json!({}));
    assert_eq!(ok_body(&kept)["version"], 2);
    assert!(
        !kept["Result"]["Log"]
            .as_str()
            .unwrap_or("")
            .contains("Init Report"),
        "the old instance served it, warm"
    );
    save(&f.path().join("src/lib.rs"), &handler_crate("3"));
    nth_line(&p, "reload crate:", 3);
    assert_eq!(ok_body(&p.invoke("crate", &json!({})))["version"], 3);
    // The build's own output (under cargo's target directory) never triggered a reload by itself.
    assert_eq!(
        p.stderr().matches("reload crate:").count(),
        3,
        "{}",
        p.stderr()
    );
}

#[test]
fn invoke_watch_runs_again_on_each_save_until_stopped() {
    let f = function_dir("again", "Python3.9", "index.py", &versioned("1"), "");
    let mut run = Running::start(
        Command::new(bin("scf-local"))
            .arg("invoke")
            .arg(f.path())
            .arg("--watch")
            .env("SCF_PYTHON", python_sdk()),
    );
    let body = |n: usize| {
        wait_for(120, &format!("run {n}"), || {
            run.stdout()
                .lines()
                .nth(n - 1)
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
        })
    };
    assert_eq!(body(1)["version"], 1);
    wait_for(60, "the watch to begin", || {
        run.stderr().contains("watching").then_some(())
    });
    save(&f.path().join("index.py"), &versioned("2"));
    assert_eq!(body(2)["version"], 2);
    assert!(
        run.stderr()
            .contains("reload again: index.py changed; invoking again"),
        "{}",
        run.stderr()
    );
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(run.child.id().to_string())
        .status();
    assert_eq!(run.wait("invoke --watch to stop"), 0);
}

// ---- debuggers -----------------------------------------------------------------------------------------
