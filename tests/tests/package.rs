//! `scf-local package`: every zip it writes is unzipped into a fresh directory and run through
//! `scf-local invoke` exactly as the cloud starts it: a custom runtime's `bootstrap` in the code directory with
//! nothing but `SCF_RUNTIME_API`, `SCF_RUNTIME_API_PORT` and `_HANDLER` (or, for `--lambda`, the Lambda
//! dialect's `AWS_LAMBDA_RUNTIME_API`); a zip for SCF's own Python or Node.js runtime in that runtime. The
//! `serverless.yml` beside each zip, and the folder Tencent's framework uploads, are checked too.
//!
//! Crates are packaged with `--debug --host-glibc`: the workspace's debug build, this machine's glibc (the
//! glibc 2.17 build through cargo-zigbuild is `make dist`'s, checked in `tests/dist`).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use scf_tests::{Run, TempDir, bin, check_log_shape, invoke, invoke_with_env, root};
use serde_json::json;

/// Runs `scf-local package <args…>`.
fn package(args: &[&str]) -> Run {
    let out = Command::new(bin("scf-local"))
        .arg("package")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from(out)
}

fn packaged(args: &[&str]) -> Run {
    let run = package(args);
    assert_eq!(run.code, 0, "scf-local package {args:?}: {run:#?}");
    run
}

/// The zip's files (directories left out) and their unix modes.
fn entries(zip: &Path) -> BTreeMap<String, u32> {
    let mut a = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..a.len() {
        let f = a.by_index(i).unwrap();
        if !f.is_dir() {
            out.insert(
                f.name().unwrap().into_owned(),
                f.unix_mode().unwrap_or(0) & 0o777,
            );
        }
    }
    out
}

/// The zip unzipped into a fresh directory, as the cloud unpacks it.
fn unzip(zip: &Path, name: &str) -> TempDir {
    let dir = TempDir::new(name);
    zip::ZipArchive::new(std::fs::File::open(zip).unwrap())
        .unwrap()
        .extract(dir.path())
        .unwrap();
    dir
}

/// Runs the unzipped package as a custom runtime: its `bootstrap` in its directory, the handler as the cloud
/// gives it, nothing else.
fn run_custom(code: &Path, handler: &str, event: &str, env: &[(&str, &str)]) -> Run {
    invoke_with_env(
        code,
        &[
            "--runtime",
            "custom",
            "--handler",
            handler,
            "--event",
            event,
        ],
        env,
    )
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file of the zip is in the folder beside it, with the same bytes and mode.
fn check_src_dir(zip: &Path, src: &Path) {
    let mut a = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut n = 0;
    for i in 0..a.len() {
        let mut f = a.by_index(i).unwrap();
        if f.is_dir() {
            continue;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
        let on_disk = src.join(f.name().unwrap().as_ref());
        assert_eq!(
            std::fs::read(&on_disk).unwrap(),
            bytes,
            "{}",
            on_disk.display()
        );
        let mode = std::fs::metadata(&on_disk).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            f.unix_mode().unwrap() & 0o777,
            "{}",
            on_disk.display()
        );
        n += 1;
    }
    let on_disk = walk_files(src);
    assert_eq!(on_disk, n, "the folder holds the zip's files and no others");
}

fn walk_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { walk_files(&p) } else { 1 })
        .sum()
}

#[test]
fn a_rust_function_is_a_custom_runtime_that_carries_the_shim() {
    let out = TempDir::new("pkg-rust");
    let zip = out.path().join("build/rust-hello.zip");
    let run = packaged(&[
        root().join("examples/rust-hello").to_str().unwrap(),
        "-o",
        zip.to_str().unwrap(),
        "--debug",
        "--host-glibc",
    ]);
    assert!(
        run.stderr.contains("(CustomRuntime, 3 files"),
        "{}",
        run.stderr
    );
    assert_eq!(
        entries(&zip),
        BTreeMap::from([
            ("bootstrap".to_owned(), 0o755),
            ("libindex.so".to_owned(), 0o755),
            ("scf-runtime/bin/scf-shim".to_owned(), 0o755),
        ])
    );
    let yml = read(&out.path().join("build/serverless.yml"));
    for want in [
        "# Written by scf-local package for rust-hello.zip:",
        "component: scf\n",
        "  name: rust-hello\n",
        "  src: ./rust-hello\n",
        "  handler: index.main_handler\n",
        "  runtime: CustomRuntime\n",
        "  memorySize: 128\n",
        "  timeout: 3\n",
    ] {
        assert!(yml.contains(want), "{want:?} in {yml}");
    }
    check_src_dir(&zip, &out.path().join("build/rust-hello"));

    let code = unzip(&zip, "pkg-rust-code");
    let run = run_custom(code.path(), "index.main_handler", r#"{"name":"zip"}"#, &[]);
    assert_eq!(run.expect_ok()["message"], "Hello, zip!", "{run:#?}");
    assert_eq!(check_log_shape(&run), ["greeting zip"]);
}

#[test]
fn a_rust_crate_built_as_bootstrap_is_the_whole_package() {
    let out = TempDir::new("pkg-bootstrap");
    let zip = out.path().join("sum.zip");
    packaged(&[
        root().join("examples/rust-bootstrap").to_str().unwrap(),
        "-o",
        zip.to_str().unwrap(),
        "--debug",
        "--host-glibc",
    ]);
    assert_eq!(
        entries(&zip),
        BTreeMap::from([("bootstrap".to_owned(), 0o755)])
    );
    let code = unzip(&zip, "pkg-bootstrap-code");
    let run = run_custom(code.path(), "index.add", r#"{"a":40,"b":2}"#, &[]);
    assert_eq!(run.expect_ok()["sum"], 42, "{run:#?}");
}

/// A Python function with what stays on this machine around it, and its package's folder inside it.
fn python_function_with_clutter() -> TempDir {
    let dir = TempDir::new("pkg-py-src");
    let p = dir.path();
    std::fs::write(
        p.join("index.py"),
        "import sys\nfrom lib.greet import greet\n\ndef main_handler(event, context):\n    print('packaged')\n    return {\"greeting\": greet(event.get(\"name\", \"world\")), \"python\": sys.executable}\n",
    )
    .unwrap();
    std::fs::create_dir_all(p.join("lib/__pycache__")).unwrap();
    std::fs::write(p.join("lib/__init__.py"), "").unwrap();
    std::fs::write(
        p.join("lib/greet.py"),
        "def greet(name):\n    return 'hi ' + name\n",
    )
    .unwrap();
    std::fs::write(p.join("lib/__pycache__/greet.cpython-311.pyc"), "x").unwrap();
    std::fs::create_dir_all(p.join(".venv/bin")).unwrap();
    std::fs::write(p.join(".venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    std::fs::create_dir_all(p.join(".git")).unwrap();
    std::fs::write(p.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(p.join(".env"), "TENCENT_SECRET_ID=secret\n").unwrap();
    std::fs::write(
        p.join("serverless.yml"),
        "component: scf\ninputs:\n  name: greeter\n  handler: index.main_handler\n  runtime: Python3.10\n  timeout: 5\n  environment:\n    variables:\n      GREETING: hi\n",
    )
    .unwrap();
    dir
}

#[test]
fn python_for_scfs_own_runtime_is_the_code_alone() {
    let src = python_function_with_clutter();
    // The package goes into a folder inside the code directory: it is left out of itself.
    let zip = src.path().join("build/greeter.zip");
    let run = packaged(&[src.path().to_str().unwrap(), "-o", zip.to_str().unwrap()]);
    assert!(
        run.stderr.contains("(Python3.10, 3 files"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("note: the code directory's .venv stays on this machine"),
        "{}",
        run.stderr
    );
    assert_eq!(
        entries(&zip),
        BTreeMap::from([
            ("index.py".to_owned(), 0o644),
            ("lib/__init__.py".to_owned(), 0o644),
            ("lib/greet.py".to_owned(), 0o644),
        ]),
        "no .venv, .git, .env, __pycache__, serverless.yml, nor the package itself"
    );
    let yml = read(&src.path().join("build/serverless.yml"));
    for want in [
        "  name: greeter\n",
        "  src: ./greeter\n",
        "  runtime: Python3.10\n",
        "  timeout: 5\n",
        "  environment:\n    variables:\n      GREETING: hi\n",
    ] {
        assert!(yml.contains(want), "{want:?} in {yml}");
    }
    check_src_dir(&zip, &src.path().join("build/greeter"));
    // Packaged again into the same folder: its own files are replaced, nothing else is touched.
    packaged(&[src.path().to_str().unwrap(), "-o", zip.to_str().unwrap()]);
    assert_eq!(entries(&zip).len(), 3);

    // SCF's Python 3.10 runs it from the code directory; here, our Python host stands in for it.
    let code = unzip(&zip, "pkg-py-code");
    let run = invoke(
        code.path(),
        &[
            "--runtime",
            "Python3.10",
            "--handler",
            "index.main_handler",
            "--event",
            r#"{"name":"scf"}"#,
        ],
    );
    assert_eq!(run.expect_ok()["greeting"], "hi scf", "{run:#?}");
    assert_eq!(check_log_shape(&run), ["packaged"]);
}

#[test]
fn node_for_scfs_own_runtime_names_the_default_runtime() {
    let out = TempDir::new("pkg-node");
    let zip = out.path().join("hello.zip");
    let run = packaged(&[
        root().join("examples/node-hello").to_str().unwrap(),
        "--handler",
        "index.main_handler",
        "-o",
        zip.to_str().unwrap(),
    ]);
    assert!(
        run.stderr
            .contains("note: the package names SCF's runtime Nodejs16.13"),
        "{}",
        run.stderr
    );
    let files = entries(&zip);
    assert!(files.contains_key("index.js"), "{files:?}");
    assert!(!files.contains_key("bootstrap"), "{files:?}");
    assert!(read(&out.path().join("serverless.yml")).contains("  runtime: Nodejs16.13\n"));
    let code = unzip(&zip, "pkg-node-code");
    let run = invoke(
        code.path(),
        &[
            "--runtime",
            "Nodejs16.13",
            "--handler",
            "index.main_handler",
            "--event",
            r#"{"name":"zip"}"#,
        ],
    );
    assert_eq!(run.expect_ok()["message"], "Hello, zip!", "{run:#?}");
}

#[test]
fn python_and_node_as_custom_runtimes_carry_their_own_piece_only() {
    for (example, piece, other) in [
        ("python-hello", "python", "node"),
        ("node-hello", "node", "python"),
    ] {
        let out = TempDir::new(&format!("pkg-custom-{piece}"));
        let zip = out.path().join("fn.zip");
        let run = packaged(&[
            root().join("examples").join(example).to_str().unwrap(),
            "--handler",
            "index.main_handler",
            "--custom-runtime",
            "-o",
            zip.to_str().unwrap(),
        ]);
        assert!(run.stderr.contains("(CustomRuntime,"), "{}", run.stderr);
        let files = entries(&zip);
        assert_eq!(files.get("bootstrap"), Some(&0o755), "{files:?}");
        assert_eq!(files.get("scf-runtime/bin/scf-shim"), Some(&0o755));
        let has = |p: &str| {
            files
                .keys()
                .any(|k| k.starts_with(&format!("scf-runtime/lib/scf-runtime/{p}/")))
        };
        assert!(has(piece) && !has(other), "{example}: {files:?}");
        assert!(read(&out.path().join("serverless.yml")).contains("  runtime: CustomRuntime\n"));

        let code = unzip(&zip, &format!("pkg-custom-{piece}-code"));
        let run = run_custom(
            code.path(),
            "index.main_handler",
            r#"{"name":"custom"}"#,
            &[],
        );
        assert_eq!(
            run.expect_ok()["message"],
            "Hello, custom!",
            "{example}: {run:#?}"
        );
    }
}

#[test]
fn python_on_a_custom_runtime_runs_the_interpreter_the_package_names() {
    let src = python_function_with_clutter();
    let out = TempDir::new("pkg-python-flag");
    let zip = out.path().join("fn.zip");
    packaged(&[
        src.path().to_str().unwrap(),
        "--custom-runtime",
        "--python",
        "/usr/bin/python3",
        "-o",
        zip.to_str().unwrap(),
    ]);
    let code = unzip(&zip, "pkg-python-flag-code");
    assert!(
        read(&code.path().join("bootstrap")).contains("export SCF_PYTHON='/usr/bin/python3'\n"),
        "the bootstrap names it"
    );
    let run = run_custom(code.path(), "index.main_handler", "{}", &[]);
    assert_eq!(
        run.expect_ok(),
        json!({"greeting": "hi world", "python": "/usr/bin/python3"}),
        "{run:#?}"
    );
}

#[test]
fn functions_share_the_layer_s_shim() {
    let out = TempDir::new("pkg-layer");
    let layer_zip = out.path().join("layer/scf-runtime.zip");
    let run = packaged(&["--layer", "-o", layer_zip.to_str().unwrap()]);
    assert!(run.stderr.contains("(layer,"), "{}", run.stderr);
    let files = entries(&layer_zip);
    assert_eq!(files.get("bin/scf-shim"), Some(&0o755), "{files:?}");
    for marker in [
        "lib/scf-runtime/python/scf_sdk/__init__.py",
        "lib/scf-runtime/node/bootstrap.js",
        "lib/scf-runtime/node/package.json",
    ] {
        assert!(files.contains_key(marker), "{marker} in {files:?}");
    }
    let yml = read(&out.path().join("layer/serverless.yml"));
    assert!(
        yml.contains("component: layer\n")
            && yml.contains("  src: ./scf-runtime\n")
            && yml.contains("  - CustomRuntime\n"),
        "{yml}"
    );
    check_src_dir(&layer_zip, &out.path().join("layer/scf-runtime"));

    let rust_zip = out.path().join("rust/fn.zip");
    packaged(&[
        root().join("examples/rust-hello").to_str().unwrap(),
        "--use-layer",
        "scf-runtime:3",
        "--debug",
        "--host-glibc",
        "-o",
        rust_zip.to_str().unwrap(),
    ]);
    assert_eq!(
        entries(&rust_zip),
        BTreeMap::from([
            ("bootstrap".to_owned(), 0o755),
            ("libindex.so".to_owned(), 0o755),
        ]),
        "no shim of its own"
    );
    let yml = read(&out.path().join("rust/serverless.yml"));
    assert!(
        yml.contains("  layers:\n  - name: scf-runtime\n    version: 3\n"),
        "{yml}"
    );
    let py_zip = out.path().join("py/fn.zip");
    packaged(&[
        root().join("examples/python-hello").to_str().unwrap(),
        "--handler",
        "index.main_handler",
        "--custom-runtime",
        "--use-layer",
        "scf-runtime:3",
        "-o",
        py_zip.to_str().unwrap(),
    ]);

    // The layer's files appear under /opt on the cloud, and /opt/bin is on Lambda's PATH; here the unzipped
    // layer's bin/ is put on PATH, which the bootstrap tries after /opt/bin.
    let layer = unzip(&layer_zip, "pkg-layer-opt");
    let path = format!(
        "{}:{}",
        layer.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let rust = unzip(&rust_zip, "pkg-layer-rust");
    let run = run_custom(
        rust.path(),
        "index.main_handler",
        r#"{"name":"layer"}"#,
        &[("PATH", &path)],
    );
    assert_eq!(run.expect_ok()["message"], "Hello, layer!", "{run:#?}");
    let py = unzip(&py_zip, "pkg-layer-py");
    let run = run_custom(
        py.path(),
        "index.main_handler",
        r#"{"name":"layer"}"#,
        &[("PATH", &path)],
    );
    assert_eq!(
        run.expect_ok()["message"],
        "Hello, layer!",
        "the layer's Python piece, found beside the layer's shim: {run:#?}"
    );

    // Without the layer, the bootstrap says what is missing, and the instance ends before it is ready.
    let run = run_custom(rust.path(), "index.main_handler", "{}", &[]);
    let body = run.expect_error("ProcessExit", 439);
    assert!(
        run.stderr
            .contains("bootstrap: scf-shim is neither in /opt/bin nor on PATH"),
        "{run:#?} {body}"
    );
}

#[test]
fn lambda_packages_run_under_the_lambda_dialect() {
    let out = TempDir::new("pkg-lambda");
    let zip = out.path().join("hello.zip");
    let run = packaged(&[
        root().join("examples/rust-hello").to_str().unwrap(),
        "--lambda",
        "--debug",
        "--host-glibc",
        "--env",
        "GREETING=hi",
        "-o",
        zip.to_str().unwrap(),
    ]);
    assert!(run.stderr.contains("(provided.al2023,"), "{}", run.stderr);
    assert!(
        !out.path().join("hello").exists(),
        "the aws provider deploys the zip itself: no folder"
    );
    let yml = read(&out.path().join("serverless.yml"));
    for want in [
        "service: rust-hello\n",
        "provider:\n  name: aws\n  runtime: provided.al2023\n  architecture: x86_64\n",
        "functions:\n  rust-hello:\n    handler: index.main_handler\n",
        "    package:\n      artifact: hello.zip\n",
        "    environment:\n      GREETING: hi\n",
    ] {
        assert!(yml.contains(want), "{want:?} in {yml}");
    }
    let code = unzip(&zip, "pkg-lambda-code");
    let run = invoke(
        code.path(),
        &[
            "--runtime",
            "custom",
            "--dialect",
            "lambda",
            "--handler",
            "index.main_handler",
            "--event",
            r#"{"name":"lambda"}"#,
        ],
    );
    assert_eq!(run.expect_ok()["message"], "Hello, lambda!", "{run:#?}");

    // A crate that is its own bootstrap speaks the Lambda dialect too.
    let zip = out.path().join("sum/sum.zip");
    packaged(&[
        root().join("examples/rust-bootstrap").to_str().unwrap(),
        "--lambda",
        "--debug",
        "--host-glibc",
        "-o",
        zip.to_str().unwrap(),
    ]);
    let code = unzip(&zip, "pkg-lambda-sum");
    let run = invoke(
        code.path(),
        &[
            "--runtime",
            "custom",
            "--dialect",
            "lambda",
            "--handler",
            "index.add",
            "--event",
            r#"{"a":1,"b":2}"#,
        ],
    );
    assert_eq!(run.expect_ok()["sum"], 3, "{run:#?}");
}

#[test]
fn outputs_are_checked_before_anything_is_written() {
    let out = TempDir::new("pkg-out");
    let hello = root().join("examples/python-hello");
    let hello = hello.to_str().unwrap();
    let base = ["--handler", "index.main_handler"];
    let fails = |args: &[&str], want: &str| {
        let run = package(&[&[hello][..], &base[..], args].concat());
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
        assert!(run.stderr.contains(want), "{want:?}: {run:#?}");
    };
    fails(
        &["-o", out.path().join("fn.tar").to_str().unwrap()],
        "name the zip to write",
    );
    // A serverless.yml of the user's is never replaced.
    let theirs = out.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("serverless.yml"), "component: scf\n").unwrap();
    fails(
        &["-o", theirs.join("fn.zip").to_str().unwrap()],
        "exists and was not written by scf-local package",
    );
    assert_eq!(read(&theirs.join("serverless.yml")), "component: scf\n");
    assert!(!theirs.join("fn.zip").exists());
    // One package per folder.
    let ours = out.path().join("ours");
    packaged(
        &[
            &[hello][..],
            &base[..],
            &["-o", ours.join("a.zip").to_str().unwrap()],
        ]
        .concat(),
    );
    fails(
        &["-o", ours.join("b.zip").to_str().unwrap()],
        "deploys a.zip: write each package into a folder of its own",
    );
    // A folder of that name that is not ours stays.
    let taken = out.path().join("taken");
    std::fs::create_dir_all(taken.join("fn")).unwrap();
    fails(
        &["-o", taken.join("fn.zip").to_str().unwrap()],
        "writes the package's files there",
    );
    // Web functions are not packaged; a handler's file decides nothing for them.
    let web = root().join("examples/web-python");
    let run = package(&[
        web.to_str().unwrap(),
        "-o",
        out.path().join("web/fn.zip").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("web and image-style functions are not packaged")
    );
}
