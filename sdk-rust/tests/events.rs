//! Handlers typed with `scf_sdk::events`, run through the local [`scf_sdk::invoke`] on the generated samples:
//! every kind's event reaches its type intact, and an event of another kind is production's `InvalidEvent`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;

use scf_sdk::events::{
    self, ApiGatewayEvent, ApiGatewayResponse, EventType, EventTypeVisitor, HeaderValue, Kind,
};
use scf_sdk::{Context, ErrorKind};
use serde_json::Value;

fn hello(event: ApiGatewayEvent, context: Context) -> Result<ApiGatewayResponse, String> {
    if event.http_method != "GET" {
        return Ok(ApiGatewayResponse {
            is_base64_encoded: None,
            status_code: 405,
            headers: BTreeMap::from([(
                "Allow".to_owned(),
                HeaderValue::Many(vec!["GET".into(), "HEAD".into()]),
            )]),
            body: String::new(),
        });
    }
    let name = event
        .path_parameters
        .as_ref()
        .and_then(|p| p.get("name"))
        .cloned()
        .unwrap_or_default();
    Ok(ApiGatewayResponse {
        is_base64_encoded: Some(false),
        status_code: 200,
        headers: BTreeMap::from([(
            "Content-Type".to_owned(),
            HeaderValue::One("application/json".into()),
        )]),
        body: serde_json::json!({"hello": name, "stage": event.request_context.stage, "id": context.request_id})
            .to_string(),
    })
}

#[test]
fn an_api_gateway_handler_answers_with_the_integrated_response() {
    let event = events::generate(
        Kind::ApiGateway,
        &[
            ("method", "GET"),
            ("path", "/hello/SCF"),
            ("resource", "/hello/{name}"),
            ("stage", "test"),
        ],
    )
    .unwrap();
    let out = scf_sdk::invoke(hello, &event.to_string(), None).unwrap();
    let answer: ApiGatewayResponse = serde_json::from_str(&out).unwrap();
    assert_eq!(answer.status_code, 200);
    assert_eq!(
        answer.headers["Content-Type"],
        HeaderValue::One("application/json".into())
    );
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["hello"], "SCF");
    assert_eq!(body["stage"], "test");

    // A POST: several values of one header, and no isBase64Encoded key at all.
    let event = events::generate::<&str, &str>(Kind::ApiGateway, &[]).unwrap();
    let out = scf_sdk::invoke(hello, &event.to_string(), None).unwrap();
    assert_eq!(
        out,
        r#"{"statusCode":405,"headers":{"Allow":["GET","HEAD"]},"body":""}"#
    );
}

/// A handler typed with the kind's event type that gives the event back, run on `event`.
fn echo_as(kind: Kind, event: &Value) -> Result<Value, scf_sdk::FunctionError> {
    struct Echo<'a>(&'a Value);
    impl EventTypeVisitor for Echo<'_> {
        type Output = Result<Value, scf_sdk::FunctionError>;
        fn visit<T: EventType>(self) -> Self::Output {
            let out = scf_sdk::invoke(
                |e: T, _: Context| Ok::<T, String>(e),
                &self.0.to_string(),
                None,
            )?;
            Ok(serde_json::from_str(&out).unwrap())
        }
    }
    kind.visit_type(Echo(event))
}

#[test]
fn every_kind_reaches_its_type_intact() {
    for kind in Kind::all() {
        let event = events::generate::<&str, &str>(kind, &[]).unwrap();
        assert_eq!(echo_as(kind, &event).unwrap(), event, "{kind}");
    }
}

#[test]
fn an_event_of_another_kind_is_an_invalid_event() {
    let timer = events::generate::<&str, &str>(Kind::Timer, &[]).unwrap();
    let e = echo_as(Kind::Cos, &timer).expect_err("a timer event is not a COS event");
    assert_eq!(e.kind, ErrorKind::InvalidEvent);
    assert_eq!(e.kind.status_code(), 400);
    assert!(
        e.message.contains("missing field `Records`"),
        "{}",
        e.message
    );
}
