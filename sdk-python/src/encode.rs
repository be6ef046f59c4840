//! Python objects → JSON text with the rules of `json.dumps` defaults, in Rust.
//!
//! Output is byte-for-byte `json.dumps(obj, ensure_ascii=False)`: `", "` and `": "` separators, non-ASCII
//! kept, `str` escapes `\" \\ \n \r \t \b \f` and `\u00XX` for other control characters, floats as
//! `float.__repr__`, `int` (and `int` subclasses) exact, tuples and lists as arrays, dict subclasses as
//! objects, dict keys `str`/`int`/`float`/`bool`/`None` coerced as `json.dumps` does. Two differences, both
//! because `json.dumps` would produce text that is not JSON or not UTF-8: `NaN`/`±Infinity` values are refused
//! ([`EncodeError::OutOfRange`]) and lone surrogates in a `str` are written as `\udXXX` escapes. `Decimal` is
//! written as its number text (`json.dumps` refuses it). Values with no JSON form are refused with the
//! message `json.dumps` gives.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyAnyMethods;

// Bytes that must be escaped in a JSON string (json.dumps with ensure_ascii=False): the same set that ends
// the decoder's fast scan of a string.
use crate::decode::SPECIAL_IN_STRING as ESCAPE;

/// Nesting deeper than this is refused (a cycle is detected long before).
pub const MAX_DEPTH: usize = 1000;
/// From this depth on, each container is checked against the path to detect cycles.
const CYCLE_CHECK_DEPTH: usize = 64;

/// Why a value has no JSON form.
#[derive(Debug)]
pub enum EncodeError {
    /// A value of a type with no JSON form (the type's name).
    Unserializable(String),
    /// A dict key of a type `json.dumps` refuses (the type's name).
    KeyType(String),
    /// A container contains itself.
    Circular,
    /// NaN or an infinity (its repr).
    OutOfRange(String),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Python raised while the value was read (e.g. `Decimal.__str__` or a mapping's `items()`).
    Python(PyErr),
}

impl EncodeError {
    /// The detail of the marshal error, in `json.dumps`'s words.
    pub fn detail(&self) -> String {
        match self {
            EncodeError::Unserializable(t) => {
                format!("Object of type {t} is not JSON serializable")
            }
            EncodeError::KeyType(t) => {
                format!("keys must be str, int, float, bool or None, not {t}")
            }
            EncodeError::Circular => "Circular reference detected".to_owned(),
            EncodeError::OutOfRange(r) => {
                format!("Out of range float values are not JSON compliant: {r}")
            }
            EncodeError::TooDeep => {
                "maximum recursion depth exceeded while encoding a JSON object".to_owned()
            }
            EncodeError::Python(e) => e.to_string(),
        }
    }

    /// The exception `dumps` raises: `TypeError` for types, `ValueError` for values, as `json.dumps` does.
    pub fn into_pyerr(self) -> PyErr {
        match self {
            EncodeError::Python(e) => e,
            e @ (EncodeError::Unserializable(_) | EncodeError::KeyType(_)) => {
                pyo3::exceptions::PyTypeError::new_err(e.detail())
            }
            EncodeError::TooDeep => {
                pyo3::exceptions::PyRecursionError::new_err(EncodeError::TooDeep.detail())
            }
            e => pyo3::exceptions::PyValueError::new_err(e.detail()),
        }
    }
}

type R = Result<(), EncodeError>;

unsafe extern "C" {
    // In the stable ABI only from 3.10, but exported by every CPython 3; its signature never changed.
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut ffi::PyObject,
        size: *mut ffi::Py_ssize_t,
    ) -> *const std::ffi::c_char;
}

/// The UTF-8 text of a `str` (cached inside the object by CPython), or `None` when it has lone surrogates.
pub fn str_utf8<'a>(s: &'a Bound<'_, pyo3::types::PyString>) -> Option<&'a [u8]> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live str; the buffer returned is owned by it and lives as long as the borrow of `s`.
    let p = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut size) };
    if p.is_null() {
        // SAFETY: clearing the UnicodeEncodeError just raised.
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    // SAFETY: p/size describe the str's UTF-8 buffer.
    Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), size as usize) })
}

/// Encodes `obj` as JSON text (UTF-8).
pub fn dumps(obj: &Bound<'_, PyAny>) -> Result<Vec<u8>, EncodeError> {
    let mut e = Encoder {
        py: obj.py(),
        out: Vec::with_capacity(128),
        path: Vec::new(),
        decimal: None,
    };
    e.value(obj.as_ptr())?;
    Ok(e.out)
}

struct Encoder<'py> {
    py: Python<'py>,
    out: Vec<u8>,
    /// Containers on the path from the root to the value being encoded.
    path: Vec<*mut ffi::PyObject>,
    /// `decimal.Decimal`, once looked up (`Some(None)`: the module is not loaded, so no value is a Decimal).
    decimal: Option<Option<Bound<'py, PyAny>>>,
}

#[inline]
fn type_of(o: *mut ffi::PyObject) -> *mut ffi::PyTypeObject {
    // SAFETY: `o` is a live object; reading its type pointer is what Py_TYPE does.
    unsafe { ffi::Py_TYPE(o) }
}

fn type_name(py: Python<'_>, o: *mut ffi::PyObject) -> String {
    // SAFETY: `o` is a live object borrowed for the duration of the call.
    let b = unsafe { Bound::from_borrowed_ptr(py, o) };
    b.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

impl<'py> Encoder<'py> {
    fn value(&mut self, o: *mut ffi::PyObject) -> R {
        let t = type_of(o);
        // SAFETY: only the addresses of the interpreter's static type objects and singletons are taken and
        // compared; nothing is read or written through them.
        unsafe {
            if t == &raw mut ffi::PyUnicode_Type {
                return self.string(o);
            }
            if t == &raw mut ffi::PyDict_Type {
                return self.dict(o, true);
            }
            if t == &raw mut ffi::PyList_Type {
                return self.list(o);
            }
            if t == &raw mut ffi::PyLong_Type {
                return self.int(o);
            }
            if t == &raw mut ffi::PyFloat_Type {
                return self.float(o);
            }
            if o == ffi::Py_None() {
                self.out.extend_from_slice(b"null");
                return Ok(());
            }
            if o == ffi::Py_True() {
                self.out.extend_from_slice(b"true");
                return Ok(());
            }
            if o == ffi::Py_False() {
                self.out.extend_from_slice(b"false");
                return Ok(());
            }
            if t == &raw mut ffi::PyTuple_Type {
                return self.tuple(o);
            }
        }
        self.slow_value(o)
    }

    /// Subclasses of the JSON types, `Decimal`, and refusals.
    #[cold]
    fn slow_value(&mut self, o: *mut ffi::PyObject) -> R {
        // SAFETY: the *_Check functions only read the type's flags of a live object.
        unsafe {
            if ffi::PyUnicode_Check(o) != 0 {
                return self.string(o);
            }
            if ffi::PyLong_Check(o) != 0 {
                return self.int(o);
            }
            if ffi::PyFloat_Check(o) != 0 {
                return self.float(o);
            }
            if ffi::PyList_Check(o) != 0 {
                return self.list(o);
            }
            if ffi::PyTuple_Check(o) != 0 {
                return self.tuple(o);
            }
            if ffi::PyDict_Check(o) != 0 {
                return self.dict(o, false);
            }
        }
        if let Some(text) = self.decimal_text(o)? {
            self.out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        Err(EncodeError::Unserializable(type_name(self.py, o)))
    }

    /// `Some(number text)` when `o` is a finite `Decimal`.
    fn decimal_text(&mut self, o: *mut ffi::PyObject) -> Result<Option<String>, EncodeError> {
        let py = self.py;
        let cls = self
            .decimal
            .get_or_insert_with(|| {
                // Only a Decimal from an already imported `decimal` module can reach here; importing it just
                // to say "no" would cost milliseconds.
                let modules = py.import("sys").and_then(|s| s.getattr("modules")).ok()?;
                let m = modules.get_item("decimal").ok()?;
                m.getattr("Decimal").ok()
            })
            .clone();
        let Some(cls) = cls else { return Ok(None) };
        // SAFETY: `o` is live for this call.
        let b = unsafe { Bound::from_borrowed_ptr(py, o) };
        if !b.is_instance(&cls).map_err(EncodeError::Python)? {
            return Ok(None);
        }
        let finite = b
            .call_method0("is_finite")
            .and_then(|f| f.is_truthy())
            .map_err(EncodeError::Python)?;
        if !finite {
            let r = b
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_else(|_| "Decimal".to_owned());
            return Err(EncodeError::OutOfRange(r));
        }
        let s = b.str().map_err(EncodeError::Python)?;
        Ok(Some(s.to_string()))
    }

    fn enter(&mut self, o: *mut ffi::PyObject) -> R {
        if self.path.len() >= CYCLE_CHECK_DEPTH {
            if self.path.contains(&o) {
                return Err(EncodeError::Circular);
            }
            if self.path.len() >= MAX_DEPTH {
                return Err(EncodeError::TooDeep);
            }
        }
        self.path.push(o);
        Ok(())
    }

    fn list(&mut self, o: *mut ffi::PyObject) -> R {
        self.enter(o)?;
        self.out.push(b'[');
        let mut k: ffi::Py_ssize_t = 0;
        loop {
            // The length is read on every step: encoding an item may run Python code (Decimal.__str__).
            // SAFETY: `o` is a live list.
            let n = unsafe { ffi::PyList_Size(o) };
            if k >= n {
                break;
            }
            // SAFETY: 0 <= k < n; the borrowed item is held with a new reference while it is encoded.
            let item = unsafe { Bound::from_borrowed_ptr(self.py, ffi::PyList_GetItem(o, k)) };
            if k > 0 {
                self.out.extend_from_slice(b", ");
            }
            self.value(item.as_ptr())?;
            k += 1;
        }
        self.out.push(b']');
        self.path.pop();
        Ok(())
    }

    fn tuple(&mut self, o: *mut ffi::PyObject) -> R {
        self.enter(o)?;
        self.out.push(b'[');
        // SAFETY: `o` is a live tuple (immutable: its items live as long as it does).
        let n = unsafe { ffi::PyTuple_Size(o) };
        for k in 0..n {
            if k > 0 {
                self.out.extend_from_slice(b", ");
            }
            // SAFETY: 0 <= k < n; a borrowed reference kept alive by the tuple.
            let item = unsafe { ffi::PyTuple_GetItem(o, k) };
            self.value(item)?;
        }
        self.out.push(b']');
        self.path.pop();
        Ok(())
    }

    fn dict(&mut self, o: *mut ffi::PyObject, exact: bool) -> R {
        self.enter(o)?;
        self.out.push(b'{');
        if exact {
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key: *mut ffi::PyObject = std::ptr::null_mut();
            let mut val: *mut ffi::PyObject = std::ptr::null_mut();
            let mut first = true;
            // SAFETY: PyDict_Next over a live dict yields borrowed references; each pair is held with new
            // references while encoded.
            while unsafe { ffi::PyDict_Next(o, &mut pos, &mut key, &mut val) } != 0 {
                // SAFETY: key and val are valid borrowed references from PyDict_Next.
                let (k, v) = unsafe {
                    (
                        Bound::from_borrowed_ptr(self.py, key),
                        Bound::from_borrowed_ptr(self.py, val),
                    )
                };
                if !first {
                    self.out.extend_from_slice(b", ");
                }
                first = false;
                self.key(k.as_ptr())?;
                self.out.extend_from_slice(b": ");
                self.value(v.as_ptr())?;
            }
        } else {
            // Like json.dumps for dict subclasses: iterate `items()`.
            // SAFETY: `o` is live for this call.
            let b = unsafe { Bound::from_borrowed_ptr(self.py, o) };
            let items = b.call_method0("items").map_err(EncodeError::Python)?;
            let mut first = true;
            for pair in items.try_iter().map_err(EncodeError::Python)? {
                let pair = pair.map_err(EncodeError::Python)?;
                let k = pair.get_item(0).map_err(EncodeError::Python)?;
                let v = pair.get_item(1).map_err(EncodeError::Python)?;
                if !first {
                    self.out.extend_from_slice(b", ");
                }
                first = false;
                self.key(k.as_ptr())?;
                self.out.extend_from_slice(b": ");
                self.value(v.as_ptr())?;
            }
        }
        self.out.push(b'}');
        self.path.pop();
        Ok(())
    }

    fn key(&mut self, k: *mut ffi::PyObject) -> R {
        // SAFETY: type checks and singleton addresses only.
        unsafe {
            if ffi::PyUnicode_Check(k) != 0 {
                return self.string(k);
            }
            if ffi::PyFloat_Check(k) != 0 {
                let v = ffi::PyFloat_AsDouble(k);
                self.out.push(b'"');
                if v.is_nan() {
                    self.out.extend_from_slice(b"NaN");
                } else if v.is_infinite() {
                    self.out
                        .extend_from_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
                } else {
                    write_float(&mut self.out, v);
                }
                self.out.push(b'"');
                return Ok(());
            }
            let lit: Option<&[u8]> = if k == ffi::Py_True() {
                Some(b"\"true\"")
            } else if k == ffi::Py_False() {
                Some(b"\"false\"")
            } else if k == ffi::Py_None() {
                Some(b"\"null\"")
            } else {
                None
            };
            if let Some(l) = lit {
                self.out.extend_from_slice(l);
                return Ok(());
            }
            if ffi::PyLong_Check(k) != 0 {
                self.out.push(b'"');
                self.int(k)?;
                self.out.push(b'"');
                return Ok(());
            }
        }
        Err(EncodeError::KeyType(type_name(self.py, k)))
    }

    fn int(&mut self, o: *mut ffi::PyObject) -> R {
        let mut overflow: std::ffi::c_int = 0;
        // SAFETY: `o` is an int (or subclass); no Python code runs for those.
        let v = unsafe { ffi::PyLong_AsLongLongAndOverflow(o, &mut overflow) };
        if overflow == 0 {
            if v == -1 {
                // SAFETY: checking for (and fetching) a pending exception.
                if !unsafe { ffi::PyErr_Occurred() }.is_null() {
                    return Err(EncodeError::Python(PyErr::fetch(self.py)));
                }
            }
            write_i64(&mut self.out, v);
            return Ok(());
        }
        // A big integer: the exact int's decimal text (int subclasses' own __repr__/__str__ are not used,
        // as with json.dumps).
        // SAFETY: `o` is an int; PyNumber_Long returns an exact int (new reference) or NULL with an exception.
        let exact = unsafe { Bound::from_owned_ptr_or_err(self.py, ffi::PyNumber_Long(o)) }
            .map_err(EncodeError::Python)?;
        let s = exact.str().map_err(EncodeError::Python)?;
        self.out.extend_from_slice(s.to_string().as_bytes());
        Ok(())
    }

    fn float(&mut self, o: *mut ffi::PyObject) -> R {
        // SAFETY: `o` is a float (or subclass).
        let v = unsafe { ffi::PyFloat_AsDouble(o) };
        if !v.is_finite() {
            let r = if v.is_nan() {
                "nan"
            } else if v > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            return Err(EncodeError::OutOfRange(r.to_owned()));
        }
        write_float(&mut self.out, v);
        Ok(())
    }

    fn string(&mut self, o: *mut ffi::PyObject) -> R {
        let mut size: ffi::Py_ssize_t = 0;
        // SAFETY: `o` is a str; the returned buffer is owned by (cached in) the object and lives as long as
        // it, which outlives this call.
        let p = unsafe { PyUnicode_AsUTF8AndSize(o, &mut size) };
        if p.is_null() {
            // SAFETY: an exception (UnicodeEncodeError: lone surrogates) is set; clear it and take the slow path.
            unsafe { ffi::PyErr_Clear() };
            return self.string_with_surrogates(o);
        }
        // SAFETY: p/size describe the UTF-8 buffer of the str.
        let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), size as usize) };
        write_json_str(&mut self.out, bytes);
        Ok(())
    }

    #[cold]
    fn string_with_surrogates(&mut self, o: *mut ffi::PyObject) -> R {
        // SAFETY: `o` is a live str.
        let n = unsafe { ffi::PyUnicode_GetLength(o) };
        self.out.push(b'"');
        let mut tmp = [0u8; 4];
        for i in 0..n {
            // SAFETY: 0 <= i < len.
            let c = unsafe { ffi::PyUnicode_ReadChar(o, i) };
            match char::from_u32(c) {
                Some(ch) => write_json_str_body(&mut self.out, ch.encode_utf8(&mut tmp).as_bytes()),
                None => {
                    // A lone surrogate: the only JSON form is an escape.
                    self.out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                }
            }
        }
        self.out.push(b'"');
        Ok(())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_json_str_body(out, s);
    out.push(b'"');
}

#[inline]
fn write_json_str_body(out: &mut Vec<u8>, s: &[u8]) {
    let mut run = 0;
    for (i, &b) in s.iter().enumerate() {
        if !ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&s[run..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        }
        run = i + 1;
    }
    out.extend_from_slice(&s[run..]);
}

/// Writes `v` in decimal.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes a finite `v` exactly as Python's `float.__repr__` does: the shortest digits that round-trip
/// (ties to even, as CPython's dtoa and Ryū both do), positional notation when the decimal exponent is in
/// [-4, 16), else `d.ddde±XX`.
pub fn write_float(out: &mut Vec<u8>, v: f64) {
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    let mut rb = ryu::Buffer::new();
    let text = rb.format_finite(v).as_bytes();
    let (neg, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let epos = text.iter().position(|&c| c == b'e').unwrap_or(text.len());
    let exp: i32 = std::str::from_utf8(&text[(epos + 1).min(text.len())..])
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    // Normalise the mantissa ("123.45", "0.0001", "1.5") to DIGITS with no leading/trailing zeros and the
    // position of the decimal point relative to them.
    let mut digits = [0u8; 24];
    let mut n = 0usize;
    let mut int_digits: i32 = 0;
    let mut seen_point = false;
    let mut leading = true;
    for &c in &text[..epos] {
        if c == b'.' {
            seen_point = true;
            continue;
        }
        if leading && c == b'0' {
            if seen_point {
                int_digits -= 1;
            }
            continue;
        }
        leading = false;
        if n < digits.len() {
            digits[n] = c;
            n += 1;
        }
        if !seen_point {
            int_digits += 1;
        }
    }
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    let digits = &digits[..n];
    let exp = exp + int_digits - 1;
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    if neg {
        out.push(b'-');
    }
    if !(-3..=16).contains(&decpt) {
        out.push(digits[0]);
        if n > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        let e = decpt - 1;
        out.push(if e < 0 { b'-' } else { b'+' });
        let ea = e.unsigned_abs();
        if ea < 10 {
            out.push(b'0');
        }
        write_i64(out, i64::from(ea));
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-decpt) {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    } else {
        let d = decpt as usize;
        if d >= n {
            out.extend_from_slice(digits);
            for _ in n..d {
                out.push(b'0');
            }
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..d]);
            out.push(b'.');
            out.extend_from_slice(&digits[d..]);
        }
    }
}
