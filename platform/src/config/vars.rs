//! Variables in `serverless.yml`, as Tencent's Serverless Framework resolves them: `${name}`, `${app}`,
//! `${stage}` (the project's own keys) and `${env:VAR}` (the environment, then a `.env` file beside the
//! configuration; `${env.VAR}` is read the same way). Anything else (`${output:…}`, which refers to another
//! project's outputs in the cloud) is left as written, with a warning.

use std::collections::BTreeMap;
use std::path::Path;

/// What variables resolve to.
#[derive(Debug, Default, Clone)]
pub(crate) struct Vars {
    /// `name`, `app`, `stage`, once known.
    pub(crate) project: BTreeMap<&'static str, String>,
    /// The `.env` file's variables (the process's environment wins over them).
    pub(crate) dotenv: BTreeMap<String, String>,
}

impl Vars {
    /// The value of `${env:key}`: the process's environment, else the `.env` file.
    fn env(&self, key: &str) -> Option<String> {
        std::env::var(key)
            .ok()
            .or_else(|| self.dotenv.get(key).cloned())
    }

    /// `text` with its variables resolved; what could not be resolved is said in `warnings`.
    pub(crate) fn resolve(&self, text: &str, warnings: &mut Vec<String>) -> String {
        if !text.contains("${") {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match closing(after) {
                Some(end) => {
                    // Inner variables first (`${output:${stage}:…}`).
                    let inner = self.resolve(&after[..end], warnings);
                    out.push_str(&self.one(inner.trim(), warnings));
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn one(&self, name: &str, warnings: &mut Vec<String>) -> String {
        if let Some(key) = name
            .strip_prefix("env:")
            .or_else(|| name.strip_prefix("env."))
        {
            let key = key.trim();
            return match self.env(key) {
                Some(v) => v,
                None => {
                    warnings.push(format!(
                        "${{env:{key}}} is not set (in the environment or a .env file): it is empty"
                    ));
                    String::new()
                }
            };
        }
        if let Some(v) = self.project.get(name) {
            return v.clone();
        }
        warnings.push(format!(
            "${{{name}}} is not resolved locally (scf-local knows ${{name}}, ${{app}}, ${{stage}} and ${{env:VAR}}): it is left as written"
        ));
        format!("${{{name}}}")
    }

    /// Resolves every string of `value` in place.
    pub(crate) fn resolve_all(&self, value: &mut serde_yaml::Value, warnings: &mut Vec<String>) {
        match value {
            serde_yaml::Value::String(s) if s.contains("${") => {
                *s = self.resolve(s, warnings);
            }
            serde_yaml::Value::Sequence(items) => {
                for v in items {
                    self.resolve_all(v, warnings);
                }
            }
            serde_yaml::Value::Mapping(map) => {
                for (_, v) in map.iter_mut() {
                    self.resolve_all(v, warnings);
                }
            }
            serde_yaml::Value::Tagged(t) => self.resolve_all(&mut t.value, warnings),
            _ => {}
        }
    }
}

/// The index of the `}` closing a `${` whose content starts `text`, nested `${…}` included.
fn closing(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The `.env` file in `dir`, if there is one: `KEY=VALUE` lines (`export KEY=VALUE` too), `#` comments,
/// values in single quotes taken as written, in double quotes with `\n` and `\"` escapes.
pub(crate) fn read_dotenv(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let path = dir.join(".env");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    Ok(parse_dotenv(&text))
}

fn parse_dotenv(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            v.to_owned()
        } else if let Some(v) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            v.replace("\\n", "\n").replace("\\\"", "\"")
        } else {
            // An unquoted value ends at a ` #` comment.
            match value.find(" #") {
                Some(i) => value[..i].trim_end().to_owned(),
                None => value.to_owned(),
            }
        };
        out.insert(key.to_owned(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_env_and_unknown_variables() {
        let mut vars = Vars::default();
        vars.project.insert("name", "demo".into());
        vars.project.insert("stage", "dev".into());
        vars.project.insert("app", "shop".into());
        vars.dotenv
            .insert("SCF_TEST_FROM_DOTENV".into(), "yes".into());
        let mut w = Vec::new();
        assert_eq!(
            vars.resolve("${name}-${stage}-${app}", &mut w),
            "demo-dev-shop"
        );
        assert_eq!(vars.resolve("${env:SCF_TEST_FROM_DOTENV}", &mut w), "yes");
        assert_eq!(
            vars.resolve("a ${env.SCF_TEST_FROM_DOTENV} b", &mut w),
            "a yes b"
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            vars.resolve("${output:${stage}:${app}:vpc.vpcId}", &mut w),
            "${output:dev:shop:vpc.vpcId}"
        );
        assert_eq!(vars.resolve("${env:SCF_TEST_NOT_SET_ANYWHERE}", &mut w), "");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("${output:dev:shop:vpc.vpcId}"), "{w:?}");
        assert!(w[1].contains("SCF_TEST_NOT_SET_ANYWHERE"), "{w:?}");
        assert_eq!(vars.resolve("${unterminated", &mut w), "${unterminated");
    }

    #[test]
    fn dotenv_lines() {
        let env = parse_dotenv(
            "# comment\nA=1\nexport B = two words # note\nC='x # y'\nD=\"l1\\nl2\"\n=skip\nnovalue\n",
        );
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(env.get("B").map(String::as_str), Some("two words"));
        assert_eq!(env.get("C").map(String::as_str), Some("x # y"));
        assert_eq!(env.get("D").map(String::as_str), Some("l1\nl2"));
        assert_eq!(env.len(), 4);
    }
}
