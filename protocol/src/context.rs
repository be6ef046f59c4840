//! The invocation context (`docs/scf-platform.md` §2).

use serde::{Deserialize, Serialize};

/// The context every handler receives with its event. Field names and types are the platform's:
/// `environment` is a JSON **string** and `environ` a `K=V;K=V` string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Context {
    /// Memory size of the function in MB.
    pub memory_limit_in_mb: u32,
    /// Execution timeout of the function in milliseconds.
    pub time_limit_in_ms: u64,
    /// Id of this invocation.
    pub request_id: String,
    /// The function's environment as a JSON object, encoded as a string.
    pub environment: String,
    /// The function's environment as `K=V` pairs joined by `;`.
    pub environ: String,
    /// Version of the function (`$LATEST` unless published).
    pub function_version: String,
    /// Name of the function.
    pub function_name: String,
    /// Namespace of the function.
    pub namespace: String,
    /// Region the function runs in.
    pub tencentcloud_region: String,
    /// App id of the owning account.
    pub tencentcloud_appid: String,
    /// Uin of the owning account.
    pub tencentcloud_uin: String,
}

impl Context {
    /// The context as the JSON object handlers receive.
    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Builds `environment` and `environ` from ordered `(key, value)` pairs.
    pub fn encode_environment<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> (String, String) {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .clone()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
            .collect();
        let environment = serde_json::Value::Object(map).to_string();
        let environ = pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        (environment, environ)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_is_a_json_string_and_environ_pairs() {
        let pairs = [("SCF_NAMESPACE", "default"), ("k", "v=1")];
        let (environment, environ) = Context::encode_environment(pairs);
        assert_eq!(environment, r#"{"SCF_NAMESPACE":"default","k":"v=1"}"#);
        assert_eq!(environ, "SCF_NAMESPACE=default;k=v=1");
    }

    #[test]
    fn serialises_all_eleven_fields() {
        let v: serde_json::Value =
            serde_json::from_str(&Context::default().to_json()).expect("json");
        assert_eq!(v.as_object().map(|o| o.len()), Some(11));
        assert!(v["memory_limit_in_mb"].is_u64());
        assert!(v["environment"].is_string());
    }
}
