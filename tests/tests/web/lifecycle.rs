//! An instance's life: a server that never listens or a bootstrap that fails, an exit during a request, a
//! platform killed with `kill -9`, and the ports instances listen on with and without namespaces.

use super::*;

/// Every process below `pid` on the machine (its children, theirs, …).
fn descendants(pid: u32) -> Vec<u64> {
    let parents: Vec<(u64, u64)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.file_name().to_str()?.parse::<u64>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut found = vec![u64::from(pid)];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// `n` requests at once, each holding its instance until all have started: the (pid, port) of each.
fn concurrent_ports(addr: &str, function: &str, n: usize) -> Vec<(u64, u64)> {
    let files = TempDir::new("held-requests");
    let (started, go) = (files.path().join("started"), files.path().join("go"));
    std::fs::create_dir_all(&started).unwrap();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let addr = addr.to_owned();
            let path = format!(
                "/web/{function}/hold?dir={}&go={}",
                started.display(),
                go.display()
            );
            std::thread::spawn(move || {
                let r = get(&addr, &path);
                assert_eq!(r.status, 200, "{r:?}");
                let v = r.json();
                (v["pid"].as_u64().unwrap(), v["port"].as_u64().unwrap())
            })
        })
        .collect();
    // Until every request is on an instance (or one has already failed: its answer says why).
    scf_tests::wait_for(300, "every request to be on an instance", || {
        (std::fs::read_dir(&started).unwrap().count() == n
            || threads.iter().any(|t| t.is_finished()))
        .then_some(())
    });
    std::fs::write(&go, "").unwrap();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn a_server_that_never_listens_fails_with_port_binding_failed() {
    let f = bootstrap_function(
        "deaf",
        "#!/bin/bash\necho starting but never listening\nsleep 30\n",
        0o755,
        "  initTimeout: 1\n",
    );
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let r = get(&p.addr, "/web/deaf/");
    let e = r.expect_error(504, "PortBindingFailed", 446);
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("PortBindingFailed"),
        "{e}"
    );
    let log = log_of(&p, "deaf", r.header("x-scf-request-id").unwrap());
    assert!(log.contains("starting but never listening"), "{log}");
}

#[test]
fn a_bootstrap_that_exits_or_is_not_executable_fails_with_its_output_in_the_log() {
    let exits = bootstrap_function(
        "exits",
        "#!/bin/bash\necho cannot start: missing config >&2\nexit 2\n",
        0o755,
        "",
    );
    let not_exec = bootstrap_function(
        "noexec",
        "#!/bin/bash\nexec python3 -m http.server 9000\n",
        0o644,
        "",
    );
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[exits.path(), not_exec.path()], &[]);
    let r = get(&p.addr, "/web/exits/");
    let e = r.expect_error(502, "BootstrapError", 405);
    assert!(
        e["stackTrace"].as_str().unwrap().contains("exit status 2"),
        "{e}"
    );
    let log = log_of(&p, "exits", r.header("x-scf-request-id").unwrap());
    assert!(log.contains("cannot start: missing config"), "{log}");
    let e = get(&p.addr, "/web/noexec/").expect_error(502, "BootstrapError", 405);
    assert!(
        e["stackTrace"]
            .as_str()
            .unwrap()
            .contains("is not an executable file"),
        "{e}"
    );
}

#[test]
fn an_exit_during_a_request_is_439_and_the_next_request_gets_a_new_instance() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let pid = get(&p.addr, "/web/web-python/").json()["pid"].clone();
    get(&p.addr, "/web/web-python/exit").expect_error(502, "ProcessExit", 439);
    let r = get(&p.addr, "/web/web-python/");
    assert_eq!(r.status, 200);
    assert_ne!(r.json()["pid"], pid);
}

/// A platform killed with `kill -9` takes its instances with it: each instance's init sees the platform's
/// end of its channel close and kills everything the instance started (`docs/reliability.md`).
#[test]
fn instances_of_a_platform_killed_with_kill_9_die_with_it() {
    let f = example("web-python", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    assert_eq!(get(&p.addr, "/web/web-python/").status, 200);
    let started = descendants(p.pid());
    assert!(
        started.len() >= 3,
        "an instance (its init, the web server) and ready inits: {started:?}"
    );
    p.kill9();
    scf_tests::wait_for(120, "every process the platform started to be gone", || {
        started
            .iter()
            .all(|pid| scf_tests::process_gone(*pid))
            .then_some(())
    });
    // The next platform on this machine starts as usual.
    let again = Served::start(data.path(), &[f.path()], &[]);
    assert_eq!(get(&again.addr, "/web/web-python/").status, 200);
}

#[test]
fn several_instances_listen_on_port_9000_at_once_in_their_own_network_namespaces() {
    let f = held_web("ns");
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let banner = scf_tests::wait_for(60, "the banner", || {
        Some(p.stderr()).filter(|b| b.contains("scf-local: data in"))
    });
    // This machine runs the tests as root: namespaces are expected, and the banner must say which mode ran.
    assert!(
        banner.contains(
            "web instances: each instance has its own network namespace and listens on port 9000"
        ),
        "network namespaces are not available here; the banner says: {banner}"
    );
    let got = concurrent_ports(&p.addr, "ns", 3);
    let mut pids: Vec<u64> = got.iter().map(|(pid, _)| *pid).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three instances at once: {got:?}");
    assert!(
        got.iter().all(|(_, port)| *port == 9000),
        "every instance listens on 9000: {got:?}"
    );
}

#[test]
fn without_namespaces_each_instance_gets_a_free_port_and_the_log_says_so() {
    let f = held_web("fallback");
    let data = TempDir::new("data");
    // Stopped with SIGTERM when dropped (even when an assertion fails): its instances go with it.
    let p = Served::start_with_env(data.path(), &[f.path()], &[], &[("SCF_LOCAL_NETNS", "off")]);
    let addr = p.addr.clone();
    let banner = scf_tests::wait_for(60, "the banner", || {
        Some(p.stderr()).filter(|b| b.contains("scf-local: data in"))
    });
    assert!(
        banner.contains("no network namespaces (SCF_LOCAL_NETNS=off): each instance listens on the free port given in PORT"),
        "{banner}"
    );
    let got = concurrent_ports(&addr, "fallback", 3);
    let mut ports: Vec<u64> = got.iter().map(|(_, port)| *port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "three instances, three ports: {got:?}");
    let r = get(&addr, "/web/fallback/");
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.header("x-scf-request-id").unwrap().to_owned();
    // Another process reads the logs: it sees a record a moment after its response.
    let text = scf_tests::wait_for(60, "the request's log", || {
        let out = Command::new(bin("scf-local"))
            .args(["logs", "fallback", "--data-dir"])
            .arg(data.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains(&id).then_some(text)
    });
    assert!(text.contains("Network: no network namespaces"), "{text}");
}
