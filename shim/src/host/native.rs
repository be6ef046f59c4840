//! The native host: handler libraries loaded with `dlopen`, called through the C ABI of
//! [`scf_protocol::abi`].
//!
//! `file.method` names the library `lib<file>.so` (or `<file>.so`) in the code root and the symbol
//! `method` in it.

use std::path::{Path, PathBuf};

use scf_protocol::abi::{self, ErrorDoc, HandlerFn, ScfBuffer, ScfRequest};
use scf_protocol::{ErrorKind, FunctionError};

use crate::{Config, HandlerName, Host, Invocation};

/// Loads and calls handlers in native libraries.
#[derive(Debug, Default)]
pub struct NativeHost {
    loaded: Option<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    handler: HandlerFn,
    // Keeps the library mapped for as long as `handler` may be called.
    _library: libloading::os::unix::Library,
}

impl NativeHost {
    /// A host with nothing loaded yet.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The library files `file` may name, in the order they are tried.
fn candidates(root: &Path, file: &str) -> Vec<PathBuf> {
    let (dir, base) = match file.rsplit_once('/') {
        Some((d, b)) => (root.join(d), b),
        None => (root.to_path_buf(), file),
    };
    vec![
        dir.join(format!("lib{base}.so")),
        dir.join(format!("{base}.so")),
    ]
}

/// Classifies a `dlopen` failure: a shared library the handler library needs is missing → 443
/// ModuleNotFound naming it; anything else → 443 InitError.
fn classify_dlopen_error(path: &Path, message: &str) -> FunctionError {
    const MISSING: &str = ": cannot open shared object file";
    let trace = format!("loading {}: {message}", path.display());
    if let Some(idx) = message.find(MISSING) {
        let before = &message[..idx];
        let name = before.rsplit(": ").next().unwrap_or(before).trim();
        let name = Path::new(name)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(name);
        let mut e = FunctionError::module_not_found(name);
        e.stack_trace = trace;
        return e;
    }
    FunctionError::new(
        ErrorKind::InitError,
        format!("cannot load {}: {message}", path.display()),
        trace,
    )
}

impl Host for NativeHost {
    fn load(&mut self, config: &Config) -> Result<(), FunctionError> {
        let name = HandlerName::parse(&config.handler)?;
        let tried = candidates(&config.code_root, &name.file);
        let Some(path) = tried.iter().find(|p| p.is_file()) else {
            let mut e = FunctionError::module_not_found(&name.file);
            let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            e.stack_trace = format!("no handler library: tried {}", list.join(", "));
            return Err(e);
        };
        scf_protocol::check_handler_file(&config.handler, &config.code_root, path)?;
        let flags = libc::RTLD_NOW | libc::RTLD_LOCAL;
        // SAFETY: loading a library runs its initialisers; the library is the function's own code, which the
        // platform was asked to run. RTLD_NOW resolves every symbol now, so a missing one fails here, not later.
        let library = unsafe { libloading::os::unix::Library::open(Some(path), flags) }
            .map_err(|e| classify_dlopen_error(path, &e.to_string()))?;
        // SAFETY: the symbol is looked up under the ABI's signature; a library exporting a symbol of that name
        // promises that signature (`scf_handler.h`), and the ABI version in every request lets it refuse a
        // mismatch.
        let symbol = unsafe { library.get::<HandlerFn>(name.method.as_bytes()) };
        let handler = match symbol {
            Ok(s) => *s,
            Err(e) => {
                let mut err = FunctionError::handler_not_found(&name.method);
                err.stack_trace = format!("{}: {e}", path.display());
                return Err(err);
            }
        };
        self.loaded = Some(Loaded {
            handler,
            _library: library,
        });
        Ok(())
    }

    fn invoke(&mut self, invocation: &Invocation) -> Result<Vec<u8>, FunctionError> {
        let loaded = self
            .loaded
            .as_ref()
            .ok_or_else(|| FunctionError::internal("no handler loaded"))?;
        let context = invocation.context.to_json();
        let request = ScfRequest {
            abi_version: abi::ABI_VERSION,
            event: invocation.event.as_ptr(),
            event_len: invocation.event.len(),
            context: context.as_ptr(),
            context_len: context.len(),
        };
        let mut output = ScfBuffer::empty();
        // SAFETY: `request` points at `event` and `context`, which outlive the call; `output` is a valid,
        // empty buffer the handler fills. The handler was resolved under the ABI's signature in `load`.
        let code = unsafe { (loaded.handler)(&request, &mut output) };
        let bytes = take(output);
        match code {
            abi::SCF_OK => {
                if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                    return Err(FunctionError::marshal(&format!(
                        "the handler's result is not JSON ({e})"
                    )));
                }
                Ok(bytes)
            }
            abi::SCF_ERROR => match serde_json::from_slice::<ErrorDoc>(&bytes) {
                Ok(doc) => Err(doc.into_function_error(&invocation.event)),
                Err(e) => Err(FunctionError::user(
                    ErrorKind::UnhandledError,
                    format!(
                        "the handler failed and its error document is unreadable ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    ),
                )),
            },
            abi::SCF_ABI_MISMATCH => Err(FunctionError::new(
                ErrorKind::InitError,
                format!(
                    "the handler library was built for another version of the handler ABI (this shim speaks version {})",
                    abi::ABI_VERSION
                ),
                "",
            )),
            other => Err(FunctionError::user(
                ErrorKind::UnhandledError,
                format!("the handler returned the unknown status {other}"),
            )),
        }
    }

    fn flush_logs(&mut self) {
        flush_stdio();
    }
}

/// Copies the handler's buffer and gives it back to the handler's allocator.
fn take(buffer: ScfBuffer) -> Vec<u8> {
    let bytes = if buffer.data.is_null() || buffer.len == 0 {
        Vec::new()
    } else {
        // SAFETY: the handler set `data` to `len` initialised bytes that stay valid until `free` is called.
        unsafe { std::slice::from_raw_parts(buffer.data, buffer.len) }.to_vec()
    };
    if let Some(free) = buffer.free {
        // SAFETY: `free` is the handler's own deallocator for exactly this buffer, called once.
        unsafe { free(buffer.data, buffer.len, buffer.cap, buffer.opaque) };
    }
    bytes
}

/// Flushes C stdio and Rust's stdout so the function's output is in the log pipe before its result is posted.
pub fn flush_stdio() {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    // SAFETY: fflush(NULL) flushes every open output stream; it takes no pointer we own.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dependency_is_module_not_found() {
        let e = classify_dlopen_error(
            Path::new("/code/libindex.so"),
            "libfoo.so.1: cannot open shared object file: No such file or directory",
        );
        assert_eq!(e.kind, ErrorKind::ModuleNotFound);
        assert_eq!(e.message, "global name 'libfoo.so.1' is not defined");
        let e = classify_dlopen_error(
            Path::new("/code/libindex.so"),
            "/code/libindex.so: invalid ELF header",
        );
        assert_eq!(e.kind, ErrorKind::InitError);
    }

    #[test]
    fn library_candidates() {
        let c = candidates(Path::new("/code"), "sub/index");
        assert_eq!(
            c,
            vec![
                PathBuf::from("/code/sub/libindex.so"),
                PathBuf::from("/code/sub/index.so")
            ]
        );
    }
}
