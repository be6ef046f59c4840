//! The benchmark's handlers under AWS's Rust runtime: `noop`, `echo` and `size`, picked by the handler name
//! given as the first argument (`bench.noop`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let handler = std::env::args().nth(1).or_else(|| std::env::var("_HANDLER").ok()).unwrap_or_default();
    let method = handler.rsplit('.').next().unwrap_or("noop").to_owned();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let method = method.clone();
        async move {
            Ok::<Value, Error>(match method.as_str() {
                "echo" => event.payload,
                "size" => Value::from(event.payload["Records"].as_array().map_or(0, Vec::len)),
                _ => Value::Null,
            })
        }
    }))
    .await
}
