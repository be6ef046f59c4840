//! The event's text in the form V8 parses fastest, decided in Rust before the string is made.
//!
//! `JSON.parse` of a one-byte (Latin-1) string is as fast as of a two-byte one, but making the two-byte string
//! means decoding UTF-8 to UTF-16 (twice the bytes) first. JSON text can hold a non-ASCII character only
//! inside a string literal, where `\uXXXX` (a surrogate pair outside the Basic Multilingual Plane) stands for
//! the same character: so text that is mostly ASCII is passed on as ASCII, each non-ASCII character escaped,
//! and `JSON.parse` gives exactly the value of the original text. Text where that would not hold or not pay
//! is decoded to UTF-16 instead ([`utf16`]).

/// Escaping may grow the text by at most a quarter (and [`GROWTH_ALLOWANCE`] bytes, for short texts): beyond it
/// the text is mostly non-ASCII, and the UTF-16 string is the smaller one to make and to parse.
const GROWTH_DIVISOR: usize = 4;
const GROWTH_ALLOWANCE: usize = 64;

/// How many bytes at the start of `bytes` are ASCII (a word at a time, then byte by byte).
pub fn ascii_prefix(bytes: &[u8]) -> usize {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut n = 0;
    for word in bytes.chunks_exact(8) {
        let Ok(w) = <[u8; 8]>::try_from(word) else {
            break;
        };
        if u64::from_ne_bytes(w) & HIGH_BITS != 0 {
            break;
        }
        n += 8;
    }
    n + bytes[n..].iter().take_while(|b| b.is_ascii()).count()
}

/// What [`ascii_escaped`] made of the event's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Escaped {
    /// ASCII JSON text that parses to the same value, every non-ASCII character written as `\uXXXX`.
    Ascii(Vec<u8>),
    /// Escaping would change the outcome or not pay: the text is to be decoded to UTF-16 ([`utf16`]) instead.
    /// Only the part read so far was checked to be UTF-8.
    Wide,
    /// The bytes are not UTF-8.
    NotUtf8,
}

/// `bytes` (not all ASCII) as ASCII JSON text that parses to the same value ([`Escaped::Ascii`]), checked to
/// be UTF-8 on the way (one pass over the text, not a check and then the escaping); [`Escaped::Wide`] when
/// that would change the outcome or not pay:
/// - a non-ASCII character right after an unescaped backslash (`"\é"`): the original is not JSON, and its
///   escape would make it so (`"\\u00e9"`); V8 must see such text as it is, to refuse it;
/// - the escaped text longer than the original by more than a quarter (mostly non-ASCII text), short texts
///   aside.
///
/// Outside a string literal an escape is as invalid as the character was, so text that is not JSON stays so.
pub fn ascii_escaped(bytes: &[u8]) -> Escaped {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let limit = bytes.len() + bytes.len() / GROWTH_DIVISOR + GROWTH_ALLOWANCE;
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16 + 16);
    let mut i = 0;
    loop {
        let run = ascii_prefix(&bytes[i..]);
        out.extend_from_slice(&bytes[i..i + run]);
        i += run;
        if i == bytes.len() {
            return Escaped::Ascii(out);
        }
        // Every byte of a multi-byte UTF-8 character is non-ASCII, so a run of non-ASCII bytes is whole
        // characters when the text is UTF-8, and the text is UTF-8 when every such run is.
        let end = bytes[i..]
            .iter()
            .position(u8::is_ascii)
            .map_or(bytes.len(), |n| i + n);
        // Escaped, each of those bytes is at least two (a character of 2 or 3 bytes is 6, of 4 is 12): a run
        // that cannot fit is not worth checking here (the UTF-16 decoding checks it).
        if out.len() + 2 * (end - i) > limit {
            return Escaped::Wide;
        }
        let Ok(chars) = std::str::from_utf8(&bytes[i..end]) else {
            return Escaped::NotUtf8;
        };
        let backslashes = out.iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes % 2 == 1 {
            return Escaped::Wide;
        }
        for c in chars.chars() {
            let mut units = [0u16; 2];
            for &u in c.encode_utf16(&mut units).iter() {
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    HEX[usize::from(u >> 12)],
                    HEX[usize::from((u >> 8) & 0xf)],
                    HEX[usize::from((u >> 4) & 0xf)],
                    HEX[usize::from(u & 0xf)],
                ]);
            }
            if out.len() > limit {
                return Escaped::Wide;
            }
        }
        i = end;
    }
}

/// `text` as UTF-16 code units (ASCII runs widened a word at a time).
pub fn utf16(text: &str) -> Vec<u16> {
    let bytes = text.as_bytes();
    let mut units: Vec<u16> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    loop {
        let run = ascii_prefix(&bytes[i..]);
        units.extend(bytes[i..i + run].iter().map(|&b| u16::from(b)));
        i += run;
        let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
            return units;
        };
        let mut pair = [0u16; 2];
        units.extend_from_slice(c.encode_utf16(&mut pair));
        i += c.len_utf8();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn value(text: &[u8]) -> Result<serde_json::Value, String> {
        serde_json::from_slice(text).map_err(|e| e.to_string())
    }

    fn escaped(text: &str) -> Vec<u8> {
        match ascii_escaped(text.as_bytes()) {
            Escaped::Ascii(a) => a,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn the_ascii_prefix_stops_at_the_first_non_ascii_byte() {
        assert_eq!(ascii_prefix(b""), 0);
        assert_eq!(ascii_prefix(b"abc"), 3);
        assert_eq!(ascii_prefix("0123456789é".as_bytes()), 10);
        assert_eq!(ascii_prefix("01234567é".as_bytes()), 8);
        assert_eq!(ascii_prefix("é".as_bytes()), 0);
        let long = format!("{}中", "x".repeat(1000));
        assert_eq!(ascii_prefix(long.as_bytes()), 1000);
    }

    #[test]
    fn escaped_text_is_ascii_and_parses_to_the_same_value() {
        let astral = format!(
            "[\"\u{10FFFF}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\", \"{}\"]",
            "ASCII text around them ".repeat(10)
        );
        for text in [
            astral.as_str(),
            r#"{"k":"é"}"#,
            r#"{"中文":["emoji😀","a\"é","\\é","é\n"],"n":1.5,"x":null}"#,
            r#"["ünï", "line\nbreak", "\u00e9é"]"#,
            r#"{"a":"x","pad":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaé"}"#,
        ] {
            let escaped = escaped(text);
            assert!(escaped.is_ascii(), "{text}");
            assert_eq!(value(&escaped), value(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn text_that_is_not_json_stays_not_json() {
        // Outside a string the escape is as invalid as the character.
        for text in ["é", "{\"a\":1}é", "[1,é]", "{é:1}"] {
            let escaped = escaped(text);
            assert!(value(&escaped).is_err(), "{text}");
            assert!(value(text.as_bytes()).is_err(), "{text}");
        }
        // After an unescaped backslash the escape would make it JSON: refused, V8 sees the text as it is.
        assert_eq!(ascii_escaped(r#""\é""#.as_bytes()), Escaped::Wide);
        assert_eq!(ascii_escaped(r#""\\\é""#.as_bytes()), Escaped::Wide);
        assert!(value(&escaped(r#""\\é""#)).is_ok());
    }

    #[test]
    fn mostly_non_ascii_text_is_not_escaped() {
        let most = format!("\"{}\"", "中".repeat(100));
        assert_eq!(ascii_escaped(most.as_bytes()), Escaped::Wide);
        let some = format!("\"{}{}\"", "a".repeat(100), "中".repeat(5));
        assert!(escaped(&some).is_ascii());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_found_wherever_they_are() {
        let pad = "ASCII text ".repeat(20);
        for bad in [
            &b"\xff"[..],        // never in UTF-8
            b"\x80",             // a continuation byte alone
            b"\xc3",             // a character cut short at the end
            b"\xc3(",            // ... and before an ASCII byte
            b"\xe4\xb8",         // a three-byte character cut short
            b"\xc0\xaf",         // an overlong encoding
            b"\xed\xa0\x80",     // a surrogate
            b"\xf4\x90\x80\x80", // past U+10FFFF
            "é".as_bytes(),      // (valid: joined below with an invalid byte)
        ] {
            for text in [
                [b"\"", bad, b"\xff\""].concat(),
                [pad.as_bytes(), "中".as_bytes(), bad, b"\xfe"].concat(),
                [pad.as_bytes(), b"\"", bad].concat(),
            ] {
                if std::str::from_utf8(&text).is_err() {
                    assert_eq!(ascii_escaped(&text), Escaped::NotUtf8, "{text:?}");
                }
            }
        }
        for bad in [&b"\xff"[..], b"\x80", b"\xc3", b"\xed\xa0\x80"] {
            let text = [pad.as_bytes(), b"\"", bad, b"\""].concat();
            assert_eq!(ascii_escaped(&text), Escaped::NotUtf8, "{text:?}");
        }
    }

    #[test]
    fn utf16_is_the_text_as_code_units() {
        for text in [
            "",
            "abc",
            "é",
            "0123456789中文😀 and more ASCII text",
            "\u{10FFFF}x",
        ] {
            assert_eq!(
                utf16(text),
                text.encode_utf16().collect::<Vec<_>>(),
                "{text}"
            );
        }
    }
}
