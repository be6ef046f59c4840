//! A custom runtime: this binary is the function's `bootstrap`. It speaks the runtime API itself through
//! `scf_sdk::run`, the same protocol code `scf-shim` uses, so it runs on `scf-local --runtime custom` and
//! as a custom runtime on the real platform.

use std::process::ExitCode;

use scf_sdk::Context;

#[derive(serde::Deserialize)]
struct Event {
    a: i64,
    b: i64,
}

#[derive(serde::Serialize)]
struct Sum {
    sum: i64,
    request_id: String,
}

fn add(event: Event, context: Context) -> Result<Sum, String> {
    let sum = event.a.checked_add(event.b).ok_or("the sum overflows")?;
    Ok(Sum {
        sum,
        request_id: context.request_id,
    })
}

fn main() -> ExitCode {
    match scf_sdk::run(add) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("bootstrap: {e}\n").as_bytes(),
            );
            ExitCode::FAILURE
        }
    }
}
