//! JSON text → Python objects in one pass, with no intermediate tree and no `json.loads`.
//!
//! The grammar is strict RFC 8259 (what the platform accepts as an event): no `NaN`/`Infinity`, no trailing
//! commas, no control characters inside strings. The objects built are the ones `json.loads` builds: `dict`
//! (duplicate keys: the last wins), `list`, `str`, `int` (exact, any size), `float`, `True`/`False`/`None`.
//! Escaped lone surrogates (`"\ud800"`) become lone surrogates in the `str`, as with `json.loads`.
//!
//! Speed comes from: scanning bytes instead of code points, building `int`s from machine integers when they
//! fit, parsing floats in Rust, pre-sized lists, and a cache of interned key strings kept across calls (the
//! keys of one function's events repeat from one invocation to the next).

use std::ffi::CString;
use std::sync::Mutex;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Deepest nesting accepted (like `json.loads`, which stops at the interpreter's recursion limit).
pub const MAX_DEPTH: usize = 1000;

/// Why a text could not be decoded.
#[derive(Debug)]
pub enum DecodeError {
    /// The text is not JSON: what was expected, at which byte.
    Syntax {
        /// What went wrong.
        msg: &'static str,
        /// The byte offset.
        pos: usize,
    },
    /// Python failed while building an object (out of memory, an integer over `sys.get_int_max_str_digits`).
    Python(PyErr),
}

impl DecodeError {
    /// Converts to the Python exception `loads` raises (`ValueError`, or the original exception).
    pub fn into_pyerr(self) -> PyErr {
        match self {
            DecodeError::Syntax { msg, pos } => {
                pyo3::exceptions::PyValueError::new_err(format!("{msg}: char {pos}"))
            }
            DecodeError::Python(e) => e,
        }
    }
}

type R<T> = Result<T, DecodeError>;

/// Keys up to this many bytes are cached.
const MAX_CACHED_KEY: usize = 64;
/// Slots of the direct-mapped key cache (a power of two).
const CACHE_SLOTS: usize = 4096;

/// A cached key: its UTF-8 bytes and the interned `str`.
type CachedKey = (Box<[u8]>, Py<PyString>);

/// A direct-mapped cache of interned keys (no slots: caching off).
struct KeyCache {
    slots: Vec<Option<CachedKey>>,
}

impl KeyCache {
    fn new() -> KeyCache {
        KeyCache {
            slots: (0..CACHE_SLOTS).map(|_| None).collect(),
        }
    }
}

static KEYS: Mutex<Option<KeyCache>> = Mutex::new(None);

#[inline]
fn hash_key(b: &[u8]) -> usize {
    // FNV-1a: keys are short, and this only picks a slot.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in b {
        h ^= u64::from(c);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 29)) as usize & (CACHE_SLOTS - 1)
}

/// Bytes with a meaning inside a JSON string: the quote, the backslash, and control characters. They end the
/// decoder's fast scan of a string, and the encoder escapes them.
pub(crate) static SPECIAL_IN_STRING: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Decodes one JSON document (surrounding whitespace allowed) into a Python object.
pub fn loads<'py>(py: Python<'py>, text: &[u8]) -> R<Bound<'py, PyAny>> {
    // `try_lock`: while one decode holds the cache, a finalizer run by the garbage collector may release the
    // GIL and let another thread (or the same one, re-entrantly) decode; that decode goes without the cache
    // rather than waiting for a lock whose holder waits for the GIL.
    let mut guard = KEYS.try_lock().ok();
    let mut local;
    let cache = match guard.as_deref_mut() {
        Some(slot) => slot.get_or_insert_with(KeyCache::new),
        None => {
            local = KeyCache { slots: Vec::new() };
            &mut local
        }
    };
    let mut p = Parser {
        py,
        s: text,
        i: 0,
        scratch: Vec::new(),
        stack: Vec::new(),
        keys: cache,
        depth: 0,
    };
    // A large document allocates thousands of containers, each of which can trigger a collection that walks
    // them all again; none of them can be part of a cycle yet, so the collector is paused meanwhile.
    let paused = text.len() >= GC_PAUSE_BYTES && gc_pause(py);
    let v = p.value();
    if paused {
        gc_resume(py);
    }
    let v = v?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("extra data after the JSON value"));
    }
    Ok(v)
}

/// Documents at least this large are decoded with the cyclic garbage collector paused.
const GC_PAUSE_BYTES: usize = 64 * 1024;

/// `gc.disable()` if the collector is enabled; returns whether it did.
fn gc_pause(py: Python<'_>) -> bool {
    let Ok(gc) = py.import("gc") else {
        let _ = PyErr::take(py);
        return false;
    };
    let enabled = gc
        .call_method0("isenabled")
        .and_then(|v| v.is_truthy())
        .unwrap_or(false);
    enabled && gc.call_method0("disable").is_ok()
}

fn gc_resume(py: Python<'_>) {
    if py
        .import("gc")
        .and_then(|gc| gc.call_method0("enable"))
        .is_err()
    {
        let _ = PyErr::take(py);
    }
}

struct Parser<'a, 'py> {
    py: Python<'py>,
    s: &'a [u8],
    i: usize,
    scratch: Vec<u8>,
    /// Items of the arrays being parsed, shared by all levels (each level uses the top of the stack).
    stack: Vec<Bound<'py, PyAny>>,
    keys: &'a mut KeyCache,
    depth: usize,
}

impl<'py> Parser<'_, 'py> {
    #[inline]
    fn err(&self, msg: &'static str) -> DecodeError {
        DecodeError::Syntax { msg, pos: self.i }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    /// Wraps a new reference returned by the C API, or fetches the Python error.
    #[inline]
    fn own(&self, ptr: *mut ffi::PyObject) -> R<Bound<'py, PyAny>> {
        // SAFETY: `ptr` is the return value of a C API call that returns a new reference or NULL with an
        // exception set; `from_owned_ptr_or_err` handles both.
        unsafe { Bound::from_owned_ptr_or_err(self.py, ptr) }.map_err(DecodeError::Python)
    }

    fn value(&mut self) -> R<Bound<'py, PyAny>> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                self.i += 1;
                self.string()
            }
            Some(b't') => self.literal(b"true", ffi::Py_True),
            Some(b'f') => self.literal(b"false", ffi::Py_False),
            Some(b'n') => self.literal(b"null", ffi::Py_None),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("Expecting value")),
            None => Err(self.err("Expecting value (end of text)")),
        }
    }

    fn literal(
        &mut self,
        word: &[u8],
        obj: unsafe fn() -> *mut ffi::PyObject,
    ) -> R<Bound<'py, PyAny>> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            // SAFETY: Py_True/Py_False/Py_None return the immortal singletons (borrowed references), which
            // `from_borrowed_ptr` increfs.
            Ok(unsafe { Bound::from_borrowed_ptr(self.py, obj()) })
        } else {
            Err(self.err("Expecting value"))
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        Ok(())
    }

    fn array(&mut self) -> R<Bound<'py, PyAny>> {
        self.i += 1;
        self.enter()?;
        let base = self.stack.len();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
        } else {
            loop {
                let v = self.value()?;
                self.stack.push(v);
                self.ws();
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b']') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(self.err("Expecting ',' delimiter or ']'")),
                }
            }
        }
        self.depth -= 1;
        let n = self.stack.len() - base;
        // SAFETY: PyList_New returns a new reference or NULL with an exception set.
        let list = self.own(unsafe { ffi::PyList_New(n as ffi::Py_ssize_t) })?;
        for (k, item) in self.stack.drain(base..).enumerate() {
            // SAFETY: `list` is a fresh list of length n and k < n; PyList_SetItem steals the reference
            // `into_ptr` gives up, and cannot fail for an in-range index of a list.
            unsafe { ffi::PyList_SetItem(list.as_ptr(), k as ffi::Py_ssize_t, item.into_ptr()) };
        }
        Ok(list)
    }

    fn object(&mut self) -> R<Bound<'py, PyAny>> {
        self.i += 1;
        self.enter()?;
        // SAFETY: PyDict_New returns a new reference or NULL with an exception set.
        let dict = self.own(unsafe { ffi::PyDict_New() })?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(dict);
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("Expecting property name enclosed in double quotes"));
            }
            self.i += 1;
            let key = self.key()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("Expecting ':' delimiter"));
            }
            self.i += 1;
            let v = self.value()?;
            // SAFETY: dict, key and v are live objects; PyDict_SetItem does not steal references.
            if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), v.as_ptr()) } != 0 {
                return Err(DecodeError::Python(PyErr::fetch(self.py)));
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.err("Expecting ',' delimiter or '}'")),
            }
        }
        self.depth -= 1;
        Ok(dict)
    }

    /// Scans a string without escapes from `self.i` (just after the opening quote). Returns the end of the
    /// plain run (the index of the byte that stopped the scan).
    #[inline]
    fn scan_plain(&self) -> usize {
        let s = self.s;
        let mut j = self.i;
        while j < s.len() && !SPECIAL_IN_STRING[s[j] as usize] {
            j += 1;
        }
        j
    }

    /// A dict key: like [`Parser::string`], but short keys without escapes come from the cache.
    fn key(&mut self) -> R<Bound<'py, PyAny>> {
        let start = self.i;
        let end = self.scan_plain();
        if end < self.s.len()
            && self.s[end] == b'"'
            && end - start <= MAX_CACHED_KEY
            && !self.keys.slots.is_empty()
        {
            let bytes = &self.s[start..end];
            let slot = hash_key(bytes);
            if let Some((k, obj)) = &self.keys.slots[slot] {
                if &k[..] == bytes {
                    self.i = end + 1;
                    return Ok(obj.bind(self.py).clone().into_any());
                }
            }
            let obj = self.make_str(start, end)?;
            self.i = end + 1;
            let mut ptr = obj.into_ptr();
            // SAFETY: `ptr` is an owned reference to an exact str; PyUnicode_InternInPlace may replace it
            // with the interned equal string, transferring our reference.
            unsafe { ffi::PyUnicode_InternInPlace(&mut ptr) };
            let obj = self.own(ptr)?;
            if let Ok(s) = obj.cast::<PyString>() {
                self.keys.slots[slot] = Some((bytes.into(), s.clone().unbind()));
            }
            return Ok(obj);
        }
        self.string()
    }

    /// A `str` from the UTF-8 bytes `s[start..end]` (validated by CPython's decoder).
    #[inline]
    fn make_str(&self, start: usize, end: usize) -> R<Bound<'py, PyAny>> {
        let b = &self.s[start..end];
        // SAFETY: pointer and length describe a live byte slice; the call copies it and returns a new
        // reference or NULL with UnicodeDecodeError set.
        let ptr = unsafe {
            ffi::PyUnicode_FromStringAndSize(b.as_ptr().cast(), b.len() as ffi::Py_ssize_t)
        };
        if ptr.is_null() {
            // SAFETY: an exception is set; clear it, the caller reports a syntax error.
            unsafe { ffi::PyErr_Clear() };
            return Err(DecodeError::Syntax {
                msg: "invalid UTF-8 in string",
                pos: start,
            });
        }
        self.own(ptr)
    }

    /// A string value; `self.i` is just after the opening quote.
    fn string(&mut self) -> R<Bound<'py, PyAny>> {
        let start = self.i;
        let end = self.scan_plain();
        match self.s.get(end) {
            Some(b'"') => {
                let v = self.make_str(start, end)?;
                self.i = end + 1;
                Ok(v)
            }
            Some(b'\\') => self.string_escaped(start, end),
            Some(_) => {
                self.i = end;
                Err(self.err("Invalid control character in string"))
            }
            None => {
                self.i = start;
                Err(self.err("Unterminated string"))
            }
        }
    }

    /// The slow path of a string with escapes: unescape into `scratch`.
    fn string_escaped(&mut self, start: usize, first_escape: usize) -> R<Bound<'py, PyAny>> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(&self.s[start..first_escape]);
        self.i = first_escape;
        let mut surrogates = false;
        let result = loop {
            let run_end = self.scan_plain();
            buf.extend_from_slice(&self.s[self.i..run_end]);
            self.i = run_end;
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    break Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = match self.peek() {
                        Some(c) => c,
                        None => break Err(self.err("Unterminated string")),
                    };
                    self.i += 1;
                    match c {
                        b'"' => buf.push(b'"'),
                        b'\\' => buf.push(b'\\'),
                        b'/' => buf.push(b'/'),
                        b'b' => buf.push(0x08),
                        b'f' => buf.push(0x0c),
                        b'n' => buf.push(b'\n'),
                        b'r' => buf.push(b'\r'),
                        b't' => buf.push(b'\t'),
                        b'u' => {
                            let mut cp = match self.hex4() {
                                Ok(v) => v,
                                Err(e) => break Err(e),
                            };
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                match self.hex4() {
                                    Ok(lo) if (0xDC00..0xE000).contains(&lo) => {
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                    }
                                    Ok(_) => self.i = save,
                                    Err(e) => break Err(e),
                                }
                            }
                            if (0xD800..0xE000).contains(&cp) {
                                surrogates = true;
                            }
                            push_utf8(&mut buf, cp);
                        }
                        _ => {
                            self.i -= 2;
                            break Err(self.err("Invalid \\escape"));
                        }
                    }
                }
                Some(_) => break Err(self.err("Invalid control character in string")),
                None => break Err(self.err("Unterminated string")),
            }
        };
        let out = result.and_then(|()| {
            let ptr = if surrogates {
                // Lone surrogates were written as generalised UTF-8; everything else must still be UTF-8.
                if !valid_wtf8(&buf) {
                    return Err(DecodeError::Syntax {
                        msg: "invalid UTF-8 in string",
                        pos: start,
                    });
                }
                // SAFETY: pointer/length describe `buf`; the errors argument is a NUL-terminated literal.
                unsafe {
                    ffi::PyUnicode_DecodeUTF8(
                        buf.as_ptr().cast(),
                        buf.len() as ffi::Py_ssize_t,
                        c"surrogatepass".as_ptr(),
                    )
                }
            } else {
                // SAFETY: pointer/length describe `buf`; a new reference or NULL with an exception set.
                unsafe {
                    ffi::PyUnicode_FromStringAndSize(
                        buf.as_ptr().cast(),
                        buf.len() as ffi::Py_ssize_t,
                    )
                }
            };
            if ptr.is_null() {
                // SAFETY: an exception is set; it is replaced by a syntax error.
                unsafe { ffi::PyErr_Clear() };
                return Err(DecodeError::Syntax {
                    msg: "invalid UTF-8 in string",
                    pos: start,
                });
            }
            self.own(ptr)
        });
        self.scratch = buf;
        out
    }

    fn hex4(&mut self) -> R<u32> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return Err(self.err("Invalid \\uXXXX escape"));
        };
        let mut v = 0u32;
        for &c in h {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(self.err("Invalid \\uXXXX escape")),
            };
            v = v * 16 + u32::from(d);
        }
        self.i += 4;
        Ok(v)
    }

    fn number(&mut self) -> R<Bound<'py, PyAny>> {
        let s = self.s;
        let start = self.i;
        let mut j = start;
        let neg = s[j] == b'-';
        if neg {
            j += 1;
        }
        match s.get(j) {
            Some(b'0') => j += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = s.get(j) {
                    j += 1;
                }
            }
            _ => {
                self.i = j;
                return Err(self.err("Expecting value"));
            }
        }
        let int_end = j;
        let mut is_float = false;
        if s.get(j) == Some(&b'.') {
            j += 1;
            if !matches!(s.get(j), Some(b'0'..=b'9')) {
                self.i = j;
                return Err(self.err("Expecting digits after '.'"));
            }
            while let Some(b'0'..=b'9') = s.get(j) {
                j += 1;
            }
            is_float = true;
        }
        if let Some(b'e' | b'E') = s.get(j) {
            j += 1;
            if let Some(b'+' | b'-') = s.get(j) {
                j += 1;
            }
            if !matches!(s.get(j), Some(b'0'..=b'9')) {
                self.i = j;
                return Err(self.err("Expecting digits in the exponent"));
            }
            while let Some(b'0'..=b'9') = s.get(j) {
                j += 1;
            }
            is_float = true;
        }
        self.i = j;
        let text = &s[start..j];
        if is_float {
            // The slice is ASCII by construction.
            let f: f64 = std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or(DecodeError::Syntax {
                    msg: "invalid number",
                    pos: start,
                })?;
            // SAFETY: returns a new reference or NULL with an exception set.
            return self.own(unsafe { ffi::PyFloat_FromDouble(f) });
        }
        let digits = &s[start + usize::from(neg)..int_end];
        if digits.len() <= 18 {
            let mut v: i64 = 0;
            for &d in digits {
                v = v * 10 + i64::from(d - b'0');
            }
            if neg {
                v = -v;
            }
            // SAFETY: returns a new reference or NULL with an exception set.
            return self.own(unsafe { ffi::PyLong_FromLongLong(v) });
        }
        let c = CString::new(text).map_err(|_| DecodeError::Syntax {
            msg: "invalid number",
            pos: start,
        })?;
        // SAFETY: `c` is NUL-terminated; a NULL end pointer is allowed; returns a new reference or NULL with
        // an exception set (e.g. more digits than sys.get_int_max_str_digits allows).
        self.own(unsafe { ffi::PyLong_FromString(c.as_ptr(), std::ptr::null_mut(), 10) })
    }
}

fn push_utf8(buf: &mut Vec<u8>, cp: u32) {
    match cp {
        0..=0x7F => buf.push(cp as u8),
        0x80..=0x7FF => buf.extend_from_slice(&[0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8]),
        0x800..=0xFFFF => buf.extend_from_slice(&[
            0xE0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        _ => buf.extend_from_slice(&[
            0xF0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3F) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
    }
}

/// UTF-8 that may also contain encoded surrogates (ED A0..BF xx).
fn valid_wtf8(b: &[u8]) -> bool {
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(_) => return true,
            Err(e) => {
                let at = e.valid_up_to();
                let tail = &rest[at..];
                if tail.len() >= 3
                    && tail[0] == 0xED
                    && (0xA0..=0xBF).contains(&tail[1])
                    && (tail[2] & 0xC0) == 0x80
                {
                    rest = &tail[3..];
                } else {
                    return false;
                }
            }
        }
    }
}
