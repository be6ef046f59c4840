//! Namespaces: an unprivileged platform isolates its instances in a user namespace; `publicAccess` is the
//! machine's network and `false` a network of the instance's own.

use super::*;

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
