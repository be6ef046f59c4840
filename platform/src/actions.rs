//! The front door's reading actions, in TencentCloud's shapes (`docs/platform.md`): `ListFunctions`,
//! `GetFunction` and `ListTriggers`, which the Serverless Framework and `tccli` call. The functions are
//! always `Active`, at `$LATEST`; what the cloud has and one machine does not (a VPC, layers, a dead-letter
//! queue, …) is answered empty, in its type.

use serde_json::{Value, json};

use crate::config::{FunctionConfig, TriggerSpec};
use crate::frontdoor::{ApiError, FrontDoor, Reply, Target, api_error, format_datetime};

/// The actions this module answers.
const ACTIONS: &[&str] = &["ListFunctions", "GetFunction", "ListTriggers"];

/// Whether `action` is one of this module's.
pub(crate) fn serves(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// Answers `action` with `params` (the request's body); `target` is its `FunctionName`, `Namespace` and
/// `Qualifier`.
pub(crate) fn handle(
    door: &FrontDoor,
    action: &str,
    target: &Target,
    params: &Value,
) -> Result<Reply, ApiError> {
    let when = format_datetime(door.functions.loaded_ms);
    match action {
        "ListFunctions" => list_functions(door, params, &when),
        "GetFunction" => {
            let function = door.target(target)?;
            Ok(Reply::Value(get_function(function.config(), &when)))
        }
        "ListTriggers" => {
            let function = door.target(target)?;
            let all = triggers(function.config(), &when);
            let (offset, limit) = page(params, 20, 100)?;
            let total = all.len();
            let page: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
            Ok(Reply::Value(
                json!({ "Triggers": page, "TotalCount": total }),
            ))
        }
        other => Err(api_error(
            "InvalidAction",
            format!("the action {other} is not supported by scf-local"),
        )),
    }
}

/// `Offset` and `Limit` (default `default`, at most `max`).
fn page(params: &Value, default: u64, max: u64) -> Result<(usize, usize), ApiError> {
    let number = |key: &str, default: u64| -> Result<u64, ApiError> {
        match params.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| {
                api_error(
                    "InvalidParameterValue",
                    format!("{key} must be a non-negative integer"),
                )
            }),
        }
    };
    let offset = number("Offset", 0)?;
    let limit = number("Limit", default)?;
    if limit > max {
        return Err(api_error(
            "InvalidParameterValue.Limit",
            format!("Limit {limit}: at most {max}"),
        ));
    }
    Ok((
        usize::try_from(offset).unwrap_or(usize::MAX),
        usize::try_from(limit).unwrap_or(usize::MAX),
    ))
}

fn text<'a>(params: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(api_error(
            "InvalidParameterValue",
            format!("{key} must be a string"),
        )),
    }
}

fn list_functions(door: &FrontDoor, params: &Value, when: &str) -> Result<Reply, ApiError> {
    let namespace = text(params, "Namespace")?.unwrap_or("default");
    let search = text(params, "SearchKey")?;
    let descending = match text(params, "Order")? {
        None => false,
        Some(o) if o.eq_ignore_ascii_case("asc") => false,
        Some(o) if o.eq_ignore_ascii_case("desc") => true,
        Some(o) => {
            return Err(api_error(
                "InvalidParameterValue.Order",
                format!("Order {o}: expected ASC or DESC"),
            ));
        }
    };
    let (offset, limit) = page(params, 20, 100)?;
    let mut found: Vec<&FunctionConfig> = door
        .functions
        .configs()
        .into_iter()
        .filter(|c| c.namespace == namespace)
        .filter(|c| search.is_none_or(|s| c.name.contains(s)))
        .collect();
    if descending {
        found.reverse();
    }
    let total = found.len();
    let functions: Vec<Value> = found
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|c| {
            json!({
                "FunctionName": c.name,
                "FunctionId": function_id(c),
                "Namespace": c.namespace,
                "Runtime": runtime(c),
                "Status": "Active",
                "StatusDesc": "",
                "StatusReasons": [],
                "Description": "",
                "AddTime": when,
                "ModTime": when,
                "Tags": [],
                "Type": kind(c),
                "TotalProvisionedConcurrencyMem": 0,
                "ReservedConcurrencyMem": 0,
                "AsyncRunEnable": "FALSE",
                "TraceEnable": "FALSE",
            })
        })
        .collect();
    Ok(Reply::Value(
        json!({ "Functions": functions, "TotalCount": total }),
    ))
}

/// `Event`, or `HTTP` for a web function.
fn kind(c: &FunctionConfig) -> &'static str {
    match &c.http {
        Some(h) if h.kind == crate::config::HttpKind::Web => "HTTP",
        _ => "Event",
    }
}

fn runtime(c: &FunctionConfig) -> String {
    c.runtime_name
        .clone()
        .unwrap_or_else(|| c.runtime.to_string())
}

/// `lam-` and eight characters that stay the same for a function's name and namespace.
fn function_id(c: &FunctionConfig) -> String {
    crate::config::stable_id("lam-", &[&c.namespace, &c.name])
}

fn get_function(c: &FunctionConfig, when: &str) -> Value {
    let variables: Vec<Value> = c
        .env
        .iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect();
    json!({
        "FunctionName": c.name,
        "FunctionId": function_id(c),
        "Namespace": c.namespace,
        "Runtime": runtime(c),
        "Handler": c.handler,
        "Type": kind(c),
        "MemorySize": c.memory_mb,
        "Timeout": c.timeout.as_secs_f64().ceil() as u64,
        "InitTimeout": c.init_timeout.as_secs_f64().ceil() as u64,
        "FunctionVersion": "$LATEST",
        "Qualifier": "$LATEST",
        "Environment": { "Variables": variables },
        "Triggers": triggers(c, when),
        "Status": "Active",
        "StatusDesc": "",
        "StatusReasons": [],
        "AvailableStatus": "Available",
        "Description": "",
        "CodeSize": 0,
        "CodeInfo": "",
        "CodeResult": "success",
        "CodeError": "",
        "ErrNo": 0,
        "AddTime": when,
        "ModTime": when,
        "Role": "",
        "InstallDependency": "FALSE",
        "ClsLogsetId": "",
        "ClsTopicId": "",
        "L5Enable": "FALSE",
        "OnsEnable": "FALSE",
        "UseGpu": "FALSE",
        "AsyncRunEnable": "FALSE",
        "TraceEnable": "FALSE",
        "Tags": [],
        "Layers": [],
        "VpcConfig": { "VpcId": "", "SubnetId": "" },
        "DeadLetterConfig": { "Type": "", "Name": "", "FilterType": "" },
        "CfsConfig": { "CfsInsList": [] },
    })
}

/// The function's triggers as `ListTriggers` and `GetFunction` show them: an API Gateway trigger once per
/// API, named by its service's id.
fn triggers(c: &FunctionConfig, when: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for t in &c.triggers {
        let entry = |desc: Value, custom: &str| {
            json!({
                "TriggerName": t.name,
                "Type": t.kind.name(),
                "TriggerDesc": desc.to_string(),
                "CustomArgument": custom,
                "Enable": i32::from(t.enable),
                "Qualifier": "$LATEST",
                "AvailableStatus": "Available",
                "BindStatus": "on",
                "ResourceId": "",
                "TriggerAttribute": "",
                "Description": "",
                "AddTime": when,
                "ModTime": when,
            })
        };
        match &t.spec {
            TriggerSpec::Timer { cron, argument } => {
                out.push(entry(json!({ "cron": cron.as_str() }), argument));
            }
            TriggerSpec::Apigw(a) => {
                for e in &a.endpoints {
                    let yes_no = |b: bool| if b { "TRUE" } else { "FALSE" };
                    out.push(entry(
                        json!({
                            "api": {
                                "authRequired": "FALSE",
                                "requestConfig": { "method": e.method, "path": e.path },
                                "isIntegratedResponse": yes_no(e.integrated_response),
                                "isBase64Encoded": yes_no(e.base64),
                            },
                            "service": { "serviceId": a.service_id, "serviceName": a.service_name },
                            "release": { "environmentName": a.stage },
                        }),
                        "",
                    ));
                }
            }
            TriggerSpec::Other(params) => out.push(entry(params.clone(), "")),
        }
    }
    out
}
