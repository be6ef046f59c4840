//! The cross-language conformance suite (`tests/conformance`, `docs/conformance.md`) through the real
//! `scf-local conformance`: every case in Python, Node.js and Rust on real instances, the matrix printed,
//! any mismatch a failure. Also through `scf-shim` given as an external runtime command, and a check that
//! the runner does report a mismatch.
//!
//! Needs `make build` (the binaries, `libconformance.so`, `.venv` with scf_sdk, `sdk-node/index.node`).
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "tests; the matrix is printed for the log"
)]

use std::process::{Command, Output, Stdio};

use scf_tests::{TempDir, bin, python_sdk, root};

fn conformance(args: &[&str]) -> Output {
    bin("libconformance.so");
    let out = Command::new(bin("scf-local"))
        .arg("conformance")
        .args(args)
        .env("SCF_PYTHON", python_sdk())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&out.stdout));
    println!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Shows the matrix in `cargo test`'s own output, past the test harness's capture of `print!`.
fn show(out: &Output) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(b"\nThe conformance matrix (scf-local conformance):\n");
    let _ = err.write_all(&out.stdout);
}

/// The summary line `N cases × L languages = M cells: P pass, F FAIL, X n/a (T s)` as (N, P, F, X).
fn summary(out: &Output) -> (usize, usize, usize, usize) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(" cells: "))
        .unwrap_or_else(|| panic!("no summary line in {text}"));
    let num = |after: &str| -> usize {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let cases: usize = line.split(' ').next().unwrap().parse().unwrap();
    (cases, num("cells: "), num("pass, "), num("FAIL, "))
}

#[test]
fn the_whole_matrix_passes_in_every_language() {
    let out = conformance(&[]);
    show(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the matrix has failures:\n{text}"
    );
    let (cases, pass, fail, na) = summary(&out);
    assert!(cases >= 40, "{cases} cases");
    assert_eq!(fail, 0);
    assert_eq!(pass + na, cases * 3);
    // Not applicable is shown with its reason, never as a pass.
    assert!(text.contains("error_syntax [rust]: Rust handlers are compiled ahead of time"));
    assert!(na < cases, "{na} n/a");
}

#[test]
fn the_shim_passes_as_an_external_runtime_command() {
    let shim = bin("scf-shim");
    let out = conformance(&["--runtime-cmd", shim.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "failures:\n{text}");
    assert!(text.contains("runtime command: "), "{text}");
    assert_eq!(summary(&out).2, 0);
}

#[test]
fn a_mismatch_fails_with_its_difference() {
    let cases = TempDir::new("conformance-cases");
    let case = |name: &str, json: &str| {
        let dir = cases.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("case.json"), json).unwrap();
    };
    // Right in Node, wrong for Python (separators) unless stated, and an error expected where there is none.
    case(
        "return_list",
        r#"{"description": "x", "invocations": [{"expect": {"body": "[1,\"two\",null,true,{\"three\":3}]"}}]}"#,
    );
    case(
        "return_string",
        r#"{"description": "x", "invocations": [{"expect": {"error": {"errorType": "UnhandledError", "statusCode": 430}}}]}"#,
    );
    let handlers = root().join("tests/conformance/handlers");
    let out = conformance(&[
        "--cases",
        cases.path().to_str().unwrap(),
        "--handlers",
        handlers.to_str().unwrap(),
        "--language",
        "python",
        "--language",
        "node",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL return_list [python]:"), "{text}");
    assert!(
        text.contains(r#"got      "[1, \"two\", null, true, {\"three\": 3}]""#),
        "{text}"
    );
    assert!(!text.contains("FAIL return_list [node]"), "{text}");
    assert!(
        text.contains("expected the error 430 UnhandledError, got success: \"Hello World\""),
        "{text}"
    );
    assert_eq!(summary(&out), (2, 1, 3, 0), "cases, pass, FAIL, n/a");
}
