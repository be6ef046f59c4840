//! The Python zygote (`docs/architecture.md`, "The Python zygote"; `docs/python.md`): Python instances
//! forked from a pre-initialised interpreter are isolated from each other as spawned ones are, are owned by
//! the platform (their parent, their limits, their teardown), survive their zygote's death, and pass the
//! conformance suite with the zygote on and off.
//!
//! Each test runs the real `scf-local` with real instances (`make build` first).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use scf_tests::{
    Served, TempDir, bin, err_body, function_dir, ok_body, process_gone, python_sdk, wait_for,
};
use serde_json::{Value, json};

/// The functions' code: what an instance can tell about itself, and the ways an instance ends.
const CODE: &str = r#"import os, random, socket, subprocess, sys, time

IMPORT_RANDOM = random.random()
COUNTER = 0
CONN = None
if os.environ.get("CONN_PORT"):
    # A connection opened at import, as a function opens its database's.
    CONN = socket.create_connection(("127.0.0.1", int(os.environ["CONN_PORT"])))
    CONN.sendall(("%d\n" % os.getpid()).encode())


def forked():
    with open("/proc/self/cmdline", "rb") as f:
        return b"zygote()" in f.read()


def main_handler(event, context):
    global COUNTER
    COUNTER += 1
    child = None
    if event.get("child"):
        child = subprocess.Popen(["sleep", "1000"]).pid
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "forked": forked(),
        "own": sorted(k for k in os.environ if k.startswith("ONLY_")),
        # The C environment (what a child process inherits) and `os.environb` agree with `os.environ`.
        "c_own": sorted(
            line.split("=")[0]
            for line in subprocess.run(["env"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("ONLY_")
        ),
        "b_own": sorted(k.decode() for k in os.environb if k.startswith(b"ONLY_")),
        "import_random": IMPORT_RANDOM,
        "random": random.random(),
        "counter": COUNTER,
        "cwd": os.getcwd(),
        "tmpdir": os.environ.get("TMPDIR"),
        "threads": len(os.listdir("/proc/self/task")),
        "conn": CONN.getsockname()[1] if CONN else None,
        "child": child,
    }


def sleeps(event, context):
    if event.get("probe"):
        return main_handler(event, context)
    time.sleep(30)
    return "late"


def allocates(event, context):
    if event.get("probe"):
        return main_handler(event, context)
    block = b"x" * (event["mb"] * 1024 * 1024)
    return len(block)


def exits(event, context):
    if event.get("probe"):
        return main_handler(event, context)
    print("about to exit", flush=True)
    os._exit(3)
"#;

fn function(name: &str, handler: &str, yml: &str) -> TempDir {
    let dir = function_dir(name, "Python3.9", "index.py", CODE, yml);
    let file = dir.path().join("serverless.yml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("index.main_handler", handler);
    std::fs::write(file, text).unwrap();
    dir
}

fn serve(dirs: &[&TempDir], env: &[(&str, &str)]) -> (TempDir, Served) {
    let data = TempDir::new("zygote-data");
    let python = python_sdk();
    let mut all = vec![("SCF_PYTHON", python.as_str())];
    all.extend_from_slice(env);
    let paths: Vec<&std::path::Path> = dirs.iter().map(|d| d.path()).collect();
    let served = Served::start_with_env(data.path(), &paths, &[], &all);
    (data, served)
}

/// The pids of the platform's zygotes: its children running the zygote's bootstrap, not forked instances.
fn zygotes(platform: u32) -> Vec<u32> {
    children(platform)
        .into_iter()
        .filter(|(_, cwd, cmdline)| {
            cmdline.contains("import zygote") && cwd == std::path::Path::new("/")
        })
        .map(|(pid, ..)| pid)
        .collect()
}

/// The forked instance of the function in `dir` as the machine sees it: a child of the platform (it is the
/// parent of every forked instance; a spawned one is its init's child) in that directory.
fn forked_instance(platform: u32, dir: &std::path::Path) -> Option<u32> {
    let dir = std::fs::canonicalize(dir).unwrap();
    children(platform)
        .into_iter()
        .find(|(_, cwd, _)| *cwd == dir)
        .map(|(pid, ..)| pid)
}

/// The pid a process of the machine has inside its own PID namespace (the last `NSpid` field).
fn pid_inside(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// The pid on the machine of the init (its outer process, a child of `platform`) whose PID namespace the
/// process `pid` of the machine is in.
fn init_of(platform: u32, pid: u32) -> Option<u32> {
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    children(platform)
        .into_iter()
        .filter(|(_, _, cmdline)| cmdline.contains("--scf-instance-init"))
        .map(|(init, ..)| init)
        .find(|init| {
            std::fs::read_link(format!("/proc/{init}/ns/pid_for_children")).ok() == Some(ns.clone())
        })
}

/// The live children of `platform`: pid, working directory, command line.
fn children(platform: u32) -> Vec<(u32, std::path::PathBuf, String)> {
    all_children(platform)
        .into_iter()
        .filter(|(_, state, ..)| state != "Z")
        .map(|(pid, _, cwd, cmdline)| (pid, cwd, cmdline))
        .collect()
}

/// Every child of `platform`, zombies included: pid, state, working directory, command line.
fn all_children(platform: u32) -> Vec<(u32, String, std::path::PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1) != Some(&platform.to_string().as_str()) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        // Forked instances run the zygote's command line, in their code directories; the zygote in `/`.
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        found.push((
            pid,
            fields[0].to_owned(),
            cwd,
            String::from_utf8_lossy(&cmdline).into_owned(),
        ));
    }
    found
}

/// Whether `pid` is gone from `/proc` altogether (exited and reaped).
fn reaped(pid: u64) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn two_forked_instances_of_two_functions_each_see_only_their_own_world() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let conn = format!("      CONN_PORT: '{port}'\n");
    let a = function(
        "zy-a",
        "index.main_handler",
        &format!("  environment:\n    variables:\n      ONLY_A: a\n{conn}"),
    );
    let b = function(
        "zy-b",
        "index.main_handler",
        &format!("  environment:\n    variables:\n      ONLY_B: b\n{conn}"),
    );
    let (_data, p) = serve(&[&a, &b], &[]);
    let ra = ok_body(&p.invoke("zy-a", &json!({})));
    let rb = ok_body(&p.invoke("zy-b", &json!({})));
    for (r, own, dir) in [(&ra, "ONLY_A", &a), (&rb, "ONLY_B", &b)] {
        assert_eq!(r["forked"], true, "{r}");
        assert_eq!(r["own"], json!([own]), "{r}");
        assert_eq!(r["c_own"], json!([own]), "{r}");
        assert_eq!(r["b_own"], json!([own]), "{r}");
        // The platform is the instance's parent (outside its PID namespace: 0 inside), and the instance
        // leads its own process group.
        assert_eq!(r["ppid"].as_u64(), Some(0), "{r}");
        let outside = forked_instance(p.pid(), dir.path()).expect("the platform's forked child");
        assert_eq!(pid_inside(outside), r["pid"].as_u64(), "{r}");
        // Inside, its pid is its init's on the machine, as a spawned function's process's is: the init set
        // it before the zygote's child forked the instance.
        assert_eq!(
            init_of(p.pid(), outside).map(u64::from),
            r["pid"].as_u64(),
            "{r}"
        );
        assert_eq!(r["pgid"], r["pid"], "{r}");
        assert_eq!(r["threads"], 1, "{r}");
        assert_eq!(
            std::fs::canonicalize(r["cwd"].as_str().unwrap()).unwrap(),
            std::fs::canonicalize(dir.path()).unwrap()
        );
        // Its own /tmp (a tmpfs of its mount namespace).
        assert_eq!(r["tmpdir"], "/tmp", "{r}");
        assert_eq!(r["counter"], 1, "{r}");
    }
    assert_ne!(ra["pid"], rb["pid"]);
    // Each its own /tmp: each in its own mount namespace.
    let mnt = |dir: &TempDir| {
        let pid = forked_instance(p.pid(), dir.path()).unwrap();
        std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap()
    };
    assert_ne!(mnt(&a), mnt(&b));
    // Re-seeded per process: what `random` gives at import and later differs between fresh instances.
    assert_ne!(ra["import_random"], rb["import_random"]);
    assert_ne!(ra["random"], rb["random"]);
    // The module-level connection is the instance's own: user code never ran in the zygote.
    assert_ne!(ra["conn"], rb["conn"]);
    let mut pids = Vec::new();
    for _ in 0..2 {
        let (s, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        pids.push(line.trim().parse::<u64>().unwrap());
    }
    pids.sort_unstable();
    let mut expected = vec![ra["pid"].as_u64().unwrap(), rb["pid"].as_u64().unwrap()];
    expected.sort_unstable();
    assert_eq!(pids, expected, "each instance opened its own connection");
    // A warm instance keeps its globals, as a spawned one does.
    let again = ok_body(&p.invoke("zy-a", &json!({})));
    assert_eq!(
        (again["pid"].clone(), again["counter"].clone()),
        (ra["pid"].clone(), json!(2))
    );
    // Both came from one zygote (same interpreter, same Python-relevant environment).
    assert_eq!(zygotes(p.pid()).len(), 1);
}

#[test]
fn a_dead_zygote_is_restarted_and_its_instances_live_on() {
    let a = function("zy-live", "index.main_handler", "");
    let b = function("zy-next", "index.main_handler", "");
    let (_data, p) = serve(&[&a, &b], &[]);
    let first = ok_body(&p.invoke("zy-live", &json!({})));
    assert_eq!(first["forked"], true, "{first}");
    let old = zygotes(p.pid());
    assert_eq!(old.len(), 1, "{old:?}");
    let killed = Command::new("kill")
        .args(["-KILL", &old[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for(60, "the zygote to die", || {
        process_gone(u64::from(old[0])).then_some(())
    });
    // The instance forked before lives on, warm.
    let warm = ok_body(&p.invoke("zy-live", &json!({})));
    assert_eq!(
        (warm["pid"].clone(), warm["counter"].clone()),
        (first["pid"].clone(), json!(2))
    );
    // A new instance comes from a new zygote.
    let next = ok_body(&p.invoke("zy-next", &json!({})));
    assert_eq!(next["forked"], true, "{next}");
    let new = zygotes(p.pid());
    assert_eq!(new.len(), 1, "{new:?}");
    assert_ne!(new[0], old[0]);
    // The dead one was reaped: no zombie of it is left.
    wait_for(60, "the old zygote to be reaped", || {
        reaped(u64::from(old[0])).then_some(())
    });
}

#[test]
fn forked_instances_get_the_timeout_the_memory_size_and_the_exit_of_spawned_ones() {
    let t = function("zy-timeout", "index.sleeps", "  timeout: 2\n");
    let m = function("zy-memory", "index.allocates", "  memorySize: 128\n");
    let x = function("zy-exit", "index.exits", "");
    let (_data, p) = serve(&[&t, &m, &x], &[]);

    let probe = ok_body(&p.invoke("zy-timeout", &json!({"probe": true})));
    assert_eq!(probe["forked"], true, "{probe}");
    let e = err_body(&p.invoke("zy-timeout", &json!({})));
    assert_eq!(
        (e["statusCode"].as_u64(), e["errorType"].as_str()),
        (Some(433), Some("Timeout")),
        "{e}"
    );
    let pid = probe["pid"].as_u64().unwrap();
    wait_for(60, "the timed-out instance to be reaped", || {
        reaped(pid).then_some(())
    });

    let probe = ok_body(&p.invoke("zy-memory", &json!({"probe": true})));
    assert_eq!(probe["forked"], true, "{probe}");
    let e = err_body(&p.invoke("zy-memory", &json!({"mb": 400})));
    assert_eq!(e["statusCode"], 434, "{e}");
    assert_eq!(e["errorMessage"], "Task memory exceeded 128 MB", "{e}");
    let pid = probe["pid"].as_u64().unwrap();
    wait_for(60, "the instance past its memory to be reaped", || {
        reaped(pid).then_some(())
    });

    // An exit takes everything the instance started with it, and nothing is left a zombie.
    let probe = ok_body(&p.invoke("zy-exit", &json!({"probe": true, "child": true})));
    assert_eq!(probe["forked"], true, "{probe}");
    let child = probe["child"].as_u64().unwrap();
    let e = err_body(&p.invoke("zy-exit", &json!({})));
    assert_eq!(e["statusCode"], 439, "{e}");
    assert_eq!(e["stackTrace"], "exit status 3", "{e}");
    let pid = probe["pid"].as_u64().unwrap();
    wait_for(60, "the exited instance to be reaped", || {
        reaped(pid).then_some(())
    });
    wait_for(60, "the instance's child to be gone and reaped", || {
        reaped(child).then_some(())
    });
    // And the next invocation gets a fresh forked instance.
    let fresh = ok_body(&p.invoke("zy-exit", &json!({"probe": true})));
    assert_eq!(fresh["forked"], true, "{fresh}");
    assert_ne!(fresh["pid"].as_u64(), Some(pid));
}

#[test]
fn with_the_zygote_off_instances_start_their_interpreter_and_behave_the_same() {
    let a = function(
        "zy-off",
        "index.main_handler",
        "  environment:\n    variables:\n      ONLY_A: a\n",
    );
    let (_data, p) = serve(&[&a], &[("SCF_LOCAL_ZYGOTE", "off")]);
    assert!(
        p.stderr()
            .contains("python: no zygote (SCF_LOCAL_ZYGOTE=off)"),
        "{}",
        p.stderr()
    );
    let r = ok_body(&p.invoke("zy-off", &json!({})));
    assert_eq!(r["forked"], false, "{r}");
    assert_eq!(r["own"], json!(["ONLY_A"]));
    // Started by its init, PID 1 of its namespace.
    assert_eq!(r["ppid"].as_u64(), Some(1));
    assert!(zygotes(p.pid()).is_empty());
}

#[test]
fn the_no_zygote_flag_starts_the_interpreter_and_by_default_instances_fork() {
    let dir = function("zy-flag", "index.main_handler", "");
    let invoke = |flags: &[&str]| -> Value {
        let out = Command::new(bin("scf-local"))
            .args(flags)
            .arg("invoke")
            .arg(dir.path())
            .env("SCF_PYTHON", python_sdk())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let off = invoke(&["--no-zygote"]);
    assert_eq!(off["forked"], false, "{off}");
    let on = invoke(&[]);
    assert_eq!(on["forked"], true, "{on}");
}

#[test]
fn a_code_directory_with_its_own_sdk_starts_the_normal_way_and_its_copy_wins() {
    let dir = function("zy-vendored", "index.main_handler", "");
    let text = std::fs::read_to_string(dir.path().join("index.py")).unwrap();
    std::fs::write(
        dir.path().join("index.py"),
        format!("{text}\n\ndef sdk(event, context):\n    import scf_sdk\n    return dict(main_handler(event, context), sdk=scf_sdk.__file__)\n"),
    )
    .unwrap();
    let vendored = dir.path().join("scf_sdk");
    std::fs::create_dir(&vendored).unwrap();
    for entry in std::fs::read_dir(scf_tests::root().join("sdk-python/python/scf_sdk")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), vendored.join(entry.file_name())).unwrap();
        }
    }
    let yml = dir.path().join("serverless.yml");
    let y = std::fs::read_to_string(&yml)
        .unwrap()
        .replace("index.main_handler", "index.sdk");
    std::fs::write(&yml, y).unwrap();
    let (_data, p) = serve(&[&dir], &[]);
    let r = ok_body(&p.invoke("zy-vendored", &json!({})));
    // The zygote had imported the bundled SDK: the instance was forked, then started the normal way in the
    // same process, so the code directory's copy is the one imported.
    assert_eq!(r["forked"], false, "{r}");
    assert_eq!(
        std::fs::canonicalize(r["sdk"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(vendored.join("__init__.py")).unwrap()
    );
    assert_eq!(r["ppid"].as_u64(), Some(0), "{r}");
    assert!(forked_instance(p.pid(), dir.path()).is_some());
    assert_eq!(r["own"], json!([]));
}

fn conformance(zygote: &str) -> String {
    bin("libconformance.so");
    let out = Command::new(bin("scf-local"))
        .args(["conformance", "--language", "python"])
        .env("SCF_PYTHON", python_sdk())
        .env("SCF_LOCAL_ZYGOTE", zygote)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "zygote {zygote}:\n{text}");
    text
}

#[test]
fn conformance_passes_with_the_zygote_on_and_off() {
    let on = conformance("on");
    let off = conformance("off");
    let summary = |t: &str| {
        let line = t
            .lines()
            .rev()
            .find(|l| l.contains(" cells: "))
            .unwrap()
            .to_owned();
        // Drop the timing: `(… s)`.
        line[..line.rfind(" (").unwrap_or(line.len())].to_owned()
    };
    assert_eq!(summary(&on), summary(&off));
    assert!(summary(&on).contains(" 0 FAIL"), "{on}");
}

/// A function that returns its environment three ways: the C one (what `env` inherits), `os.environb` and
/// `os.environ`, each as sorted `[name, value]` pairs decoded the file system's way.
const ENV_CODE: &str = r#"import os, subprocess


def forked():
    with open("/proc/self/cmdline", "rb") as f:
        return b"zygote()" in f.read()


def main_handler(event, context):
    out = subprocess.run(["env", "-0"], capture_output=True, check=True).stdout
    c = [e.partition(b"=") for e in out.split(b"\0") if e]
    return {
        "forked": forked(),
        "environ": type(os.environ).__name__,
        "c": sorted([os.fsdecode(k), os.fsdecode(v)] for k, _, v in c),
        "b": sorted([os.fsdecode(k), os.fsdecode(v)] for k, v in os.environb.items()),
        "s": sorted([k, v] for k, v in os.environ.items()),
    }
"#;

#[test]
fn a_forked_instances_c_environment_environb_and_environ_agree_even_with_environ_replaced() {
    // Values as the cloud may give them: `=` inside, non-ASCII (two, three and four bytes in UTF-8), empty.
    let vars =
        "  environment:\n    variables:\n      EQ: 'a=b=c'\n      UNI: 'é✓😀'\n      EMPTY: ''\n";
    let plain = function_dir("zy-env", "Python3.9", "index.py", ENV_CODE, vars);
    // A `sitecustomize` (run by `site` in the zygote, before any fork) that replaces `os.environ` with a
    // mapping without the bytes dict `_data`: the zygote refills it through its mapping.
    let site = TempDir::new("zy-site");
    std::fs::write(
        site.path().join("sitecustomize.py"),
        "import os\nos.environ = dict(os.environ)\n",
    )
    .unwrap();
    let replaced = function_dir(
        "zy-env-replaced",
        "Python3.9",
        "index.py",
        ENV_CODE,
        &format!("{vars}      PYTHONPATH: '{}'\n", site.path().display()),
    );
    let (_data, p) = serve(&[&plain, &replaced], &[]);
    for (name, environ) in [("zy-env", "_Environ"), ("zy-env-replaced", "dict")] {
        let r = ok_body(&p.invoke(name, &json!({})));
        assert_eq!(r["forked"], true, "{name}: {r}");
        assert_eq!(r["environ"], environ, "{name}: {r}");
        assert_eq!(r["c"], r["b"], "{name}: the C environment and os.environb");
        assert_eq!(r["c"], r["s"], "{name}: the C environment and os.environ");
        let pairs = r["s"].as_array().unwrap();
        for (k, v) in [("EQ", "a=b=c"), ("UNI", "é✓😀"), ("EMPTY", "")] {
            assert!(pairs.contains(&json!([k, v])), "{name}: {k}={v} in {r}");
        }
        assert!(
            pairs
                .iter()
                .any(|kv| kv[0] == "SCF_FUNCTIONNAME" && kv[1] == name),
            "{name}: {r}"
        );
    }
    // Two zygotes: PYTHONPATH shapes the interpreter, so the replaced `os.environ` is that function's alone.
    assert_eq!(zygotes(p.pid()).len(), 2);
}

#[test]
fn an_init_that_fails_its_expect_is_reported_and_its_forked_instance_killed_and_reaped() {
    let dir = function("zy-expect", "index.main_handler", "");
    // The test switch (the supervisor's `FAIL_FIRST_EXPECT_ENV`): the first forked instance's init
    // refuses what it is sent in place of its `Expect`.
    let (_data, p) = serve(&[&dir], &[("_SCF_TEST_FAIL_FIRST_EXPECT", "1")]);
    let r = p.invoke("zy-expect", &json!({}));
    let e = err_body(&r);
    // Classified: the platform's own failure (the init), not the function's, with the init's error.
    assert_eq!(e["errorType"], "InternalError", "{r}");
    assert_eq!(e["statusCode"], 500, "{r}");
    let detail = e["stackTrace"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("the instance's init: not a request"),
        "{r}"
    );
    // The zygote forks the instance whatever the init answers (the two are asked side by side): that child,
    // which never gets its `go` byte, is killed and reaped, with no zombie and no orphan left (the platform is the subreaper, so
    // an orphan of the instance would be its child too).
    let code = std::fs::canonicalize(dir.path()).unwrap();
    wait_for(60, "the failed instance's processes gone", || {
        let kids = all_children(p.pid());
        (!kids
            .iter()
            .any(|(_, state, cwd, _)| state == "Z" || *cwd == code))
        .then_some(())
    });
    assert_eq!(zygotes(p.pid()).len(), 1, "the zygote lives on");
    // The next invocation of the same function forks an instance that works.
    let ok = ok_body(&p.invoke("zy-expect", &json!({})));
    assert_eq!(ok["forked"], true, "{ok}");
    assert_eq!(ok["counter"], 1, "{ok}");
    assert!(forked_instance(p.pid(), dir.path()).is_some());
}
