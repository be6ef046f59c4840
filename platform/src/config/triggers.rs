//! Triggers as the components define them: `inputs.events` of `component: scf` (`- timer: {…}`,
//! `- apigw: {…}`), `inputs.triggers` of `component: multi-scf` (`- type: timer`, `function: KEY`), and the API
//! Gateway an `http` component creates (`/` for every method). `docs/triggers.md` has every key.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::PlatformError;
use crate::cron::Cron;

/// One trigger of a function.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Its name (`TriggerName`): as configured, else the component's default (`timer-NAME-STAGE`); an API
    /// Gateway trigger is named by its service's id, as on the cloud.
    pub name: String,
    /// What kind of trigger it is.
    pub kind: TriggerKind,
    /// `enable` (timers and the on-demand kinds; the components' default is `false`). API Gateway triggers
    /// are always on.
    pub enable: bool,
    /// What the kind needs.
    pub spec: TriggerSpec,
}

/// The kinds of triggers the components define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerKind {
    /// A timer (`cronExpression`): asynchronous, fired by `scf-local serve`.
    Timer,
    /// API Gateway: synchronous, served by `scf-local serve`'s gateway listener.
    Apigw,
    /// COS: asynchronous, on demand (`scf-local trigger`).
    Cos,
    /// CMQ topic: asynchronous, on demand.
    Cmq,
    /// CKafka: synchronous, on demand.
    Ckafka,
    /// CLB: synchronous, on demand.
    Clb,
    /// CLS: listed only (no event type is described for it).
    Cls,
    /// MPS: listed only.
    Mps,
}

impl TriggerKind {
    const ALL: [TriggerKind; 8] = [
        TriggerKind::Timer,
        TriggerKind::Apigw,
        TriggerKind::Cos,
        TriggerKind::Cmq,
        TriggerKind::Ckafka,
        TriggerKind::Clb,
        TriggerKind::Cls,
        TriggerKind::Mps,
    ];

    /// The name the components and the TencentCloud API use (`timer`, `apigw`, …).
    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::Timer => "timer",
            TriggerKind::Apigw => "apigw",
            TriggerKind::Cos => "cos",
            TriggerKind::Cmq => "cmq",
            TriggerKind::Ckafka => "ckafka",
            TriggerKind::Clb => "clb",
            TriggerKind::Cls => "cls",
            TriggerKind::Mps => "mps",
        }
    }

    fn parse(name: &str) -> Option<TriggerKind> {
        TriggerKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The event this kind of trigger sends, when it is described (`scf_protocol::events`).
    pub fn event_kind(self) -> Option<scf_protocol::events::Kind> {
        use scf_protocol::events::Kind;
        Some(match self {
            TriggerKind::Timer => Kind::Timer,
            TriggerKind::Apigw => Kind::ApiGateway,
            TriggerKind::Cos => Kind::Cos,
            TriggerKind::Cmq => Kind::Cmq,
            TriggerKind::Ckafka => Kind::Ckafka,
            TriggerKind::Clb => Kind::Clb,
            TriggerKind::Cls | TriggerKind::Mps => return None,
        })
    }
}

/// What each kind of trigger is configured with.
#[derive(Debug, Clone)]
pub enum TriggerSpec {
    /// A timer: when it fires, and the message its events carry.
    Timer {
        /// `cronExpression`.
        cron: Cron,
        /// `argument` (the event's `Message`; an object is written as JSON).
        argument: String,
    },
    /// An API Gateway service's APIs that reach this function.
    Apigw(Apigw),
    /// Another kind: its parameters as written (shown by `ListTriggers`, used for `scf-local trigger`'s
    /// defaults).
    Other(serde_json::Value),
}

/// The API Gateway side of a function: one service, published in one stage (environment).
#[derive(Debug, Clone, PartialEq)]
pub struct Apigw {
    /// `serviceId` (`id` in multi-scf), else one made from the service's name.
    pub service_id: String,
    /// `serviceName` (`name` in multi-scf and http), default `serverless`.
    pub service_name: String,
    /// `environment`: the stage the APIs are published in (`release`, `prepub`, `test`), default `release`;
    /// the gateway serves each API at its path and under `/<stage>`.
    pub stage: String,
    /// The APIs.
    pub endpoints: Vec<Endpoint>,
}

/// One API of an API Gateway trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `path`, with `{parameters}` (`/hello/{name}`).
    pub path: String,
    /// `method`, upper case; `ANY` takes every method. Default `GET`.
    pub method: String,
    /// `function.isIntegratedResponse`: the function answers `{statusCode, headers, body, isBase64Encoded}`.
    pub integrated_response: bool,
    /// `enableCORS`: preflight requests are answered, answers carry `Access-Control-Allow-Origin`.
    pub cors: bool,
    /// `serviceTimeout`, default 15 s.
    pub service_timeout: Duration,
    /// `isBase64Encoded`: every body reaches the function base64-encoded.
    pub base64: bool,
    /// `isBase64Trigger` with its `base64EncodedTriggerRules`: bodies whose `Accept` or `Content-Type` is one
    /// of the rules' values are base64-encoded.
    pub base64_rules: Vec<Base64Rule>,
    /// `param`: the query and header parameters declared (`queryStringParameters`, `headerParameters`).
    pub params: Vec<Param>,
    /// `apiName`.
    pub api_name: Option<String>,
}

/// One `base64EncodedTriggerRules` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base64Rule {
    /// `Accept` or `Content-Type` (written `Content_Type` in the configuration).
    pub header: String,
    /// Its values that trigger the encoding.
    pub values: Vec<String>,
}

/// One declared parameter of an API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// `name`.
    pub name: String,
    /// `position`: `PATH`, `QUERY` or `HEADER`.
    pub position: ParamPosition,
    /// `defaultValue`, used when the request has none.
    pub default: Option<String>,
}

/// Where a declared parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamPosition {
    /// In the path (`{name}`).
    Path,
    /// In the query.
    Query,
    /// In a header.
    Header,
}

/// A boolean as the components' users write them: `true`, `TRUE`, `'true'`.
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        B(bool),
        S(String),
    }
    match Option::<B>::deserialize(d)? {
        None => Ok(None),
        Some(B::B(b)) => Ok(Some(b)),
        Some(B::S(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(B::S(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(B::S(s)) => Err(serde::de::Error::custom(format!(
            "'{s}' is not true or false"
        ))),
    }
}

/// A value written as a string or a number (`defaultValue: 0`).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimerParams {
    name: Option<String>,
    cron_expression: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    enable: Option<bool>,
    argument: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApigwParams {
    service_name: Option<String>,
    service_id: Option<String>,
    id: Option<String>,
    name: Option<String>,
    environment: Option<String>,
    #[serde(default)]
    endpoints: Vec<EndpointKeys>,
    #[serde(default)]
    apis: Vec<EndpointKeys>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointKeys {
    path: Option<String>,
    method: Option<String>,
    #[serde(default, rename = "enableCORS", deserialize_with = "lenient_bool")]
    enable_cors: Option<bool>,
    service_timeout: Option<f64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    is_base64_encoded: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    is_base64_trigger: Option<bool>,
    #[serde(default)]
    base64_encoded_trigger_rules: Vec<RuleKeys>,
    #[serde(default)]
    param: Vec<ParamKeys>,
    function: Option<Value>,
    api_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RuleKeys {
    name: String,
    #[serde(default)]
    value: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParamKeys {
    name: Option<String>,
    position: Option<String>,
    default_value: Option<Value>,
}

/// What names a function's triggers by default: the project's `name` and `stage`.
#[derive(Debug, Clone)]
pub(crate) struct Naming {
    pub(crate) name: String,
    pub(crate) stage: String,
}

impl Naming {
    fn default_name(&self, kind: TriggerKind) -> String {
        format!("{}-{}-{}", kind.name(), self.name, self.stage)
    }
}

fn bad(what: &str, e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Config(format!("{what}: {e}"))
}

/// One trigger of `kind` named by `explicit_name` with its `parameters`; `function_of` gives, for an API
/// Gateway trigger, the function (key) an API reaches. Returns the trigger once per function it reaches.
pub(crate) fn parse(
    kind_name: &str,
    explicit_name: Option<String>,
    parameters: &Value,
    naming: &Naming,
    what: &str,
    function_of: &mut dyn FnMut(Option<&Value>) -> Result<String, PlatformError>,
) -> Result<Vec<(String, Trigger)>, PlatformError> {
    let kind = TriggerKind::parse(kind_name).ok_or_else(|| {
        PlatformError::Config(format!(
            "{what}: unknown trigger type '{kind_name}': expected one of {}",
            TriggerKind::ALL.map(TriggerKind::name).join(", ")
        ))
    })?;
    let parameters = if parameters.is_null() {
        Value::Mapping(Default::default())
    } else {
        parameters.clone()
    };
    match kind {
        TriggerKind::Timer => {
            let p: TimerParams = serde_yaml::from_value(parameters).map_err(|e| bad(what, e))?;
            let expression = p.cron_expression.ok_or_else(|| {
                PlatformError::Config(format!("{what}: a timer needs parameters.cronExpression"))
            })?;
            let cron = Cron::parse(&expression).map_err(|e| bad(what, e))?;
            let argument = match p.argument {
                None | Some(Value::Null) => String::new(),
                Some(v) => match text_of(&v) {
                    Some(s) => s,
                    None => serde_json::to_string(&v).map_err(|e| bad(what, e))?,
                },
            };
            let name = p
                .name
                .or(explicit_name)
                .unwrap_or_else(|| naming.default_name(kind));
            let function = function_of(None)?;
            Ok(vec![(
                function,
                Trigger {
                    name,
                    kind,
                    enable: p.enable.unwrap_or(false),
                    spec: TriggerSpec::Timer { cron, argument },
                },
            )])
        }
        TriggerKind::Apigw => {
            let p: ApigwParams = serde_yaml::from_value(parameters).map_err(|e| bad(what, e))?;
            let service_name = p
                .service_name
                .or(p.name)
                .unwrap_or_else(|| "serverless".to_owned());
            let service_id = p
                .service_id
                .or(p.id)
                .unwrap_or_else(|| service_id_for(&service_name, naming));
            let stage = p.environment.unwrap_or_else(|| "release".to_owned());
            if !matches!(stage.as_str(), "release" | "prepub" | "test") {
                return Err(PlatformError::Config(format!(
                    "{what}: environment '{stage}': expected release, prepub or test"
                )));
            }
            let mut by_function: Vec<(String, Vec<Endpoint>)> = Vec::new();
            for (i, e) in p.endpoints.into_iter().chain(p.apis).enumerate() {
                let at = format!("{what}, API {}", i + 1);
                let function = function_of(e.function.as_ref())?;
                let endpoint = endpoint(e, &at)?;
                match by_function.iter_mut().find(|(f, _)| *f == function) {
                    Some((_, list)) => list.push(endpoint),
                    None => by_function.push((function, vec![endpoint])),
                }
            }
            Ok(by_function
                .into_iter()
                .map(|(function, endpoints)| {
                    (
                        function,
                        Trigger {
                            name: service_id.clone(),
                            kind,
                            enable: true,
                            spec: TriggerSpec::Apigw(Apigw {
                                service_id: service_id.clone(),
                                service_name: service_name.clone(),
                                stage: stage.clone(),
                                endpoints,
                            }),
                        },
                    )
                })
                .collect())
        }
        _ => {
            let enable = parameters
                .get("enable")
                .map(|v| matches!(text_of(v).as_deref(), Some("true" | "TRUE" | "True")))
                .unwrap_or(false);
            // (`parameters.name` of a CMQ or CKafka trigger names the topic or the instance, not the trigger.)
            let name = explicit_name.unwrap_or_else(|| naming.default_name(kind));
            let json = serde_json::to_value(&parameters).map_err(|e| bad(what, e))?;
            let function = function_of(None)?;
            Ok(vec![(
                function,
                Trigger {
                    name,
                    kind,
                    enable,
                    spec: TriggerSpec::Other(json),
                },
            )])
        }
    }
}

fn endpoint(e: EndpointKeys, what: &str) -> Result<Endpoint, PlatformError> {
    let path = e
        .path
        .ok_or_else(|| PlatformError::Config(format!("{what}: an API needs a path")))?;
    let path = normalise_path(&path)
        .ok_or_else(|| PlatformError::Config(format!("{what}: path '{path}' must start with /")))?;
    let method = e
        .method
        .unwrap_or_else(|| "GET".to_owned())
        .to_ascii_uppercase();
    if !matches!(
        method.as_str(),
        "ANY" | "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS"
    ) {
        return Err(PlatformError::Config(format!(
            "{what}: method '{method}': expected ANY, GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS"
        )));
    }
    let service_timeout = e.service_timeout.unwrap_or(15.0);
    if !(service_timeout > 0.0 && service_timeout <= 1800.0) {
        return Err(PlatformError::Config(format!(
            "{what}: serviceTimeout {service_timeout}: expected 1 to 1800 seconds"
        )));
    }
    let integrated_response = match &e.function {
        Some(f @ Value::Mapping(_)) => match f.get("isIntegratedResponse") {
            None => false,
            Some(v) => match text_of(v).map(|s| s.to_ascii_lowercase()).as_deref() {
                Some("true") => true,
                Some("false") => false,
                _ => {
                    return Err(PlatformError::Config(format!(
                        "{what}: function.isIntegratedResponse must be true or false"
                    )));
                }
            },
        },
        _ => false,
    };
    let base64_rules = if e.is_base64_trigger.unwrap_or(false) {
        e.base64_encoded_trigger_rules
            .into_iter()
            .map(|r| Base64Rule {
                header: r.name.replace('_', "-"),
                values: r.value,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut params = Vec::new();
    for p in e.param {
        let Some(name) = p.name else { continue };
        let position = match p
            .position
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("PATH") => ParamPosition::Path,
            Some("QUERY") | None => ParamPosition::Query,
            Some("HEADER") => ParamPosition::Header,
            Some(other) => {
                return Err(PlatformError::Config(format!(
                    "{what}: param {name}: position '{other}': expected PATH, QUERY or HEADER"
                )));
            }
        };
        params.push(Param {
            name,
            position,
            default: p.default_value.as_ref().and_then(text_of),
        });
    }
    Ok(Endpoint {
        path,
        method,
        integrated_response,
        cors: e.enable_cors.unwrap_or(false),
        service_timeout: Duration::from_secs_f64(service_timeout),
        base64: e.is_base64_encoded.unwrap_or(false),
        base64_rules,
        params,
        api_name: e.api_name,
    })
}

/// `/a/b/` → `/a/b`; `/` stays; no leading `/` → `None`.
pub(crate) fn normalise_path(path: &str) -> Option<String> {
    let path = path.trim();
    if !path.starts_with('/') {
        return None;
    }
    let trimmed = path.trim_end_matches('/');
    Some(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// A service id for a service the configuration gives no id: `service-` and eight characters that depend on
/// the project and the service's name only, so they stay the same from one start to the next.
fn service_id_for(service_name: &str, naming: &Naming) -> String {
    stable_id("service-", &[&naming.name, &naming.stage, service_name])
}

/// `prefix` and eight characters (`0-9a-z`) that depend on `parts` only: ids that stay the same from one
/// start to the next (FNV-1a).
pub(crate) fn stable_id(prefix: &str, parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut id = String::from(prefix);
    for _ in 0..8 {
        id.push(char::from(DIGITS[(h % 36) as usize]));
        h /= 36;
    }
    id
}

/// The trigger an `http` component makes: one API, `/` for every method, integrated response (the function
/// is a web server), CORS on unless `api.cors: false`.
pub(crate) fn http_component(
    apigw: Option<&Value>,
    naming: &Naming,
    what: &str,
) -> Result<Option<Trigger>, PlatformError> {
    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct HttpApigw {
        #[serde(default, deserialize_with = "lenient_bool")]
        is_disabled: Option<bool>,
        id: Option<String>,
        name: Option<String>,
        environment: Option<String>,
        #[serde(default, rename = "enableCORS", deserialize_with = "lenient_bool")]
        enable_cors: Option<bool>,
        api: Option<HttpApi>,
    }
    #[derive(Debug, Default, Deserialize)]
    struct HttpApi {
        #[serde(default, deserialize_with = "lenient_bool")]
        cors: Option<bool>,
        timeout: Option<f64>,
        name: Option<String>,
    }
    let a: HttpApigw = match apigw {
        None | Some(Value::Null) => HttpApigw::default(),
        Some(v) => serde_yaml::from_value(v.clone()).map_err(|e| bad(what, e))?,
    };
    if a.is_disabled.unwrap_or(false) {
        return Ok(None);
    }
    let api = a.api.unwrap_or_default();
    let mut params = serde_yaml::Mapping::new();
    params.insert(
        "serviceName".into(),
        a.name.unwrap_or_else(|| "serverless".into()).into(),
    );
    if let Some(id) = a.id {
        params.insert("serviceId".into(), id.into());
    }
    if let Some(env) = a.environment {
        params.insert("environment".into(), env.into());
    }
    let mut endpoint = serde_yaml::Mapping::new();
    endpoint.insert("path".into(), "/".into());
    endpoint.insert("method".into(), "ANY".into());
    endpoint.insert(
        "apiName".into(),
        api.name.unwrap_or_else(|| "http_api".into()).into(),
    );
    endpoint.insert(
        "enableCORS".into(),
        api.cors.or(a.enable_cors).unwrap_or(true).into(),
    );
    endpoint.insert("serviceTimeout".into(), api.timeout.unwrap_or(15.0).into());
    params.insert(
        "endpoints".into(),
        Value::Sequence(vec![Value::Mapping(endpoint)]),
    );
    let mut made = parse(
        "apigw",
        None,
        &Value::Mapping(params),
        naming,
        what,
        &mut |_| Ok(String::new()),
    )?;
    Ok(made.pop().map(|(_, t)| t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    fn naming() -> Naming {
        Naming {
            name: "demo".into(),
            stage: "dev".into(),
        }
    }

    #[test]
    fn timers() {
        let t = parse(
            "timer",
            None,
            &yaml("cronExpression: '*/5 * * * * * *'\nenable: TRUE\nargument: {a: 1}\n"),
            &naming(),
            "t",
            &mut |_| Ok("f".into()),
        )
        .expect("timer");
        let (f, t) = &t[0];
        assert_eq!(
            (f.as_str(), t.name.as_str(), t.enable),
            ("f", "timer-demo-dev", true)
        );
        match &t.spec {
            TriggerSpec::Timer { cron, argument } => {
                assert_eq!(
                    (cron.as_str(), argument.as_str()),
                    ("*/5 * * * * * *", r#"{"a":1}"#)
                );
            }
            other => panic!("{other:?}"),
        }
        let t = parse(
            "timer",
            Some("nightly".into()),
            &yaml("cronExpression: '0 0 2 * * * *'\n"),
            &naming(),
            "t",
            &mut |_| Ok("f".into()),
        )
        .expect("timer");
        assert_eq!((t[0].1.name.as_str(), t[0].1.enable), ("nightly", false));
        let e = parse(
            "timer",
            None,
            &yaml("cronExpression: '* *'\n"),
            &naming(),
            "t",
            &mut |_| Ok("f".into()),
        )
        .expect_err("bad cron");
        assert!(e.to_string().contains("seven fields"), "{e}");
        let e = parse("sqs", None, &Value::Null, &naming(), "t", &mut |_| {
            Ok("f".into())
        })
        .expect_err("kind");
        assert!(e.to_string().contains("timer, apigw, cos"), "{e}");
    }

    #[test]
    fn apis_per_function() {
        let t = parse(
            "apigw",
            None,
            &yaml(
                "name: svc\nenvironment: test\napis:\n  - path: /hello/{name}/\n    method: post\n    function: a\n    enableCORS: TRUE\n    param:\n      - {name: lang, position: QUERY, defaultValue: 0}\n  - path: /b\n    function: {name: b, isIntegratedResponse: true}\n    serviceTimeout: 2\n    isBase64Trigger: true\n    base64EncodedTriggerRules: [{name: Content_Type, value: [image/png]}]\n",
            ),
            &naming(),
            "t",
            &mut |f| {
                Ok(match f {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.get("name").and_then(Value::as_str).unwrap_or("").to_owned(),
                    None => "default".into(),
                })
            },
        )
        .expect("apigw");
        assert_eq!(t.len(), 2);
        let (fa, ta) = &t[0];
        let TriggerSpec::Apigw(a) = &ta.spec else {
            panic!()
        };
        assert_eq!(fa, "a");
        assert_eq!((a.service_name.as_str(), a.stage.as_str()), ("svc", "test"));
        assert!(a.service_id.starts_with("service-") && a.service_id.len() == 16);
        assert_eq!(ta.name, a.service_id);
        let e = &a.endpoints[0];
        assert_eq!(
            (
                e.path.as_str(),
                e.method.as_str(),
                e.cors,
                e.integrated_response
            ),
            ("/hello/{name}", "POST", true, false)
        );
        assert_eq!(
            e.params[0],
            Param {
                name: "lang".into(),
                position: ParamPosition::Query,
                default: Some("0".into())
            }
        );
        let (fb, tb) = &t[1];
        let TriggerSpec::Apigw(b) = &tb.spec else {
            panic!()
        };
        assert_eq!(fb, "b");
        let e = &b.endpoints[0];
        assert_eq!(
            (e.method.as_str(), e.integrated_response, e.service_timeout),
            ("GET", true, Duration::from_secs(2))
        );
        assert_eq!(
            e.base64_rules,
            [Base64Rule {
                header: "Content-Type".into(),
                values: vec!["image/png".into()]
            }]
        );
    }

    #[test]
    fn the_http_component_api() {
        let t = http_component(None, &naming(), "h")
            .expect("ok")
            .expect("on");
        let TriggerSpec::Apigw(a) = &t.spec else {
            panic!()
        };
        let e = &a.endpoints[0];
        assert_eq!(
            (e.path.as_str(), e.method.as_str(), e.cors, a.stage.as_str()),
            ("/", "ANY", true, "release")
        );
        let off = http_component(Some(&yaml("isDisabled: true")), &naming(), "h").expect("ok");
        assert!(off.is_none());
    }
}
