//! Embeds the conformance suite (`tests/conformance`: the cases, the Python and Node.js handlers, the README
//! with the handler contract) into the kit, so that it runs without a checkout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name();
        if name == "__pycache__" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push((rel.to_string_lossy().into_owned(), path.clone()));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let suite = manifest.join("../tests/conformance");
    let suite = suite.canonicalize().unwrap_or(suite);
    let mut files = Vec::new();
    for part in ["cases", "handlers/python", "handlers/node"] {
        println!("cargo:rerun-if-changed={}", suite.join(part).display());
        collect(&suite, &suite.join(part), &mut files);
    }
    println!(
        "cargo:rerun-if-changed={}",
        suite.join("README.md").display()
    );
    files.push(("README.md".to_owned(), suite.join("README.md")));
    let mut code = String::from(
        "/// The suite's files: (path in the suite, contents).\npub(crate) static SUITE: &[(&str, &[u8])] = &[\n",
    );
    for (rel, path) in &files {
        let _ = writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("suite.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
