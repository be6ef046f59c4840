//! The blocking driver of the invocation core, and the invocation loop.
//!
//! [`Runtime`] sends the requests the [`Core`] asks for over the runtime API client (HTTP/1.1, one kept-alive
//! connection) and feeds it the answers; a result and the `next` that follows it are written back to back, so a
//! warm invocation costs one exchange on the connection; [`run`] is the one invocation loop, over a [`Host`]. The Node.js
//! add-on drives the same [`Runtime`] from its worker thread, call by call.

use std::time::{Duration, Instant};

use scf_protocol::FunctionError;

use crate::client::{Buffered, Client};
use crate::core::{Core, Invocation, Request, Step};
use crate::{Config, Host, ShimError};

/// What a host produced for one invocation: the result's JSON text, or a classified error.
pub type Outcome = Result<Vec<u8>, FunctionError>;

/// How far [`Runtime::next_now`] got without waiting.
#[derive(Debug)]
pub enum Progress {
    /// The next invocation the host must run.
    Invocation(Box<Invocation>),
    /// The platform's answer is not all here: call again once the runtime API's socket
    /// ([`Runtime::socket`]) is readable.
    Wait,
    /// What is left needs a blocking read: finish it with [`Runtime::next`] (given no outcome), on a thread
    /// that may block.
    Blocking,
}

/// The instance's connection to the platform, driving the invocation core.
///
/// Lifecycle: [`Runtime::ready`] once the function has loaded (or failed to), then [`Runtime::next`] for each
/// invocation, handing back the previous one's outcome; [`Runtime::post`] posts an outcome without waiting for
/// another invocation (a host that must exit after it).
#[derive(Debug)]
pub struct Runtime {
    config: Config,
    client: Client,
    core: Core,
    /// The request the core asked for and that is not sent yet (the next `next`).
    pending: Option<Request>,
    /// The result handed over by [`Runtime::send_outcome`], whose answer [`Runtime::next`] reads.
    sent: Option<Request>,
}

impl Runtime {
    /// Reads the configuration from the environment and connects to the runtime API. The time from the
    /// shim's start until this call is the InitRuntime phase.
    pub fn from_env() -> Result<Runtime, ShimError> {
        let init_runtime = crate::clock::since_shim_start().unwrap_or_default();
        let config = Config::from_env()?;
        Self::connect(config, init_runtime)
    }

    /// Connects to the runtime API named by `config`.
    pub fn connect(config: Config, init_runtime: Duration) -> Result<Runtime, ShimError> {
        let client = Client::connect(config.endpoint.clone())?;
        Ok(Runtime {
            client,
            core: Core::new(&config, init_runtime),
            config,
            pending: None,
            sent: None,
        })
    }

    /// The instance's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reports that loading the function is over (`loaded`, after `init_function`): posts `init/ready` (SCF;
    /// Lambda has no such call). A function that failed to load becomes ready too; the core then answers every
    /// invocation with that error, and [`Runtime::next`] never returns one to the host.
    pub fn ready(
        &mut self,
        loaded: Result<(), FunctionError>,
        init_function: Duration,
    ) -> Result<(), ShimError> {
        let request = self.core.loaded(loaded, init_function)?;
        if request.call != scf_protocol::api::Call::InitReady {
            self.pending = Some(request);
            return Ok(());
        }
        self.send_then_hold(request)
    }

    /// Posts `outcome` (the previous invocation's, if given), then waits for the next invocation the host must
    /// run. Blocks for as long as the platform has none (a long poll).
    #[allow(
        clippy::should_implement_trait,
        reason = "named after the protocol's `next` call"
    )]
    pub fn next(&mut self, outcome: Option<Outcome>) -> Result<Invocation, ShimError> {
        let (request, posting) = match (outcome, self.sent.take()) {
            (Some(outcome), None) => (self.core.outcome(outcome)?, true),
            (None, Some(sent)) => (sent, true),
            (None, None) => (self.take_pending()?, false),
            (Some(_), Some(_)) => {
                return Err(ShimError::Protocol(
                    "an outcome was given to next after send_outcome had posted one".into(),
                ));
            }
        };
        match self.drive(request, posting, None)? {
            Progress::Invocation(inv) => Ok(*inv),
            other => Err(ShimError::Protocol(format!(
                "a blocking next ended without an invocation: {other:?}"
            ))),
        }
    }

    /// [`Runtime::next`] (given no outcome: after [`Runtime::send_outcome`], or the first after ready) as far
    /// as it gets without waiting for the platform: every answer it reads is one already here. For a host
    /// that waits for [`Runtime::socket`]'s readability on its own event loop (the Node.js add-on, on the JS
    /// thread), so that the platform's answer wakes that thread directly. `readable`: whether to read what
    /// the socket holds too (it was found readable), or to look only at what was read before.
    pub fn next_now(&mut self, readable: bool) -> Result<Progress, ShimError> {
        let (request, posting) = match self.sent.take() {
            Some(sent) => (sent, true),
            None => (self.take_pending()?, false),
        };
        self.drive(request, posting, Some(readable))
    }

    /// The runtime API's socket, for [`Runtime::next_now`]'s host to wait on; `None` without a connection.
    pub fn socket(&self) -> Option<std::os::fd::RawFd> {
        self.client.socket()
    }

    fn take_pending(&mut self) -> Result<Request, ShimError> {
        self.pending.take().ok_or_else(|| {
            ShimError::Protocol(
                "next was called before ready, or with an invocation still running".into(),
            )
        })
    }

    /// Exchanges `request` and the requests the core asks for after it until an invocation arrives; a post
    /// (`posting`) must be followed by a request, not by an invocation. With `now` (`Some(readable)`), stops
    /// before an exchange whose answer is not all here, keeping the request for the next call.
    fn drive(
        &mut self,
        mut request: Request,
        mut posting: bool,
        now: Option<bool>,
    ) -> Result<Progress, ShimError> {
        loop {
            if let Some(readable) = now {
                let then = self.core.follow_up(&request);
                let buffered = self.client.buffered(&request, then.as_ref(), readable);
                if buffered != Buffered::Complete {
                    if posting {
                        self.sent = Some(request);
                    } else {
                        self.pending = Some(request);
                    }
                    return Ok(if buffered == Buffered::Wait {
                        Progress::Wait
                    } else {
                        Progress::Blocking
                    });
                }
            }
            // The result and the next `next` go out back to back: one exchange per warm invocation; the
            // load-error replay's posts are followed by their `next` the same way.
            let call = request.call;
            match self.exchange(request, true)? {
                Step::Send(r) => {
                    request = r;
                    posting = false;
                }
                Step::Invoke(_) if posting => {
                    return Err(ShimError::Protocol(format!(
                        "the core asked for an invocation in answer to {call:?}"
                    )));
                }
                Step::Invoke(inv) => return Ok(Progress::Invocation(Box::new(inv))),
            }
        }
    }

    /// Writes the outcome of the invocation in flight, and the `next` behind it, now, and returns without
    /// reading an answer; the following [`Runtime::next`] (given no outcome) reads both. For a host where the
    /// thread that has the outcome is not the one that waits for the platform (the Node.js add-on: JavaScript's
    /// thread calls this, the worker then waits), so the platform has the result without waiting for the other
    /// thread to wake. The write is made only when it cannot block (a small result on an idle connection);
    /// otherwise, or if it fails, `next` makes it, as with an outcome handed to `next` itself.
    pub fn send_outcome(&mut self, outcome: Outcome) -> Result<(), ShimError> {
        if self.sent.is_some() {
            return Err(ShimError::Protocol(
                "send_outcome was called twice without next".into(),
            ));
        }
        let post = self.core.outcome(outcome)?;
        let then = self.core.follow_up(&post);
        self.client.send_early(&post, then.as_ref());
        self.sent = Some(post);
        Ok(())
    }

    /// Posts the outcome of the invocation in flight, and waits only for the platform to accept it (no `next`
    /// follows it: the host may exit, and an invocation must not be taken that nobody runs).
    pub fn post(&mut self, outcome: Outcome) -> Result<(), ShimError> {
        let request = self.core.outcome(outcome)?;
        self.send_then_hold(request)
    }

    /// Sends `request` (ready, or a result), whose answer the core follows with the next `next`: that request
    /// is held until [`Runtime::next`] sends it.
    fn send_then_hold(&mut self, request: Request) -> Result<(), ShimError> {
        let call = request.call;
        match self.exchange(request, false)? {
            Step::Send(next) => {
                self.pending = Some(next);
                Ok(())
            }
            Step::Invoke(_) => Err(ShimError::Protocol(format!(
                "the core asked for an invocation in answer to {call:?}"
            ))),
        }
    }

    /// Whether an invocation is in flight and waits for its outcome.
    pub fn is_running(&self) -> bool {
        self.core.is_running()
    }

    /// Sends `request` and hands the answer to the core. With `pipelined`, the request the core will ask for
    /// once `request` is accepted ([`Core::follow_up`]) is written right behind it; the client then reads its
    /// answer when the core does ask for it (and writes it again if the connection ended before that answer).
    fn exchange(&mut self, request: Request, pipelined: bool) -> Result<Step, ShimError> {
        let then = if pipelined {
            self.core.follow_up(&request)
        } else {
            None
        };
        let answer = self.client.call(&request, then.as_ref())?;
        let received = Instant::now();
        self.core.answered(
            answer.status,
            |name| answer.header(name),
            answer.body.clone(),
            received,
            epoch_ms(),
        )
    }
}

/// Milliseconds since the epoch (Lambda's deadlines are dated so).
fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs an instance to its end: connect, load the function through `host` (InitFunction), post
/// `init/ready`, then answer invocations until the platform closes the connection.
///
/// A function that fails to load still posts ready; the core then answers every invocation with its load
/// error, as the platform's own runtimes do, without calling the host.
pub fn run<H: Host>(mut host: H) -> Result<(), ShimError> {
    let mut runtime = Runtime::from_env()?;
    let started = Instant::now();
    let loaded = host.load(runtime.config());
    let init_function = started.elapsed();
    host.flush_logs();
    runtime.ready(loaded, init_function)?;
    let mut outcome = None;
    loop {
        let inv = match runtime.next(outcome.take()) {
            Ok(inv) => inv,
            Err(e) if e.is_disconnect() => return Ok(()),
            Err(e) => return Err(e),
        };
        let result = host.invoke(&inv);
        host.flush_logs();
        if !host.keeps_last() {
            outcome = Some(result);
            continue;
        }
        // The result goes out first (written now when that cannot block, else by `next`), then the host lets
        // go of what it kept: freeing a large event's objects is not on the caller's wait.
        match runtime.send_outcome(result) {
            Ok(()) => {}
            Err(e) if e.is_disconnect() => return Ok(()),
            Err(e) => return Err(e),
        }
        host.release();
        host.flush_logs();
    }
}
