//! JSON string writing with the platform's escaping rules.
//!
//! The real platform is written in Go and its error bodies are encoded by Go's `encoding/json`: besides the
//! mandatory escapes it writes `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026` and the line separators U+2028
//! and U+2029 as `\u2028`, `\u2029` (`docs/scf-platform.md` §3). Bodies built here are byte-identical to the
//! platform's, in every language, because every host renders them through this one function.

use std::fmt::Write as _;

/// Appends `s` to `out` as a JSON string literal (with the quotes) using Go's `encoding/json` escaping.
pub fn write_go_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Returns `s` as a JSON string literal with Go's escaping (see [`write_go_string`]).
pub fn go_string(s: &str) -> String {
    let mut out = String::new();
    write_go_string(&mut out, s);
    out
}

/// How deep `text` nests arrays and objects, when that is more than `max`: a scan that skips strings and
/// stops as soon as the depth passes `max` (so it is cheap on any input). It does not validate the JSON;
/// a parser does that.
pub fn check_depth(text: &[u8], max: usize) -> Result<(), DepthExceeded> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(DepthExceeded { max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// An event nested deeper than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the event nests arrays and objects more than {max} deep")]
pub struct DepthExceeded {
    /// The limit.
    pub max: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(go_string("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(go_string("q\"\\\n\t\u{1}"), r#""q\"\\\n\t\u0001""#);
        assert_eq!(go_string("ü😀\u{2028}"), "\"ü😀\\u2028\"");
    }

    #[test]
    fn depth_is_counted_outside_strings() {
        assert!(check_depth(b"[[[]]]", 3).is_ok());
        assert_eq!(check_depth(b"[[[[]]]]", 3), Err(DepthExceeded { max: 3 }));
        assert!(check_depth(br#"{"a":"[[[[[[","b":[1,{"c":"\\\"[[[["}]}"#, 3).is_ok());
        let deep = "[".repeat(10_000);
        assert!(check_depth(deep.as_bytes(), 100).is_err());
    }

    #[test]
    fn output_is_json_that_round_trips() {
        let s = "line1\nline2 <tag> & \u{7f} \u{0} 中文";
        let decoded: String = serde_json::from_str(&go_string(s)).expect("valid JSON string");
        assert_eq!(decoded, s);
    }
}
