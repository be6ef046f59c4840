//! The string a large event reaches V8 in, kept from one event to the next: one for Latin-1 (ASCII) text and
//! one for UTF-16 text, the two forms [`crate::text`] gives.
//!
//! **Why.** A string of [`KEPT_FROM`] bytes or more is a large object to V8: a mapping of its own, whose pages the
//! kernel faults in as the text is copied into it, and which the next scavenge unmaps. For a 1 MB event that is
//! about a tenth of `JSON.parse` of the same text (`docs/node.md`, *JSON text across the boundary*). Instead,
//! the add-on keeps an external string over a mapping of its own and writes each large event into it:
//! the pages stay mapped and resident, and V8 allocates nothing for the text.
//!
//! **Why V8 may be given the same string again.** V8 takes a string's characters as fixed. Writing new ones
//! under it is sound here because nothing but `JSON.parse` ever reads this string, and never while it is
//! rewritten: the bootstrap hands it to `JSON.parse` and keeps no reference, one JavaScript thread runs both,
//! and the next event is written only when the next invocation is delivered. `JSON.parse` copies every value
//! out of its source (V8's JSON parser never makes a string that shares the source's characters), so nothing it
//! returned changes either. The string's length is fixed when it is made: a shorter event is followed by
//! spaces, which JSON allows after a value, so `JSON.parse` gives exactly the event's value.
//!
//! **Memory.** The room is the event's length and a sixteenth, in whole pages; a later event is written into
//! it when it fits with at most an eighth of the room left over, so the spaces cost little to skip. Another
//! size gets new room, and the old string is let go: its pages are given back at once (`MADV_DONTNEED`) and
//! the mapping is unmapped when V8 collects the string (its finalizer). V8 collects an external string only in
//! a full collection, so at most [`MAX_MAPPINGS`] mappings exist at once (of both forms); beyond that an event
//! is copied into V8 as a smaller one is. A function whose events keep their size and form keeps one mapping
//! of about that size.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::LocalKey;

use neon::sys::bindings as napi;

use crate::event::StringConstructors;

/// From this size in bytes on, an event's text is written into a kept string; a smaller one is copied into
/// V8's young generation, which is cheap (V8's largest ordinary object is 128 KiB).
pub(crate) const KEPT_FROM: usize = 128 * 1024;

/// The most mappings under kept strings at once: those in use and those let go that V8 has not yet
/// collected.
const MAX_MAPPINGS: usize = 4;

/// Mappings made and not yet unmapped.
static MAPPINGS: AtomicUsize = AtomicUsize::new(0);

const PAGE: usize = 4096;

/// Node-API's external strings (`node_api_create_external_string_latin1` and `_utf16`, Node.js 18.18 and
/// 20.4 on): the same C signature over `char` and `char16_t` text; looked up with the other constructors
/// ([`StringConstructors`]).
pub(crate) type CreateExternal = unsafe extern "C" fn(
    env: napi::Env,
    text: *mut libc::c_void,
    length: usize,
    finalize: Option<Finalize>,
    hint: *mut libc::c_void,
    result: *mut napi::Value,
    copied: *mut bool,
) -> napi::Status;

/// Node-API's finalizer (`napi_finalize`).
type Finalize =
    unsafe extern "C" fn(env: napi::Env, data: *mut libc::c_void, hint: *mut libc::c_void);

/// A code unit of a kept string: a Latin-1 byte or a UTF-16 unit.
pub(crate) trait Unit: Copy + 'static {
    /// The space, written after a shorter text.
    const SPACE: Self;
    /// The kept string of this unit, per JavaScript thread (the reference is per environment).
    fn kept() -> &'static LocalKey<RefCell<Option<Kept<Self>>>>;
    /// Node-API's external constructor of this unit's strings, if the process has it.
    fn create(make: &StringConstructors) -> Option<CreateExternal>;
}

thread_local! {
    static LATIN1: RefCell<Option<Kept<u8>>> = const { RefCell::new(None) };
    static UTF16: RefCell<Option<Kept<u16>>> = const { RefCell::new(None) };
}

impl Unit for u8 {
    const SPACE: u8 = b' ';
    fn kept() -> &'static LocalKey<RefCell<Option<Kept<u8>>>> {
        &LATIN1
    }
    fn create(make: &StringConstructors) -> Option<CreateExternal> {
        make.external_latin1
    }
}

impl Unit for u16 {
    const SPACE: u16 = 0x20;
    fn kept() -> &'static LocalKey<RefCell<Option<Kept<u16>>>> {
        &UTF16
    }
    fn create(make: &StringConstructors) -> Option<CreateExternal> {
        make.external_utf16
    }
}

/// The finalizer of a kept string: unmaps its room (`hint` is the room's size in bytes). It may run during a
/// collection, so it does nothing else.
unsafe extern "C" fn unmap(_env: napi::Env, data: *mut libc::c_void, hint: *mut libc::c_void) {
    // SAFETY: `data` is a mapping `Kept::make` made of `hint` bytes; V8 has collected the string over it, and
    // Node-API calls the finalizer once.
    unsafe { libc::munmap(data, hint as usize) };
    MAPPINGS.fetch_sub(1, Ordering::Relaxed);
}

/// A kept string in use.
pub(crate) struct Kept<T> {
    room: *mut T,
    /// The room's length in units.
    size: usize,
    /// The length of the text last written; from there to `size` the room holds spaces.
    text: usize,
    /// A strong reference to an object holding the string over the room (at index 0), which nothing else sees.
    string: napi::Ref,
}

/// Whether a text of `len` units goes into room of `size`: it fits, with at most an eighth left over.
fn fits(size: usize, len: usize) -> bool {
    len <= size && size - len <= size / 8
}

/// The room made for a text of `len` units of `unit` bytes: its length and a sixteenth, in whole pages; in
/// units.
fn room_for(len: usize, unit: usize) -> Option<usize> {
    let bytes = len.checked_add(len / 16)?.checked_mul(unit)?;
    Some(bytes.checked_next_multiple_of(PAGE)? / unit)
}

impl<T: Unit> Kept<T> {
    /// Writes `text` at the start of the room and spaces after it.
    fn write(&mut self, text: &[T]) {
        // SAFETY: the room is `size` units, mapped and writable, and nothing reads it meanwhile (the module's
        // note); `text.len() <= size` (`fits`).
        let room = unsafe { std::slice::from_raw_parts_mut(self.room, self.size) };
        room[..text.len()].copy_from_slice(text);
        if self.text > text.len() {
            room[text.len()..self.text].fill(T::SPACE);
        }
        self.text = text.len();
    }

    /// New room for `text`, and the string over it: with the room to keep, or without when Node-API copied the
    /// text or could not keep a reference (the string is then this event's only). `None` when no room may be
    /// made or Node-API refused the string.
    fn make(
        env: napi::Env,
        text: &[T],
        create: CreateExternal,
    ) -> Option<(Option<Kept<T>>, napi::Value)> {
        let unit = std::mem::size_of::<T>();
        let size = room_for(text.len(), unit)?;
        let bytes = size * unit;
        if MAPPINGS.fetch_add(1, Ordering::Relaxed) >= MAX_MAPPINGS {
            MAPPINGS.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        // SAFETY: a private anonymous mapping of `bytes` bytes; the result is checked.
        let room = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if room == libc::MAP_FAILED {
            MAPPINGS.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let mut kept = Kept {
            room: room.cast::<T>(),
            size,
            text: size,
            string: std::ptr::null_mut(),
        };
        kept.write(text);
        let mut raw: napi::Value = std::ptr::null_mut();
        let mut copied = false;
        // SAFETY: `env` is the live environment; the room is `size` units of text (page-aligned, so aligned for
        // the unit) that stays mapped until `unmap` runs, which Node-API calls once (at once if it copied);
        // `raw` and `copied` are valid places for the results.
        let status = unsafe {
            create(
                env,
                room,
                size,
                Some(unmap),
                bytes as *mut libc::c_void,
                &mut raw,
                &mut copied,
            )
        };
        if status != napi::Status::Ok || raw.is_null() {
            // Refused: Node-API has not called the finalizer and will not; the room is ours to unmap.
            // SAFETY: the mapping made above, which nothing else refers to.
            unsafe { libc::munmap(room, bytes) };
            MAPPINGS.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        if copied {
            // A string of V8's own (the finalizer has unmapped the room): right for this event, nothing kept.
            return Some((None, raw));
        }
        // Node-API before version 10 refers only to objects: the reference is to an object holding the string.
        let mut holder: napi::Value = std::ptr::null_mut();
        // SAFETY: `env` is the live environment and `raw` the string just made in its current scope; each
        // result is a valid place, and each call's status is checked before the next.
        let held = unsafe {
            napi::create_object(env, &mut holder).is_ok()
                && napi::set_element(env, holder, 0, raw).is_ok()
                && napi::create_reference(env, holder, 1, &mut kept.string).is_ok()
        };
        if !held {
            // Not kept: the string is V8's to collect, and its finalizer unmaps the room.
            return Some((None, raw));
        }
        Some((Some(kept), raw))
    }

    /// Lets the string go: V8 may collect it, and its pages go back to the kernel now.
    fn let_go(self, env: napi::Env) {
        // SAFETY: `string` is this environment's reference, deleted once (here). Should Node-API fail to delete
        // it, the string stays alive and its mapping with it, counted in `MAPPINGS`: nothing else goes wrong.
        let _ = unsafe { napi::delete_reference(env, self.string) };
        // SAFETY: the room is this mapping's, `size` units; nothing reads the string any more (the module's
        // note), and a read would find zeros, not fault.
        unsafe {
            libc::madvise(
                self.room.cast(),
                self.size * std::mem::size_of::<T>(),
                libc::MADV_DONTNEED,
            )
        };
    }
}

/// The event's `text` (Latin-1 bytes or UTF-16 units) as the kept string of its unit (written into the one in
/// use, or into new room), or `None` when it is smaller than [`KEPT_FROM`] bytes, Node-API has no external
/// strings, or no room may be made: then the caller copies it into V8.
pub(crate) fn kept_string<T: Unit>(
    env: napi::Env,
    make: &StringConstructors,
    text: &[T],
) -> Option<napi::Value> {
    if std::mem::size_of_val(text) < KEPT_FROM {
        return None;
    }
    T::kept().with_borrow_mut(|kept| {
        if let Some(k) = kept.as_mut().filter(|k| fits(k.size, text.len())) {
            k.write(text);
            let mut holder: napi::Value = std::ptr::null_mut();
            let mut raw: napi::Value = std::ptr::null_mut();
            // SAFETY: `k.string` is a live strong reference of `env` to the object holding the string at 0;
            // `holder` and `raw` are valid places for the values.
            let found = unsafe {
                napi::get_reference_value(env, k.string, &mut holder).is_ok()
                    && !holder.is_null()
                    && napi::get_element(env, holder, 0, &mut raw).is_ok()
            };
            return (found && !raw.is_null()).then_some(raw);
        }
        let (new, raw) = Kept::make(env, text, T::create(make)?)?;
        if let Some(new) = new
            && let Some(old) = kept.replace(new)
        {
            old.let_go(env);
        }
        Some(raw)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_is_a_sixteenth_more_in_pages_and_takes_texts_that_leave_an_eighth() {
        assert_eq!(room_for(1_048_576, 1), Some(1_114_112));
        assert_eq!(room_for(KEPT_FROM, 1), Some(139_264));
        assert_eq!(room_for(KEPT_FROM / 2, 2), Some(139_264 / 2));
        assert_eq!(room_for(usize::MAX, 1), None);
        assert_eq!(room_for(usize::MAX / 2, 2), None);
        let size = room_for(1_000_000, 1).expect("room for 1 MB");
        assert!(fits(size, 1_000_000));
        assert!(fits(size, size));
        assert!(!fits(size, size + 1));
        assert!(fits(size, size - size / 8));
        assert!(!fits(size, size - size / 8 - 1));
        let units = room_for(500_000, 2).expect("room for 1 MB of UTF-16");
        assert_eq!((units * 2) % PAGE, 0);
        assert!(fits(units, 500_000));
    }
}
