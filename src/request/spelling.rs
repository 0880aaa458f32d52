//! The spellings a backend may take for one name: percent-decoding and case folding.
//!
//! wsgate decides on what the client sent, but the backend acts on what its framework makes
//! of it: ASP.NET Core percent-decodes the path and compares it ignoring case, reads query
//! and cookie names percent-decoded, and so do many others. A decision that compares the raw
//! text is a decision about a different request than the one the backend serves. So every
//! comparison that decides whether something is guarded, or is a token, goes through here,
//! and errs towards "the same": a spelling that some backend might take for a guarded path
//! or a token's name is taken for it.

use std::borrow::Cow;

/// Rounds of percent-decoding tried before a text is declared undecidable. A path that
/// passes through a decoding proxy and then a decoding framework is decoded twice; nothing
/// legitimate needs eight.
pub const MAX_DECODE_ROUNDS: usize = 8;

/// One round of percent-decoding (RFC 3986 §2.1): each `%XX` with two hex digits becomes
/// its byte; a `%` without them stays as it is. With `plus_is_space`, `+` becomes a space
/// too, as form-encoded query strings have it (WHATWG URL, `application/x-www-form-urlencoded`).
pub fn decode_once(text: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    if !(text.contains(&b'%') || plus_is_space && text.contains(&b'+')) {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some((&byte, tail)) = rest.split_first() {
        match (byte, tail) {
            (b'%', [high, low, after @ ..])
                if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() =>
            {
                out.push(hex_value(*high) << 4 | hex_value(*low));
                rest = after;
            }
            (b'+', _) if plus_is_space => {
                out.push(b' ');
                rest = tail;
            }
            _ => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    Cow::Owned(out)
}

/// `text` percent-decoded until decoding changes nothing (so `%2577` is `w`, as a backend
/// behind a decoding proxy would see it); `None` when it still changes after
/// [`MAX_DECODE_ROUNDS`] rounds, which callers must treat as matching everything.
/// Each round shortens the text, so this is linear in `text` for each round.
pub fn decode_fully(text: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let mut current = text.as_bytes().to_vec();
    for _ in 0..=MAX_DECODE_ROUNDS {
        match decode_once(&current, plus_is_space) {
            Cow::Owned(next) if next != current => current = next,
            _ => return Some(current),
        }
    }
    None
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit.wrapping_sub(b'A').wrapping_add(10),
    }
}

/// `text` case-folded so that two texts any backend compares as equal ignoring case fold to
/// the same string, as far as ASCII goes: ASCII letters, and the four non-ASCII letters that
/// some backend folds into one: `ſ` and `ı` (.NET's `OrdinalIgnoreCase` upper-cases them
/// to `S` and `I`), the Kelvin sign and `İ` (Java's `equalsIgnoreCase` lower-cases them to
/// `k` and `i`). Other non-ASCII letters are left as they are, which is why configured
/// paths and names must be ASCII ([`is_foldable`]). (Full Unicode folding would cost the
/// module about 35 KiB of case tables.)
pub fn fold_case(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.chars()
        .map(|c| match c {
            '\u{17f}' => 's',
            '\u{131}' | '\u{130}' => 'i',
            '\u{212a}' => 'k',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

/// Whether [`fold_case`] folds every spelling of `text` that a backend may take for it:
/// whether `text`, percent-decoded, is ASCII. Configured paths and names must be.
pub fn is_foldable(text: &str) -> bool {
    decode_fully(text, false).is_some_and(|decoded| decoded.is_ascii())
}

/// A space or an ASCII control character (tab included): what backends trim around names
/// and split a scheme from its credentials on.
pub fn is_blank(c: char) -> bool {
    c <= ' ' || c == '\u{7f}'
}

/// Whether `raw`, a query parameter or cookie name as the client sent it, names `configured`
/// in any spelling: percent-decoded (`+` as a space with `plus_is_space`), cut at a `[`
/// (`name[]` and `name[0]` are `name` to Express's `qs`, PHP and Rack), surrounding blanks
/// ([`is_blank`]) dropped (Go and Tomcat trim cookie names), then ignoring case. A name
/// still encoded after every decoding round is taken for `configured`.
pub fn same_name(raw: &str, configured: &str, plus_is_space: bool) -> bool {
    if raw == configured {
        return true;
    }
    match decode_fully(raw, plus_is_space) {
        Some(decoded) => {
            let decoded = String::from_utf8_lossy(&decoded);
            let base = decoded.split('[').next().unwrap_or_default();
            fold_case(base.trim_matches(is_blank)) == fold_case(configured)
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes_and_leaves_the_rest() {
        assert_eq!(&*decode_once(b"/%77s%2F%5c", false), b"/ws/\\");
        assert_eq!(&*decode_once(b"100%", false), b"100%");
        assert_eq!(&*decode_once(b"%zz%4", false), b"%zz%4");
        assert_eq!(&*decode_once(b"a+b", false), b"a+b");
        assert_eq!(&*decode_once(b"a+b%2B", true), b"a b+");
        assert!(matches!(decode_once(b"/ws", false), Cow::Borrowed(_)));
    }

    #[test]
    fn decodes_until_stable_within_the_bound() {
        assert_eq!(decode_fully("/%2577s", false).unwrap(), b"/ws");
        assert_eq!(decode_fully("/%252577s", false).unwrap(), b"/ws");
        assert_eq!(
            decode_fully("%25", false).unwrap(),
            b"%",
            "a lone % is stable"
        );
        // `w` encoded once more than the bound allows: %77, %2577, %252577, ...
        let deep = format!("%{}77", "25".repeat(MAX_DECODE_ROUNDS));
        let within = format!("%{}77", "25".repeat(MAX_DECODE_ROUNDS - 1));
        assert_eq!(decode_fully(&within, false).unwrap(), b"w", "just within");
        assert_eq!(decode_fully(&deep, false), None, "{deep}");
    }

    #[test]
    fn folds_ascii_and_unicode_case() {
        assert_eq!(fold_case("/WS"), "/ws");
        assert_eq!(fold_case("/w\u{17f}"), "/ws", "long s is S to .NET");
        assert_eq!(fold_case("\u{212a}"), "k", "Kelvin sign is k to Java");
        assert_eq!(fold_case("MED\u{131}A"), "media", "dotless i is I to .NET");
        assert_eq!(fold_case("MED\u{130}A"), "media", "dotted I is i to Java");
        assert_eq!(fold_case("/Éa"), "/Éa", "other letters are not folded");
        assert!(is_foldable("/ws%2F") && !is_foldable("/m%C3%A9dia") && !is_foldable("/é"));
    }

    #[test]
    fn names_match_in_any_spelling() {
        for raw in [
            "access_token",
            "access%5Ftoken",
            "access%5ftoken",
            "ACCESS_TOKEN",
            "%61ccess_token",
            "access%255Ftoken",
        ] {
            assert!(same_name(raw, "access_token", true), "{raw}");
        }
        assert!(
            same_name(" access_token\t", "access_token", true),
            "whitespace around"
        );
        assert!(same_name("access_token%20", "access_token", true));
        for raw in ["access_tokens", "access-token", "access+token", "token", ""] {
            assert!(!same_name(raw, "access_token", true), "{raw}");
        }
        assert!(same_name("my+name", "my name", true));
        assert!(!same_name("my+name", "my name", false));
    }
}
