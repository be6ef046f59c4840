//! The instance's configuration, read from the environment the platform sets (`docs/protocol.md`).

use std::path::PathBuf;

use crate::ShimError;

/// Where the runtime API is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix domain socket (`SCF_RUNTIME_API=unix:/path/to/api.sock`, or `unix:@NAME` for an abstract one),
    /// as `scf-local` serves it.
    Unix(PathBuf),
    /// `host:port` over TCP (`SCF_RUNTIME_API` + `SCF_RUNTIME_API_PORT`), as the real cloud serves it.
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => f.write_str(a),
        }
    }
}

impl Endpoint {
    /// The endpoint named by `SCF_RUNTIME_API` (host, or `unix:PATH`) and `SCF_RUNTIME_API_PORT`;
    /// `127.0.0.1:9001` when neither is set, as the open-source clients default.
    pub fn from_vars(api: Option<&str>, port: Option<&str>) -> Result<Endpoint, ShimError> {
        match (
            api.map(str::trim).filter(|s| !s.is_empty()),
            port.map(str::trim).filter(|s| !s.is_empty()),
        ) {
            (Some(a), _) if a.starts_with("unix:") => {
                Ok(Endpoint::Unix(PathBuf::from(&a["unix:".len()..])))
            }
            (host, port) => {
                let host = host.unwrap_or("127.0.0.1");
                let port = port.unwrap_or("9001");
                port.parse::<u16>().map_err(|_| {
                    ShimError::Config(format!(
                        "SCF_RUNTIME_API_PORT '{port}' is not a port number"
                    ))
                })?;
                Ok(Endpoint::Tcp(format!("{host}:{port}")))
            }
        }
    }
}

/// The endpoint and path prefix named by `AWS_LAMBDA_RUNTIME_API`: `host:port`, optionally followed by a path
/// (`127.0.0.1:9000/.rt`, as Lambda emulators give it), which then prefixes every call's path.
pub fn lambda_api(value: &str) -> Result<(Endpoint, String), ShimError> {
    let value = value.trim();
    let (hostport, path) = match value.find('/') {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    let bad = |why: &str| {
        ShimError::Config(format!(
            "AWS_LAMBDA_RUNTIME_API '{value}' is not HOST:PORT[/PATH]: {why}"
        ))
    };
    let Some((host, port)) = hostport.rsplit_once(':') else {
        return Err(bad("no port"));
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if port.parse::<u16>().is_err() {
        return Err(bad(&format!("'{port}' is not a port number")));
    }
    let prefix = path.trim_end_matches('/');
    if prefix.contains(['?', '#']) || prefix.chars().any(char::is_whitespace) {
        return Err(bad("the path may not hold a query, a fragment or spaces"));
    }
    Ok((Endpoint::Tcp(hostport.to_owned()), prefix.to_owned()))
}

/// Everything the shim needs to know about its instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// The handler string, `file.method` (`_HANDLER`).
    pub handler: String,
    /// The runtime name (`SCF_RUNTIME`): `native`, `python3`, `Python3.9`, `nodejs`, `Nodejs16.13`, … or empty.
    pub runtime: String,
    /// Where the function's code is (`USER_CODE_ROOT`, else the working directory).
    pub code_root: PathBuf,
    /// Where the runtime API is.
    pub endpoint: Endpoint,
    /// How the runtime API is spoken: SCF's, or Lambda's when only `AWS_LAMBDA_RUNTIME_API` names it.
    pub dialect: scf_protocol::api::Dialect,
    /// Prepended to every call's path (`AWS_LAMBDA_RUNTIME_API=host:port/prefix`); empty for none.
    pub path_prefix: String,
    /// Memory size in MB for dialects that do not send it per invocation (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_mb: u32,
    /// `SCF_FUNCTIONNAME`.
    pub function_name: String,
    /// `SCF_NAMESPACE` (default `default`).
    pub namespace: String,
    /// `SCF_FUNCTIONVERSION` (default `$LATEST`).
    pub function_version: String,
    /// `TENCENTCLOUD_REGION`.
    pub region: String,
    /// `TENCENTCLOUD_APPID`.
    pub appid: String,
    /// `TENCENTCLOUD_UIN`.
    pub uin: String,
    /// The function's environment as the context shows it: `(environment JSON string, environ string)`.
    pub context_env: (String, String),
}

/// Names of the variables the platform sets for the function's own environment, comma-separated, so the
/// context's `environment`/`environ` can show the function's variables and not the whole process environment.
pub const FUNCTION_ENV_KEYS: &str = "SCF_FUNCTION_ENV_KEYS";

/// The platform's identity variables, shown in the context's environment ahead of the function's own.
const IDENTITY_KEYS: &[&str] = &[
    "SCF_NAMESPACE",
    "SCF_FUNCTIONNAME",
    "SCF_FUNCTIONVERSION",
    "TENCENTCLOUD_REGION",
    "TENCENTCLOUD_APPID",
    "TENCENTCLOUD_UIN",
];

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ShimError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (a variable's value by name).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ShimError> {
        let handler = get("_HANDLER").filter(|h| !h.is_empty()).ok_or_else(|| {
            ShimError::Config(
                "_HANDLER is not set; it names the handler as FILE.METHOD, e.g. index.main_handler"
                    .into(),
            )
        })?;
        let code_root = match get("USER_CODE_ROOT").filter(|s| !s.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => std::env::current_dir()?,
        };
        let scf_api = get("SCF_RUNTIME_API").filter(|v| !v.is_empty());
        let lambda_api = get("AWS_LAMBDA_RUNTIME_API").filter(|v| !v.is_empty());
        let (endpoint, path_prefix, dialect) = match (scf_api, lambda_api) {
            (None, Some(value)) => {
                let (endpoint, prefix) = self::lambda_api(&value)?;
                (endpoint, prefix, scf_protocol::api::Dialect::Lambda)
            }
            (api, _) => (
                Endpoint::from_vars(api.as_deref(), get("SCF_RUNTIME_API_PORT").as_deref())?,
                String::new(),
                scf_protocol::api::Dialect::Scf,
            ),
        };
        let first = |keys: &[&str], d: &str| {
            keys.iter()
                .find_map(|k| get(k).filter(|v| !v.is_empty()))
                .unwrap_or_else(|| d.to_owned())
        };
        let or = |k: &str, d: &str| first(&[k], d);

        let mut keys: Vec<String> = IDENTITY_KEYS.iter().map(|k| (*k).to_owned()).collect();
        if let Some(list) = get(FUNCTION_ENV_KEYS) {
            for k in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                if !keys.iter().any(|have| have == k) {
                    keys.push(k.to_owned());
                }
            }
        }
        let pairs: Vec<(String, String)> = keys
            .into_iter()
            .filter_map(|k| get(&k).map(|v| (k, v)))
            .collect();
        let context_env = scf_protocol::Context::encode_environment(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );

        Ok(Config {
            handler,
            runtime: or("SCF_RUNTIME", ""),
            code_root,
            endpoint,
            dialect,
            path_prefix,
            memory_mb: first(&["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128")
                .parse()
                .unwrap_or(128),
            function_name: first(&["SCF_FUNCTIONNAME", "AWS_LAMBDA_FUNCTION_NAME"], ""),
            namespace: or("SCF_NAMESPACE", "default"),
            function_version: first(
                &["SCF_FUNCTIONVERSION", "AWS_LAMBDA_FUNCTION_VERSION"],
                "$LATEST",
            ),
            region: first(&["TENCENTCLOUD_REGION", "AWS_REGION"], ""),
            appid: or("TENCENTCLOUD_APPID", ""),
            uin: or("TENCENTCLOUD_UIN", ""),
            context_env,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ShimError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::from_vars(None, None).ok(),
            Some(Endpoint::Tcp("127.0.0.1:9001".into()))
        );
        assert_eq!(
            Endpoint::from_vars(Some("unix:/tmp/a.sock"), None).ok(),
            Some(Endpoint::Unix("/tmp/a.sock".into()))
        );
        assert_eq!(
            Endpoint::from_vars(Some("10.0.0.1"), Some("9000")).ok(),
            Some(Endpoint::Tcp("10.0.0.1:9000".into()))
        );
        assert!(Endpoint::from_vars(None, Some("x")).is_err());
    }

    #[test]
    fn lambda_api_may_carry_a_path_prefix() {
        for (value, hostport, prefix) in [
            ("127.0.0.1:9001", "127.0.0.1:9001", ""),
            ("127.0.0.1:9000/.rt", "127.0.0.1:9000", "/.rt"),
            ("localhost:9000/a/b/", "localhost:9000", "/a/b"),
            ("[::1]:9000/", "[::1]:9000", ""),
        ] {
            let (endpoint, p) = lambda_api(value).expect(value);
            assert_eq!(endpoint, Endpoint::Tcp(hostport.into()), "{value}");
            assert_eq!(p, prefix, "{value}");
        }
        for value in [
            "127.0.0.1",
            "127.0.0.1:x/.rt",
            ":9000",
            "h:70000",
            "h:1/a b",
            "h:1/a?b",
        ] {
            let e = lambda_api(value).expect_err(value);
            assert!(
                matches!(&e, ShimError::Config(m) if m.contains("AWS_LAMBDA_RUNTIME_API")),
                "{e}"
            );
        }
        let c = cfg(&[
            ("_HANDLER", "index.main"),
            ("USER_CODE_ROOT", "/code"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9000/.rt"),
        ])
        .expect("config");
        assert_eq!(c.dialect, scf_protocol::api::Dialect::Lambda);
        assert_eq!(
            (c.endpoint, c.path_prefix.as_str()),
            (Endpoint::Tcp("127.0.0.1:9000".into()), "/.rt")
        );
    }

    #[test]
    fn reads_identity_and_function_env() {
        let c = cfg(&[
            ("_HANDLER", "index.main"),
            ("USER_CODE_ROOT", "/code"),
            ("SCF_FUNCTIONNAME", "f"),
            ("SCF_FUNCTION_ENV_KEYS", "A,B"),
            ("A", "1"),
            ("PATH", "/bin"),
        ])
        .expect("config");
        assert_eq!(c.namespace, "default");
        assert_eq!(c.function_version, "$LATEST");
        assert_eq!(c.context_env.0, r#"{"A":"1","SCF_FUNCTIONNAME":"f"}"#);
        assert_eq!(c.context_env.1, "SCF_FUNCTIONNAME=f;A=1");
        assert!(cfg(&[]).is_err(), "no _HANDLER");
    }
}
