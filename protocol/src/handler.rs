//! The handler string `file.method`, parsed once for every language.
//!
//! Two splits exist because the languages resolve the string differently:
//! - [`HandlerName::parse`] splits at the **last** dot (Python and native handlers): `pkg.module.main` is the
//!   method `main` of the file `pkg.module`, `dir/sub/index.main` the method `main` of `dir/sub/index`;
//! - [`HandlerName::parse_module_path`] splits at the **first** dot (Node.js): `app.handlers.main` is the
//!   property path `handlers.main` of the module `app`.
//!
//! The rules a string must satisfy, and the texts of the `MalformedHandler` (443) error when it does not,
//! are the same for both: a handler can only name code below the code root.

use crate::FunctionError;

/// The text when the handler string is empty.
const EMPTY: &str = "the handler is empty; expected FILE.METHOD, e.g. index.main_handler";
/// The text when the handler climbs out of the code root.
const DOTDOT: &str = "'..' is not allowed in a handler";
/// The text when the handler is an absolute path.
const ABSOLUTE: &str = "the handler must name a file below the code root";
/// The text when the handler's own file resolves (through a symbolic link) outside the code root.
const OUTSIDE: &str = "the handler's file resolves outside the code root";
/// The text when the handler has no dot at all.
const NO_DOT: &str = "missing module name; expected FILE.METHOD, e.g. index.main_handler";
/// The text when a part of the handler is empty.
const EMPTY_PART: &str = "expected FILE.METHOD, e.g. index.main_handler";

/// A parsed handler string: `index.main_handler` → file `index`, method `main_handler`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerName {
    /// The file (or module) part: `index`, `dir/sub/index`, `pkg.module`.
    pub file: String,
    /// The method part: `main_handler`; for [`HandlerName::parse_module_path`] a dotted property path
    /// (`handlers.main`).
    pub method: String,
}

impl HandlerName {
    /// Parses `s`, split at its last dot (Python, native), or returns a `MalformedHandler` error saying why.
    pub fn parse(s: &str) -> Result<HandlerName, FunctionError> {
        check(s)?;
        let Some((file, method)) = s.rsplit_once('.') else {
            return Err(FunctionError::malformed_handler(s, NO_DOT));
        };
        Self::build(s, file, method)
    }

    /// Parses `s`, split at its first dot (Node.js: a module, then a property path), with the same rules
    /// and texts as [`HandlerName::parse`].
    pub fn parse_module_path(s: &str) -> Result<HandlerName, FunctionError> {
        check(s)?;
        let Some((file, method)) = s.split_once('.') else {
            return Err(FunctionError::malformed_handler(s, NO_DOT));
        };
        if method.split('.').any(str::is_empty) {
            return Err(FunctionError::malformed_handler(s, EMPTY_PART));
        }
        Self::build(s, file, method)
    }

    /// The method part's segments (`handlers.main` → `["handlers", "main"]`).
    pub fn method_path(&self) -> impl Iterator<Item = &str> {
        self.method.split('.')
    }

    fn build(s: &str, file: &str, method: &str) -> Result<HandlerName, FunctionError> {
        if file.is_empty() || method.is_empty() || file.split('/').any(str::is_empty) {
            return Err(FunctionError::malformed_handler(s, EMPTY_PART));
        }
        Ok(HandlerName {
            file: file.to_owned(),
            method: method.to_owned(),
        })
    }
}

/// The one rule every host applies once it found the handler's own file (Python's module file, Node's
/// resolved module, the native library) and before it loads it: the file, every symbolic link resolved
/// (`realpath`), must be inside the code root (resolved the same way), else the `MalformedHandler` (443)
/// error, as for `..`. What the handler imports may live anywhere (`node_modules` links keep working).
/// A file that cannot be resolved (it does not exist) passes: the host's own not-found error says so.
pub fn check_handler_file(
    handler: &str,
    code_root: &std::path::Path,
    file: &std::path::Path,
) -> Result<(), FunctionError> {
    let Ok(file) = std::fs::canonicalize(file) else {
        return Ok(());
    };
    let root = std::fs::canonicalize(code_root).unwrap_or_else(|_| code_root.to_path_buf());
    if file.starts_with(&root) {
        return Ok(());
    }
    let mut e = FunctionError::malformed_handler(handler, OUTSIDE);
    e.stack_trace = format!("{} is outside {}", file.display(), root.display());
    Err(e)
}

fn check(s: &str) -> Result<(), FunctionError> {
    let bad = |why: &str| Err(FunctionError::malformed_handler(s, why));
    if s.trim().is_empty() {
        return bad(EMPTY);
    }
    if s.contains("..") {
        return bad(DOTDOT);
    }
    if s.starts_with('/') || s.contains('\\') {
        return bad(ABSOLUTE);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    #[allow(clippy::unwrap_used, reason = "tests")]
    fn a_handler_file_linked_out_of_the_code_root_is_malformed() {
        let base = std::env::temp_dir().join(format!("scf-handler-file-{}", std::process::id()));
        let (root, outside) = (base.join("code"), base.join("outside"));
        std::fs::create_dir_all(root.join("dir")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("evil.py"), "").unwrap();
        std::fs::write(root.join("dir/index.py"), "").unwrap();
        let link = |target: &std::path::Path, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        };
        link(&outside.join("evil.py"), "link.py");
        link(&outside, "linked");
        link(&root.join("dir/index.py"), "inside.py");
        for file in ["link.py", "linked/evil.py"] {
            let e = check_handler_file("h.main", &root, &root.join(file)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::MalformedHandler, "{file}");
            assert!(e.message.contains(OUTSIDE), "{}", e.message);
        }
        for file in ["dir/index.py", "inside.py", "missing.py"] {
            check_handler_file("h.main", &root, &root.join(file)).unwrap();
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn splits_at_the_last_dot() {
        let h = HandlerName::parse("index.main_handler").expect("valid");
        assert_eq!(
            (h.file.as_str(), h.method.as_str()),
            ("index", "main_handler")
        );
        let h = HandlerName::parse("pkg.module.main").expect("valid");
        assert_eq!((h.file.as_str(), h.method.as_str()), ("pkg.module", "main"));
        let h = HandlerName::parse("dir/sub/index.main").expect("valid");
        assert_eq!(h.file, "dir/sub/index");
    }

    #[test]
    fn module_paths_split_at_the_first_dot() {
        let h = HandlerName::parse_module_path("app.handlers.main").expect("valid");
        assert_eq!(
            (h.file.as_str(), h.method.as_str()),
            ("app", "handlers.main")
        );
        assert_eq!(h.method_path().collect::<Vec<_>>(), ["handlers", "main"]);
        let h = HandlerName::parse_module_path("dir/app.main").expect("valid");
        assert_eq!(h.file, "dir/app");
    }

    #[test]
    fn both_splits_refuse_with_the_same_texts() {
        for (s, why) in [
            ("", EMPTY),
            ("index", NO_DOT),
            ("a..b", DOTDOT),
            ("../x.y", DOTDOT),
            ("/abs.main", ABSOLUTE),
            ("a\\b.c", ABSOLUTE),
            (".main", EMPTY_PART),
            ("index.", EMPTY_PART),
            ("a//b.c", EMPTY_PART),
            ("dir/.c", EMPTY_PART),
        ] {
            for parse in [HandlerName::parse, HandlerName::parse_module_path] {
                let e = parse(s).expect_err(s);
                assert_eq!(e.kind, ErrorKind::MalformedHandler, "{s}");
                assert_eq!(e.message, format!("Bad handler '{s}': {why}"), "{s}");
            }
        }
        let e = HandlerName::parse_module_path("a.b..c").expect_err("empty segment");
        assert_eq!(e.kind, ErrorKind::MalformedHandler);
    }
}
