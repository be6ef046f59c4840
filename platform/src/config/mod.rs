//! A function's definition: from the `serverless.yml` users of Tencent's Serverless Framework already have
//! (components `scf`, `multi-scf` and `http`, read as the components read them: [`Project`]), overridden by
//! command-line flags.
//!
//! - `inputs`: one function's keys as the file writes them;
//! - `project`: one configuration file, its variables and `.env`, its component, its functions;
//! - `schema`: the keys each component defines, the warnings for unknown keys, the keys not honoured locally;
//! - `triggers`: timers, API Gateway, and the kinds run on demand;
//! - `bootstrap`: the `scf_bootstrap` made for a web function that has none;
//! - `vars`: `${name}`, `${app}`, `${stage}`, `${env:VAR}` and `.env`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scf_protocol::limits;

use crate::PlatformError;

mod bootstrap;
mod inputs;
mod project;
mod schema;
mod triggers;
mod vars;

use inputs::{ImageArgs, ImageKeys, InstanceConcurrency};
pub(crate) use inputs::{Inputs, SrcField};
pub use project::{Hook, Project, run_build_hooks};
pub(crate) use triggers::stable_id;
pub use triggers::{
    Apigw, Base64Rule, Endpoint, Param, ParamPosition, Trigger, TriggerKind, TriggerSpec,
};

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
    /// `inputs.publicAccess` (default `true`): the function reaches the machine's network, as on the cloud
    /// it reaches the internet. `false`: its instances get a network namespace of their own with only their
    /// loopback, where the machine allows one (`docs/reliability.md`).
    pub public_access: bool,
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
    /// Run under a debugger (`--debug`; `debug.rs`).
    pub debug: Option<crate::debug::Debug>,
    /// The function's key in a multi-scf project's `functions` (`None` for the other components).
    pub key: Option<String>,
    /// Its triggers (`inputs.events`, multi-scf's `inputs.triggers`, an http component's API).
    pub triggers: Vec<Trigger>,
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
    /// The start command made because the code has no `scf_bootstrap` (an http component's framework, or
    /// `entryFile`), as the banner shows it.
    pub generated: Option<String>,
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

/// How a component builds one function: its defaults and where its code is.
#[derive(Debug)]
pub(crate) struct Spec<'a> {
    /// The directory `src` is relative to.
    pub(crate) base_dir: &'a Path,
    /// The function's keys.
    pub(crate) inputs: Inputs,
    /// The name when neither `name` nor `--name` gives one.
    pub(crate) default_name: String,
    /// multi-scf's key.
    pub(crate) key: Option<String>,
    /// Whether a component is named (`component:`): its defaults apply (`index.main_handler`, a made
    /// `scf_bootstrap`).
    pub(crate) component: bool,
    /// An http component's `faas.framework`: a web function whose `scf_bootstrap` is the framework's.
    pub(crate) framework: Option<String>,
    /// An http component's `faas.bootstrap.cmd`: the `scf_bootstrap` to use.
    pub(crate) bootstrap_cmd: Option<String>,
    /// Defaults of the component: memory (MB), timeout (s), variables.
    pub(crate) memory_mb: u32,
    pub(crate) timeout: f64,
    pub(crate) env: Vec<(String, String)>,
    /// Its triggers.
    pub(crate) triggers: Vec<Trigger>,
}

impl Spec<'_> {
    pub(crate) fn new(base_dir: &Path, inputs: Inputs, default_name: String) -> Spec<'_> {
        Spec {
            base_dir,
            inputs,
            default_name,
            key: None,
            component: false,
            framework: None,
            bootstrap_cmd: None,
            memory_mb: limits::DEFAULT_MEMORY_MB,
            timeout: limits::DEFAULT_TIMEOUT_SECS as f64,
            env: Vec::new(),
            triggers: Vec::new(),
        }
    }
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
    /// The definition of the function in `dir`: its `serverless.yml`/`serverless.yaml` if present (the
    /// project's one function, or the one `--name` names by its name or multi-scf key), then `over`.
    pub fn load(dir: &Path, over: &Overrides) -> Result<FunctionConfig, PlatformError> {
        Project::load(dir, over)?.into_function(over.name.as_deref())
    }

    /// One function of a component's project, with `over` applied.
    pub(crate) fn build(spec: Spec<'_>, over: &Overrides) -> Result<FunctionConfig, PlatformError> {
        let i = spec.inputs;
        let code_dir = match &i.src {
            Some(src) => spec.base_dir.join(src.code_path()?),
            None => spec.base_dir.to_path_buf(),
        };
        let code_dir = code_dir.canonicalize().map_err(|e| {
            PlatformError::Config(format!("code directory {}: {e}", code_dir.display()))
        })?;
        let handler = over.handler.clone().or(i.handler);
        let web_by_component = spec.framework.is_some();
        let http = http_function(
            &code_dir,
            i.kind.as_deref().or(web_by_component.then_some("web")),
            i.image,
            i.instance_concurrency_config,
            handler.is_some() && !web_by_component,
            &|| {
                made_bootstrap(
                    &spec.framework,
                    &spec.bootstrap_cmd,
                    spec.component,
                    i.runtime.as_deref(),
                    i.entry_file.as_deref(),
                )
            },
        )?;
        let handler = match (handler, &http) {
            (_, Some(h)) if h.generated.is_some() => "scf_bootstrap".to_owned(),
            (Some(h), _) => h,
            (None, Some(h)) => h.command.display().to_string(),
            (None, None) if spec.component => "index.main_handler".to_owned(),
            (None, None) => {
                return Err(PlatformError::Config(
                    "no handler: pass --handler FILE.METHOD or set inputs.handler in serverless.yml"
                        .into(),
                ));
            }
        };
        let runtime_name = over
            .runtime
            .as_deref()
            .or(i.runtime.as_deref())
            .unwrap_or("auto");
        let runtime = match RuntimeKind::parse(runtime_name) {
            Ok(r) => r,
            // A web server's runtime is its own business (`Php7`, `Go1`): the platform does not start it.
            Err(_) if http.is_some() && over.runtime.is_none() => RuntimeKind::Auto,
            Err(e) => return Err(PlatformError::Config(e.message)),
        };
        let name = over.name.clone().or(i.name).unwrap_or(spec.default_name);

        let memory_mb = over.memory_mb.or(i.memory_size).unwrap_or(spec.memory_mb);
        if !(memory_mb == 64 || (128..=3072).contains(&memory_mb) && memory_mb % 128 == 0) {
            return Err(PlatformError::Config(format!(
                "memory size {memory_mb} MB: expected 64, or 128 to 3072 in steps of 128"
            )));
        }
        let timeout = over.timeout.or(i.timeout).unwrap_or(spec.timeout);
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

        let text = |v: serde_yaml::Value| match v {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Null => String::new(),
            other => serde_yaml::to_string(&other)
                .unwrap_or_default()
                .trim()
                .to_owned(),
        };
        let mut env: BTreeMap<String, String> = spec.env.into_iter().collect();
        for (k, v) in i.environment.map(|e| e.variables).unwrap_or_default() {
            env.insert(k, text(v));
        }
        for kv in i.environments.unwrap_or_default() {
            env.insert(kv.key, text(kv.value));
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
            (None, Some(p)) => Some(absolute(spec.base_dir.to_path_buf(), p)),
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
            debug: None,
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
            public_access: i.public_access.unwrap_or(true),
            key: spec.key,
            triggers: spec.triggers,
        })
    }
}

/// The start command made for a web function whose code has no `scf_bootstrap`: an http component's
/// `faas.bootstrap.cmd` or its framework's; for `type: web` of a component, the runtime's on `entryFile`.
fn made_bootstrap(
    framework: &Option<String>,
    cmd: &Option<String>,
    component: bool,
    runtime: Option<&str>,
    entry_file: Option<&str>,
) -> Result<Option<bootstrap::Generated>, PlatformError> {
    Ok(match (framework, cmd) {
        (_, Some(cmd)) => Some(bootstrap::Generated {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), cmd.clone()],
            shown: cmd.clone(),
        }),
        (Some(f), None) => Some(bootstrap::framework(f)?),
        (None, None) if component || entry_file.is_some() => {
            // The component's default runtime is Node.js.
            Some(bootstrap::entry_file(
                runtime.unwrap_or("Nodejs10.15"),
                entry_file,
            )?)
        }
        (None, None) => None,
    })
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
    made: &dyn Fn() -> Result<Option<bootstrap::Generated>, PlatformError>,
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
    let mut generated = None;
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
        // The code's own scf_bootstrap wins over one made for it, as with the components.
        Some(ImageKeys { command: None, .. }) | None
            if kind == HttpKind::Web && !bootstrap.is_file() =>
        {
            match made()? {
                Some(m) => {
                    generated = Some(m.shown);
                    (PathBuf::from(m.program), m.args)
                }
                None => (bootstrap, Vec::new()),
            }
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
        generated,
    }))
}

impl FunctionConfig {
    /// The environment every instance of this function gets, as on the cloud (`docs/protocol.md`): its
    /// identity, its private temporary directory, `TRIGGER_SRC=Timer` when a timer triggers it, and its own
    /// variables (listed in `SCF_FUNCTION_ENV_KEYS`).
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
        if self.has_timer() {
            // The cloud tells a timer's function where its events come from.
            env.push(("TRIGGER_SRC".to_owned(), "Timer".to_owned()));
        }
        if let Some(python) = &self.python {
            env.push((
                scf_shim::host::python::PYTHON_ENV.to_owned(),
                python.clone(),
            ));
        }
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.extend(self.debug.as_ref().and_then(crate::debug::Debug::env));
        env
    }

    /// Whether an enabled timer trigger invokes this function.
    pub fn has_timer(&self) -> bool {
        self.triggers
            .iter()
            .any(|t| t.enable && t.kind == TriggerKind::Timer)
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
