//! The events' own tests, and the sample sets of `samples/` (regenerated here and compared, so the
//! Python and TypeScript SDKs' type tests always check against what the types say).
//!
//! `SCF_UPDATE_EVENT_SAMPLES=1 cargo test -p scf-protocol events` rewrites the sample sets.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

/// One JSON shape the SDKs type: an event kind, or an answer.
struct Shape {
    /// The sample set's file name (without `.json`).
    name: &'static str,
    /// The Rust type.
    type_name: &'static str,
    /// The kind, for an event [`generate`] builds.
    kind: Option<Kind>,
    /// A document with every optional field present.
    full: Value,
    /// Reads a document as the type and writes it back.
    check: fn(&Value) -> Result<Value, serde_json::Error>,
}

fn through<T: serde::de::DeserializeOwned + serde::Serialize>(
    v: &Value,
) -> Result<Value, serde_json::Error> {
    serde_json::to_value(T::deserialize(v)?)
}

/// `kind`'s event with `overrides`, as the type `T`.
fn typed<T: serde::de::DeserializeOwned>(kind: Kind, overrides: &[(&str, &str)]) -> T {
    let event = generate(kind, overrides).unwrap_or_else(|e| panic!("{kind}: {e}"));
    serde_json::from_value(event).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

fn sample(kind: Kind) -> Value {
    generate::<&str, &str>(kind, &[]).expect("the default sample")
}

fn shapes() -> Vec<Shape> {
    let mut apigw = generate(
        Kind::ApiGateway,
        &[
            ("secret-id", "AKIDEXAMPLE"),
            ("query", "lang=en&tag=a&tag=b&debug"),
        ],
    )
    .expect("apigw");
    apigw["requestContext"]["websocketEnable"] = json!(false);
    let mut cmq = sample(Kind::Cmq);
    let mut listed = cmq["Records"][0].clone();
    listed["CMQ"]["msgTag"] = json!(["orders", "paid"]);
    if let Some(records) = cmq["Records"].as_array_mut() {
        records.push(listed);
    }
    let mut ws_connect = sample(Kind::WebSocketConnect);
    ws_connect["requestContext"]["serviceId"] = json!("service-6vc3d9qk");
    ws_connect["requestContext"]["identity"]["secretId"] = json!("AKIDEXAMPLE");
    // A closing message a function posts may carry a data type and data (Tencent: "optional").
    let mut ws_close = sample(Kind::WebSocketClose);
    ws_close["websocket"]["dataType"] = json!("text");
    ws_close["websocket"]["data"] = json!("bye");
    let event = |kind: Kind, full: Value, check| Shape {
        name: kind.name(),
        type_name: kind.info().type_name,
        kind: Some(kind),
        full,
        check,
    };
    vec![
        event(Kind::ApiGateway, apigw, through::<ApiGatewayEvent>),
        Shape {
            name: "apigw-response",
            type_name: "ApiGatewayResponse",
            kind: None,
            full: json!({
                "isBase64Encoded": false,
                "statusCode": 200,
                "headers": {"Content-Type": "text/html; charset=utf-8", "Set-Cookie": ["a=1", "b=2"]},
                "body": "<html><body><h1>Hello</h1></body></html>"
            }),
            check: through::<ApiGatewayResponse>,
        },
        event(Kind::Timer, sample(Kind::Timer), through::<TimerEvent>),
        event(Kind::Cos, sample(Kind::Cos), through::<CosEvent>),
        event(Kind::Cmq, cmq, through::<CmqTopicEvent>),
        event(Kind::Ckafka, sample(Kind::Ckafka), through::<CkafkaEvent>),
        event(Kind::Clb, sample(Kind::Clb), through::<ClbEvent>),
        event(
            Kind::WebSocketConnect,
            ws_connect,
            through::<WebSocketConnectEvent>,
        ),
        Shape {
            name: "websocket-connect-response",
            type_name: "WebSocketConnectResponse",
            kind: None,
            full: json!({
                "errNo": 0,
                "errMsg": "ok",
                "websocket": {
                    "action": "connecting",
                    "secConnectionID": "Xk3qLm8vT2pR9sWcYbN4hA==",
                    "secWebSocketProtocol": "chat",
                    "secWebSocketExtensions": "permessage-deflate"
                }
            }),
            check: through::<WebSocketConnectResponse>,
        },
        event(
            Kind::WebSocketData,
            sample(Kind::WebSocketData),
            through::<WebSocketMessageEvent>,
        ),
        event(
            Kind::WebSocketClose,
            ws_close,
            through::<WebSocketMessageEvent>,
        ),
    ]
}

/// A step into a document: an object's key or an array's index.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Step {
    fn to_json(&self) -> Value {
        match self {
            Step::Key(k) => json!(k),
            Step::Index(i) => json!(i),
        }
    }
}

/// Every path in `v`, parents before children.
fn paths(v: &Value) -> Vec<Vec<Step>> {
    fn walk(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        let children: Vec<(Step, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, c)| (Step::Key(k.clone()), c)).collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, c)| (Step::Index(i), c))
                .collect(),
            _ => Vec::new(),
        };
        for (step, child) in children {
            at.push(step);
            out.push(at.clone());
            walk(child, at, out);
            at.pop();
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn at<'a>(v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, step| match step {
        Step::Key(k) => v.get(k.as_str()),
        Step::Index(i) => v.get(*i),
    })
}

fn at_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// `v` without the object key at `path` (`None` when `path` is not an object's key in `v`).
fn without(v: &Value, path: &[Step]) -> Option<Value> {
    let (last, parent) = path.split_last()?;
    let Step::Key(k) = last else { return None };
    let mut out = v.clone();
    at_mut(&mut out, parent)?.as_object_mut()?.remove(k)?;
    Some(out)
}

/// `v` with `value` at `path`.
fn with(v: &Value, path: &[Step], value: Value) -> Option<Value> {
    let mut out = v.clone();
    *at_mut(&mut out, path)? = value;
    Some(out)
}

/// A value of another JSON type than `v`'s.
fn other_type(v: &Value) -> Value {
    match v {
        Value::String(_) | Value::Null => json!(0),
        Value::Number(_) => json!("0"),
        Value::Bool(_) => json!("true"),
        Value::Array(_) | Value::Object(_) => json!("x"),
    }
}

/// `full` without every field the type lets go (optional fields, map entries), parents first.
fn minimal(shape: &Shape) -> Value {
    let mut out = shape.full.clone();
    for path in paths(&shape.full) {
        if let Some(smaller) = without(&out, &path)
            && (shape.check)(&smaller).is_ok()
        {
            out = smaller;
        }
    }
    out
}

/// The sample set of a shape: its documents, and the changes its type refuses.
fn sample_set(shape: &Shape) -> Value {
    let minimal = minimal(shape);
    let mut rejected = Vec::new();
    for path in paths(&minimal) {
        if let Some(smaller) = without(&minimal, &path)
            && (shape.check)(&smaller).is_err()
        {
            let path: Vec<Value> = path.iter().map(Step::to_json).collect();
            rejected.push(json!({"from": "minimal", "path": path, "remove": true}));
        }
    }
    for path in paths(&shape.full) {
        let Some(current) = at(&shape.full, &path) else {
            continue;
        };
        let changed = other_type(current);
        if let Some(wrong) = with(&shape.full, &path, changed.clone())
            && (shape.check)(&wrong).is_err()
        {
            let path: Vec<Value> = path.iter().map(Step::to_json).collect();
            rejected.push(json!({"from": "full", "path": path, "set": changed}));
        }
    }
    json!({
        "shape": shape.name,
        "type": shape.type_name,
        "kind": shape.kind.map(Kind::name),
        "invocation": shape.kind.map(|k| k.info().invocation.as_str()),
        "sample": shape.kind.map(sample),
        "full": shape.full,
        "minimal": minimal,
        "rejected": rejected,
    })
}

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/events/samples")
}

#[test]
fn every_document_reads_into_its_type_and_writes_back_the_same() {
    for shape in shapes() {
        let set = sample_set(&shape);
        for which in ["sample", "full", "minimal"] {
            let doc = &set[which];
            if doc.is_null() {
                continue;
            }
            let back = (shape.check)(doc).unwrap_or_else(|e| panic!("{} {which}: {e}", shape.name));
            assert_eq!(
                &back, doc,
                "{} {which} changed on the way through",
                shape.name
            );
        }
    }
}

#[test]
fn the_sample_sets_are_current() {
    let update = std::env::var_os("SCF_UPDATE_EVENT_SAMPLES").is_some();
    let dir = samples_dir();
    let mut names = Vec::new();
    for shape in shapes() {
        let file = dir.join(format!("{}.json", shape.name));
        let set = sample_set(&shape);
        names.push(format!("{}.json", shape.name));
        if update {
            std::fs::create_dir_all(&dir).expect("samples dir");
            let text = serde_json::to_string_pretty(&set).expect("json") + "\n";
            std::fs::write(&file, text).expect("write the sample set");
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; SCF_UPDATE_EVENT_SAMPLES=1 cargo test -p scf-protocol events writes it",
                file.display()
            )
        });
        let stored: Value = serde_json::from_str(&text).expect("a sample set is JSON");
        assert!(
            stored == set,
            "{} is out of date with the types or the generator: SCF_UPDATE_EVENT_SAMPLES=1 cargo test \
             -p scf-protocol events rewrites it",
            file.display()
        );
    }
    let mut stored: Vec<String> = std::fs::read_dir(&dir)
        .expect("samples dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    stored.sort();
    names.sort();
    assert_eq!(stored, names, "samples/ holds exactly one set per shape");
}

#[test]
fn the_sample_sets_refuse_what_the_types_refuse() {
    // The minimal documents lose nothing more; every change listed is one the type refuses.
    for shape in shapes() {
        let set = sample_set(&shape);
        let rejected = set["rejected"].as_array().expect("rejected");
        assert!(
            !rejected.is_empty(),
            "{}: the type refuses nothing?",
            shape.name
        );
        // Each required field of the minimal document is listed as refused when removed.
        let removals = rejected
            .iter()
            .filter(|r| r["remove"] == json!(true))
            .count();
        let keys = paths(&set["minimal"])
            .into_iter()
            .filter(|p| matches!(p.last(), Some(Step::Key(_))))
            .count();
        assert_eq!(
            removals, keys,
            "{}: a field of the minimal document is optional",
            shape.name
        );
    }
}

#[test]
fn kinds_are_listed_once_in_order_with_their_invocation() {
    assert_eq!(KINDS.len(), Kind::all().count());
    for (i, info) in KINDS.iter().enumerate() {
        assert_eq!(
            info.kind.info(),
            info,
            "KINDS[{i}] is not {:?}'s entry",
            info.kind
        );
        assert_eq!(Kind::parse(info.name), Ok(info.kind));
        assert_eq!(Kind::parse(&info.name.to_uppercase()), Ok(info.kind));
        assert!(!info.keys.is_empty());
        let mut names: Vec<_> = info.keys.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            info.keys.len(),
            "{}: a key is listed twice",
            info.name
        );
    }
    let asynchronous: Vec<_> = Kind::all()
        .filter(|k| k.info().invocation == InvocationType::Event)
        .map(Kind::name)
        .collect();
    assert_eq!(asynchronous, ["timer", "cos", "cmq"]);
    assert_eq!(InvocationType::Event.to_string(), "Event");
    assert_eq!(InvocationType::RequestResponse.as_str(), "RequestResponse");
}

#[test]
fn every_key_changes_its_event() {
    let values: &[(&str, &str)] = &[
        ("method", "put"),
        ("path", "/users/42"),
        ("resource", "/users/{id}"),
        ("query", "q=rust"),
        ("body", "\"text\""),
        ("headers", "{\"X-Trace\":\"t-1\"}"),
        ("is-base64-encoded", "true"),
        ("stage", "test"),
        ("service-id", "service-abc"),
        ("request-id", "req-1"),
        ("source-ip", "198.51.100.7"),
        ("secret-id", "AKIDTEST"),
        ("trigger-name", "hourly"),
        ("time", "2025-01-02T03:04:05Z"),
        ("message", "other"),
        ("bucket", "docs"),
        ("appid", "1300000000"),
        ("region", "ap-shanghai"),
        ("key", "a/b.txt"),
        ("size", "7"),
        ("event-name", "cos:ObjectRemove:Delete"),
        ("event-time", "1700000000"),
        ("function", "other-fn"),
        ("topic", "other-topic"),
        ("subscription", "other-sub"),
        ("tags", "x"),
        ("owner", "42"),
        ("publish-time", "2025-01-02T03:04:05.000Z"),
        ("partition", "3"),
        ("offset", "9"),
        ("count", "5"),
        ("content-type", "text/plain"),
        ("host", "other.example.com"),
        ("connection-id", "Q29ubmVjdGlvbjI="),
        ("protocol", "mqtt"),
        ("extensions", "x-ext"),
        ("service", "other-service"),
        ("data", "bye"),
        ("data-type", "binary"),
    ];
    for info in KINDS {
        let base = sample(info.kind);
        for k in info.keys {
            let value = values
                .iter()
                .find(|(name, _)| *name == k.name)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("no test value for {} {}", info.name, k.name));
            let changed = generate(info.kind, &[(k.name, value)])
                .unwrap_or_else(|e| panic!("{} --{} {value}: {e}", info.name, k.name));
            assert_ne!(
                changed, base,
                "{} --{} {value} changed nothing",
                info.name, k.name
            );
            info.kind.check(&changed).expect("still of its type");
        }
    }
}

#[test]
fn keys_land_where_they_say() {
    let cos: CosEvent = typed(
        Kind::Cos,
        &[
            ("bucket", "photos"),
            ("key", "/2024/cat.png"),
            ("region", "ap-shanghai"),
        ],
    );
    let record = &cos.records[0];
    assert_eq!(record.cos.cos_bucket.name, "photos");
    assert_eq!(record.cos.cos_bucket.region, "sh");
    assert_eq!(record.cos.cos_object.key, "/1250000000/photos/2024/cat.png");
    assert_eq!(
        record.cos.cos_object.url,
        "http://photos-1250000000.cos.ap-shanghai.myqcloud.com/2024/cat.png"
    );
    assert_eq!(record.cos.cos_object.meta["Content-Type"], "image/png");

    let api: ApiGatewayEvent = typed(
        Kind::ApiGateway,
        &[
            ("method", "get"),
            ("path", "/users/42/posts"),
            ("resource", "/users/{id}/posts"),
            ("query", "a=1&b=2&b=3&flag"),
        ],
    );
    assert_eq!(api.http_method, "GET");
    assert_eq!(api.body, None, "a GET carries no body unless one is given");
    assert!(!api.headers.contains_key("content-type"));
    assert_eq!(api.request_context.path, "/users/{id}/posts");
    assert_eq!(
        api.path_parameters,
        Some([("id".to_owned(), "42".to_owned())].into())
    );
    assert_eq!(api.query_string["a"], QueryValue::One("1".into()));
    assert_eq!(
        api.query_string["b"],
        QueryValue::Many(vec!["2".into(), "3".into()])
    );
    assert_eq!(api.query_string["flag"], QueryValue::Flag(true));
    assert_eq!(
        api.query_string_parameters,
        Some([("a".to_owned(), "1".to_owned())].into())
    );

    let timer: TimerEvent = typed(
        Kind::Timer,
        &[("message", "argument"), ("trigger-name", "t")],
    );
    assert_eq!(
        (
            timer.r#type.as_str(),
            timer.trigger_name.as_str(),
            timer.message.as_str()
        ),
        ("Timer", "t", "argument")
    );

    let clb: ClbEvent = typed(
        Kind::Clb,
        &[("body", "aGVsbG8="), ("content-type", "image/png")],
    );
    assert_eq!(clb.payload, Some(json!("aGVsbG8=")));
    assert_eq!(clb.is_base64_encoded, Some(true));
    let clb: ClbEvent = typed(Kind::Clb, &[]);
    assert_eq!(clb.payload, Some(json!({"item": "book", "quantity": 1})));
    assert_eq!(clb.headers["X-Method"], "POST");

    let kafka: CkafkaEvent = typed(Kind::Ckafka, &[("count", "3"), ("offset", "7")]);
    let offsets: Vec<i64> = kafka.records.iter().map(|r| r.ckafka.offset).collect();
    assert_eq!(offsets, [7, 8, 9]);

    let cmq: CmqTopicEvent = typed(Kind::Cmq, &[]);
    assert_eq!(cmq.records[0].cmq.msg_tag.tags(), ["orders", "paid"]);
    assert_eq!(CmqTags::List(vec!["a".into()]).tags(), ["a"]);
    assert!(CmqTags::Joined(String::new()).tags().is_empty());
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let e = Kind::parse("sqs").expect_err("no such kind");
    assert_eq!(
        e.to_string(),
        "unknown event kind 'sqs': expected one of apigw, timer, cos, cmq, ckafka, clb, \
         websocket-connect, websocket-data, websocket-close"
    );
    let e = generate(Kind::Timer, &[("bucket", "x")]).expect_err("not a timer key");
    assert_eq!(
        e.to_string(),
        "the timer event has no key 'bucket': its keys are trigger-name, time, message"
    );
    let e = generate(Kind::Cos, &[("key", "a"), ("key", "b")]).expect_err("twice");
    assert_eq!(e, GenerateError::RepeatedKey { key: "key".into() });
    let cases: &[(Kind, &str, &str, &str)] = &[
        (Kind::Cos, "size", "big", "expected a whole number"),
        (
            Kind::Cos,
            "size",
            "-1",
            "expected a size in bytes, 0 or more",
        ),
        (Kind::Cos, "bucket", "", "expected a name that is not empty"),
        (Kind::Ckafka, "count", "0", "expected 1 to 100 messages"),
        (Kind::Ckafka, "count", "101", "expected 1 to 100 messages"),
        (Kind::Ckafka, "offset", "-3", "expected 0 or more"),
        (
            Kind::Timer,
            "time",
            "yesterday",
            "expected a UTC time such as 2024-06-10T08:00:00Z",
        ),
        (
            Kind::ApiGateway,
            "is-base64-encoded",
            "yes",
            "expected true or false",
        ),
        (
            Kind::ApiGateway,
            "headers",
            "[1]",
            "expected a JSON object of strings, {\"Name\": \"value\"}",
        ),
        (
            Kind::WebSocketData,
            "data-type",
            "json",
            "expected text or binary",
        ),
    ];
    for (kind, key, value, reason) in cases {
        let e = generate(*kind, &[(*key, *value)]).expect_err("refused");
        assert_eq!(
            e,
            GenerateError::InvalidValue {
                key: (*key).into(),
                value: (*value).into(),
                reason: (*reason).into()
            },
            "{kind} --{key} {value}"
        );
    }
}

#[test]
fn pretty_text_is_the_same_event_in_documented_order() {
    for kind in Kind::all() {
        let text = generate_pretty::<&str, &str>(kind, &[]).expect("pretty");
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(value, sample(kind), "{kind}");
    }
    let text = generate_pretty::<&str, &str>(Kind::ApiGateway, &[]).expect("pretty");
    let order: Vec<usize> = ["requestContext", "headers", "path", "httpMethod"]
        .iter()
        .map(|k| format!("\n  \"{k}\": "))
        .collect::<Vec<_>>()
        .iter()
        .map(|k| text.find(k.as_str()).expect("field"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn real_documents_read() {
    // Shapes seen from the real platform: a query flag, an empty identity, joined tags, a list of tags,
    // and fields the types do not know.
    let api = json!({
        "headerParameters": {}, "headers": {"host": "h"}, "httpMethod": "GET", "path": "/p",
        "pathParameters": {}, "queryString": {"a": ["b", "c"], "x": "y", "i": true},
        "queryStringParameters": {},
        "requestContext": {"httpMethod": "ANY", "identity": {}, "path": "/p", "serviceId": "service-x",
            "sourceIp": "198.51.100.1", "stage": "test", "requestId": "r", "appId": "extra"}
    });
    Kind::ApiGateway.check(&api).expect("an API Gateway event");
    let cmq = json!({"Records": [{"CMQ": {"msgBody": "m", "msgId": "1", "msgTag": "a, b",
        "publishTime": "2019-08-16T10:48:49Z", "requestId": "2", "subscriptionName": "s",
        "topicName": "t", "topicOwner": 123456, "type": "topic"}}]});
    Kind::Cmq.check(&cmq).expect("a CMQ event");
    let timer =
        json!({"Message": "", "Time": "2019-08-17T05:26:00Z", "TriggerName": "m", "Type": "Timer"});
    Kind::Timer.check(&timer).expect("a timer event");
    let response: ApiGatewayResponse =
        serde_json::from_value(json!({"statusCode": 404, "headers": {}, "body": ""}))
            .expect("answer");
    assert_eq!(
        (response.status_code, response.is_base64_encoded),
        (404, None)
    );
    assert!(
        serde_json::from_value::<ApiGatewayResponse>(
            json!({"statusCode": 70000, "headers": {}, "body": ""})
        )
        .is_err()
    );
}

#[test]
fn docs_events_md_shows_every_kind_its_sample_and_keys() {
    let doc = include_str!("../../../docs/events.md");
    for info in KINDS {
        let heading = format!("`{}`", info.name);
        let section = doc
            .split("\n## ")
            .find(|s| s.lines().next().is_some_and(|h| h.contains(&heading)))
            .unwrap_or_else(|| panic!("docs/events.md has no section for {heading}"));
        let block = section
            .split("```json\n")
            .nth(1)
            .and_then(|b| b.split("\n```").next())
            .unwrap_or_else(|| panic!("{heading}: no json block"));
        let shown: Value = serde_json::from_str(block).unwrap_or_else(|e| panic!("{heading}: {e}"));
        assert_eq!(
            shown,
            sample(info.kind),
            "{heading}: the sample shown is not the generator's"
        );
        for k in info.keys {
            assert!(
                section.contains(&format!("`--{}`", k.name)),
                "{heading}: key --{} is not documented",
                k.name
            );
        }
        let word = match info.invocation {
            InvocationType::Event => "asynchronous",
            InvocationType::RequestResponse => "synchronous",
        };
        assert!(
            section.contains(word),
            "{heading}: the section does not say it is {word}"
        );
        assert!(
            section.contains(info.type_name),
            "{heading}: the type {} is not named",
            info.type_name
        );
    }
}
