//! One project: a directory's `serverless.yml` (or `serverless.yaml`), read as Tencent's Serverless Framework
//! components read it.
//!
//! - `component: scf` (or no `component`): one function in `inputs`, named `inputs.name`, else
//!   `${name}-${stage}-${app}`; its triggers in `inputs.events`.
//! - `component: multi-scf`: `inputs.functions` (a map of key → function), each over the shared keys of
//!   `inputs`, named its `name`, else `${name}-${stage}-${app}-${key}`; `src` of a function is relative to
//!   `inputs.src`; `inputs.triggers` name their function by key.
//! - `component: http`: a web framework (`inputs.faas.framework`), named `faas.name`, else
//!   `${name}-${stage}-${app}`, behind the API Gateway the component creates.
//!
//! `app` defaults to `name`, `stage` to `dev`. Variables are resolved everywhere (`vars`), unknown keys
//! warned about and keys not honoured locally listed (`schema`).

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::schema::{self, Component};
use super::triggers::{self, Naming, Trigger, TriggerKind};
use super::vars::{self, Vars};
use super::{FunctionConfig, Inputs, Overrides, Spec, SrcField, bootstrap};
use crate::PlatformError;

/// A project's functions, and what reading it found.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory holding the configuration.
    pub dir: PathBuf,
    /// The configuration file (`None`: the directory has none, flags and defaults only).
    pub file: Option<PathBuf>,
    /// Its functions, in the order of the file.
    pub functions: Vec<FunctionConfig>,
    /// What the reader warns about: unknown keys (with the nearest known one), variables not resolved, start
    /// files that name the cloud's interpreters. Each starts with the file's path.
    pub warnings: Vec<String>,
    /// Keys read but not honoured locally (`inputs.vpcConfig`, `inputs.layers`, …).
    pub ignored: Vec<String>,
    /// `src.hook`: the build command `scf-local serve --build` runs first.
    pub hook: Option<Hook>,
}

/// A project's build command (`src.hook`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The command, run with `sh -c`.
    pub command: String,
    /// Where it runs: `src.src`, else the project's directory.
    pub dir: PathBuf,
}

/// The items of a list key (`inputs.events`, `inputs.triggers`; none when it is absent), or `{shown}: {wrong}`.
fn list_of<'a>(
    value: Option<&'a Value>,
    shown: &str,
    wrong: &str,
) -> Result<&'a [Value], PlatformError> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Sequence(items)) => Ok(items.as_slice()),
        Some(_) => Err(PlatformError::Config(format!("{shown}: {wrong}"))),
    }
}

/// The configuration file in `dir`, if there is one.
fn config_file(dir: &Path) -> Option<PathBuf> {
    ["serverless.yml", "serverless.yaml"]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// A parsed file: its document with variables resolved, and what naming it needs.
struct Parsed {
    doc: Value,
    component: Component,
    named: bool,
    naming: Naming,
    app: String,
    warnings: Vec<String>,
}

fn parse(dir: &Path, file: &Path) -> Result<Parsed, PlatformError> {
    let at = |e: &dyn std::fmt::Display| PlatformError::Config(format!("{}: {e}", file.display()));
    let text = std::fs::read_to_string(file)
        .map_err(PlatformError::io(format!("reading {}", file.display())))?;
    let mut doc: Value = serde_yaml::from_str(&text).map_err(|e| at(&e))?;
    if doc.is_null() {
        doc = Value::Mapping(Default::default());
    }
    if !doc.is_mapping() {
        return Err(at(
            &"expected a mapping of keys (component, name, inputs, …)",
        ));
    }
    let mut vars = Vars {
        dotenv: vars::read_dotenv(dir).map_err(|e| at(&e))?,
        ..Vars::default()
    };
    let mut warnings = Vec::new();
    let top = |key: &str, vars: &Vars, warnings: &mut Vec<String>| {
        doc.get(key)
            .and_then(Value::as_str)
            .map(|s| vars.resolve(s, warnings))
            .filter(|s| !s.is_empty())
    };
    // `scf@0.9.10`: a version of the component.
    let component = top("component", &vars, &mut warnings)
        .map(|c| c.split('@').next().unwrap_or_default().to_owned());
    let component_kind = match component.as_deref() {
        None | Some("scf") => Component::Scf,
        Some("multi-scf") => Component::MultiScf,
        Some("http") => Component::Http,
        Some(other) => {
            return Err(at(&format!(
                "component '{other}' is not a function: scf-local serves the components scf, multi-scf and http"
            )));
        }
    };
    let name = top("name", &vars, &mut warnings);
    let named = name.is_some();
    let name = name.unwrap_or_else(|| {
        dir.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("function")
            .to_owned()
    });
    vars.project.insert("name", name.clone());
    let app = top("app", &vars, &mut warnings).unwrap_or_else(|| name.clone());
    vars.project.insert("app", app.clone());
    let stage = top("stage", &vars, &mut warnings).unwrap_or_else(|| "dev".to_owned());
    vars.project.insert("stage", stage.clone());
    // The top-level keys were resolved above; resolving again gives the same warnings.
    warnings.clear();
    vars.resolve_all(&mut doc, &mut warnings);
    warnings.dedup();
    Ok(Parsed {
        doc,
        component: component_kind,
        named: named && component.is_some(),
        naming: Naming { name, stage },
        app,
        warnings,
    })
}

impl Project {
    /// Reads the project in `dir` (`over` applies to every function; `--name` renames a project's only one).
    pub fn load(dir: &Path, over: &Overrides) -> Result<Project, PlatformError> {
        let dir = dir
            .canonicalize()
            .map_err(|e| PlatformError::Config(format!("code directory {}: {e}", dir.display())))?;
        if !dir.is_dir() {
            return Err(PlatformError::Config(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let Some(file) = config_file(&dir) else {
            let name = default_dir_name(&dir);
            let function = FunctionConfig::build(Spec::new(&dir, Inputs::default(), name), over)?;
            return Ok(Project {
                dir,
                file: None,
                functions: vec![function],
                warnings: Vec::new(),
                ignored: Vec::new(),
                hook: None,
            });
        };
        let p = parse(&dir, &file)?;
        let shown = file.display().to_string();
        let findings = schema::check(&p.doc, p.component);
        let mut warnings: Vec<String> = p
            .warnings
            .iter()
            .chain(&findings.unknown)
            .map(|w| format!("{shown}: {w}"))
            .collect();
        let inputs = p
            .doc
            .get("inputs")
            .cloned()
            .unwrap_or(Value::Mapping(Default::default()));
        if !inputs.is_mapping() {
            return Err(PlatformError::Config(format!(
                "{shown}: inputs must be a mapping of keys"
            )));
        }
        let at = |e: &dyn std::fmt::Display| PlatformError::Config(format!("{shown}: {e}"));
        let hook = hook_of(&dir, &inputs).map_err(|e| at(&e))?;
        let functions = match p.component {
            Component::Scf => vec![scf(&dir, &inputs, &p, over, &shown)?],
            Component::MultiScf => multi_scf(&dir, &inputs, &p, over, &shown)?,
            Component::Http => vec![http(&dir, &inputs, &p, over, &shown)?],
        };
        for f in &functions {
            if let Some(h) = &f.http {
                if h.kind == super::HttpKind::Web && h.generated.is_none() {
                    warnings.extend(bootstrap::cloud_paths(&h.command));
                }
                if let Some(t) = f.triggers.iter().find(|t| t.kind == TriggerKind::Timer) {
                    return Err(at(&format!(
                        "function {}: timer trigger {}: a timer invokes asynchronously, which web and image-style functions do not take",
                        f.name, t.name
                    )));
                }
            }
        }
        Ok(Project {
            dir,
            file: Some(file),
            functions,
            warnings,
            ignored: findings.ignored.into_iter().collect(),
            hook,
        })
    }

    /// The project's one function, or the one `name` names (its name, or its multi-scf key).
    pub fn into_function(self, name: Option<&str>) -> Result<FunctionConfig, PlatformError> {
        let count = self.functions.len();
        let listed = || {
            self.functions
                .iter()
                .map(|f| match &f.key {
                    Some(k) => format!("{} ({k})", f.name),
                    None => f.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if count == 1 {
            return self
                .functions
                .into_iter()
                .next()
                .ok_or_else(|| PlatformError::Config("the project has no function".into()));
        }
        let Some(name) = name else {
            return Err(PlatformError::Config(format!(
                "{} defines {count} functions ({}): name one with --name",
                self.dir.display(),
                listed()
            )));
        };
        let found = self
            .functions
            .iter()
            .position(|f| f.name == name || f.key.as_deref() == Some(name));
        match found {
            Some(i) => Ok(self
                .functions
                .into_iter()
                .nth(i)
                .ok_or_else(|| PlatformError::Config("the project has no function".into()))?),
            None => Err(PlatformError::Config(format!(
                "{} has no function named {name}: its functions are {}",
                self.dir.display(),
                listed()
            ))),
        }
    }
}

fn default_dir_name(dir: &Path) -> String {
    dir.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function")
        .to_owned()
}

/// `inputs` (or a function's keys) as the typed keys.
fn typed(value: &Value, shown: &str, what: &str) -> Result<Inputs, PlatformError> {
    serde_yaml::from_value(value.clone())
        .map_err(|e| PlatformError::Config(format!("{shown}: {what}: {e}")))
}

/// `${name}-${stage}-${app}` (and `-${key}`), as the components name functions.
fn component_name(p: &Parsed, key: Option<&str>) -> String {
    let base = format!("{}-{}-{}", p.naming.name, p.naming.stage, p.app);
    match key {
        Some(k) => format!("{base}-{k}"),
        None => base,
    }
}

fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn scf(
    dir: &Path,
    inputs: &Value,
    p: &Parsed,
    over: &Overrides,
    shown: &str,
) -> Result<FunctionConfig, PlatformError> {
    let default_name = if p.named {
        component_name(p, None)
    } else {
        default_dir_name(dir)
    };
    let mut triggers = Vec::new();
    if !is_true(inputs.get("ignoreTriggers")) {
        let events = list_of(
            inputs.get("events"),
            shown,
            "inputs.events must be a list (`- timer: {…}`, `- apigw: {…}`)",
        )?;
        for (i, event) in events.iter().enumerate() {
            let what = format!("{shown}: inputs.events[{i}]");
            let Some((kind, body)) = event.as_mapping().and_then(|m| {
                let mut it = m.iter();
                match (it.next(), it.next()) {
                    (Some((k, v)), None) => k.as_str().map(|k| (k.to_owned(), v.clone())),
                    _ => None,
                }
            }) else {
                return Err(PlatformError::Config(format!(
                    "{what}: each event is one trigger, `- timer: {{parameters: …}}`"
                )));
            };
            let name = body.get("name").and_then(Value::as_str).map(str::to_owned);
            let params = body.get("parameters").cloned().unwrap_or(Value::Null);
            for (_, t) in triggers::parse(&kind, name, &params, &p.naming, &what, &mut |_| {
                Ok(String::new())
            })? {
                triggers.push(t);
            }
        }
    }
    let mut spec = Spec::new(dir, typed(inputs, shown, "inputs")?, default_name);
    spec.component = p.doc.get("component").is_some();
    spec.triggers = triggers;
    FunctionConfig::build(spec, over).map_err(|e| prefix(shown, e))
}

fn prefix(shown: &str, e: PlatformError) -> PlatformError {
    match e {
        PlatformError::Config(m) if !m.starts_with(shown) => {
            PlatformError::Config(format!("{shown}: {m}"))
        }
        other => other,
    }
}

fn multi_scf(
    dir: &Path,
    inputs: &Value,
    p: &Parsed,
    over: &Overrides,
    shown: &str,
) -> Result<Vec<FunctionConfig>, PlatformError> {
    let Some(Value::Mapping(shared)) = Some(inputs) else {
        return Err(PlatformError::Config(format!(
            "{shown}: inputs must be a mapping"
        )));
    };
    // The code root: `inputs.src` (each function's `src` is inside it).
    let root = match shared.get("src") {
        None => dir.to_path_buf(),
        Some(v) => {
            let src: SrcField = serde_yaml::from_value(v.clone())
                .map_err(|e| PlatformError::Config(format!("{shown}: inputs.src: {e}")))?;
            dir.join(src.code_path().map_err(|e| prefix(shown, e))?)
        }
    };
    let mut defaults = shared.clone();
    for k in ["src", "functions", "triggers", "ignoreTriggers", "name"] {
        defaults.remove(k);
    }
    // Each function: its key, and its keys over the shared ones (a key of the function replaces the shared
    // one whole, as the component merges them).
    let mut specs: Vec<(String, Value)> = Vec::new();
    match shared.get("functions") {
        Some(Value::Mapping(fns)) => {
            for (k, v) in fns {
                let key = k.as_str().map(str::to_owned).ok_or_else(|| {
                    PlatformError::Config(format!("{shown}: inputs.functions: keys are names"))
                })?;
                specs.push((key, v.clone()));
            }
        }
        Some(Value::Sequence(fns)) => {
            for (i, v) in fns.iter().enumerate() {
                let key = v
                    .get("key")
                    .or_else(|| v.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("function{i}"));
                specs.push((key, v.clone()));
            }
        }
        _ => {
            return Err(PlatformError::Config(format!(
                "{shown}: a multi-scf project lists its functions in inputs.functions (key: {{handler: …}})"
            )));
        }
    }
    if specs.is_empty() {
        return Err(PlatformError::Config(format!(
            "{shown}: inputs.functions is empty"
        )));
    }
    // The triggers, per function key.
    let keys: Vec<String> = specs.iter().map(|(k, _)| k.clone()).collect();
    let mut triggers: Vec<(String, Trigger)> = Vec::new();
    if !is_true(shared.get("ignoreTriggers")) {
        let list = list_of(
            shared.get("triggers"),
            shown,
            "inputs.triggers must be a list",
        )?;
        for (i, t) in list.iter().enumerate() {
            let what = format!("{shown}: inputs.triggers[{i}]");
            let kind = t.get("type").and_then(Value::as_str).ok_or_else(|| {
                PlatformError::Config(format!("{what}: a trigger needs a type (timer, apigw, …)"))
            })?;
            let default_function = t.get("function").cloned();
            let name = t.get("name").and_then(Value::as_str).map(str::to_owned);
            let params = t.get("parameters").cloned().unwrap_or(Value::Null);
            let mut function_of = |api: Option<&Value>| -> Result<String, PlatformError> {
                let named = api.or(default_function.as_ref());
                let key = match named {
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ Value::Mapping(_)) => v
                        .get("name")
                        .or_else(|| v.get("functionName"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            PlatformError::Config(format!(
                                "{what}: function: {{name: KEY}} names the function"
                            ))
                        })?,
                    _ => {
                        return Err(PlatformError::Config(format!(
                            "{what}: the trigger names no function (function: KEY)"
                        )));
                    }
                };
                if keys.contains(&key) {
                    Ok(key)
                } else {
                    Err(PlatformError::Config(format!(
                        "{what}: function {key} is not in inputs.functions (its keys are {})",
                        keys.join(", ")
                    )))
                }
            };
            triggers.extend(triggers::parse(
                kind,
                name,
                &params,
                &p.naming,
                &what,
                &mut function_of,
            )?);
        }
    }
    let mut out = Vec::new();
    for (key, own) in specs {
        let Value::Mapping(own) = own else {
            return Err(PlatformError::Config(format!(
                "{shown}: inputs.functions.{key} must be a mapping of keys"
            )));
        };
        let mut merged = defaults.clone();
        for (k, v) in own {
            merged.insert(k, v);
        }
        let what = format!("inputs.functions.{key}");
        let mut spec = Spec::new(
            &root,
            typed(&Value::Mapping(merged), shown, &what)?,
            component_name(p, Some(&key)),
        );
        spec.key = Some(key.clone());
        spec.component = true;
        spec.triggers = triggers
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, t)| t.clone())
            .collect();
        // `--name` picks a function of a multi-scf project; it renames none.
        let over = Overrides {
            name: None,
            ..over.clone()
        };
        out.push(FunctionConfig::build(spec, &over).map_err(|e| prefix(shown, e))?);
    }
    Ok(out)
}

fn http(
    dir: &Path,
    inputs: &Value,
    p: &Parsed,
    over: &Overrides,
    shown: &str,
) -> Result<FunctionConfig, PlatformError> {
    let faas = inputs
        .get("faas")
        .cloned()
        .unwrap_or(Value::Mapping(Default::default()));
    let Value::Mapping(mut keys) = faas else {
        return Err(PlatformError::Config(format!(
            "{shown}: inputs.faas must be a mapping of keys"
        )));
    };
    let framework = keys
        .remove("framework")
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| {
            PlatformError::Config(format!(
                "{shown}: an http component names its framework in inputs.faas.framework ({})",
                bootstrap::FRAMEWORKS.join(", ")
            ))
        })?;
    let cmd = keys
        .remove("bootstrap")
        .and_then(|b| b.get("cmd").and_then(Value::as_str).map(str::to_owned));
    // The code is the component's `src`; `faas` has the rest of a function's keys.
    if let Some(src) = inputs.get("src") {
        keys.insert("src".into(), src.clone());
    }
    if let Some(region) = inputs.get("region") {
        keys.entry("region".into()).or_insert(region.clone());
    }
    let trigger = triggers::http_component(inputs.get("apigw"), &p.naming, shown)?;
    let mut spec = Spec::new(
        dir,
        typed(&Value::Mapping(keys), shown, "inputs.faas")?,
        component_name(p, None),
    );
    spec.component = true;
    spec.framework = Some(framework);
    spec.bootstrap_cmd = cmd.map(|c| percent_decode(&c));
    // The component's defaults.
    spec.memory_mb = 512;
    spec.timeout = 10.0;
    spec.env = vec![("SERVERLESS".to_owned(), "1".to_owned())];
    spec.triggers = trigger.into_iter().collect();
    FunctionConfig::build(spec, over).map_err(|e| prefix(shown, e))
}

/// `faas.bootstrap.cmd` is written URI-encoded (the component decodes it).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `src.hook` of `inputs` (with `src.src` where it runs).
fn hook_of(dir: &Path, inputs: &Value) -> Result<Option<Hook>, String> {
    let Some(src) = inputs.get("src") else {
        return Ok(None);
    };
    let Some(command) = src.get("hook").and_then(Value::as_str) else {
        return Ok(None);
    };
    let run_in = match src.get("src").and_then(Value::as_str) {
        Some(s) => dir.join(s),
        None => dir.to_path_buf(),
    };
    Ok(Some(Hook {
        command: command.to_owned(),
        dir: run_in,
    }))
}

/// `scf-local serve --build`: runs the `src.hook` of the project in `dir` (if it has one) before anything
/// else reads it, its output on stderr; a hook that fails stops here.
pub fn run_build_hooks(dir: &Path) -> Result<(), PlatformError> {
    use std::io::Write as _;
    use std::os::fd::AsFd as _;
    let dir = dir
        .canonicalize()
        .map_err(|e| PlatformError::Config(format!("code directory {}: {e}", dir.display())))?;
    let Some(file) = config_file(&dir) else {
        return Ok(());
    };
    let p = parse(&dir, &file)?;
    let inputs = p.doc.get("inputs").cloned().unwrap_or(Value::Null);
    let hook = hook_of(&dir, &inputs).map_err(PlatformError::Config)?;
    let Some(hook) = hook else {
        return Ok(());
    };
    let _ = writeln!(
        std::io::stderr(),
        "scf-local: build: {} (in {})",
        hook.command,
        hook.dir.display()
    );
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(PlatformError::io("duplicating stderr"))?;
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&hook.command)
        .current_dir(&hook.dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(stderr))
        .status()
        .map_err(PlatformError::io(format!(
            "running the hook of {}",
            file.display()
        )))?;
    if !status.success() {
        return Err(PlatformError::Config(format!(
            "{}: the hook `{}` failed ({status})",
            file.display(),
            hook.command
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpKind, RuntimeKind, TriggerSpec};

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str, yml: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("scf-project-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("dir");
            std::fs::write(d.join("serverless.yml"), yml).expect("write");
            Dir(d)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn scf_names_variables_and_dotenv() {
        let d = Dir::new(
            "scf",
            "component: scf\nname: api\napp: shop\ninputs:\n  src: ./\n  runtime: Python3.9\n  environment:\n    variables:\n      GREETING: ${env:SCF_PROJECT_TEST_GREETING}\n      WHO: ${name}@${stage}\n  memorysize: 256\n  vpcConfig: {vpcId: vpc-1}\n  events:\n    - timer:\n        parameters:\n          cronExpression: '*/5 * * * * * *'\n          enable: true\n          argument: hi\n",
        );
        std::fs::write(d.0.join(".env"), "SCF_PROJECT_TEST_GREETING=hello\n").expect("env");
        let p = Project::load(&d.0, &Overrides::default()).expect("project");
        let f = &p.functions[0];
        assert_eq!(f.name, "api-dev-shop");
        assert_eq!(f.handler, "index.main_handler");
        assert_eq!(f.runtime, RuntimeKind::Python);
        assert_eq!(f.env.get("GREETING").map(String::as_str), Some("hello"));
        assert_eq!(f.env.get("WHO").map(String::as_str), Some("api@dev"));
        assert_eq!(f.triggers.len(), 1);
        assert_eq!(f.triggers[0].name, "timer-api-dev");
        assert!(f.has_timer());
        assert_eq!(p.ignored, ["inputs.vpcConfig"]);
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("inputs.memorysize: did you mean memorySize?"));
    }

    #[test]
    fn multi_scf_functions_and_triggers() {
        let d = Dir::new(
            "multi",
            "app: multi-scf\nstage: dev\ncomponent: multi-scf\nname: demo\ninputs:\n  src:\n    src: ./\n  runtime: Nodejs12.16\n  memorySize: 128\n  environments:\n    - {key: SHARED, value: yes}\n  functions:\n    index:\n      handler: index.index\n    hello:\n      name: hello-fn\n      handler: index.hello\n      memorySize: 256\n  triggers:\n    - type: timer\n      function: index\n      parameters:\n        name: timer1\n        cronExpression: '*/5 * * * * * *'\n        enable: true\n    - type: apigw\n      parameters:\n        name: serverless\n        apis:\n          - {path: /, method: GET, function: index}\n          - {path: '/hello/{name}', method: POST, function: hello}\n",
        );
        let p = Project::load(&d.0, &Overrides::default()).expect("project");
        let names: Vec<&str> = p.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["demo-dev-multi-scf-index", "hello-fn"]);
        let hello = &p.functions[1];
        assert_eq!((hello.memory_mb, hello.runtime), (256, RuntimeKind::Node));
        assert_eq!(hello.env.get("SHARED").map(String::as_str), Some("yes"));
        let kinds: Vec<(&str, TriggerKind)> = p.functions[0]
            .triggers
            .iter()
            .map(|t| (t.name.as_str(), t.kind))
            .collect();
        assert_eq!(kinds[0], ("timer1", TriggerKind::Timer));
        let TriggerSpec::Apigw(a) = &hello.triggers[0].spec else {
            panic!("{:?}", hello.triggers)
        };
        assert_eq!(a.endpoints[0].path, "/hello/{name}");
        // invoke picks one by key or name.
        let picked = p.clone().into_function(Some("index")).expect("by key");
        assert_eq!(picked.name, "demo-dev-multi-scf-index");
        let e = p.into_function(None).expect_err("two functions");
        assert!(e.to_string().contains("--name"), "{e}");

        let d = Dir::new(
            "multi-bad",
            "component: multi-scf\nname: demo\ninputs:\n  functions:\n    a: {handler: index.a}\n  triggers:\n    - type: timer\n      function: b\n      parameters: {cronExpression: '* * * * * * *'}\n",
        );
        let e = Project::load(&d.0, &Overrides::default()).expect_err("unknown key");
        assert!(
            e.to_string()
                .contains("function b is not in inputs.functions"),
            "{e}"
        );
    }

    #[test]
    fn http_component() {
        let d = Dir::new(
            "http",
            "component: http\nname: expressDemo\ninputs:\n  src:\n    src: ./\n    hook: echo built\n    exclude: [.env]\n  faas:\n    framework: express\n    name: ${name}\n  apigw:\n    protocols: [http]\n",
        );
        let p = Project::load(&d.0, &Overrides::default()).expect("project");
        let f = &p.functions[0];
        assert_eq!(f.name, "expressDemo");
        assert_eq!((f.memory_mb, f.timeout.as_secs()), (512, 10));
        assert_eq!(f.env.get("SERVERLESS").map(String::as_str), Some("1"));
        let h = f.http.as_ref().expect("web");
        assert_eq!(
            (h.kind, h.generated.as_deref()),
            (HttpKind::Web, Some("node app.js"))
        );
        assert_eq!(f.triggers[0].kind, TriggerKind::Apigw);
        assert_eq!(
            p.hook.as_ref().map(|h| h.command.as_str()),
            Some("echo built")
        );
        // The code's own scf_bootstrap wins.
        std::fs::write(
            d.0.join("scf_bootstrap"),
            "#!/bin/bash\nexec /var/lang/node12/bin/node app.js\n",
        )
        .expect("write");
        let p = Project::load(&d.0, &Overrides::default()).expect("project");
        let h = p.functions[0].http.as_ref().expect("web");
        assert_eq!(h.generated, None);
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("/var/lang/node12/bin/node")),
            "{:?}",
            p.warnings
        );
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
    }

    #[test]
    fn other_components_and_cos_code_are_refused() {
        let d = Dir::new("website", "component: website\ninputs: {}\n");
        let e = Project::load(&d.0, &Overrides::default()).expect_err("website");
        assert!(e.to_string().contains("scf, multi-scf and http"), "{e}");
        let d = Dir::new(
            "cos",
            "component: scf\ninputs:\n  src: {bucket: b, object: code.zip}\n",
        );
        let e = Project::load(&d.0, &Overrides::default()).expect_err("cos");
        assert!(e.to_string().contains("COS bucket"), "{e}");
    }
}
