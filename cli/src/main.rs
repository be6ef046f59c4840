//! `scf-local`: the SCF platform on a developer's machine. A thin command over `scf-platform` (invoke, serve),
//! `scf-store` (logs, dead letters) and `scf-conformance`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use scf_platform::activity::Invocation;
use scf_platform::build::Profile;
use scf_platform::config::{FunctionConfig, Overrides, parse_env_pair};
use scf_platform::package::{self, Cloud, PackageOptions};
use scf_platform::terminal::{self, Style};
use scf_platform::watch::Definition;
use scf_platform::{Credentials, Invoked, Platform, ServeOptions};
use scf_store::{LogQuery, Store};

mod events;

/// Exit code of a function error (the error body is on stdout).
const EXIT_FUNCTION_ERROR: u8 = 1;
/// Exit code of a usage or configuration error.
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "scf-local",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SCF_BUILD_COMMIT"), ")"),
    about = "Run SCF functions on this machine, as the cloud platform runs them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Start every Python instance's interpreter instead of forking it from a pre-initialised zygote (also
    /// SCF_LOCAL_ZYGOTE=off).
    #[arg(long, global = true)]
    no_zygote: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run one invocation on a fresh instance: the caller's body on stdout, the request's log on stderr.
    ///
    /// Exits 0 when the function succeeded, 1 when it failed (the error body is on stdout), 2 on a usage
    /// or configuration error. Settings come from the code directory's serverless.yml; flags win.
    Invoke {
        /// The function's code directory (a Rust function's crate is built first).
        code_dir: PathBuf,
        #[command(flatten)]
        function: FunctionArgs,
        /// The event, as JSON text (default `{}`).
        #[arg(long, conflicts_with = "event_file")]
        event: Option<String>,
        /// A file holding the event (`-` for stdin).
        #[arg(long)]
        event_file: Option<PathBuf>,
        /// The runtime API dialect served to the instance: scf (default) or lambda (AWS's runtime clients).
        #[arg(long)]
        dialect: Option<String>,
        /// For --runtime custom: the command that starts the instance (run with `sh -c` in the code
        /// directory) instead of its `bootstrap`, e.g. "python3 -m awslambdaric index.handler".
        #[arg(long)]
        command: Option<String>,
        /// Build and invoke again each time a file of the function changes (Ctrl-C stops).
        #[arg(long)]
        watch: bool,
        /// Run the instance under the language's debugger: debugpy (Python, port 5678 by default), Node's
        /// inspector (9229), or print the pid for gdb/lldb (native). No timeouts while it runs.
        #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "0")]
        debug: Option<u16>,
        /// With --debug: wait for the debugger to attach before the function loads (native: before it runs).
        #[arg(long)]
        debug_wait: bool,
        /// The Python interpreter of a Python function (default: the code directory's .venv, else python3
        /// on PATH; also inputs.local.python).
        #[arg(long)]
        python: Option<String>,
        /// Build a Rust function's crate with --release (default: cargo's debug profile).
        #[arg(long)]
        release: bool,
    },
    /// Write a function as a zip the real cloud accepts, and a serverless.yml beside it that deploys it
    /// (Tencent's Serverless Framework; with --lambda, the framework's aws provider).
    ///
    /// Python and Node.js functions run on SCF's own runtimes; native (Rust) functions, and the others
    /// with --custom-runtime, as a CustomRuntime whose bootstrap starts scf-shim, carried in the zip or
    /// taken from the layer --layer writes. Settings come from the code directory's serverless.yml; flags
    /// win.
    Package {
        /// The function's code directory (a Rust function's crate is built, in release).
        #[arg(required_unless_present = "layer", conflicts_with = "layer")]
        code_dir: Option<PathBuf>,
        /// The zip to write, e.g. build/fn.zip; serverless.yml goes beside it (and, for SCF, a folder of the
        /// same files, which the framework uploads).
        #[arg(long, short)]
        output: PathBuf,
        #[command(flatten)]
        function: FunctionArgs,
        /// Run a Python or Node.js function as a CustomRuntime with scf-shim instead of on SCF's runtime.
        #[arg(long)]
        custom_runtime: bool,
        /// Package for AWS Lambda's provided.al2023 runtime instead of SCF.
        #[arg(long)]
        lambda: bool,
        /// Write the layer instead of a function: scf-shim and the language pieces under /opt
        /// (bin/scf-shim, lib/scf-runtime/…), for functions packaged with --use-layer.
        #[arg(long)]
        layer: bool,
        /// Start scf-shim from this layer instead of carrying it: SCF NAME:VERSION (e.g. scf-runtime:1), or
        /// on Lambda the layer version's ARN.
        #[arg(long, conflicts_with = "layer")]
        use_layer: Option<String>,
        /// For a custom runtime: the Python interpreter the instance runs, a path on the cloud (e.g. a
        /// layer's /opt/python/bin/python3; default: python3 on the instance's PATH).
        #[arg(long)]
        python: Option<String>,
        /// For a custom runtime: the node the instance runs, a path on the cloud (default: node on PATH).
        #[arg(long)]
        node: Option<String>,
        /// Build a Rust function's crate in cargo's debug profile instead of release.
        #[arg(long)]
        debug: bool,
        /// Build a Rust function's crate against this machine's glibc, even when cargo-zigbuild (on PATH)
        /// could build it for SCF's glibc 2.17.
        #[arg(long)]
        host_glibc: bool,
    },
    /// Run the platform: one function per directory, each configured by its serverless.yml, behind a
    /// TencentCloud-API-shaped front door on 127.0.0.1 (Invoke, InvokeFunction, GetFunctionLogs).
    ///
    /// Ctrl-C or SIGTERM stops it; queued async events stay in the data directory for the next start.
    Serve {
        /// The functions' directories.
        #[arg(required = true)]
        function_dirs: Vec<PathBuf>,
        /// Port of the front door on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = scf_platform::DEFAULT_PORT)]
        port: u16,
        /// Where async queues, dead letters and logs are kept.
        #[arg(long, default_value = ".scf-local")]
        data_dir: PathBuf,
        /// Verify TC3-HMAC-SHA256 signatures with this SecretId (needs a SecretKey; default
        /// $TENCENTCLOUD_SECRETID).
        #[arg(long, env = "TENCENTCLOUD_SECRETID")]
        secret_id: Option<String>,
        /// The SecretKey for --secret-id, read from this file (its first line). Default:
        /// $TENCENTCLOUD_SECRETKEY, which the platform removes from its own environment at start.
        #[arg(long, conflicts_with = "secret_key")]
        secret_key_file: Option<PathBuf>,
        /// The SecretKey on the command line: visible to every local user in /proc/PID/cmdline (prefer
        /// --secret-key-file or $TENCENTCLOUD_SECRETKEY).
        #[arg(long)]
        secret_key: Option<String>,
        /// Reload a function when a file under its directory changes (idle instances retired, busy ones
        /// finish first; Rust crates and src.hook rebuilt first).
        #[arg(long)]
        watch: bool,
        /// Run FUNCTION's instances under the language's debugger (on PORT, or the debugger's default
        /// port), with no timeouts, one instance at a time (repeatable).
        #[arg(long, value_name = "FUNCTION[=PORT]", value_parser = parse_debug)]
        debug: Vec<(String, Option<u16>)>,
        /// With --debug: each instance waits for the debugger to attach before the function loads.
        #[arg(long)]
        debug_wait: bool,
        /// No line per request on stdout.
        #[arg(long, short)]
        quiet: bool,
        /// Port of the API Gateway listener on 127.0.0.1, started when a function has an apigw trigger
        /// or is an http component (0: any free port).
        #[arg(long, default_value_t = scf_platform::DEFAULT_APIGW_PORT)]
        apigw_port: u16,
        /// Run each project's `src.hook` (its build command) first, showing its output.
        #[arg(long)]
        build: bool,
        /// Build Rust functions' crates with --release (default: cargo's debug profile).
        #[arg(long)]
        release: bool,
    },
    /// Print a trigger's event as the trigger sends it (`event generate cos --bucket photos`), or list
    /// every kind with its keys (`event list`).
    Event {
        #[command(subcommand)]
        command: EventCommand,
    },
    /// Invoke a function of a running `scf-local serve` with a trigger's event and that trigger's own
    /// invocation type: cos, cmq and timer are queued (asynchronous), apigw, ckafka and clb answered
    /// (synchronous). The keys are those of `event generate`.
    Trigger {
        /// The function's name.
        function: String,
        /// The trigger's kind (see `scf-local event list`).
        kind: String,
        /// The front door of `scf-local serve`.
        #[arg(long, default_value_t = format!("http://127.0.0.1:{}", scf_platform::DEFAULT_PORT))]
        endpoint: String,
        /// The event's keys, `--key value` (or `--key=value`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        keys: Vec<String>,
    },
    /// Print a function's request logs from a platform's data directory.
    Logs {
        /// The function's name.
        function: String,
        /// Only this request.
        #[arg(long)]
        request_id: Option<String>,
        /// Keep printing new requests as they finish, one readable line each (as `serve` prints them) with
        /// the function's output under it.
        #[arg(long, short)]
        follow: bool,
        /// With --follow: print each request's log in SCF's format instead.
        #[arg(long)]
        raw: bool,
        /// The data directory of `scf-local serve`.
        #[arg(long, default_value = ".scf-local")]
        data_dir: PathBuf,
    },
    /// List a function's dead-letter messages (async events out of retries or past their age), one JSON
    /// object per line.
    Dlq {
        /// The function's name.
        function: String,
        /// The data directory of `scf-local serve`.
        #[arg(long, default_value = ".scf-local")]
        data_dir: PathBuf,
    },
    /// Run the cross-language conformance suite (tests/conformance) and print the matrix, case ×
    /// language; exits 1 on any failure. With --runtime-cmd, against any runtime API implementation.
    Conformance(scf_conformance::Args),
}

/// Where a re-executed `scf-local serve` finds the inherited pipe holding its SecretKey.
const KEY_FD_ENV: &str = "_SCF_LOCAL_SECRET_KEY_FD";
/// The variable the SecretKey may come in.
const KEY_ENV: &str = "TENCENTCLOUD_SECRETKEY";

#[derive(Subcommand)]
enum EventCommand {
    /// Print KIND's event (JSON); keys not given take their documented defaults.
    Generate {
        /// cos, cmq, ckafka, clb, timer, apigw (see `scf-local event list`).
        kind: String,
        /// The event's keys, `--key value` (or `--key=value`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        keys: Vec<String>,
    },
    /// Every kind: its trigger, its invocation type, its keys and their defaults.
    List,
}

/// The options that define a function, shared by `invoke` and `package`; each one present wins over the
/// code directory's serverless.yml.
#[derive(clap::Args)]
struct FunctionArgs {
    /// The handler, FILE.METHOD (e.g. index.main_handler).
    #[arg(long)]
    handler: Option<String>,
    /// native, python3, nodejs, custom, or SCF's names (Python3.9, Nodejs16.13, CustomRuntime, …);
    /// default: chosen from the handler's file (index.py → python3, index.js → nodejs, else native).
    #[arg(long)]
    runtime: Option<String>,
    /// Execution timeout in seconds (default 3).
    #[arg(long)]
    timeout: Option<f64>,
    /// Init timeout in seconds (default 60).
    #[arg(long)]
    init_timeout: Option<f64>,
    /// Memory size in MB (64, or 128 to 3072 in steps of 128; default 128).
    #[arg(long)]
    memory: Option<u32>,
    /// The function's name (default: serverless.yml's, else the directory's).
    #[arg(long)]
    name: Option<String>,
    /// An environment variable of the function, KEY=VALUE (repeatable).
    #[arg(long = "env", value_parser = parse_env_pair)]
    env: Vec<(String, String)>,
}

impl FunctionArgs {
    fn overrides(self) -> Overrides {
        Overrides {
            name: self.name,
            handler: self.handler,
            runtime: self.runtime,
            memory_mb: self.memory,
            timeout: self.timeout,
            init_timeout: self.init_timeout,
            env: self.env,
            ..Overrides::default()
        }
    }
}

fn profile(release: bool) -> Profile {
    if release {
        Profile::Release
    } else {
        Profile::Debug
    }
}

fn main() -> ExitCode {
    hide_secret_key();
    // Before any thread starts: the time zone can only be read safely now.
    terminal::init_local_time();
    let cli = Cli::parse();
    if cli.no_zygote {
        // SAFETY: still single-threaded: nothing else reads or writes the environment yet.
        unsafe { std::env::set_var(scf_platform::ZYGOTE_ENV, "off") };
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "scf-local: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Invoke {
            code_dir,
            function,
            event,
            event_file,
            dialect,
            command,
            watch,
            debug,
            debug_wait,
            python,
            release,
        } => {
            let over = Overrides {
                dialect,
                command,
                python,
                ..function.overrides()
            };
            let definition = Definition {
                dir: code_dir
                    .canonicalize()
                    .with_context(|| format!("code directory {}", code_dir.display()))?,
                overrides: over,
                debug: (debug.is_some() || debug_wait).then_some((debug, debug_wait)),
                profile: profile(release),
            };
            let event = match (event, event_file) {
                (Some(e), _) => Bytes::from(e),
                (None, Some(p)) if p.as_os_str() == "-" => {
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                        .context("reading the event from stdin")?;
                    Bytes::from(buf)
                }
                (None, Some(p)) => Bytes::from(
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
                ),
                (None, None) => Bytes::from_static(b"{}"),
            };
            let rt = event_loop()?;
            let failed = rt.block_on(async {
                let platform = Platform::discover()?;
                if watch {
                    let mut failed = false;
                    scf_platform::watch::invoke(&platform, &definition, event, |invoked| {
                        failed = invoked.failed;
                        let _ = show(invoked);
                    })
                    .await?;
                    return anyhow::Ok(failed);
                }
                let function = definition.ready().await?;
                if let Some(d) = &function.debug {
                    writeln!(
                        std::io::stderr(),
                        "scf-local: {}",
                        d.describe(&function.name)
                    )?;
                }
                let invoked = scf_platform::invoke_once(&platform, &function, event).await;
                show(&invoked)?;
                anyhow::Ok(invoked.failed)
            })?;
            Ok(if failed {
                ExitCode::from(EXIT_FUNCTION_ERROR)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Serve {
            function_dirs,
            port,
            data_dir,
            secret_id,
            secret_key_file,
            secret_key,
            watch,
            debug,
            debug_wait,
            quiet,
            apigw_port,
            build,
            release,
        } => {
            // Read (and closed) first, whatever else gives the key: no process started later inherits it.
            let inherited = inherited_secret_key()?;
            let hidden: Vec<PathBuf> = secret_key_file.iter().cloned().collect();
            let secret_key = match (secret_key_file, secret_key) {
                (Some(file), _) => Some(read_secret_key_file(&file)?),
                (None, Some(key)) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "scf-local: warning: --secret-key is visible to every local user in /proc/{}/cmdline; use --secret-key-file or ${KEY_ENV}",
                        std::process::id()
                    );
                    Some(key)
                }
                (None, None) => inherited,
            };
            let credentials = match (secret_id, secret_key) {
                (Some(secret_id), Some(secret_key)) => Some(Credentials {
                    secret_id,
                    secret_key,
                }),
                (None, None) => None,
                (Some(_), None) => anyhow::bail!(
                    "--secret-id needs a SecretKey: --secret-key-file, ${KEY_ENV} or --secret-key"
                ),
                (None, Some(_)) => anyhow::bail!(
                    "a SecretKey needs its SecretId: --secret-id or $TENCENTCLOUD_SECRETID"
                ),
            };
            // After the key's pipe is read and closed: a build hook inherits nothing of it.
            if build {
                for dir in &function_dirs {
                    scf_platform::config::run_build_hooks(dir)?;
                }
            }
            let opts = ServeOptions {
                credentials,
                apigw_port,
                watch,
                debug,
                debug_wait,
                quiet,
                hidden,
                profile: profile(release),
                ..ServeOptions::new(port, data_dir, function_dirs)
            };
            event_loop()?.block_on(scf_platform::serve(opts))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Package {
            code_dir,
            output,
            function,
            custom_runtime,
            lambda,
            layer: _,
            use_layer,
            python,
            node,
            debug,
            host_glibc,
        } => {
            let shim = Platform::find_shim()?;
            let opts = PackageOptions {
                output,
                cloud: if lambda { Cloud::Lambda } else { Cloud::Scf },
                custom_runtime,
                use_layer,
                python,
                node,
                profile: profile(!debug),
                host_glibc,
            };
            let packaged = match code_dir {
                Some(dir) => {
                    let function = FunctionConfig::load(&dir, &function.overrides())?;
                    package::package_function(&shim, &function, &opts)?
                }
                None => package::package_layer(&shim, &opts)?,
            };
            let mut err = std::io::stderr().lock();
            writeln!(
                err,
                "scf-local: wrote {} ({}, {} files, {:.1} MB uncompressed)",
                packaged.zip.display(),
                packaged.runtime,
                packaged.files,
                packaged.bytes as f64 / 1e6
            )?;
            match &packaged.src_dir {
                Some(src) => writeln!(
                    err,
                    "scf-local: and {} with {} (its src, the same files), for the Serverless Framework",
                    packaged.serverless_yml.display(),
                    src.display()
                )?,
                None => writeln!(
                    err,
                    "scf-local: and {}, for the Serverless Framework",
                    packaged.serverless_yml.display()
                )?,
            }
            for note in &packaged.notes {
                writeln!(err, "scf-local: note: {note}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs {
            function,
            request_id,
            follow,
            raw,
            data_dir,
        } => {
            let store = Store::open_existing(&data_dir)?;
            let mut q = LogQuery::all(&function);
            q.request_id = request_id;
            let readable = follow && !raw;
            let style = Style::stdout();
            event_loop()?.block_on(async {
                loop {
                    let records = store.logs(q.clone()).await?;
                    let mut out = std::io::stdout().lock();
                    for (seq, rec) in records {
                        if readable {
                            out.write_all(
                                terminal::invocation(&Invocation::of(&rec), style).as_bytes(),
                            )?;
                        } else {
                            out.write_all(rec.log.as_bytes())?;
                        }
                        q.after_seq = q.after_seq.max(seq);
                    }
                    out.flush()?;
                    if !follow {
                        return Ok(ExitCode::SUCCESS);
                    }
                    // Another process writes the logs: look again shortly.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            })
        }
        Command::Dlq { function, data_dir } => {
            let store = Store::open_existing(&data_dir)?;
            let letters = event_loop()?.block_on(store.dead_letters(&function))?;
            let mut out = std::io::stdout().lock();
            for letter in letters {
                writeln!(out, "{}", serde_json::to_string(&letter)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Event {
            command: EventCommand::Generate { kind, keys },
        } => events::generate(&kind, &keys),
        Command::Event {
            command: EventCommand::List,
        } => events::list(),
        Command::Trigger {
            function,
            kind,
            endpoint,
            keys,
        } => events::trigger(&endpoint, &function, &kind, &keys),
        Command::Conformance(args) => Ok(ExitCode::from(scf_conformance::main(args)?)),
    }
}

/// Prints one invocation as `invoke` does: the request's log on stderr, the caller's body on stdout.
fn show(invoked: &Invoked) -> std::io::Result<()> {
    std::io::stderr().write_all(invoked.log.text().as_bytes())?;
    let mut out = std::io::stdout().lock();
    out.write_all(&invoked.body)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Parses `--debug FUNCTION[=PORT]`.
fn parse_debug(s: &str) -> Result<(String, Option<u16>), String> {
    match s.split_once('=') {
        None => Ok((s.to_owned(), None)),
        Some((name, port)) => port
            .parse()
            .map(|p| (name.to_owned(), Some(p)))
            .map_err(|_| format!("'{port}' is not a port (--debug FUNCTION[=PORT])")),
    }
}

/// The platform's runtime: one thread serves requests (every hop of an invocation is a wake-up on it);
/// blocking work goes to tokio's blocking pool, SQLite to the store's own thread.
fn event_loop() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `scf-local serve` with `$TENCENTCLOUD_SECRETKEY`: re-executes itself without the variable, the key on an
/// inherited pipe, so that the platform's `/proc/PID/environ` (readable by processes of the same user) no
/// longer holds it. Removing the variable in-process would not change that file. If the re-execution
/// cannot be made, the platform goes on with the variable and says so.
fn hide_secret_key() {
    if std::env::args_os().nth(1).is_none_or(|a| a != "serve") {
        return;
    }
    let Some(key) = std::env::var_os(KEY_ENV) else {
        return;
    };
    let why = match reexec_without(&key) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = writeln!(
        std::io::stderr(),
        "scf-local: warning: ${KEY_ENV} stays in /proc/{}/environ ({why:#})",
        std::process::id()
    );
}

fn reexec_without(key: &std::ffi::OsStr) -> anyhow::Result<std::convert::Infallible> {
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe().context("finding scf-local's own executable")?;
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two new descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe");
    }
    // SAFETY: both descriptors are new and owned here only.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    if key.len() >= 4096 {
        anyhow::bail!("the SecretKey is implausibly long");
    }
    // A pipe holds far more than a key: the write completes before anyone reads.
    std::fs::File::from(write)
        .write_all(key.as_bytes())
        .context("writing the key's pipe")?;
    // SAFETY: fcntl(2) on the read end we own: it is inherited across the exec below.
    if unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFD, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("fcntl");
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let err = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env_remove(KEY_ENV)
        .env(KEY_FD_ENV, read.as_raw_fd().to_string())
        .exec();
    Err(err).context(format!("re-executing {}", exe.display()))
}

/// The SecretKey a re-executed `serve` inherited on a pipe, if it did.
fn inherited_secret_key() -> anyhow::Result<Option<String>> {
    use std::io::Read as _;
    use std::os::fd::FromRawFd as _;
    let Some(fd) = std::env::var(KEY_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<std::os::fd::RawFd>().ok())
        .filter(|fd| *fd > 2)
    else {
        return Ok(None);
    };
    // SAFETY: the descriptor was inherited from the re-execution above, which passed its number in
    // KEY_FD_ENV; nothing else in this process uses it.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut key = String::new();
    std::io::Read::by_ref(&mut pipe)
        .take(4096)
        .read_to_string(&mut key)
        .context("reading the SecretKey's pipe")?;
    Ok(Some(key))
}

/// The first line of `file`: a SecretKey.
fn read_secret_key_file(file: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--secret-key-file {}", file.display()))?;
    let key = text.lines().next().unwrap_or("").trim();
    if key.is_empty() {
        anyhow::bail!("--secret-key-file {}: empty", file.display());
    }
    Ok(key.to_owned())
}
