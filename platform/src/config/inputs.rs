//! The keys of one function as `serverless.yml` writes them, deserialised as they are; `schema` lists every
//! key and what is done with it.

use std::collections::BTreeMap;

use crate::PlatformError;

/// The keys of one function the platform reads (`inputs` of `component: scf`, one of multi-scf's
/// `functions` over its shared defaults, http's `faas`); `schema` lists every key and what is done with it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Inputs {
    pub(super) name: Option<String>,
    pub(super) src: Option<SrcField>,
    pub(super) handler: Option<String>,
    pub(super) runtime: Option<String>,
    pub(super) memory_size: Option<u32>,
    pub(super) timeout: Option<f64>,
    pub(super) init_timeout: Option<f64>,
    pub(super) namespace: Option<String>,
    pub(super) region: Option<String>,
    pub(super) environment: Option<Environment>,
    pub(super) environments: Option<Vec<KeyValue>>,
    pub(super) retry_num: Option<u32>,
    #[serde(rename = "msgTTL")]
    pub(super) msg_ttl: Option<f64>,
    pub(super) local: Option<LocalKeys>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) entry_file: Option<String>,
    pub(super) image: Option<ImageKeys>,
    pub(super) instance_concurrency_config: Option<InstanceConcurrency>,
    pub(super) public_access: Option<bool>,
}

/// `inputs.image`: the instance command of an image-style function (run locally from the code directory).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct ImageKeys {
    pub(super) command: Option<String>,
    #[serde(default)]
    pub(super) args: ImageArgs,
}

/// `inputs.image.args`: a list, or one string split at spaces.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub(super) enum ImageArgs {
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
pub(super) struct InstanceConcurrency {
    pub(super) enable: Option<bool>,
    pub(super) max_concurrency: Option<usize>,
}

/// Our own keys, under `inputs.local`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct LocalKeys {
    pub(super) concurrency: Option<usize>,
    pub(super) provisioned: Option<usize>,
    pub(super) idle_timeout: Option<f64>,
    pub(super) retry_interval: Option<f64>,
    pub(super) queue_limit: Option<usize>,
    pub(super) dialect: Option<String>,
    pub(super) command: Option<String>,
    pub(super) python: Option<String>,
}

/// `src` is either a path or `{ src: path, dist: path, hook: command, exclude: [...] }` (the code is `dist`
/// when given: what `hook` builds); `{ bucket, object }` names code in COS, which cannot be run locally.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum SrcField {
    Path(String),
    Object(SrcObject),
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct SrcObject {
    pub(crate) src: Option<String>,
    pub(crate) dist: Option<String>,
    pub(crate) bucket: Option<String>,
    pub(crate) object: Option<String>,
}

impl SrcField {
    /// The code's directory, relative to the configuration's.
    pub(crate) fn code_path(&self) -> Result<&str, PlatformError> {
        match self {
            SrcField::Path(p) => Ok(p),
            SrcField::Object(o) => match (o.dist.as_deref(), o.src.as_deref()) {
                (Some(d), _) | (None, Some(d)) => Ok(d),
                (None, None) if o.bucket.is_some() || o.object.is_some() => Err(PlatformError::Config(
                    "src names code in a COS bucket (src.bucket, src.object), which scf-local cannot run: set src.src to the code's directory"
                        .into(),
                )),
                (None, None) => Ok("."),
            },
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Environment {
    #[serde(default)]
    pub(super) variables: BTreeMap<String, serde_yaml::Value>,
}

/// One `environments` entry (multi-scf, http): `{key, value}`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct KeyValue {
    pub(super) key: String,
    #[serde(default)]
    pub(super) value: serde_yaml::Value,
}
