//! The event's text as a JavaScript string, made through Node-API's Latin-1 and UTF-16 constructors (external
//! over the add-on's memory for a large event), in the form [`crate::text`] chose.

use neon::prelude::*;

use crate::text;

// Node-API's string constructors for Latin-1 and UTF-16 text (stable since Node-API 1), and their external
// forms (`node_api_create_external_string_*`, Node.js 18.18 / 20.4 and later), which make a string over memory
// the add-on keeps instead of copying it; neon binds only the UTF-8 constructor. They are looked up in the
// process at run time, as neon looks up its own: `node`, which loads the add-on, exports them (a test binary of
// this crate has no `node` to link against).
type CreateString<T> = unsafe extern "C" fn(
    env: neon::sys::bindings::Env,
    text: *const T,
    length: usize,
    result: *mut neon::sys::bindings::Value,
) -> neon::sys::bindings::Status;

type NapiFinalize = unsafe extern "C" fn(
    env: neon::sys::bindings::Env,
    data: *mut libc::c_void,
    hint: *mut libc::c_void,
);

type CreateExternalString<T> = unsafe extern "C" fn(
    env: neon::sys::bindings::Env,
    text: *mut T,
    length: usize,
    finalize: Option<NapiFinalize>,
    hint: *mut libc::c_void,
    result: *mut neon::sys::bindings::Value,
    copied: *mut bool,
) -> neon::sys::bindings::Status;

/// The constructors the process has (the external ones may be missing: an older Node.js).
struct StringConstructors {
    latin1: CreateString<std::ffi::c_char>,
    utf16: CreateString<u16>,
    /// The external constructors, over Latin-1 (`char`) and UTF-16 (`char16_t`) text: the same C signature
    /// apart from the text's pointer type, so one Rust type for both.
    external_latin1: Option<CreateExternalString<libc::c_void>>,
    external_utf16: Option<CreateExternalString<libc::c_void>>,
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
            let external_latin1 = find(c"node_api_create_external_string_latin1");
            let external_utf16 = find(c"node_api_create_external_string_utf16");
            // SAFETY: all four symbols are Node-API's, whose C signatures `CreateString` and
            // `CreateExternalString` spell out.
            unsafe {
                Some(StringConstructors {
                    latin1: std::mem::transmute::<*mut libc::c_void, CreateString<std::ffi::c_char>>(
                        latin1,
                    ),
                    utf16: std::mem::transmute::<*mut libc::c_void, CreateString<u16>>(utf16),
                    external_latin1: external_latin1.map(|p| {
                        std::mem::transmute::<*mut libc::c_void, CreateExternalString<libc::c_void>>(p)
                    }),
                    external_utf16: external_utf16.map(|p| {
                        std::mem::transmute::<*mut libc::c_void, CreateExternalString<libc::c_void>>(p)
                    }),
                })
            }
        })
        .as_ref()
}

/// From this size on, an event's string is made over the add-on's own copy of the text (an external string:
/// nothing copied, the memory freed when V8 collects the string); a smaller one is copied into V8 (cheap at that
/// size, and no finalizer per event).
const EXTERNAL_FROM_BYTES: usize = 64 * 1024;

/// The memory under an external string, freed by [`free_text`] when V8 collects the string.
enum Text {
    Bytes(bytes::Bytes),
    Ascii(Vec<u8>),
    Units(Vec<u16>),
}

/// Node-API's finalizer of an external string: frees its [`Text`] (nothing else: it may run during a GC).
unsafe extern "C" fn free_text(
    _env: neon::sys::bindings::Env,
    _data: *mut libc::c_void,
    hint: *mut libc::c_void,
) {
    // SAFETY: `hint` is the `Box<Text>` that `external_string` leaked for this string; Node-API calls the
    // finalizer once.
    drop(unsafe { Box::from_raw(hint.cast::<Text>()) });
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

    /// Its size in bytes.
    fn size(&self) -> usize {
        match self {
            Text::Bytes(b) => b.len(),
            Text::Ascii(v) => v.len(),
            Text::Units(u) => u.len() * 2,
        }
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

/// A string over `text` that V8 does not copy. `Err(Some(text))`: not made (no external strings in this
/// Node.js, or Node-API refused), the text back for a copy; `Err(None)`: Node-API took the text but gave no
/// string (never seen).
fn external_string(
    env: neon::sys::bindings::Env,
    make: &StringConstructors,
    text: Text,
) -> Result<neon::sys::bindings::Value, Option<Text>> {
    let (data, length) = match &text {
        Text::Units(u) => (u.as_ptr().cast::<libc::c_void>(), u.len()),
        other => {
            let a = other.ascii().unwrap_or_default();
            (a.as_ptr().cast::<libc::c_void>(), a.len())
        }
    };
    let external = if text.ascii().is_some() {
        make.external_latin1
    } else {
        make.external_utf16
    };
    let Some(external) = external else {
        return Err(Some(text));
    };
    // The text's memory is on the heap: moving the `Text` into the box does not move what `data` points at.
    let hint = Box::into_raw(Box::new(text));
    let mut raw: neon::sys::bindings::Value = std::ptr::null_mut();
    let mut copied = false;
    // SAFETY: `env` is the live environment of the caller's context; `data`/`length` describe the text owned by
    // `hint` in the constructor's unit (bytes for Latin-1, code units for UTF-16), which stays alive until
    // Node-API calls `free_text` with it (once: when V8 collects the string, or at once when it copied); `raw`
    // and `copied` are valid places for the results. V8 only reads the text.
    let status = unsafe {
        external(
            env,
            data.cast_mut(),
            length,
            Some(free_text),
            hint.cast(),
            &mut raw,
            &mut copied,
        )
    };
    if status != neon::sys::bindings::Status::Ok {
        // Refused: Node-API has not called the finalizer and will not; the text is ours again.
        // SAFETY: `hint` came from `Box::into_raw` above and was not freed.
        return Err(Some(*unsafe { Box::from_raw(hint) }));
    }
    if raw.is_null() { Err(None) } else { Ok(raw) }
}

/// The event's text as a JavaScript string, made the cheapest way V8 parses it (see [`text`]): ASCII text as it
/// is, mostly-ASCII text with its non-ASCII characters escaped, both one-byte strings; other text decoded to
/// UTF-16 here, a two-byte string, instead of V8's UTF-8 decoder (`napi_create_string_utf8`). A large event's
/// string is external (over the add-on's memory, not copied); `null` when the event is not UTF-8.
pub(crate) fn event_string<'a>(
    cx: &mut TaskContext<'a>,
    event: bytes::Bytes,
) -> JsResult<'a, JsValue> {
    let Some(mut text) = Text::of(event.clone()) else {
        return Ok(cx.null().upcast());
    };
    let Some(make) = string_constructors() else {
        return Ok(cx.string(text.to_rust_string()).upcast());
    };
    let env = cx.to_raw();
    if text.size() >= EXTERNAL_FROM_BYTES {
        match external_string(env, make, text) {
            // SAFETY: `raw` is a string Node-API just made in `cx`'s scope.
            Ok(raw) => return Ok(unsafe { JsString::from_raw(cx, raw) }.upcast()),
            Err(Some(back)) => text = back,
            Err(None) => match Text::of(event) {
                Some(again) => text = again,
                None => return Ok(cx.null().upcast()),
            },
        }
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
