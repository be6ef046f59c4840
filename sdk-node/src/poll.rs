//! Waiting for the runtime API on Node's own event loop: a libuv poll handle on the client's socket.
//!
//! After JavaScript's thread has written an outcome and the `next` behind it, it does not hand the wait to the
//! worker thread: it watches the connection's socket for readability on libuv's loop (`uv_poll_*`, exported by
//! the `node` binary, and `napi_get_uv_event_loop`), and when the platform's answers arrive it reads them itself
//! ([`scf_shim::Runtime::next_now`]: the shim's own client and parser, reading only what the socket holds) and
//! calls the listener's function with the invocation, right in the poll callback (`crate::worker::Listener`).
//! The worker is not woken on the warm path. What needs a blocking read (a large
//! event, a chunked or closing answer, the end of the connection, a reconnect) goes to the worker as before.
//!
//! The poll handle is active exactly while a `next` waits, so it keeps the event loop alive then and only then,
//! as a pending call to the worker does. The socket stays blocking for the worker (`uv_poll_init` makes it
//! non-blocking; the add-on undoes that): this side reads with `MSG_DONTWAIT`.
//!
//! The handle watches the poller's own duplicate of the socket's descriptor, not the worker's: the worker closes
//! its descriptor when it reconnects, and that number may then name anything (the new connection, or another
//! descriptor the loop watches). A descriptor of its own lets the poller close its handle whenever the worker
//! may have reconnected (it served a call since the last wait) without touching whatever uses the old number:
//! at most one handle and one duplicate exist at a time, and the old connection's socket is released at the
//! next wait.
//!
//! **Woken as a blocking read is.** The handle does not watch the socket itself but an epoll instance of the
//! poller's own, on which the socket is registered edge-triggered for readability *and* writability. A
//! blocking `recv` on a Unix socket (the Python and native hosts' wait) sleeps on the socket's one wait queue,
//! which the kernel also wakes when the peer reads what this side wrote; a `uv_poll` for readability is woken
//! only by bytes to read. So the JS thread is woken once more per invocation, when the platform takes its
//! result and `next`, as the other hosts' threads are, and, seeing only that (`EPOLLOUT`), waits again
//! without reading. On a machine whose idle CPUs halt (a VM without guest halt-polling), that
//! wake-up keeps the instance's CPU from halting just before the next invocation arrives, and waking a thread
//! on a CPU that has not halted costs far less (`docs/node.md`, *Woken as a blocking read is*). Edges are
//! only reported once: the poll callback empties the epoll instance's ready list first, and a handle started
//! again re-arms the registration (`EPOLL_CTL_MOD`), which reports what the socket already holds. Where the
//! epoll instance cannot be made, the handle watches the socket directly.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, mpsc};

use libc::{c_int, c_void};
use neon::context::Cx;
use neon::event::Channel;
use neon::prelude::*;

use crate::worker::{Answer, Call, Command, Listener, Now, Worker, hand_over};

type Env = neon::sys::bindings::Env;
type Status = neon::sys::bindings::Status;
type PollCb = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);
type CloseCb = unsafe extern "C" fn(handle: *mut c_void);

/// libuv's `UV_POLL` (`uv_handle_type`) and `UV_READABLE` (`uv_poll_event`).
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;

/// The libuv and Node-API functions the poller uses, looked up in the process (the `node` that loaded the
/// add-on exports them), as the string constructors are (`crate::event`).
type GetLoop = unsafe extern "C" fn(env: Env, out: *mut *mut c_void) -> Status;
type HandleSize = unsafe extern "C" fn(kind: c_int) -> usize;
type PollInit = unsafe extern "C" fn(lp: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int;
type PollStart = unsafe extern "C" fn(handle: *mut c_void, events: c_int, cb: PollCb) -> c_int;
type PollStop = unsafe extern "C" fn(handle: *mut c_void) -> c_int;
type SetData = unsafe extern "C" fn(handle: *mut c_void, data: *mut c_void);
type GetData = unsafe extern "C" fn(handle: *const c_void) -> *mut c_void;
type Close = unsafe extern "C" fn(handle: *mut c_void, cb: Option<CloseCb>);
type Ref = unsafe extern "C" fn(handle: *mut c_void);
type RawValue = neon::sys::bindings::Value;
type AsyncInit = unsafe extern "C" fn(
    env: Env,
    resource: RawValue,
    name: RawValue,
    out: *mut *mut c_void,
) -> Status;
type OpenCallbackScope = unsafe extern "C" fn(
    env: Env,
    resource: RawValue,
    context: *mut c_void,
    out: *mut *mut c_void,
) -> Status;
type CloseScope = unsafe extern "C" fn(env: Env, scope: *mut c_void) -> Status;
type OpenHandleScope = unsafe extern "C" fn(env: Env, out: *mut *mut c_void) -> Status;
type CreateReference =
    unsafe extern "C" fn(env: Env, value: RawValue, count: u32, out: *mut *mut c_void) -> Status;
type GetReferenceValue =
    unsafe extern "C" fn(env: Env, r: *mut c_void, out: *mut RawValue) -> Status;

struct Uv {
    get_loop: GetLoop,
    handle_size: HandleSize,
    poll_init: PollInit,
    poll_start: PollStart,
    poll_stop: PollStop,
    set_data: SetData,
    get_data: GetData,
    close: Close,
    reference: Ref,
    unreference: Ref,
    async_init: AsyncInit,
    open_callback_scope: OpenCallbackScope,
    close_callback_scope: CloseScope,
    open_handle_scope: OpenHandleScope,
    close_handle_scope: CloseScope,
    create_reference: CreateReference,
    get_reference_value: GetReferenceValue,
}

fn uv() -> Option<&'static Uv> {
    static FOUND: std::sync::OnceLock<Option<Uv>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let find = crate::event::symbol;
            let get_loop = find(c"napi_get_uv_event_loop")?;
            let handle_size = find(c"uv_handle_size")?;
            let poll_init = find(c"uv_poll_init")?;
            let poll_start = find(c"uv_poll_start")?;
            let poll_stop = find(c"uv_poll_stop")?;
            let set_data = find(c"uv_handle_set_data")?;
            let get_data = find(c"uv_handle_get_data")?;
            let close = find(c"uv_close")?;
            let reference = find(c"uv_ref")?;
            let unreference = find(c"uv_unref")?;
            let async_init = find(c"napi_async_init")?;
            let open_callback_scope = find(c"napi_open_callback_scope")?;
            let close_callback_scope = find(c"napi_close_callback_scope")?;
            let open_handle_scope = find(c"napi_open_handle_scope")?;
            let close_handle_scope = find(c"napi_close_handle_scope")?;
            let create_reference = find(c"napi_create_reference")?;
            let get_reference_value = find(c"napi_get_reference_value")?;
            // SAFETY: each symbol is the libuv or Node-API function of that name, whose C signature the field's
            // type spells out (handles as `void *`).
            unsafe {
                Some(Uv {
                    get_loop: std::mem::transmute::<*mut c_void, GetLoop>(get_loop),
                    handle_size: std::mem::transmute::<*mut c_void, HandleSize>(handle_size),
                    poll_init: std::mem::transmute::<*mut c_void, PollInit>(poll_init),
                    poll_start: std::mem::transmute::<*mut c_void, PollStart>(poll_start),
                    poll_stop: std::mem::transmute::<*mut c_void, PollStop>(poll_stop),
                    set_data: std::mem::transmute::<*mut c_void, SetData>(set_data),
                    get_data: std::mem::transmute::<*mut c_void, GetData>(get_data),
                    close: std::mem::transmute::<*mut c_void, Close>(close),
                    reference: std::mem::transmute::<*mut c_void, Ref>(reference),
                    unreference: std::mem::transmute::<*mut c_void, Ref>(unreference),
                    async_init: std::mem::transmute::<*mut c_void, AsyncInit>(async_init),
                    open_callback_scope: std::mem::transmute::<*mut c_void, OpenCallbackScope>(
                        open_callback_scope,
                    ),
                    close_callback_scope: std::mem::transmute::<*mut c_void, CloseScope>(
                        close_callback_scope,
                    ),
                    open_handle_scope: std::mem::transmute::<*mut c_void, OpenHandleScope>(
                        open_handle_scope,
                    ),
                    close_handle_scope: std::mem::transmute::<*mut c_void, CloseScope>(
                        close_handle_scope,
                    ),
                    create_reference: std::mem::transmute::<*mut c_void, CreateReference>(
                        create_reference,
                    ),
                    get_reference_value: std::mem::transmute::<*mut c_void, GetReferenceValue>(
                        get_reference_value,
                    ),
                })
            }
        })
        .as_ref()
}

/// The JS thread's event loop, if this process has what the poller needs (else every wait is the worker's).
pub(crate) fn event_loop(cx: &mut FunctionContext) -> Option<EventLoop> {
    let uv = uv()?;
    let env = cx.to_raw();
    let resource = cx.empty_object().to_raw();
    let name = cx.string("scf-runtime-api").to_raw();
    let mut lp = std::ptr::null_mut();
    let mut context = std::ptr::null_mut();
    let mut reference = std::ptr::null_mut();
    // SAFETY: `env` is the live environment of the calling JavaScript function, `resource` and `name` values
    // of its scope; the out-pointers are valid places. The reference keeps the resource object alive for the
    // process (it is never deleted), as the async context that names it is never destroyed.
    let ok = unsafe {
        (uv.get_loop)(env, &mut lp) == Status::Ok
            && (uv.async_init)(env, resource, name, &mut context) == Status::Ok
            && (uv.create_reference)(env, resource, 1, &mut reference) == Status::Ok
    };
    let mut spare = cx.channel();
    spare.unref(cx);
    (ok && !lp.is_null()).then_some(EventLoop {
        lp,
        env,
        context,
        resource: reference,
        spare,
    })
}

/// libuv's loop of the JS thread, its Node-API environment, and the async context (and its resource object)
/// in which a poll callback calls into JavaScript.
#[derive(Clone)]
pub(crate) struct EventLoop {
    lp: *mut c_void,
    env: Env,
    context: *mut c_void,
    resource: *mut c_void,
    /// An unreferenced channel, for when Node-API cannot open a scope in a callback.
    spare: Channel,
}

/// The JS thread's poller of the runtime API's socket: one per instance, living as long as the process (its
/// handle's memory is the loop's while the handle exists). Used on the JS thread only.
pub(crate) struct Poller {
    uv: &'static Uv,
    event_loop: EventLoop,
    worker: Arc<Mutex<Worker>>,
    calls: mpsc::Sender<Call>,
    /// The poll handle and the descriptors it is for.
    handle: Cell<Option<Watch>>,
    /// Whether the handle is started. Between waits it stays started but unreferenced (it keeps nothing
    /// alive), which spares libuv's two `epoll_ctl` calls per invocation; a readiness while no `next` waits
    /// (the platform closing the connection) stops it.
    active: Cell<bool>,
    /// The listener of the `next` that waits.
    waiting: Cell<Option<&'static Listener>>,
}

/// A poll handle (`uv_handle_size(UV_POLL)` bytes from `calloc`) on `own`, the poller's duplicate of the
/// worker's descriptor `fd`, through the epoll instance `ep` where there is one (see the module).
#[derive(Clone, Copy)]
struct Watch {
    handle: *mut c_void,
    fd: RawFd,
    own: RawFd,
    ep: Option<RawFd>,
}

/// What the poller's epoll instance watches the socket for: bytes to read, the peer taking what was written,
/// the peer's end, each once per change (edge-triggered).
const EDGES: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

/// An epoll instance (close-on-exec) watching `own` for [`EDGES`]; `None` if one cannot be made.
fn edge_epoll(own: RawFd) -> Option<RawFd> {
    // SAFETY: `epoll_create1` makes a new descriptor or fails; nothing else is touched.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return None;
    }
    let mut event = libc::epoll_event {
        events: EDGES,
        u64: 0,
    };
    // SAFETY: `ep` is the epoll instance just made, `own` an open socket, `event` a valid event for the call.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, own, &mut event) } != 0 {
        // SAFETY: `ep` is ours and watched by nothing.
        unsafe { libc::close(ep) };
        return None;
    }
    Some(ep)
}

impl Watch {
    /// Empties the epoll instance's ready list, so that it is readable again only at the next edge; whether
    /// the socket may have something to read (bytes, its end, an error). Only the peer taking what was written
    /// (`EPOLLOUT` alone) says it has not; without an epoll instance, or when the list cannot be read, it may.
    fn drain(&self) -> bool {
        let Some(ep) = self.ep else {
            return true;
        };
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: `ep` is this watch's open epoll instance; `events` has room for the 4 events asked for; a
        // zero timeout never waits. A failure (a signal) leaves the edge to be reported again.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 4, 0) };
        let Ok(n) = usize::try_from(n) else {
            return true;
        };
        let to_read = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        n == 0 || events[..n.min(4)].iter().any(|e| e.events & to_read != 0)
    }

    /// Registers the socket again, which reports what it already holds (an edge seen and emptied while no
    /// `next` waited would otherwise not come again).
    fn rearm(&self) {
        if let Some(ep) = self.ep {
            let mut event = libc::epoll_event {
                events: EDGES,
                u64: 0,
            };
            // SAFETY: `ep` is this watch's open epoll instance, on which `own` (open) is registered.
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, self.own, &mut event) };
        }
    }
}

impl Poller {
    /// A poller on `event_loop` for `worker`'s connection; the leaked box lives as long as the process.
    pub(crate) fn new(
        event_loop: EventLoop,
        worker: Arc<Mutex<Worker>>,
        calls: mpsc::Sender<Call>,
    ) -> Option<&'static Poller> {
        Some(Box::leak(Box::new(Poller {
            uv: uv()?,
            event_loop,
            worker,
            calls,
            handle: Cell::new(None),
            active: Cell::new(false),
            waiting: Cell::new(None),
        })))
    }

    /// Waits for `fd` to be readable, then continues `next` on this thread (see the module); `served`: whether
    /// the worker served a call since the last wait (the connection may be another one); the answer goes to
    /// `waiting`. `false` when the handle cannot be made or started: the caller hands the wait to the worker.
    pub(crate) fn wait(&'static self, fd: RawFd, served: bool, waiting: &'static Listener) -> bool {
        let Some(watch) = self.handle_for(fd, served) else {
            return false;
        };
        let handle = watch.handle;
        // SAFETY: `handle` is an initialised poll handle of this loop, on this (the loop's) thread.
        unsafe { (self.uv.reference)(handle) };
        if !self.active.get() {
            watch.rearm();
            // SAFETY: as above.
            if unsafe { (self.uv.poll_start)(handle, UV_READABLE, on_readable) } != 0 {
                return false;
            }
            self.active.set(true);
        }
        self.waiting.set(Some(waiting));
        true
    }

    /// The poll handle for `fd`: the one made before if it is for `fd` and the worker has not served a call
    /// since (`served`), else a new one on a new duplicate of `fd` (the old handle and duplicate closed).
    fn handle_for(&'static self, fd: RawFd, served: bool) -> Option<Watch> {
        if let Some(watch) = self.handle.get() {
            if watch.fd == fd && !served {
                return Some(watch);
            }
            self.release();
        }
        // SAFETY: F_DUPFD_CLOEXEC on the open socket of the worker's connection (the worker is idle: the caller
        // holds its lock) makes a descriptor that only this poller uses and closes.
        let own = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if own < 0 {
            return None;
        }
        // SAFETY: `uv_handle_size` only reports the size of a handle type.
        let size = unsafe { (self.uv.handle_size)(UV_POLL) };
        // SAFETY: calloc of `size` bytes (freed by `free_handle` when closed); checked for null below.
        let handle = unsafe { libc::calloc(1, size) };
        if handle.is_null() {
            // SAFETY: `own` is ours and watched by nothing.
            unsafe { libc::close(own) };
            return None;
        }
        let ep = edge_epoll(own);
        // SAFETY: `handle` is zeroed memory of a poll handle's size; the loop is this thread's, and `ep` (or
        // `own`) is open.
        if unsafe { (self.uv.poll_init)(self.event_loop.lp, handle, ep.unwrap_or(own)) } != 0 {
            // SAFETY: libuv did not take the handle, nor watches `ep` or `own`; they are ours to free.
            unsafe {
                libc::free(handle);
                if let Some(ep) = ep {
                    libc::close(ep);
                }
                libc::close(own);
            }
            return None;
        }
        // SAFETY: `handle` is initialised; its data is this poller, which lives as long as the process.
        unsafe { (self.uv.set_data)(handle, std::ptr::from_ref(self).cast_mut().cast()) };
        // `uv_poll_init` makes what it watches non-blocking: without an epoll instance, the socket (a flag of
        // the socket, which both descriptors share); the worker's reads block.
        // SAFETY: F_GETFL/F_SETFL on an open descriptor change only its status flags.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
        let watch = Watch {
            handle,
            fd,
            own,
            ep,
        };
        self.handle.set(Some(watch));
        Some(watch)
    }

    /// Closes the poll handle (its memory is freed once libuv has closed it) and the duplicate it watches.
    fn release(&self) {
        if let Some(watch) = self.handle.take() {
            self.active.set(false);
            // SAFETY: `watch.handle` is a poll handle of this loop, on the loop's thread; closing it stops it
            // and removes the descriptor it watches (`watch.ep`, else `watch.own`) from the loop at once, so
            // the epoll instance and the duplicate, which nothing else uses, can be closed right after.
            unsafe {
                (self.uv.close)(watch.handle, Some(free_handle));
                if let Some(ep) = watch.ep {
                    libc::close(ep);
                }
                libc::close(watch.own);
            }
        }
    }

    fn stop(&self) {
        if let Some(watch) = self.handle.get()
            && self.active.replace(false)
        {
            // SAFETY: `watch.handle` is an initialised poll handle of this loop, on the loop's thread.
            unsafe { (self.uv.poll_stop)(watch.handle) };
        }
    }

    /// Between waits: the handle stays started, but keeps the event loop alive no more.
    fn idle(&self) {
        if let Some(watch) = self.handle.get() {
            // SAFETY: as in `stop`.
            unsafe { (self.uv.unreference)(watch.handle) };
        }
    }

    /// The socket is readable (or the poll failed: `status` < 0): read what is there, and settle the wait, keep
    /// it, or hand it to the worker.
    fn readable(&self, status: c_int) {
        let to_read = self.handle.get().is_none_or(|watch| watch.drain());
        if status >= 0 && !to_read {
            // The platform took what was written: the wake-up itself was the point (see the module); nothing
            // to read, and the handle stays as it is.
            return;
        }
        let Some(waiting) = self.waiting.take() else {
            self.stop();
            return;
        };
        let now = if status < 0 {
            Now::Blocking
        } else {
            match self.worker.try_lock() {
                Ok(mut worker) => worker.next_now(true),
                Err(_) => Now::Blocking,
            }
        };
        match now {
            Now::Wait => self.waiting.set(Some(waiting)),
            Now::Reply(reply) => {
                // Before JavaScript runs: the invocation's handler may call `next` (and so `wait`) at once.
                self.idle();
                if let Some(scopes) = self.scopes() {
                    // SAFETY: a handle scope and a callback scope of the live environment are open (until
                    // `scopes` drops, after this context's last use).
                    let mut cx = unsafe { Cx::from_raw(self.event_loop.env) };
                    waiting.deliver(&mut cx, reply);
                    // Closing the callback scope runs the microtasks (and `process.nextTick`s).
                    drop(scopes);
                } else {
                    // Node-API refused a scope (never seen): answered through the loop's async handle instead.
                    Answer::Listener(waiting).send(&self.event_loop.spare, reply);
                }
            }
            Now::Blocking => {
                self.stop();
                // The worker's reply comes through a referenced channel, which keeps the loop alive meanwhile
                // as the poll handle did.
                let channel = match self.scopes() {
                    Some(scopes) => {
                        // SAFETY: as above.
                        let mut cx = unsafe { Cx::from_raw(self.event_loop.env) };
                        let channel = cx.channel();
                        drop(scopes);
                        channel
                    }
                    None => self.event_loop.spare.clone(),
                };
                hand_over(
                    &self.calls,
                    Call {
                        command: Command::Next(None),
                        answer: Answer::Listener(waiting),
                        channel,
                    },
                );
            }
        }
    }
}

impl Poller {
    /// Opens what calling into JavaScript from a libuv callback needs: a handle scope, and a callback scope
    /// (whose closing runs the microtasks, as after any callback Node makes).
    fn scopes(&self) -> Option<Scopes> {
        let (uv, h) = (self.uv, &self.event_loop);
        let mut handles = std::ptr::null_mut();
        let mut resource = std::ptr::null_mut();
        let mut callback = std::ptr::null_mut();
        // SAFETY: on the JS thread, outside any other call into JavaScript (a libuv callback); the reference and
        // context were made by `event_loop` and live for the process; the out-pointers are valid places.
        unsafe {
            if (uv.open_handle_scope)(h.env, &mut handles) != Status::Ok {
                return None;
            }
            if (uv.get_reference_value)(h.env, h.resource, &mut resource) != Status::Ok
                || resource.is_null()
                || (uv.open_callback_scope)(h.env, resource, h.context, &mut callback) != Status::Ok
            {
                (uv.close_handle_scope)(h.env, handles);
                return None;
            }
        }
        Some(Scopes {
            uv,
            env: h.env,
            handles,
            callback,
        })
    }
}

/// The scopes [`Poller::scopes`] opened, closed (callback scope first) when dropped.
struct Scopes {
    uv: &'static Uv,
    env: Env,
    handles: *mut c_void,
    callback: *mut c_void,
}

impl Drop for Scopes {
    fn drop(&mut self) {
        // SAFETY: the scopes were opened by `Poller::scopes` on this thread, and are closed once, innermost first.
        unsafe {
            (self.uv.close_callback_scope)(self.env, self.callback);
            (self.uv.close_handle_scope)(self.env, self.handles);
        }
    }
}

/// libuv's callback of the poll handle, on the JS thread.
unsafe extern "C" fn on_readable(handle: *mut c_void, status: c_int, _events: c_int) {
    let Some(uv) = uv() else {
        return;
    };
    // SAFETY: the handle's data is the `Poller` that made it (`handle_for`), which is never freed.
    let poller = unsafe { &*(uv.get_data)(handle).cast::<Poller>() };
    // A panic must not unwind into libuv; `next_now` already turns the runtime's into a reply.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poller.readable(status)));
}

/// libuv's close callback of a replaced poll handle: frees its memory.
unsafe extern "C" fn free_handle(handle: *mut c_void) {
    // SAFETY: `handle` came from `calloc` in `handle_for`, and libuv has closed it.
    unsafe { libc::free(handle) };
}
