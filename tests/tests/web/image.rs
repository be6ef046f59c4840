//! Image-style event functions: each event is a `POST /event-invoke`.

use super::*;

#[test]
fn image_style_event_function_gets_events_as_post_event_invoke() {
    let f = example("image-event", None);
    let data = TempDir::new("data");
    let p = Served::start(data.path(), &[f.path()], &[]);
    let r = p.invoke("image-event", &json!({"name": "SCF"}));
    let res = &r["Result"];
    assert_eq!(res["InvokeResult"], 0, "{r}");
    let body: Value = serde_json::from_str(res["RetMsg"].as_str().unwrap()).unwrap();
    assert_eq!(body["hello"], "SCF");
    assert_eq!(
        body["request_id"], res["FunctionRequestId"],
        "context in the headers"
    );
    assert_eq!(
        (
            body["function"].as_str(),
            body["memory"].as_str(),
            body["timeout"].as_str()
        ),
        (Some("image-event"), Some("128"), Some("3000"))
    );
    let log = res["Log"].as_str().unwrap();
    assert!(
        log.contains("Init Report") && log.contains("event for request"),
        "{log}"
    );

    let r = p.invoke("image-event", &json!({"action": "fail"}));
    assert_eq!(r["Result"]["InvokeResult"], -1, "{r}");
    let e: Value = serde_json::from_str(r["Result"]["ErrMsg"].as_str().unwrap()).unwrap();
    assert_eq!(
        (e["errorType"].as_str(), e["statusCode"].as_u64()),
        (Some("UnhandledError"), Some(430))
    );
    assert!(
        e["stackTrace"]
            .as_str()
            .unwrap()
            .contains("failed on purpose")
    );

    let r = p.invoke("image-event", &json!({"action": "sleep", "seconds": 10}));
    let e: Value = serde_json::from_str(r["Result"]["ErrMsg"].as_str().unwrap()).unwrap();
    assert_eq!(
        (e["errorType"].as_str(), e["statusCode"].as_u64()),
        (Some("Timeout"), Some(433)),
        "{r}"
    );
    let r = p.invoke("image-event", &json!({"name": "again"}));
    assert_eq!(
        r["Result"]["InvokeResult"], 0,
        "recovers after a timeout: {r}"
    );

    // Not an event function: a web function is reached over HTTP only.
    let w = example("web-python", None);
    let data2 = TempDir::new("data");
    let p2 = Served::start(data2.path(), &[w.path()], &[]);
    let r = p2.invoke("web-python", &json!({}));
    assert_eq!(r["Error"]["Code"], "InvalidParameterValue", "{r}");
}
