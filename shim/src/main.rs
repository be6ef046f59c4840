//! `scf-shim`: the process the platform starts for each function instance.
//!
//! It is configured entirely by the environment (`docs/protocol.md`). For a native function it hosts the
//! handler library itself; for Python and Node.js it replaces itself with the language's interpreter,
//! which loads the same core from the SDK's native module. Its own output goes nowhere but its exit code:
//! the process's stdout and stderr are the function's log.

use std::process::ExitCode;

use scf_shim::host::{self, Kind};
use scf_shim::{Config, SHIM_START_ENV, ShimError, monotonic_ns};

/// Exit codes: the platform treats any exit as the instance's end; these tell it why.
const EXIT_CONFIG: u8 = 2;
const EXIT_RUNTIME: u8 = 3;

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == scf_supervisor::INIT_ARG)
    {
        // The platform starts every instance with this binary as its init (`scf_supervisor::init`).
        scf_supervisor::init::main();
    }
    if std::env::args()
        .nth(1)
        .as_deref()
        .is_some_and(|a| a == "--version" || a == "-V")
    {
        let _ = std::io::Write::write_all(
            &mut std::io::stdout(),
            concat!(
                "scf-shim ",
                env!("CARGO_PKG_VERSION"),
                " (commit ",
                env!("SCF_BUILD_COMMIT"),
                ")\n"
            )
            .as_bytes(),
        );
        return ExitCode::SUCCESS;
    }
    if std::env::args()
        .nth(1)
        .is_some_and(|a| a == scf_shim::zygote::ZYGOTE_ARG)
    {
        // A Python zygote: replaced by the interpreter, or its failure is its exit.
        let e = host::python::exec_zygote();
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("scf-shim: zygote: {e}\n").as_bytes(),
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    if std::env::var_os(SHIM_START_ENV).is_none() {
        // SAFETY: the shim is still single-threaded here; nothing else reads or writes the environment.
        unsafe { std::env::set_var(SHIM_START_ENV, monotonic_ns().to_string()) };
    }
    match start() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The shim's only word of its own, for the platform's log: why the instance could not run.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("scf-shim: {e}\n").as_bytes(),
            );
            ExitCode::from(match e {
                ShimError::Config(_) | ShimError::Exec { .. } => EXIT_CONFIG,
                _ => EXIT_RUNTIME,
            })
        }
    }
}

fn start() -> Result<(), ShimError> {
    let config = Config::from_env()?;
    match Kind::select(&config).map_err(ShimError::Config)? {
        Kind::Native => scf_shim::run(host::native::NativeHost::new()),
        Kind::Python => Err(host::python::exec(&config)),
        Kind::Node => Err(host::node::exec(&config)),
    }
}
