//! JSON text across the add-on's boundary: the event's text as a JavaScript string, made in the form
//! [`crate::text`] chose, a large text written into the string [`crate::kept`] keeps and any other
//! copied into V8's heap through Node-API's Latin-1 and UTF-16 constructors ([`event_string`]); and a result's
//! JSON text back as UTF-8, in one pass of V8's encoder ([`result_bytes`]).
//!
//! **Not an external string per event.** Node-API can also make a string over memory the add-on keeps
//! (`node_api_create_external_string_*`), which saves the copy, but V8 then frees that memory only in a full
//! (mark-compact) collection, and the memory does not make one come any sooner. A function whose events each
//! become little on V8's own heap (a large base64 `body`, say) gives V8 no reason for one: in a 128 MB
//! instance, 1 MB events as external strings of their own killed it with `MemoryLimitExceeded` after about
//! 125 invocations, and without a cgroup its resident set grew by about 1 MB an event (`docs/node.md`, *JSON
//! text across the boundary*). So there is one such string, written again for each large event
//! ([`crate::kept`]), and a copied string is V8's own, counted by its collector.

use neon::prelude::*;

use scf_shim::protocol::FunctionError;
use scf_shim::protocol::MAX_RESPONSE_BYTES;
use scf_shim::protocol::error::result_size;

use crate::{kept, text};

// Node-API's string constructors for Latin-1 and UTF-16 text (stable since Node-API 1); neon binds only the
// UTF-8 one. They are looked up in the process at run time, as neon looks up its own: `node`, which loads the
// add-on, exports them (a test binary of this crate has no `node` to link against).
type CreateString<T> = unsafe extern "C" fn(
    env: neon::sys::bindings::Env,
    text: *const T,
    length: usize,
    result: *mut neon::sys::bindings::Value,
) -> neon::sys::bindings::Status;

/// The constructors the process has; the external ones (Node.js 18.18 and 20.4 on) may be missing.
pub(crate) struct StringConstructors {
    latin1: CreateString<std::ffi::c_char>,
    utf16: CreateString<u16>,
    /// `node_api_create_external_string_latin1` and `_utf16`, for the strings [`kept`] keeps.
    pub(crate) external_latin1: Option<kept::CreateExternal>,
    pub(crate) external_utf16: Option<kept::CreateExternal>,
}

/// The address of the function `name` in the process (the `node` that loaded the add-on exports Node-API's and
/// libuv's), or `None`.
pub(crate) fn symbol(name: &std::ffi::CStr) -> Option<*mut libc::c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

fn string_constructors() -> Option<&'static StringConstructors> {
    static FOUND: std::sync::OnceLock<Option<StringConstructors>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let find = symbol;
            let latin1 = find(c"napi_create_string_latin1")?;
            let utf16 = find(c"napi_create_string_utf16")?;
            let external = |name| {
                // SAFETY: both external constructors are Node-API's, whose C signature `CreateExternal` spells
                // out.
                find(name).map(|p| unsafe {
                    std::mem::transmute::<*mut libc::c_void, kept::CreateExternal>(p)
                })
            };
            // SAFETY: both symbols are Node-API's, whose C signatures `CreateString` spells out.
            unsafe {
                Some(StringConstructors {
                    latin1: std::mem::transmute::<*mut libc::c_void, CreateString<std::ffi::c_char>>(
                        latin1,
                    ),
                    utf16: std::mem::transmute::<*mut libc::c_void, CreateString<u16>>(utf16),
                    external_latin1: external(c"node_api_create_external_string_latin1"),
                    external_utf16: external(c"node_api_create_external_string_utf16"),
                })
            }
        })
        .as_ref()
}

/// The text V8 is given: the event's own bytes when they are ASCII, else what [`text`] made of them.
enum Text {
    Bytes(bytes::Bytes),
    Ascii(Vec<u8>),
    Units(Vec<u16>),
}

impl Text {
    /// The event's text as V8 parses it fastest ([`text`]), or `None` when it is not UTF-8.
    fn of(event: bytes::Bytes) -> Option<Text> {
        if event.is_ascii() {
            return Some(Text::Bytes(event));
        }
        Some(match text::ascii_escaped(&event) {
            text::Escaped::Ascii(ascii) => Text::Ascii(ascii),
            text::Escaped::Wide => Text::Units(text::utf16(std::str::from_utf8(&event).ok()?)),
            text::Escaped::NotUtf8 => return None,
        })
    }

    /// Its one-byte (ASCII) content, or `None` for UTF-16.
    fn ascii(&self) -> Option<&[u8]> {
        match self {
            Text::Bytes(b) => Some(b),
            Text::Ascii(v) => Some(v),
            Text::Units(_) => None,
        }
    }

    fn to_rust_string(&self) -> String {
        match self {
            Text::Units(u) => String::from_utf16_lossy(u),
            other => String::from_utf8_lossy(other.ascii().unwrap_or_default()).into_owned(),
        }
    }
}

/// The event's text as a JavaScript string, made the cheapest way V8 parses it (see [`text`]): ASCII text as it
/// is, mostly-ASCII text with its non-ASCII characters escaped, both one-byte strings; other text decoded to
/// UTF-16 here, a two-byte string, instead of V8's UTF-8 decoder (`napi_create_string_utf8`); a large text
/// written into the string [`kept`] keeps for its form, any other copied into V8 (see the module's note);
/// `null` when the event is not UTF-8.
pub(crate) fn event_string<'a>(
    cx: &mut TaskContext<'a>,
    event: bytes::Bytes,
) -> JsResult<'a, JsValue> {
    let Some(text) = Text::of(event) else {
        return Ok(cx.null().upcast());
    };
    let Some(make) = string_constructors() else {
        return Ok(cx.string(text.to_rust_string()).upcast());
    };
    let env = cx.to_raw();
    let kept = match &text {
        Text::Units(u) => kept::kept_string(env, make, u),
        other => kept::kept_string(env, make, other.ascii().unwrap_or_default()),
    };
    if let Some(kept) = kept {
        // SAFETY: `kept` is a string Node-API just gave in `cx`'s scope.
        return Ok(unsafe { JsString::from_raw(cx, kept) }.upcast());
    }
    let mut raw: neon::sys::bindings::Value = std::ptr::null_mut();
    // SAFETY: `env` is the live environment of `cx`; the pointer and length are the text's, which Node-API
    // copies before returning; `raw` is a valid place for the result.
    let status = unsafe {
        match &text {
            Text::Units(u) => (make.utf16)(env, u.as_ptr(), u.len(), &mut raw),
            other => {
                let a = other.ascii().unwrap_or_default();
                (make.latin1)(env, a.as_ptr().cast(), a.len(), &mut raw)
            }
        }
    };
    if status != neon::sys::bindings::Status::Ok || raw.is_null() {
        // Whatever Node-API refused (memory, say), neon's own constructor says it the usual way.
        return Ok(cx.string(text.to_rust_string()).upcast());
    }
    // SAFETY: `raw` is a string Node-API just made in `cx`'s scope.
    Ok(unsafe { JsString::from_raw(cx, raw) }.upcast())
}

/// A result's JSON text as UTF-8 (lone surrogates as U+FFFD, as neon's `JsString::value` gives it), or the 407
/// when it is larger than the platform returns ([`result_size`]), found without copying it.
///
/// **One pass.** `JsString::value` asks V8 for the UTF-8 length (a pass over the string), then for the bytes
/// (another). No UTF-16 code unit takes more than three bytes, so a buffer of three bytes a unit (the string's
/// length, which V8 knows without a pass) takes the whole text in one; pages of it that are never written are
/// never made resident. The room is not shrunk to the text: a `realloc` down made glibc map the next result's
/// room afresh and fault its pages in again (`docs/node.md`, *JSON text across the boundary*, has this and the
/// figures).
///
/// **Too large.** Every unit is at least one byte of UTF-8, so a string of more units than the limit has more
/// bytes than that: only its UTF-8 length is computed, for the error's message, and nothing is copied.
pub(crate) fn result_bytes<'a>(
    cx: &mut impl Context<'a>,
    text: Handle<'a, JsString>,
) -> NeonResult<Result<Vec<u8>, FunctionError>> {
    use neon::sys::bindings::{get_value_string_utf8, get_value_string_utf16};
    let env = cx.to_raw();
    let value = text.to_raw();
    let mut units = 0usize;
    // SAFETY: `env` is `cx`'s live environment and `value` a string in its scope; with no buffer, Node-API only
    // writes the string's length in UTF-16 code units to `units`.
    let status = unsafe { get_value_string_utf16(env, value, std::ptr::null_mut(), 0, &mut units) };
    if status.is_err() {
        return cx.throw_error("scf-sdk: the result is not a string");
    }
    if units > MAX_RESPONSE_BYTES {
        let mut len = 0usize;
        // SAFETY: as above; with no buffer, Node-API writes the string's length in UTF-8 bytes to `len`.
        let status =
            unsafe { get_value_string_utf8(env, value, std::ptr::null_mut(), 0, &mut len) };
        if status.is_err() {
            return cx.throw_error("scf-sdk: the result is not a string");
        }
        if let Err(e) = result_size(len) {
            return Ok(Err(e));
        }
    }
    // Room for three bytes a unit, and the terminating NUL Node-API writes after the text.
    let Some(room) = units.checked_mul(3).and_then(|n| n.checked_add(1)) else {
        return cx.throw_error("scf-sdk: the result is too long to encode");
    };
    let mut bytes: Vec<u8> = Vec::with_capacity(room);
    let mut written = 0usize;
    // SAFETY: `bytes` has `room` bytes of capacity, all of which Node-API may write (at most `room - 1` bytes of
    // text, then a NUL); it writes the number of text bytes to `written`.
    let status =
        unsafe { get_value_string_utf8(env, value, bytes.as_mut_ptr().cast(), room, &mut written) };
    if status.is_err() || written >= room {
        return cx.throw_error("scf-sdk: the result could not be encoded");
    }
    // SAFETY: Node-API initialised the first `written` bytes (`written < room`, the capacity).
    unsafe { bytes.set_len(written) };
    Ok(Ok(bytes))
}
