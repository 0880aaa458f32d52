//! Canonical base64url (RFC 4648 §5) without padding, as JWS and JWK require.
//!
//! Decoding refuses padding, the `+`/`/` alphabet, whitespace and non-zero trailing bits,
//! so that each byte string has exactly one accepted encoding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Decodes canonical, unpadded base64url.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Encodes without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for len in 0..20 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn refuses_non_canonical_forms() {
        assert_eq!(decode("Zm9v").unwrap(), b"foo");
        for bad in ["Zg==", "Zm8=", "+/8", "Zm 9v", "Zm9v\n", "Zh", "Zm9", "Z"] {
            // "Zh" and "Zm9" carry non-zero trailing bits ("Zg" and "Zm8" are canonical);
            // "Z" cannot encode a whole byte.
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        assert_eq!(decode("Zg").unwrap(), b"f");
        assert_eq!(decode("Zm8").unwrap(), b"fo");
    }
}
