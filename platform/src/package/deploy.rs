//! The `serverless.yml` written beside a package: for SCF (component `scf`) or for a Lambda-compatible
//! platform (`--cloud lambda`).

use scf_shim::host::Kind;

use super::{DEFAULT_SCF_NODE, DEFAULT_SCF_PYTHON, LAMBDA_RUNTIME, MARKER, Output};
use crate::PlatformError;
use crate::config::FunctionConfig;

pub(super) fn put(map: &mut serde_yaml::Mapping, key: &str, value: impl Into<serde_yaml::Value>) {
    map.insert(key.into(), value.into());
}

fn env_mapping(function: &FunctionConfig) -> Option<serde_yaml::Value> {
    (!function.env.is_empty()).then(|| {
        let mut vars = serde_yaml::Mapping::new();
        for (k, v) in &function.env {
            put(&mut vars, k, v.as_str());
        }
        serde_yaml::Value::Mapping(vars)
    })
}

/// `serverless.yml` for Tencent's Serverless Framework, component `scf`: `src` is the folder beside the zip
/// (the framework uploads a folder, keeping the executable bits).
pub(super) fn scf_function_yml(
    function: &FunctionConfig,
    out: &Output,
    runtime: &str,
    layer: Option<&str>,
) -> Result<String, PlatformError> {
    let stem = &out.file_name[..out.file_name.len() - 4];
    let mut inputs = serde_yaml::Mapping::new();
    put(&mut inputs, "name", function.name.as_str());
    put(&mut inputs, "src", format!("./{stem}"));
    put(&mut inputs, "handler", function.handler.as_str());
    put(&mut inputs, "runtime", runtime);
    put(&mut inputs, "region", function.region.as_str());
    put(&mut inputs, "namespace", function.namespace.as_str());
    put(&mut inputs, "memorySize", u64::from(function.memory_mb));
    put(&mut inputs, "timeout", seconds(function.timeout));
    put(&mut inputs, "initTimeout", seconds(function.init_timeout));
    if let Some(env) = env_mapping(function) {
        let mut environment = serde_yaml::Mapping::new();
        put(&mut environment, "variables", env);
        put(
            &mut inputs,
            "environment",
            serde_yaml::Value::Mapping(environment),
        );
    }
    if let Some(layer) = layer {
        let (name, version) = layer.split_once(':').ok_or_else(|| {
            PlatformError::Config(format!(
                "--use-layer {layer}: name an SCF layer as NAME:VERSION, e.g. scf-runtime:1"
            ))
        })?;
        let version: u64 = version.parse().map_err(|_| {
            PlatformError::Config(format!(
                "--use-layer {layer}: the version is a number, e.g. scf-runtime:1"
            ))
        })?;
        let mut l = serde_yaml::Mapping::new();
        put(&mut l, "name", name);
        put(&mut l, "version", version);
        put(
            &mut inputs,
            "layers",
            serde_yaml::Value::Sequence(vec![serde_yaml::Value::Mapping(l)]),
        );
    }
    let mut doc = serde_yaml::Mapping::new();
    put(&mut doc, "component", "scf");
    put(&mut doc, "name", function.name.as_str());
    put(&mut doc, "inputs", serde_yaml::Value::Mapping(inputs));
    yaml(
        out,
        "the function; deploy it with `sls deploy` in this folder",
        doc,
    )
}

/// `serverless.yml` for the Serverless Framework's `aws` provider: the zip is the function's artifact.
pub(super) fn lambda_function_yml(
    function: &FunctionConfig,
    out: &Output,
    layer: Option<&str>,
) -> Result<String, PlatformError> {
    let mut provider = serde_yaml::Mapping::new();
    put(&mut provider, "name", "aws");
    put(&mut provider, "runtime", LAMBDA_RUNTIME);
    put(&mut provider, "architecture", "x86_64");
    let mut artifact = serde_yaml::Mapping::new();
    put(&mut artifact, "artifact", out.file_name.as_str());
    let mut f = serde_yaml::Mapping::new();
    put(&mut f, "handler", function.handler.as_str());
    put(&mut f, "memorySize", u64::from(function.memory_mb));
    put(&mut f, "timeout", seconds(function.timeout));
    put(&mut f, "package", serde_yaml::Value::Mapping(artifact));
    if let Some(env) = env_mapping(function) {
        put(&mut f, "environment", env);
    }
    if let Some(arn) = layer {
        put(
            &mut f,
            "layers",
            serde_yaml::Value::Sequence(vec![arn.into()]),
        );
    }
    let name = lambda_name(&function.name);
    let mut functions = serde_yaml::Mapping::new();
    put(&mut functions, &name, serde_yaml::Value::Mapping(f));
    let mut doc = serde_yaml::Mapping::new();
    put(&mut doc, "service", name.as_str());
    put(&mut doc, "provider", serde_yaml::Value::Mapping(provider));
    put(&mut doc, "functions", serde_yaml::Value::Mapping(functions));
    yaml(
        out,
        "the function; deploy it with `serverless deploy` in this folder",
        doc,
    )
}

/// A name the Serverless Framework takes for a service or function: letters, digits and `-`.
pub(super) fn lambda_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if n.starts_with(|c: char| c.is_ascii_alphabetic()) {
        n
    } else {
        format!("fn-{n}")
    }
}

fn seconds(d: std::time::Duration) -> serde_yaml::Value {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        serde_yaml::Value::from(d.as_secs())
    } else {
        serde_yaml::Value::from(s)
    }
}

pub(super) fn yaml(
    out: &Output,
    what: &str,
    doc: serde_yaml::Mapping,
) -> Result<String, PlatformError> {
    let body = serde_yaml::to_string(&doc)
        .map_err(|e| PlatformError::Config(format!("serverless.yml: {e}")))?;
    Ok(format!("{MARKER}{}: {what}.\n{body}", out.file_name))
}

/// The SCF runtime a Python or Node.js package names: the function's own versioned name (`Python3.9`,
/// `Nodejs16.13`), else the default, said in a note.
pub(super) fn scf_runtime_name(
    function: &FunctionConfig,
    language: Kind,
    notes: &mut Vec<String>,
) -> String {
    let (prefix, default) = match language {
        Kind::Node => ("Nodejs", DEFAULT_SCF_NODE),
        _ => ("Python", DEFAULT_SCF_PYTHON),
    };
    let named = function.runtime_name.as_deref().unwrap_or_default().trim();
    let version = named
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &named[prefix.len()..])
        .filter(|v| {
            v.contains('.')
                && v.chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == 'x')
        });
    match version {
        Some(v) => format!("{prefix}{v}"),
        None => {
            notes.push(format!(
                "the package names SCF's runtime {default}; name another with --runtime (e.g. {prefix}{})",
                if language == Kind::Node { "18.15" } else { "3.10" }
            ));
            default.to_owned()
        }
    }
}
