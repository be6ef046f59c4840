//! Isolation, tried the way a hostile function would (`docs/reliability.md`): what an instance can see of
//! the platform and of other functions.
//!
//! Each test runs the real `scf-local` with real instances (`make build` first).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use scf_tests::{Run, TempDir, bin, function_dir, python_sdk};

/// Platform variables no instance may see: credentials and anything not on the documented allowlist.
const SECRETS: &[(&str, &str)] = &[
    ("TENCENTCLOUD_SECRETKEY", "platform-secret-key"),
    ("AWS_SECRET_ACCESS_KEY", "platform-aws-secret"),
    ("HTTPS_PROXY", "http://user:password@proxy.invalid:3128"),
    ("SOME_PLATFORM_SETTING", "the-platform-only"),
];

/// `scf-local invoke <dir> <args…>` with exactly `SECRETS` and an allowlisted `PATH`, `HOME`, `LANG`, `TZ`
/// (plus `SCF_PYTHON`) as the platform's environment.
fn invoke_with_secrets(dir: &std::path::Path, args: &[&str]) -> Run {
    invoke_isolated(dir, args, &[])
}

/// [`invoke_with_secrets`] with `settings` added to the platform's environment (`SCF_LOCAL_NAMESPACES=off`…).
fn invoke_isolated(dir: &std::path::Path, args: &[&str], settings: &[(&str, &str)]) -> Run {
    let out = Command::new(bin("scf-local"))
        .arg("invoke")
        .arg(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .env("TZ", "UTC")
        .env("SCF_PYTHON", python_sdk())
        .envs(SECRETS.iter().copied())
        .envs(settings.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from(out)
}

/// A custom runtime whose `bootstrap` logs the names of its own whole environment (`/proc/$$/environ`: what
/// the platform started it with), then answers one invocation.
const ENV_BOOTSTRAP: &str = r#"#!/bin/bash
set -euo pipefail
tr '\0' '\n' < /proc/$$/environ | cut -d= -f1 | sed 's/^/ENV /'
API="http://$SCF_RUNTIME_API:$SCF_RUNTIME_API_PORT"
curl -sS -d " " -X POST "$API/runtime/init/ready"
while true; do
  curl -sS -o /dev/null -X GET "$API/runtime/invocation/next"
  curl -sS -X POST "$API/runtime/invocation/response" -d '"listed"'
done
"#;

#[test]
fn an_instances_whole_environment_is_the_documented_set_and_nothing_of_the_platforms() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("env-custom");
    let p = dir.path().join("bootstrap");
    std::fs::write(&p, ENV_BOOTSTRAP).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = invoke_with_secrets(
        dir.path(),
        &[
            "--runtime",
            "CustomRuntime",
            "--handler",
            "index.main",
            "--env",
            "MY_SETTING=mine",
        ],
    );
    assert_eq!(run.expect_ok(), "listed");
    let names: BTreeSet<&str> = run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .filter_map(|l| l.strip_prefix("ENV "))
        .collect();
    // docs/reliability.md: the documented SCF variables, the runtime API's, the function's own, and the
    // allowlisted variables the platform has (here PATH, HOME, LANG, TZ, SCF_PYTHON).
    let expected: BTreeSet<&str> = [
        "_HANDLER",
        "SCF_RUNTIME",
        "SCF_RUNTIME_API",
        "SCF_RUNTIME_API_PORT",
        "USER_CODE_ROOT",
        "SCF_FUNCTIONNAME",
        "SCF_NAMESPACE",
        "SCF_FUNCTIONVERSION",
        "TENCENTCLOUD_REGION",
        "TENCENTCLOUD_APPID",
        "TENCENTCLOUD_UIN",
        "TENCENTCLOUD_RUNENV",
        "TMPDIR",
        "SCF_FUNCTION_ENV_KEYS",
        "MY_SETTING",
        "PATH",
        "HOME",
        "LANG",
        "TZ",
        "SCF_PYTHON",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, expected, "{run:#?}");
}

#[test]
fn a_python_function_finds_no_platform_secret_in_its_environment() {
    // What the interpreter was started with (`/proc/self/environ`) and what it holds now (`os.environ`).
    let code = r#"import os

def main_handler(event, context):
    with open("/proc/self/environ", "rb") as f:
        started = f.read().decode("utf-8", "replace")
    return {"environ": dict(os.environ), "started": started}
"#;
    let f = function_dir("env-python", "Python3.9", "index.py", code, "");
    let run = invoke_with_secrets(f.path(), &[]);
    let body = run.expect_ok();
    let text = body.to_string();
    for (k, v) in SECRETS {
        assert!(!text.contains(k), "{k} reached the function: {text}");
        assert!(
            !text.contains(v),
            "the value of {k} reached the function: {text}"
        );
    }
    assert_eq!(body["environ"]["SCF_FUNCTIONNAME"], "env-python");
}

/// Whether `/proc/<pid>/<file>` mentions `text`.
fn proc_mentions(pid: u32, file: &str, text: &str) -> bool {
    let raw = std::fs::read(format!("/proc/{pid}/{file}")).unwrap();
    raw.windows(text.len()).any(|w| w == text.as_bytes())
}

/// A `serve` given its SecretKey in `TENCENTCLOUD_SECRETKEY` or `--secret-key-file` holds it (unsigned
/// calls are refused) but shows it in neither its `/proc/PID/environ` nor its `/proc/PID/cmdline`, which
/// processes of the same user (its functions, without PID namespaces) can read.
#[test]
fn the_secret_key_is_in_neither_the_platforms_environ_nor_its_cmdline() {
    let key = "isolation-test-secret-key-value";
    let f = native_function_dir();
    let check = |p: &scf_tests::Served| {
        let r = p.invoke("hello", &serde_json::json!({}));
        assert_eq!(
            r["Error"]["Code"], "AuthFailure.InvalidAuthorization",
            "the key was received: unsigned calls are refused: {r}"
        );
        for file in ["environ", "cmdline"] {
            assert!(
                !proc_mentions(p.pid(), file, key),
                "the SecretKey is in /proc/{}/{file}",
                p.pid()
            );
        }
    };
    let data = TempDir::new("secret-env");
    let p = scf_tests::Served::start_with_env(
        data.path(),
        &[f.path()],
        &[],
        &[
            ("TENCENTCLOUD_SECRETID", "AKIDisolationtest"),
            ("TENCENTCLOUD_SECRETKEY", key),
        ],
    );
    check(&p);
    drop(p);

    let files = TempDir::new("secret-file");
    let key_file = files.path().join("key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let key_file = key_file.display().to_string();
    let p = scf_tests::Served::start(
        files.path(),
        &[f.path()],
        &[
            "--secret-id",
            "AKIDisolationtest",
            "--secret-key-file",
            &key_file,
        ],
    );
    check(&p);
    assert!(!p.stderr().contains("warning"), "{}", p.stderr());
    // The banner says which isolation is in force (its lines may follow the `listening` one).
    scf_tests::wait_for(60, "the isolation line of the banner", || {
        p.stderr()
            .contains("scf-local: isolation: environment built from nothing: on; ")
            .then_some(())
    });
}

/// The function's result in an `Invoke` answer that succeeded.
fn ok_body(r: &serde_json::Value) -> serde_json::Value {
    assert_eq!(r["Result"]["InvokeResult"], 0, "{r}");
    serde_json::from_str(r["Result"]["RetMsg"].as_str().unwrap()).unwrap()
}

/// The pids of the machine's processes whose command line is exactly `args`.
fn processes_running(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .filter(|pid| !scf_tests::process_gone(u64::from(*pid)))
        .collect()
}

/// A child that leaves the instance's process group (`setsid`) still dies with the instance: with the
/// instance's PID namespace (its init is PID 1), and without namespaces or cgroups (its init is a child
/// subreaper that kills what the instance left). The child's command line names it: inside a PID namespace
/// its pid means nothing to the machine.
#[test]
fn a_setsid_child_dies_with_its_instance_with_namespaces_and_without() {
    for (case, settings) in [
        ("namespaces", &[][..]),
        (
            "subreaper",
            &[("SCF_LOCAL_NAMESPACES", "off"), ("SCF_LOCAL_CGROUP", "off")][..],
        ),
    ] {
        let seconds = format!("600.{}{}", std::process::id(), case.len());
        let code = format!(
            "import subprocess\n\ndef main_handler(event, context):\n    \
             subprocess.Popen([\"sleep\", \"{seconds}\"], start_new_session=True)\n    return 'started'\n"
        );
        let f = function_dir("setsid", "Python3.9", "index.py", &code, "");
        let run = invoke_isolated(f.path(), &[], settings);
        assert_eq!(run.expect_ok(), "started", "{case}");
        // `invoke` tore its instance down before it exited.
        scf_tests::wait_for(60, "the setsid child to be gone", || {
            processes_running(&["sleep", &seconds])
                .is_empty()
                .then_some(())
        });
    }
}

/// The attacker: what it can see of the machine and of other instances, and what it gets when it talks to
/// every runtime API it can find (`GET next`, then a forged response).
const ATTACKER: &str = r#"import json, os, socket

def request(sock, raw):
    sock.settimeout(3)
    try:
        sock.sendall(raw)
        return sock.recv(65536).decode("utf-8", "replace")
    except OSError as e:
        return "error: %s" % e
    finally:
        sock.close()

NEXT = b"GET /runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"
FORGED = b"POST /runtime/invocation/response HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n\"forged\""

def main_handler(event, context):
    cmdlines = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    cmdlines[p] = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                pass
    platform = [p for p, c in cmdlines.items() if "scf-local" in c]
    environ = []
    for p in platform:
        try:
            with open("/proc/%s/environ" % p, "rb") as f:
                environ.append(len(f.read()))
        except OSError:
            pass
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.read().splitlines()[1:]:
                    parts = line.split()
                    if parts[3] == "0A":
                        listening.add(int(parts[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    own = os.environ["SCF_RUNTIME_API"][len("unix:@"):]
    names = set()
    with open("/proc/net/unix") as f:
        for line in f.read().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[7].startswith("@scf-runtime-api-"):
                names.add(parts[7][1:])
    answers = {}
    ports = event.get("ports") or (sorted(listening | {9001}) if event.get("tcp") else [])
    for port in ports:
        for raw, what in ((NEXT, "next"), (FORGED, "forged")):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(3)
                s.connect(("127.0.0.1", port))
            except OSError as e:
                answers["tcp %d %s" % (port, what)] = "refused: %s" % e
                s.close()
                continue
            answers["tcp %d %s" % (port, what)] = request(s, raw)
    for name in sorted(names - {own}):
        for raw, what in ((NEXT, "next"), (FORGED, "forged")):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect("\0" + name)
            except OSError as e:
                answers["unix %s %s" % (name, what)] = "refused: %s" % e
                s.close()
                continue
            answers["unix %s %s" % (name, what)] = request(s, raw)
    with open("/proc/self/mountinfo") as f:
        tmp = [l for l in f.read().splitlines() if l.split()[4] == "/tmp"]
    return {
        "pids": len(cmdlines),
        "platform": platform,
        "environ": environ,
        "listening": sorted(listening),
        "names": sorted(names),
        "own": own,
        "answers": answers,
        "tmp": tmp,
    }
"#;

/// A victim that takes its invocation, says so in `started`, and answers once `go` exists.
const VICTIM_PY: &str = r#"import os, time

def main_handler(event, context):
    open(event["started"], "w").close()
    while not os.path.exists(event["go"]):
        time.sleep(0.02)
    return "the victim's own answer"
"#;

/// The same victim as a custom runtime (its runtime API on TCP, as a curl `bootstrap` expects); `started-tcp`
/// holds its API's port.
const VICTIM_BOOTSTRAP: &str = r#"#!/bin/bash
set -euo pipefail
API="http://$SCF_RUNTIME_API:$SCF_RUNTIME_API_PORT"
curl -sS -d " " -X POST "$API/runtime/init/ready"
while true; do
  curl -sS -o /dev/null -X GET "$API/runtime/invocation/next"
  echo "$SCF_RUNTIME_API_PORT" > "$MARKS/started-tcp"
  while [ ! -e "$MARKS/go" ]; do sleep 0.02; done
  curl -sS -X POST "$API/runtime/invocation/response" -d '"the tcp victim'"'"'s own answer"'
done
"#;

/// Issue 12's attack, as a second function running beside two victims whose invocations are in flight
/// (one on a Unix runtime API, one a custom runtime on TCP): it looks for the platform in `/proc` and for
/// runtime APIs in `/proc/net/tcp` and `/proc/net/unix`, asks each for its event and posts a forged answer.
/// With namespaces it finds nothing but itself. On the machine's network (`SCF_LOCAL_NETNS=off`: PID and
/// mount namespaces, the default of event functions; and `SCF_LOCAL_NAMESPACES=off`: none) it finds both
/// victims' APIs, and both close its connections unanswered: the Unix one by `SO_PEERCRED`, the TCP one by
/// the process holding the connection's other end. There it tries TCP on the victim's port only (named by
/// the victim), not on every TCP service of the machine. Each victim's caller gets the victim's own answer.
#[test]
fn a_second_function_reaches_neither_the_platform_nor_another_instances_runtime_api() {
    use std::os::unix::fs::PermissionsExt as _;
    // Each function with public access (the default: the machine's network) or without (`publicAccess:
    // false`: a network namespace of its own).
    for (case, settings, public) in [
        // "on" whatever the environment of the test says.
        (
            "network namespaces",
            &[("SCF_LOCAL_NETNS", "on")][..],
            false,
        ),
        ("namespaces", &[][..], true),
        (
            "no-namespaces",
            &[("SCF_LOCAL_NAMESPACES", "off")][..],
            true,
        ),
    ] {
        let own_net = !public;
        let access = format!("  publicAccess: {public}\n");
        let marks = TempDir::new("marks");
        let marks_s = marks.path().display().to_string();
        let victim = function_dir("victim", "Python3.9", "index.py", VICTIM_PY, &access);
        let tcp = TempDir::new("victim-tcp");
        std::fs::write(
            tcp.path().join("serverless.yml"),
            format!(
                "component: scf\ninputs:\n  name: victim-tcp\n  runtime: CustomRuntime\n  handler: index.main\n  \
                 environment:\n    variables:\n      MARKS: {marks_s}\n{access}"
            ),
        )
        .unwrap();
        let boot = tcp.path().join("bootstrap");
        std::fs::write(&boot, VICTIM_BOOTSTRAP).unwrap();
        std::fs::set_permissions(&boot, std::fs::Permissions::from_mode(0o755)).unwrap();
        let attacker = function_dir("attacker", "Python3.9", "index.py", ATTACKER, &access);
        let data = TempDir::new("attack-data");
        let mut env: Vec<(&str, &str)> =
            vec![("SCF_PYTHON", Box::leak(python_sdk().into_boxed_str()))];
        env.extend_from_slice(settings);
        let p = scf_tests::Served::start_with_env(
            data.path(),
            &[victim.path(), tcp.path(), attacker.path()],
            &[],
            &env,
        );
        let (started, go) = (marks.path().join("started"), marks.path().join("go"));
        let victims: Vec<_> = [
            ("victim", serde_json::json!({"started": started, "go": go})),
            ("victim-tcp", serde_json::json!({})),
        ]
        .into_iter()
        .map(|(name, event)| {
            let addr = p.addr.clone();
            std::thread::spawn(move || {
                let body =
                    serde_json::json!({"FunctionName": name, "ClientContext": event.to_string()})
                        .to_string();
                let raw =
                    scf_tests::http_post(&addr, &[("X-TC-Action", "Invoke")], body.as_bytes());
                serde_json::from_slice::<serde_json::Value>(&raw).unwrap()["Response"].clone()
            })
        })
        .collect();
        scf_tests::wait_for(60, "both victims to hold their invocations", || {
            (started.exists() && marks.path().join("started-tcp").exists()).then_some(())
        });
        // In a network of its own the attacker tries every port of its loopback; on the machine's network only
        // the TCP victim's port (the machine's other services are none of this test's business).
        let attack = if own_net {
            serde_json::json!({ "tcp": true })
        } else {
            let port: u16 = std::fs::read_to_string(marks.path().join("started-tcp"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            serde_json::json!({ "ports": [port] })
        };
        let report = ok_body(&p.invoke("attacker", &attack));
        let answers = report["answers"].as_object().unwrap();
        for (what, answer) in answers {
            let answer = answer.as_str().unwrap();
            assert!(
                !answer.starts_with("HTTP/"),
                "{case}: the attacker was answered on {what}: {answer}\n{report:#}"
            );
        }
        if case != "no-namespaces" {
            assert!(
                report["platform"].as_array().unwrap().is_empty(),
                "{case}: the attacker sees the platform: {report:#}"
            );
            assert!(
                report["pids"].as_u64().unwrap() < 10,
                "{case}: the attacker sees the machine's processes: {report:#}"
            );
            assert!(
                report["tmp"][0].as_str().unwrap().contains("tmpfs"),
                "{case}: /tmp is not the instance's own: {report:#}"
            );
        }
        if own_net {
            assert_eq!(report["listening"], serde_json::json!([]), "{report:#}");
            assert_eq!(
                report["names"],
                serde_json::json!([report["own"]]),
                "{case}: the attacker sees other runtime APIs: {report:#}"
            );
        } else {
            // On the machine's network both victims' APIs are visible to the attacker, and refuse it.
            let port = &attack["ports"][0];
            assert!(
                report["listening"].as_array().unwrap().contains(port),
                "{case}: the TCP victim's port is in /proc/net/tcp: {report:#}"
            );
            for what in ["next", "forged"] {
                assert!(
                    answers.contains_key(&format!("tcp {port} {what}")),
                    "{case}: the attacker did not try the TCP victim: {report:#}"
                );
            }
            assert!(
                answers.keys().any(|k| k.starts_with("unix ")),
                "{case}: the attacker found no other runtime API to try: {report:#}"
            );
        }
        std::fs::write(&go, "").unwrap();
        let mut answers = victims.into_iter().map(|t| ok_body(&t.join().unwrap()));
        assert_eq!(answers.next().unwrap(), "the victim's own answer", "{case}");
        assert_eq!(
            answers.next().unwrap(),
            "the tcp victim's own answer",
            "{case}"
        );
    }
}

/// `/tmp` is the instance's own 512 MB: code writing `/tmp/x` literally fills its own `tmpfs` (the write
/// past 512 MB gets `ENOSPC`), the instance keeps serving, and another function does not see the file.
#[test]
fn tmp_is_the_instances_own_512_mb() {
    let fill = r#"import errno, os

def main_handler(event, context):
    if event.get("look"):
        st = os.statvfs("/tmp")
        return {"exists": os.path.exists("/tmp/fill"), "size": st.f_blocks * st.f_frsize}
    chunk = b"x" * (1024 * 1024)
    written = 0
    try:
        with open("/tmp/fill", "wb") as f:
            while written < 1024 * 1024 * 1024:
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        return {"errno": e.errno == errno.ENOSPC, "written": written}
    return {"errno": False, "written": written}
"#;
    // The tmpfs's pages count against the instance's memory (the kernel charges them to its cgroup):
    // a function of 1024 MB can fill its 512 MB /tmp.
    let f = function_dir(
        "filler",
        "Python3.9",
        "index.py",
        fill,
        "  memorySize: 1024
",
    );
    let other = function_dir("other", "Python3.9", "index.py", fill, "");
    let data = TempDir::new("tmp-data");
    let p = scf_tests::Served::start_with_env(
        data.path(),
        &[f.path(), other.path()],
        &[],
        &[("SCF_PYTHON", &python_sdk())],
    );
    let body = ok_body(&p.invoke("filler", &serde_json::json!({})));
    assert_eq!(body["errno"], true, "{body}");
    let written = body["written"].as_u64().unwrap();
    assert!(
        (400 << 20..=512 << 20).contains(&written),
        "wrote {written} bytes: {body}"
    );
    // The same instance keeps serving, and its file is still there; the other function has its own /tmp.
    let look = |name: &str| ok_body(&p.invoke(name, &serde_json::json!({"look": true})));
    let mine = look("filler");
    assert_eq!(mine["exists"], true, "{mine}");
    assert_eq!(mine["size"], 512u64 << 20, "{mine}");
    assert_eq!(look("other")["exists"], false);
}

/// A native function `hello` (the `errors` example library).
fn native_function_dir() -> TempDir {
    scf_tests::native_function("hello", "  handler: errors.echo\n")
}

/// A code directory for `runtime` whose handler `link.main_handler` reaches `file`, a file outside it,
/// through a symbolic link (`link_name` → the outside file, or a linked folder when `via_folder`).
fn linked_out(
    runtime: &str,
    file: &str,
    code: &[u8],
    link_name: &str,
    via_folder: bool,
) -> [TempDir; 2] {
    let outside = TempDir::new("outside");
    std::fs::write(outside.path().join(file), code).unwrap();
    let handler = if via_folder {
        "linked/link.main_handler"
    } else {
        "link.main_handler"
    };
    let dir = TempDir::new("linked-code");
    std::fs::write(
        dir.path().join("serverless.yml"),
        format!(
            "component: scf\ninputs:\n  name: linked\n  runtime: {runtime}\n  handler: {handler}\n"
        ),
    )
    .unwrap();
    if via_folder {
        std::os::unix::fs::symlink(outside.path(), dir.path().join("linked")).unwrap();
    } else {
        std::os::unix::fs::symlink(outside.path().join(file), dir.path().join(link_name)).unwrap();
    }
    [dir, outside]
}

#[test]
fn a_handler_file_linked_out_of_the_code_root_is_443_in_every_language() {
    let py = b"def main_handler(event, context):\n    return 'escaped'\n";
    let js = b"exports.main_handler = async () => 'escaped';\n";
    let so = std::fs::read(bin("liberrors.so")).unwrap();
    for (runtime, file, code, link, folder) in [
        ("Python3.9", "link.py", &py[..], "link.py", false),
        ("Python3.9", "link.py", &py[..], "", true),
        ("Nodejs18.15", "link.js", &js[..], "link.js", false),
        ("Nodejs18.15", "link.js", &js[..], "", true),
        ("native", "liblink.so", &so[..], "liblink.so", false),
        ("native", "liblink.so", &so[..], "", true),
    ] {
        let [dir, _outside] = linked_out(runtime, file, code, link, folder);
        let run = invoke_with_secrets(dir.path(), &[]);
        let e = run.expect_error("MalformedHandler", 443);
        assert!(
            e["errorMessage"]
                .as_str()
                .unwrap()
                .contains("resolves outside the code root"),
            "{runtime} {file} via folder {folder}: {e}"
        );
    }
}

#[test]
fn what_a_handler_imports_may_be_linked_from_anywhere() {
    // A Node.js package linked into node_modules (npm link, pnpm, workspaces) keeps working.
    let package = TempDir::new("linked-package");
    std::fs::write(
        package.path().join("index.js"),
        "exports.greet = () => 'from a linked package';\n",
    )
    .unwrap();
    let f = function_dir(
        "linked-import",
        "Nodejs18.15",
        "index.js",
        "const p = require('linked-package');\nexports.main_handler = async () => p.greet();\n",
        "",
    );
    std::fs::create_dir_all(f.path().join("node_modules")).unwrap();
    std::os::unix::fs::symlink(package.path(), f.path().join("node_modules/linked-package"))
        .unwrap();
    let run = invoke_with_secrets(f.path(), &[]);
    assert_eq!(run.expect_ok(), "from a linked package");
}

/// A custom runtime that answers what its world looks like: how many processes its `/proc` shows, what
/// `/tmp` is, its uid and its runtime API's address.
const WORLD_BOOTSTRAP: &str = r#"#!/bin/bash
set -euo pipefail
API="http://$SCF_RUNTIME_API:$SCF_RUNTIME_API_PORT"
curl -sS -d " " -X POST "$API/runtime/init/ready" >/dev/null
while true; do
  curl -sS -o /dev/null -X GET "$API/runtime/invocation/next"
  n=$(ls /proc | grep -c '^[0-9]' || true)
  t=$(grep ' /tmp ' /proc/self/mountinfo | cut -d' ' -f9 | head -1)
  curl -sS -X POST "$API/runtime/invocation/response" \
    -d "{\"procs\":$n,\"tmp\":\"$t\",\"uid\":$(id -u),\"api\":\"$SCF_RUNTIME_API:$SCF_RUNTIME_API_PORT\"}" >/dev/null
done
"#;

/// A platform that is not root makes the same world inside a user namespace: run as `nobody` (when the
/// test is root; as itself otherwise), an instance still has its own `/proc` and its own `/tmp`, and keeps
/// the platform's uid.
#[test]
fn an_unprivileged_platform_isolates_its_instances_in_a_user_namespace() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("unprivileged");
    let boot = dir.path().join("bootstrap");
    std::fs::write(&boot, WORLD_BOOTSTRAP).unwrap();
    std::fs::set_permissions(&boot, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    // `scf-local invoke` of the directory with `args`, as `nobody` when the test is root.
    let invoke = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin("scf-local"));
            c
        } else {
            Command::new(bin("scf-local"))
        };
        let out = cmd
            .args(["invoke"])
            .arg(dir.path())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", dir.path())
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::from(out)
    };
    let run = invoke(
        &["--runtime", "CustomRuntime", "--handler", "index.main"],
        &[],
    );
    let world = run.expect_ok();
    assert!(world["procs"].as_u64().unwrap() < 10, "{run:#?}");
    assert_eq!(world["tmp"], "tmpfs", "{run:#?}");
    // With public access (the default) the instance shares the machine's network: its API is on a free
    // loopback port, which admits only the instance's processes.
    let api = world["api"].as_str().unwrap();
    assert!(
        api.starts_with("127.0.0.1:") && api != "127.0.0.1:9001",
        "{run:#?}"
    );
    if root {
        assert_eq!(world["uid"], 65534, "{run:#?}");
    }

    // A Python instance forked from the zygote joins the same world from outside it (the zygote's child
    // enters the init's user namespace first): its parent, the platform, is outside its PID namespace.
    std::fs::write(
        dir.path().join("index.py"),
        "import os\n\ndef main_handler(event, context):\n    return {'ppid': os.getppid(), 'uid': os.getuid()}\n",
    )
    .unwrap();
    // Debian's interpreter: the test's own may live where `nobody` cannot read.
    let run = invoke(
        &["--runtime", "python3", "--handler", "index.main_handler"],
        &[("SCF_PYTHON", "/usr/bin/python3")],
    );
    let py = run.expect_ok();
    assert_eq!(py["ppid"], 0, "{run:#?}");
    if root {
        assert_eq!(py["uid"], 65534, "{run:#?}");
    }
}

/// A Python handler that says whether it reaches `127.0.0.1:PORT` of the machine (`event.port`), and what
/// network interfaces it has.
const REACH_PY: &str = r#"import os, socket

def main_handler(event, context):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", int(event["port"])))
        reached = s.recv(16).decode()
    except OSError as e:
        reached = type(e).__name__
    finally:
        s.close()
    ifaces = sorted(name for _, name in socket.if_nameindex())
    return {"reached": reached, "ifaces": ifaces, "api": os.environ.get("SCF_RUNTIME_API", "")}
"#;

/// A function has the machine's network unless it says `publicAccess: false` (the cloud's default gives the
/// internet): then, where namespaces are allowed, its instance has only its own loopback and the machine's
/// services are out of reach. The same for a forked (zygote) and a normally started Python instance.
#[test]
fn public_access_is_the_machines_network_and_false_is_a_network_of_its_own() {
    use std::io::Write as _;
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in server.incoming().flatten() {
            let _ = c.write_all(b"hello");
        }
    });
    let event = format!(r#"{{"port":{port}}}"#);
    for zygote in ["on", "off"] {
        let open = function_dir("reach-open", "Python3.9", "index.py", REACH_PY, "");
        let run = invoke_isolated(
            open.path(),
            &["--event", &event],
            &[("SCF_LOCAL_ZYGOTE", zygote)],
        );
        let got = run.expect_ok();
        assert_eq!(got["reached"], "hello", "zygote {zygote}: {run:#?}");
        assert!(
            got["ifaces"].as_array().unwrap().len() > 1,
            "zygote {zygote}: {run:#?}"
        );

        let closed = function_dir(
            "reach-closed",
            "Python3.9",
            "index.py",
            REACH_PY,
            "  publicAccess: false\n",
        );
        let run = invoke_isolated(
            closed.path(),
            &["--event", &event],
            &[("SCF_LOCAL_ZYGOTE", zygote)],
        );
        let got = run.expect_ok();
        assert_eq!(
            got["reached"], "ConnectionRefusedError",
            "zygote {zygote}: {run:#?}"
        );
        assert_eq!(
            got["ifaces"],
            serde_json::json!(["lo"]),
            "zygote {zygote}: {run:#?}"
        );
        assert!(
            got["api"].as_str().unwrap().starts_with("unix:@"),
            "zygote {zygote}: {run:#?}"
        );
    }
}

/// A Python handler that writes what it finds of the platform's data directory, its SecretKey file and
/// another function's code into `$MARKS/seen`: the directories' entries (or the error's name), the key
/// file's text, and its own code's entries.
const SNOOP_PY: &str = r#"import json, os

def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        return type(e).__name__

def main_handler(event, context):
    data = listing(os.environ["DATA"])
    other = listing(os.environ["OTHER"])
    own = listing(".")
    try:
        with open(os.environ["KEY"]) as f:
            key = f.read()
    except OSError as e:
        key = type(e).__name__
    path = os.path.join(os.environ["MARKS"], "seen")
    with open(path + ".part", "w") as f:
        json.dump({"data": data, "key": key, "other": other, "own": own}, f)
    os.rename(path + ".part", path)
    return "looked"
"#;

/// Other functions' queued events and logs are in the platform's data directory, and its SecretKey may be in
/// a file, both readable by the platform's user: in an instance's mount namespace the data directory and
/// the other functions' code directories are empty read-only `tmpfs`es and the key file is `/dev/null`, for
/// a forked (zygote) and a normally started Python instance alike, while the platform keeps using them. The function is called by a timer (the
/// front door wants signed calls once a SecretKey is set).
#[test]
fn an_instance_sees_neither_the_data_directory_nor_the_secret_key_file() {
    let key = "hidden-secret-key-value";
    for zygote in ["on", "off"] {
        let files = TempDir::new("hidden-files");
        let key_file = files.path().join("key");
        std::fs::write(&key_file, format!("{key}\n")).unwrap();
        let data = TempDir::new("hidden-data");
        let marks = TempDir::new("hidden-marks");
        let other = function_dir("other", "Python3.9", "index.py", SNOOP_PY, "");
        let yml = format!(
            "  environment:\n    variables:\n      DATA: {}\n      KEY: {}\n      MARKS: {}\n      OTHER: {}\n  events:\n    - timer:\n        parameters:\n          name: snoop\n          cronExpression: '* * * * * * *'\n          enable: true\n",
            data.path().display(),
            key_file.display(),
            marks.path().display(),
            other.path().display()
        );
        let f = function_dir("snoop", "Python3.9", "index.py", SNOOP_PY, &yml);
        let key_arg = key_file.display().to_string();
        let p = scf_tests::Served::start_with_env(
            data.path(),
            &[f.path(), other.path()],
            &[
                "--secret-id",
                "AKIDisolationtest",
                "--secret-key-file",
                &key_arg,
            ],
            &[("SCF_LOCAL_ZYGOTE", zygote)],
        );
        let seen: serde_json::Value = scf_tests::wait_for(60, "the timer's call", || {
            let text = std::fs::read_to_string(marks.path().join("seen")).ok()?;
            serde_json::from_str(&text).ok()
        });
        assert_eq!(
            seen["data"],
            serde_json::json!([]),
            "zygote {zygote}: {seen}"
        );
        assert_eq!(seen["key"], "", "zygote {zygote}: {seen}");
        assert_eq!(
            seen["other"],
            serde_json::json!([]),
            "zygote {zygote}: {seen}"
        );
        assert!(
            seen["own"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("index.py")),
            "zygote {zygote}: {seen}"
        );
        // The platform's own view is untouched.
        assert!(std::fs::read_dir(data.path()).unwrap().next().is_some());
        assert!(std::fs::read_to_string(&key_file).unwrap().contains(key));
        drop(p);
    }
}
