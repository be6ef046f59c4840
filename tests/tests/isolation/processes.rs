//! Processes: what an instance starts dies with it; a second function reaches neither the platform nor
//! another instance's runtime API.

use super::*;

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
