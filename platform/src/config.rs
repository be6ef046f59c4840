//! A function's definition: from `serverless.yml` (Tencent's Serverless Framework, component `scf`) in the
//! code directory, overridden by command-line flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scf_protocol::limits;

use crate::PlatformError;

/// How the instance is started: the runtime names of [`scf_protocol::runtime`], parsed there once.
pub use scf_protocol::runtime::Runtime as RuntimeKind;

/// Everything the platform knows about one function.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// `inputs.name`.
    pub name: String,
    /// The code directory (`inputs.src`, relative to the directory holding `serverless.yml`).
    pub code_dir: PathBuf,
    /// `inputs.handler`, `FILE.METHOD`.
    pub handler: String,
    /// `inputs.runtime`.
    pub runtime: RuntimeKind,
    /// `inputs.memorySize`, MB.
    pub memory_mb: u32,
    /// `inputs.timeout`.
    pub timeout: Duration,
    /// `inputs.initTimeout`.
    pub init_timeout: Duration,
    /// `inputs.environment.variables`.
    pub env: BTreeMap<String, String>,
    /// `inputs.namespace`.
    pub namespace: String,
    /// `inputs.region`.
    pub region: String,
    /// How asynchronous invocations and instances are managed (`scf-local serve`).
    pub serve: ServeSettings,
    /// A web function, or an image-style event function: an HTTP server as the instance (`docs/web.md`).
    /// `None` for a function run by `scf-shim` or a custom runtime.
    pub http: Option<HttpFunction>,
    /// The runtime API dialect served to the instance (`inputs.local.dialect`: `scf`, the default, or
    /// `lambda`, which AWS's runtime clients speak).
    pub dialect: scf_protocol::api::Dialect,
    /// For a custom runtime: the command that starts the instance (`inputs.local.command`, run with `sh -c`
    /// in the code directory) instead of the code directory's `bootstrap`.
    pub command: Option<String>,
    /// The runtime as the function names it (`--runtime`, `inputs.runtime`), e.g. `Python3.9`: the name a
    /// package for the cloud keeps (`scf-local package`).
    pub runtime_name: Option<String>,
    /// A Python function's interpreter here (`inputs.local.python`, `--python`; a path is made absolute),
    /// given to `scf-shim` in `SCF_PYTHON`. `None`: the shim's choice (the code's `.venv`, else `python3`).
    pub python: Option<String>,
    /// A Rust function's crate: the code directory holds a `Cargo.toml` and the function is native (or a
    /// custom runtime with no `bootstrap` yet). [`crate::build::prepare`] builds it before instances start.
    pub rust_crate: Option<PathBuf>,
    /// Why the function's code could not be prepared (its crate does not build): every start of an
    /// instance fails with it (443).
    pub code_error: Option<scf_protocol::FunctionError>,
}

/// How a function whose instance is an HTTP server on port 9000 is run (`docs/web.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpFunction {
    /// What the server receives.
    pub kind: HttpKind,
    /// The instance command: the code directory's `scf_bootstrap`, or `inputs.image.command`.
    pub command: PathBuf,
    /// `inputs.image.args`.
    pub args: Vec<String>,
    /// Requests one instance takes at once: `inputs.instanceConcurrencyConfig.maxConcurrency` (2–100) when
    /// enabled, else 1.
    pub instance_concurrency: usize,
}

/// The two kinds of functions served by an HTTP server in the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKind {
    /// `inputs.type: web`: HTTP requests to `/web/<function>/<path>` are proxied to it.
    Web,
    /// An image-style event function (`inputs.image`, `type: event`): each event is `POST /event-invoke`.
    Event,
}

/// Settings `scf-local serve` uses: Tencent's own async keys, and ours under `inputs.local`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeSettings {
    /// `inputs.retryNum`: retries of an async event after an execution error (default 2).
    pub retry_num: u32,
    /// `inputs.msgTTL`: the maximum age of an async event, seconds (default 6 h).
    pub msg_ttl: Duration,
    /// `inputs.local.concurrency`: the function's concurrency limit (reserved concurrency; default 8).
    pub concurrency: usize,
    /// `inputs.local.provisioned`: instances started ahead and kept (default 0).
    pub provisioned: usize,
    /// `inputs.local.idleTimeout`: seconds an idle instance is kept before it is repossessed (default 300).
    pub idle_timeout: Duration,
    /// `inputs.local.retryInterval`: seconds between retries of an async event (default 60).
    pub retry_interval: Duration,
    /// `inputs.local.queueLimit`: events the async queue holds (default 100,000).
    pub queue_limit: usize,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            retry_num: 2,
            msg_ttl: Duration::from_secs(6 * 3600),
            concurrency: 8,
            provisioned: 0,
            idle_timeout: Duration::from_secs(300),
            retry_interval: Duration::from_secs(60),
            queue_limit: 100_000,
        }
    }
}

/// The parts of `serverless.yml` the platform reads.
#[derive(Debug, Default, serde::Deserialize)]
struct ServerlessFile {
    #[serde(default)]
    inputs: Inputs,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inputs {
    name: Option<String>,
    src: Option<SrcField>,
    handler: Option<String>,
    runtime: Option<String>,
    memory_size: Option<u32>,
    timeout: Option<f64>,
    init_timeout: Option<f64>,
    namespace: Option<String>,
    region: Option<String>,
    environment: Option<Environment>,
    retry_num: Option<u32>,
    #[serde(rename = "msgTTL")]
    msg_ttl: Option<f64>,
    local: Option<LocalKeys>,
    #[serde(rename = "type")]
    kind: Option<String>,
    image: Option<ImageKeys>,
    instance_concurrency_config: Option<InstanceConcurrency>,
}

/// `inputs.image`: the instance command of an image-style function (run locally from the code directory).
#[derive(Debug, Default, serde::Deserialize)]
struct ImageKeys {
    command: Option<String>,
    #[serde(default)]
    args: ImageArgs,
}

/// `inputs.image.args`: a list, or one string split at spaces.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum ImageArgs {
    List(Vec<String>),
    Line(String),
}

impl Default for ImageArgs {
    fn default() -> Self {
        ImageArgs::List(Vec::new())
    }
}

/// `inputs.instanceConcurrencyConfig`: multi-concurrency of web functions.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceConcurrency {
    enable: Option<bool>,
    max_concurrency: Option<usize>,
}

/// Our own keys, under `inputs.local`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LocalKeys {
    concurrency: Option<usize>,
    provisioned: Option<usize>,
    idle_timeout: Option<f64>,
    retry_interval: Option<f64>,
    queue_limit: Option<usize>,
    dialect: Option<String>,
    command: Option<String>,
    python: Option<String>,
}

/// `src` is either a path or `{ src: path, exclude: [...] }`.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum SrcField {
    Path(String),
    Object { src: String },
}

#[derive(Debug, Default, serde::Deserialize)]
struct Environment {
    #[serde(default)]
    variables: BTreeMap<String, serde_yaml::Value>,
}

/// Command-line settings; each one present wins over `serverless.yml`.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--name`.
    pub name: Option<String>,
    /// `--handler`.
    pub handler: Option<String>,
    /// `--runtime`.
    pub runtime: Option<String>,
    /// `--memory`.
    pub memory_mb: Option<u32>,
    /// `--timeout`, seconds.
    pub timeout: Option<f64>,
    /// `--init-timeout`, seconds.
    pub init_timeout: Option<f64>,
    /// `--env K=V`, in order.
    pub env: Vec<(String, String)>,
    /// `--dialect`.
    pub dialect: Option<String>,
    /// `--command`.
    pub command: Option<String>,
    /// `--python`.
    pub python: Option<String>,
}

const RESERVED_PREFIXES: &[&str] = &["SCF_", "QCLOUD_", "TENCENTCLOUD_"];

impl FunctionConfig {
    /// The definition of the function in `dir`: its `serverless.yml`/`serverless.yaml` if present, then `over`.
    pub fn load(dir: &Path, over: &Overrides) -> Result<FunctionConfig, PlatformError> {
        let dir = dir
            .canonicalize()
            .map_err(|e| PlatformError::Config(format!("code directory {}: {e}", dir.display())))?;
        if !dir.is_dir() {
            return Err(PlatformError::Config(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let mut file = ServerlessFile::default();
        for name in ["serverless.yml", "serverless.yaml"] {
            let p = dir.join(name);
            if p.is_file() {
                let text = std::fs::read_to_string(&p)
                    .map_err(PlatformError::io(format!("reading {}", p.display())))?;
                file = serde_yaml::from_str(&text)
                    .map_err(|e| PlatformError::Config(format!("{}: {e}", p.display())))?;
                break;
            }
        }
        let i = file.inputs;
        let code_dir = match i.src {
            Some(SrcField::Path(s)) | Some(SrcField::Object { src: s }) => dir.join(s),
            None => dir.clone(),
        };
        let code_dir = code_dir.canonicalize().map_err(|e| {
            PlatformError::Config(format!("code directory {}: {e}", code_dir.display()))
        })?;
        let handler = over.handler.clone().or(i.handler);
        let http = http_function(
            &code_dir,
            i.kind.as_deref(),
            i.image,
            i.instance_concurrency_config,
            handler.is_some(),
        )?;
        let handler = match (handler, &http) {
            (Some(h), _) => h,
            (None, Some(h)) => h.command.display().to_string(),
            (None, None) => {
                return Err(PlatformError::Config(
                    "no handler: pass --handler FILE.METHOD or set inputs.handler in serverless.yml"
                        .into(),
                ));
            }
        };
        let runtime = RuntimeKind::parse(
            over.runtime
                .as_deref()
                .or(i.runtime.as_deref())
                .unwrap_or("auto"),
        )
        .map_err(|e| PlatformError::Config(e.message))?;
        let name = over.name.clone().or(i.name).unwrap_or_else(|| {
            dir.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("function")
                .to_owned()
        });

        let memory_mb = over
            .memory_mb
            .or(i.memory_size)
            .unwrap_or(limits::DEFAULT_MEMORY_MB);
        if !(memory_mb == 64 || (128..=3072).contains(&memory_mb) && memory_mb % 128 == 0) {
            return Err(PlatformError::Config(format!(
                "memory size {memory_mb} MB: expected 64, or 128 to 3072 in steps of 128"
            )));
        }
        let timeout = over
            .timeout
            .or(i.timeout)
            .unwrap_or(limits::DEFAULT_TIMEOUT_SECS as f64);
        if !(timeout > 0.0 && timeout <= 900.0) {
            return Err(PlatformError::Config(format!(
                "timeout {timeout} s: expected more than 0 and at most 900"
            )));
        }
        let init_timeout = over
            .init_timeout
            .or(i.init_timeout)
            .unwrap_or(limits::DEFAULT_INIT_TIMEOUT_SECS as f64);
        if !(init_timeout > 0.0 && init_timeout <= 300.0) {
            return Err(PlatformError::Config(format!(
                "init timeout {init_timeout} s: expected more than 0 and at most 300"
            )));
        }

        let mut env = BTreeMap::new();
        for (k, v) in i.environment.map(|e| e.variables).unwrap_or_default() {
            let v = match v {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Null => String::new(),
                other => serde_yaml::to_string(&other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            env.insert(k, v);
        }
        for (k, v) in &over.env {
            env.insert(k.clone(), v.clone());
        }
        check_env(&env)?;

        let d = ServeSettings::default();
        let mut l = i.local.unwrap_or_default();
        let (l_dialect, l_command) = (l.dialect.take(), l.command.take());
        // A path names a file from where it was written: the shell's directory, or serverless.yml's.
        let absolute = |base: PathBuf, p: String| {
            if p.contains('/') {
                base.join(p).display().to_string()
            } else {
                p
            }
        };
        let python = match (over.python.clone(), l.python.take()) {
            (Some(p), _) => Some(absolute(std::env::current_dir().unwrap_or_default(), p)),
            (None, Some(p)) => Some(absolute(dir.clone(), p)),
            (None, None) => None,
        }
        .filter(|p| !p.is_empty());
        let positive =
            |what: &str, v: Option<f64>, default: Duration| -> Result<Duration, PlatformError> {
                match v {
                    None => Ok(default),
                    Some(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
                    Some(s) => Err(PlatformError::Config(format!(
                        "{what} {s}: expected a positive number of seconds"
                    ))),
                }
            };
        let serve = ServeSettings {
            retry_num: i.retry_num.unwrap_or(d.retry_num),
            msg_ttl: positive("msgTTL", i.msg_ttl, d.msg_ttl)?,
            concurrency: l.concurrency.unwrap_or(d.concurrency).max(1),
            provisioned: l.provisioned.unwrap_or(d.provisioned),
            idle_timeout: positive("local.idleTimeout", l.idle_timeout, d.idle_timeout)?,
            retry_interval: positive("local.retryInterval", l.retry_interval, d.retry_interval)?,
            queue_limit: l.queue_limit.unwrap_or(d.queue_limit).max(1),
        };
        if serve.provisioned > serve.concurrency {
            return Err(PlatformError::Config(format!(
                "local.provisioned ({}) is more than local.concurrency ({})",
                serve.provisioned, serve.concurrency
            )));
        }

        let dialect = match over
            .dialect
            .as_deref()
            .or(l_dialect.as_deref())
            .unwrap_or("scf")
        {
            d if d.eq_ignore_ascii_case("scf") => scf_protocol::api::Dialect::Scf,
            d if d.eq_ignore_ascii_case("lambda") => scf_protocol::api::Dialect::Lambda,
            other => {
                return Err(PlatformError::Config(format!(
                    "dialect '{other}': expected scf or lambda"
                )));
            }
        };
        let command = over
            .command
            .clone()
            .or(l_command)
            .filter(|c| !c.trim().is_empty());
        if command.is_some() && runtime != RuntimeKind::Custom {
            return Err(PlatformError::Config(
                "a command starts a custom runtime: use it with runtime custom".into(),
            ));
        }

        let rust_crate = rust_crate(
            &code_dir,
            runtime,
            &handler,
            http.is_some() || command.is_some(),
        );
        Ok(FunctionConfig {
            runtime_name: over.runtime.clone().or(i.runtime),
            python,
            rust_crate,
            code_error: None,
            http,
            dialect,
            command,
            serve,
            name,
            code_dir,
            handler,
            runtime,
            memory_mb,
            timeout: Duration::from_secs_f64(timeout),
            init_timeout: Duration::from_secs_f64(init_timeout),
            env,
            namespace: i.namespace.unwrap_or_else(|| "default".into()),
            region: i.region.unwrap_or_else(|| "ap-guangzhou".into()),
        })
    }
}

/// The crate of a Rust function: a `Cargo.toml` in the code directory of a native function (named, or chosen
/// from the handler by the shim's rule), or of a custom runtime whose `bootstrap` is yet to be built.
fn rust_crate(
    code_dir: &Path,
    runtime: RuntimeKind,
    handler: &str,
    other: bool,
) -> Option<PathBuf> {
    use scf_shim::host::Kind;
    if other || !code_dir.join("Cargo.toml").is_file() {
        return None;
    }
    let is_crate = match runtime {
        RuntimeKind::Native => true,
        RuntimeKind::Custom => !code_dir.join("bootstrap").exists(),
        RuntimeKind::Auto => Kind::detect(code_dir, handler) == Kind::Native,
        RuntimeKind::Python | RuntimeKind::Node => false,
    };
    is_crate.then(|| code_dir.to_path_buf())
}

/// The web or image-style settings: `type: web`, `inputs.image`, or (no handler, no type) an executable
/// `scf_bootstrap` in the code directory, which makes a web function.
fn http_function(
    code_dir: &Path,
    kind: Option<&str>,
    image: Option<ImageKeys>,
    concurrency: Option<InstanceConcurrency>,
    has_handler: bool,
) -> Result<Option<HttpFunction>, PlatformError> {
    let bootstrap = code_dir.join("scf_bootstrap");
    let kind = match kind.map(str::to_ascii_lowercase).as_deref() {
        Some("web") => HttpKind::Web,
        Some("event") | None if image.is_some() => HttpKind::Event,
        Some("event") => return Ok(None),
        None if !has_handler && bootstrap.is_file() => HttpKind::Web,
        None => return Ok(None),
        Some(other) => {
            return Err(PlatformError::Config(format!(
                "type {other}: expected event or web"
            )));
        }
    };
    let (command, args) = match image {
        Some(ImageKeys {
            command: Some(c),
            args,
        }) => {
            let local = code_dir.join(&c);
            let command = if local.exists() {
                local
            } else {
                PathBuf::from(c)
            };
            let args = match args {
                ImageArgs::List(l) => l,
                ImageArgs::Line(s) => s.split_whitespace().map(str::to_owned).collect(),
            };
            (command, args)
        }
        Some(ImageKeys { command: None, .. }) | None => (bootstrap, Vec::new()),
    };
    let c = concurrency.unwrap_or_default();
    let enabled = c.enable.unwrap_or(c.max_concurrency.is_some());
    let instance_concurrency = match (enabled, c.max_concurrency) {
        (false, _) => 1,
        (true, Some(n)) if (2..=100).contains(&n) => n,
        (true, n) => {
            return Err(PlatformError::Config(format!(
                "instanceConcurrencyConfig.maxConcurrency {}: expected 2 to 100",
                n.map_or("missing".to_owned(), |n| n.to_string())
            )));
        }
    };
    Ok(Some(HttpFunction {
        kind,
        command,
        args,
        instance_concurrency,
    }))
}

impl FunctionConfig {
    /// The environment every instance of this function gets, as on the cloud (`docs/protocol.md`): its
    /// identity, its private temporary directory, and its own variables (listed in `SCF_FUNCTION_ENV_KEYS`).
    /// Each kind of instance adds what is its own (`_HANDLER`, `SCF_RUNTIME`, the runtime API, `PORT`).
    pub fn instance_env(&self, tmp_dir: &Path) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("USER_CODE_ROOT", self.code_dir.display().to_string()),
            ("SCF_FUNCTIONNAME", self.name.clone()),
            ("SCF_NAMESPACE", self.namespace.clone()),
            ("SCF_FUNCTIONVERSION", "$LATEST".to_owned()),
            ("TENCENTCLOUD_REGION", self.region.clone()),
            ("TENCENTCLOUD_APPID", "1250000000".to_owned()),
            ("TENCENTCLOUD_UIN", "100000000001".to_owned()),
            ("TENCENTCLOUD_RUNENV", "SCF".to_owned()),
            ("TMPDIR", tmp_dir.display().to_string()),
            (
                "SCF_FUNCTION_ENV_KEYS",
                self.env.keys().cloned().collect::<Vec<_>>().join(","),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(python) = &self.python {
            env.push((
                scf_shim::host::python::PYTHON_ENV.to_owned(),
                python.clone(),
            ));
        }
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }
}

/// The platform's rules for a function's environment variables (`docs/scf-platform.md` §6).
fn check_env(env: &BTreeMap<String, String>) -> Result<(), PlatformError> {
    let mut total = 0;
    for (k, v) in env {
        let mut chars = k.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(PlatformError::Config(format!(
                "environment variable '{k}': names must match [a-zA-Z][a-zA-Z0-9_]*"
            )));
        }
        if let Some(p) = RESERVED_PREFIXES.iter().find(|p| k.starts_with(**p)) {
            return Err(PlatformError::Config(format!(
                "environment variable '{k}': the prefix {p} is reserved"
            )));
        }
        total += k.len() + v.len() + 1;
    }
    if total > 4096 {
        return Err(PlatformError::Config(format!(
            "environment variables take {total} bytes; the limit is 4 KB"
        )));
    }
    Ok(())
}

/// Parses `K=V` from the command line.
pub fn parse_env_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serverless_yml_then_flags() {
        let dir = std::env::temp_dir().join(format!("scf-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("serverless.yml"),
            "component: scf\nname: x\ninputs:\n  name: hello\n  src: ./\n  handler: index.main_handler\n  runtime: Python3.9\n  memorySize: 256\n  timeout: 5\n  environment:\n    variables:\n      A: one\n      N: 2\n",
        )
        .expect("write");
        let c = FunctionConfig::load(&dir, &Overrides::default()).expect("config");
        assert_eq!(
            (c.name.as_str(), c.runtime, c.memory_mb),
            ("hello", RuntimeKind::Python, 256)
        );
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.env.get("N").map(String::as_str), Some("2"));
        let over = Overrides {
            timeout: Some(1.5),
            runtime: Some("native".into()),
            ..Overrides::default()
        };
        let c = FunctionConfig::load(&dir, &over).expect("config");
        assert_eq!(
            (c.timeout, c.runtime),
            (Duration::from_millis(1500), RuntimeKind::Native)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn env_rules() {
        let mut env = BTreeMap::new();
        env.insert("SCF_X".to_owned(), "1".to_owned());
        assert!(check_env(&env).is_err());
        env.clear();
        env.insert("9x".to_owned(), "1".to_owned());
        assert!(check_env(&env).is_err());
        env.clear();
        env.insert("ok_1".to_owned(), "v".repeat(5000));
        assert!(check_env(&env).is_err());
    }

    #[test]
    fn web_and_image_functions() {
        let dir = std::env::temp_dir().join(format!("scf-config-web-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("scf_bootstrap"), "#!/bin/bash\n").expect("write");
        let c =
            FunctionConfig::load(&dir, &Overrides::default()).expect("a bootstrap alone is web");
        let h = c.http.expect("http");
        assert_eq!((h.kind, h.instance_concurrency), (HttpKind::Web, 1));
        std::fs::write(
            dir.join("serverless.yml"),
            "inputs:\n  type: web\n  instanceConcurrencyConfig:\n    enable: true\n    maxConcurrency: 7\n",
        )
        .expect("write");
        let c = FunctionConfig::load(&dir, &Overrides::default()).expect("config");
        assert_eq!(c.http.map(|h| h.instance_concurrency), Some(7));
        std::fs::write(
            dir.join("serverless.yml"),
            "inputs:\n  image:\n    command: python3\n    args: server.py -v\n",
        )
        .expect("write");
        let h = FunctionConfig::load(&dir, &Overrides::default())
            .expect("config")
            .http
            .expect("http");
        assert_eq!(
            (h.kind, h.command, h.args),
            (
                HttpKind::Event,
                PathBuf::from("python3"),
                vec!["server.py".to_owned(), "-v".to_owned()]
            )
        );
        std::fs::write(
            dir.join("serverless.yml"),
            "inputs:\n  type: web\n  instanceConcurrencyConfig:\n    maxConcurrency: 101\n",
        )
        .expect("write");
        assert!(FunctionConfig::load(&dir, &Overrides::default()).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
