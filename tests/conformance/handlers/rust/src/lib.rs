//! The conformance suite's handlers in Rust: one exported symbol per case, named after the case
//! (`tests/conformance/README.md` says what each must do). Built as `libconformance.so`, so the handler of
//! case `<case>` is `conformance.<case>`.
//!
//! Cases Rust cannot express (a syntax error, code run while loading, a cyclic value …) have no symbol
//! here; their `case.json` marks Rust not applicable, with the reason.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a function's stdout and stderr are its log"
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use scf_sdk::Context;
use serde::Serialize;
use serde_json::{Value, json};

type Out = Result<Value, String>;

/// Exports every handler under its own name (the handler ABI `scf-shim` loads), and [`invoke_local`]: the
/// same handlers through the SDK's local `invoke`, by case name, for `sdk-rust`'s conformance test.
/// `echo: [...]` names the cases whose handler returns its event unchanged; they are defined here too.
macro_rules! handlers {
    (echo: [$($echo:ident),* $(,)?], $($name:ident),* $(,)?) => {
        $(
            /// Returns the event unchanged.
            pub fn $echo(event: Value, _context: Context) -> Out {
                Ok(event)
            }
        )*
        handlers!($($echo,)* $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        $( scf_sdk::export!($name); )*

        /// Runs the handler of the case `name` on `event` through [`scf_sdk::invoke`] (`None`: no such handler).
        pub fn invoke_local(
            name: &str,
            event: &str,
            context: Option<Context>,
        ) -> Option<Result<String, scf_sdk::FunctionError>> {
            match name {
                $( stringify!($name) => Some(scf_sdk::invoke($name, event, context)), )*
                _ => None,
            }
        }
    };
}

/// `{"length": <chars of event.data>, "head": <first 8>, "tail": <last 8>}`.
pub fn event_near_6mb(event: Value, _context: Context) -> Out {
    let data = event["data"].as_str().unwrap_or_default();
    let chars: Vec<char> = data.chars().collect();
    let head: String = chars.iter().take(8).collect();
    let tail: String = chars[chars.len().saturating_sub(8)..].iter().collect();
    Ok(json!({ "length": chars.len(), "head": head, "tail": tail }))
}

pub fn return_string(_event: Value, _context: Context) -> Result<String, String> {
    Ok("Hello World".to_owned())
}

pub fn return_number(_event: Value, _context: Context) -> Result<i64, String> {
    Ok(42)
}

pub fn return_float(_event: Value, _context: Context) -> Result<f64, String> {
    Ok(3.25)
}

pub fn return_bool(_event: Value, _context: Context) -> Result<bool, String> {
    Ok(true)
}

pub fn return_null(_event: Value, _context: Context) -> Result<Option<i64>, String> {
    Ok(None)
}

/// Returns nothing at all: `()`.
pub fn return_nothing(_event: Value, _context: Context) -> Result<(), String> {
    Ok(())
}

pub fn return_list(_event: Value, _context: Context) -> Out {
    Ok(json!([1, "two", null, true, {"three": 3}]))
}

/// Keys declared out of alphabetical order.
#[derive(Debug, Serialize)]
pub struct Ordered {
    zeta: i64,
    alpha: i64,
    mid: Inner,
}

/// Nested, likewise.
#[derive(Debug, Serialize)]
pub struct Inner {
    y: i64,
    x: i64,
}

/// Keys in insertion (declaration) order, not sorted: a struct, since `serde_json::Value` sorts its keys.
pub fn return_key_order(_event: Value, _context: Context) -> Result<Ordered, String> {
    Ok(Ordered {
        zeta: 1,
        alpha: 2,
        mid: Inner { y: 1, x: 2 },
    })
}

pub fn return_unicode(_event: Value, _context: Context) -> Result<String, String> {
    Ok("héllo 世界 😀 <&> \u{2028}".to_owned())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub fn context_fields(_event: Value, context: Context) -> Out {
    let v = serde_json::to_value(&context).map_err(|e| e.to_string())?;
    let map = v.as_object().ok_or("the context is not an object")?;
    Ok(Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::from(json_type(v))))
            .collect(),
    ))
}

pub fn context_values(_event: Value, c: Context) -> Out {
    Ok(json!({
        "function_name": c.function_name,
        "namespace": c.namespace,
        "function_version": c.function_version,
        "memory_limit_in_mb": c.memory_limit_in_mb,
        "time_limit_in_ms": c.time_limit_in_ms,
        "request_id": c.request_id,
        "tencentcloud_region": c.tencentcloud_region,
        "tencentcloud_appid": c.tencentcloud_appid,
        "tencentcloud_uin": c.tencentcloud_uin,
    }))
}

pub fn context_environment(_event: Value, c: Context) -> Out {
    let env: Value = serde_json::from_str(&c.environment).map_err(|e| e.to_string())?;
    Ok(json!({
        "APP_MODE": env.get("APP_MODE"),
        "EMPTY_VALUE": env.get("EMPTY_VALUE"),
        "WITH_EQUALS": env.get("WITH_EQUALS"),
        "SCF_NAMESPACE": env.get("SCF_NAMESPACE"),
        "environ_has_app_mode": c.environ.split(';').any(|p| p == "APP_MODE=conformance"),
    }))
}

pub fn env_from_config(_event: Value, _context: Context) -> Out {
    let get = |k: &str| std::env::var(k).ok();
    Ok(json!({
        "GREETING": get("GREETING"),
        "EMPTY_VALUE": get("EMPTY_VALUE"),
        "UNICODE_VALUE": get("UNICODE_VALUE"),
        "NOT_SET": get("CONFORMANCE_NOT_SET"),
    }))
}

pub fn env_platform(_event: Value, _context: Context) -> Out {
    let mut out = serde_json::Map::new();
    for k in [
        "SCF_FUNCTIONNAME",
        "SCF_NAMESPACE",
        "SCF_FUNCTIONVERSION",
        "TENCENTCLOUD_REGION",
        "TENCENTCLOUD_RUNENV",
    ] {
        out.insert(k.to_owned(), std::env::var(k).ok().into());
    }
    Ok(Value::Object(out))
}

static COUNT: AtomicU64 = AtomicU64::new(0);

pub fn warm_globals(_event: Value, _context: Context) -> Out {
    Ok(json!({ "count": COUNT.fetch_add(1, Ordering::SeqCst) + 1 }))
}

pub fn warm_tmp_dir(_event: Value, _context: Context) -> Out {
    let dir = std::env::temp_dir();
    let path = dir.join("conformance-warm.txt");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str("x\n");
    std::fs::write(&path, &text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let tmpdir = std::env::var("TMPDIR").unwrap_or_default();
    Ok(json!({
        "lines": text.lines().count(),
        "in_tmpdir": !tmpdir.is_empty() && path.starts_with(&tmpdir),
    }))
}

pub fn warm_after_error(event: Value, _context: Context) -> Out {
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if event["fail"] == true {
        panic!("requested failure");
    }
    Ok(json!({ "count": n }))
}

pub fn fresh_after_exit(event: Value, _context: Context) -> Out {
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if event["exit"] == true {
        std::process::exit(3);
    }
    Ok(json!({ "count": n }))
}

pub fn error_uncaught(_event: Value, _context: Context) -> Out {
    panic!("conformance failure")
}

pub fn error_returned(_event: Value, _context: Context) -> Out {
    Err("refused on purpose".to_owned())
}

/// A map with non-string keys has no JSON form.
pub fn error_marshal(_event: Value, _context: Context) -> Result<HashMap<(i32, i32), i32>, String> {
    Ok(HashMap::from([((1, 2), 3)]))
}

/// serde_json writes a non-finite float as `null`.
pub fn error_nan(_event: Value, _context: Context) -> Result<HashMap<&'static str, f64>, String> {
    Ok(HashMap::from([("value", f64::NAN)]))
}

pub fn error_timeout(_event: Value, _context: Context) -> Out {
    println!("started");
    std::thread::sleep(std::time::Duration::from_secs(10));
    Ok(Value::from("woke up"))
}

pub fn error_memory(_event: Value, _context: Context) -> Out {
    let block = vec![1u8; 256 * 1024 * 1024];
    std::thread::sleep(std::time::Duration::from_secs(3));
    Ok(Value::from(
        block
            .iter()
            .step_by(4096)
            .map(|b| u64::from(*b))
            .sum::<u64>(),
    ))
}

pub fn error_process_exit(_event: Value, _context: Context) -> Out {
    println!("exiting with status 3");
    std::process::exit(3)
}

pub fn error_response_too_large(_event: Value, _context: Context) -> Out {
    Ok(Value::from("x".repeat(7 * 1024 * 1024)))
}

pub fn error_message_escaping(_event: Value, _context: Context) -> Out {
    panic!("bad <input> & \u{2028}")
}

pub fn logs_in_order(_event: Value, _context: Context) -> Out {
    println!("first");
    eprintln!("second");
    println!("third");
    eprintln!("fourth");
    Ok(Value::from("done"))
}

pub fn logs_before_exception(_event: Value, _context: Context) -> Out {
    println!("last words before the exception");
    panic!("failing after printing")
}

pub fn logs_long_line(_event: Value, _context: Context) -> Out {
    println!("{}", "x".repeat(10_000));
    println!("after");
    Ok(Value::from("done"))
}

pub fn logs_many_lines(event: Value, _context: Context) -> Out {
    let n = event["lines"].as_u64().unwrap_or(0);
    let width = usize::try_from(event["width"].as_u64().unwrap_or(0)).unwrap_or(0);
    for i in 0..n {
        let head = format!("line {i} ");
        println!("{head}{}", "x".repeat(width.saturating_sub(head.len())));
    }
    Ok(json!({ "printed": n }))
}

pub fn logs_unicode(_event: Value, _context: Context) -> Out {
    println!("héllo 世界 😀");
    Ok(Value::from("done"))
}

handlers!(
    echo: [
        echo_nested,
        echo_empty_object,
        echo_empty_containers,
        echo_string_event,
        echo_array_event,
        echo_unicode_bmp,
        echo_unicode_astral,
        echo_unicode_escaped_input,
        echo_escapes,
        echo_control_chars,
        echo_html_chars,
        echo_duplicate_keys,
        echo_large_1mb,
        number_big_integer,
        number_above_2_53,
        number_floats,
        number_negative_zero,
        number_extremes,
        error_invalid_event,
        error_invalid_event_nan,
        echo_nested_100_deep,
    ],
    event_near_6mb,
    return_string,
    return_number,
    return_float,
    return_bool,
    return_null,
    return_nothing,
    return_list,
    return_key_order,
    return_unicode,
    context_fields,
    context_values,
    context_environment,
    env_from_config,
    env_platform,
    warm_globals,
    warm_tmp_dir,
    warm_after_error,
    fresh_after_exit,
    error_uncaught,
    error_returned,
    error_marshal,
    error_nan,
    error_timeout,
    error_memory,
    error_process_exit,
    error_response_too_large,
    error_message_escaping,
    logs_in_order,
    logs_before_exception,
    logs_long_line,
    logs_unicode,
    logs_many_lines,
);
