//! Files: `/tmp` is the instance's own 512 MB; a handler file linked out of the code root is refused while
//! what it imports may be linked from anywhere; the data directory and the SecretKey file are out of sight.

use super::*;

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
