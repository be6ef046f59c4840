//! The handler string `file.method`.

use scf_protocol::FunctionError;

/// A parsed handler string: `index.main_handler` → file `index`, method `main_handler`.
///
/// The string is split at its **last** dot, so `dir/sub/index.main` and `pkg.module.main` both name a method
/// of a file (how each host maps `file` onto its language's modules is its own business). A string that is
/// empty, has no dot, has an empty part, contains `..`, or starts with `/` is malformed (443): a handler can
/// only name code below the code root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerName {
    /// The file part: `index`, `dir/sub/index` or `pkg.module`.
    pub file: String,
    /// The method part: `main_handler`.
    pub method: String,
}

impl HandlerName {
    /// Parses `s`, or returns a `MalformedHandler` error saying why not.
    pub fn parse(s: &str) -> Result<HandlerName, FunctionError> {
        let bad = |why: &str| FunctionError::malformed_handler(s, why);
        if s.trim().is_empty() {
            return Err(bad(
                "the handler is empty; expected FILE.METHOD, e.g. index.main_handler",
            ));
        }
        if s.contains("..") {
            return Err(bad("'..' is not allowed in a handler"));
        }
        if s.starts_with('/') || s.contains('\\') {
            return Err(bad("the handler must name a file below the code root"));
        }
        let Some((file, method)) = s.rsplit_once('.') else {
            return Err(bad(
                "missing module name; expected FILE.METHOD, e.g. index.main_handler",
            ));
        };
        if file.is_empty()
            || method.is_empty()
            || file.ends_with('/')
            || file.split('/').any(str::is_empty)
        {
            return Err(bad("expected FILE.METHOD, e.g. index.main_handler"));
        }
        Ok(HandlerName {
            file: file.to_owned(),
            method: method.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scf_protocol::ErrorKind;

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
    fn refuses_malformed_strings() {
        for s in [
            "",
            "index",
            "a..b",
            "../x.y",
            "/abs.main",
            ".main",
            "index.",
            "a//b.c",
        ] {
            let e = HandlerName::parse(s).expect_err(s);
            assert_eq!(e.kind, ErrorKind::MalformedHandler, "{s}");
            assert_eq!(e.kind.status_code(), 443);
        }
    }
}
