//! Compact JWS parsing (RFC 7515 §7.1), before any key or signature is looked at.
//!
//! A token is refused here, cheaply, when it is larger than the configured cap (checked
//! before any decoding), is not exactly three non-empty canonical base64url segments (so JSON
//! serialisation, JWE's five segments, stripped signatures, padding, whitespace and control
//! bytes all fail), has a header that is not a strict JSON object (duplicate member names
//! refused), names an algorithm outside the allowlist (`none` and HS* in any spelling), or
//! carries `crit` (wsgate understands no extension, RFC 7515 §4.1.11). The payload is any
//! bytes at this layer; [`CompactJws::claims`] reads it as a JWT claims set.
//!
//! Keys offered by the token itself (`jwk`, `jku`, `x5u`, `x5c`) are never read.

use serde_json::{Map, Value};

use crate::deny::DenyReason;
use crate::encoding::base64url;
use crate::encoding::strict_json;
use crate::signature::JwsAlgorithm;

/// A syntactically valid compact JWS whose algorithm is on the allowlist.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    alg: JwsAlgorithm,
    kid: Option<String>,
    payload: &'a str,
    payload_bytes: Vec<u8>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Parses `token`, refusing anything over `max_bytes`.
    pub fn parse(token: &'a str, max_bytes: usize) -> Result<Self, DenyReason> {
        if token.len() > max_bytes {
            return Err(DenyReason::TokenTooLarge);
        }
        if !token
            .bytes()
            .all(|b| b == b'.' || b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(DenyReason::Malformed);
        }
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(DenyReason::Malformed);
        };
        // The header first, so that `alg: none` (whose signature is empty) is named for what
        // it is. An empty payload is a valid JWS (RFC 7515 §7.1), but never a claims set: the
        // claims step refuses it.
        let header = decode_object(header)?;
        let alg = match header.get("alg") {
            Some(Value::String(name)) => {
                JwsAlgorithm::from_name(name).ok_or(DenyReason::UnsupportedAlgorithm)?
            }
            _ => return Err(DenyReason::Malformed),
        };
        if header.contains_key("crit") {
            return Err(DenyReason::Malformed);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(DenyReason::Malformed),
        };
        let payload_bytes = base64url::decode(payload).ok_or(DenyReason::Malformed)?;
        if signature.is_empty() {
            return Err(DenyReason::Malformed);
        }
        let signature = base64url::decode(signature).ok_or(DenyReason::Malformed)?;
        let signing_input_len = token.len() - signature_segment_len(token);
        let signing_input = token
            .get(..signing_input_len)
            .ok_or(DenyReason::Malformed)?;
        Ok(CompactJws {
            alg,
            kid,
            payload,
            payload_bytes,
            signing_input,
            signature,
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> JwsAlgorithm {
        self.alg
    }

    /// The header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The payload read as a JWT claims set: a strict JSON object, not yet verified.
    pub fn claims(&self) -> Result<Map<String, Value>, DenyReason> {
        strict_json::parse_object(&self.payload_bytes).map_err(|_| DenyReason::Malformed)
    }

    /// The payload segment as it appears in the token (canonical base64url).
    pub fn payload_segment(&self) -> &'a str {
        self.payload
    }

    /// `BASE64URL(header) . BASE64URL(payload)`: the bytes the signature covers.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// Length of the last segment plus its leading dot.
fn signature_segment_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, DenyReason> {
    let bytes = base64url::decode(segment).ok_or(DenyReason::Malformed)?;
    strict_json::parse_object(&bytes).map_err(|_| DenyReason::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::base64url::encode;

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            encode(header.as_bytes()),
            encode(payload.as_bytes())
        )
    }

    fn parse(token: &str) -> Result<CompactJws<'_>, DenyReason> {
        CompactJws::parse(token, 8192)
    }

    #[test]
    fn parses_a_well_formed_token() {
        let text = token(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"sub":"a"}"#,
        );
        let jws = parse(&text).unwrap();
        assert_eq!(jws.alg(), JwsAlgorithm::Rs256);
        assert_eq!(jws.kid(), Some("k1"));
        assert_eq!(jws.claims().unwrap()["sub"], "a");
        assert_eq!(jws.signature(), b"sig");
        assert_eq!(
            jws.signing_input(),
            text.rsplit_once('.').unwrap().0.as_bytes()
        );
    }

    #[test]
    fn size_is_checked_before_anything_else() {
        let text = "x".repeat(9000);
        assert_eq!(parse(&text).unwrap_err(), DenyReason::TokenTooLarge);
        let ok = token(r#"{"alg":"RS256"}"#, "{}");
        assert_eq!(
            CompactJws::parse(&ok, ok.len() - 1).unwrap_err(),
            DenyReason::TokenTooLarge
        );
        assert!(CompactJws::parse(&ok, ok.len()).is_ok());
    }

    #[test]
    fn algorithms_outside_the_allowlist() {
        for alg in [
            "none", "None", "NONE", "nOnE", "HS256", "HS512", "rs256", "es384", "ES256K",
            "RSA-OAEP",
        ] {
            let text = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}");
            assert_eq!(
                parse(&text).unwrap_err(),
                DenyReason::UnsupportedAlgorithm,
                "{alg}"
            );
        }
        for header in [r#"{}"#, r#"{"alg":null}"#, r#"{"alg":1}"#] {
            assert_eq!(
                parse(&token(header, "{}")).unwrap_err(),
                DenyReason::Malformed,
                "{header}"
            );
        }
    }

    #[test]
    fn shapes_that_are_not_compact_jws() {
        let good = token(r#"{"alg":"RS256"}"#, "{}");
        let (head, sig) = good.rsplit_once('.').unwrap();
        let cases = [
            String::new(),
            format!("{head}."),    // stripped signature
            head.to_owned(),       // two segments
            format!("{good}.x.y"), // JWE-like five segments
            format!("{good}.x"),   // four
            format!(".{}", &good[good.find('.').unwrap() + 1..]), // empty header
            format!("{head}.{sig}="), // padding
            format!("{head}.{sig} "), // whitespace
            format!("{head}.{sig}\u{1}"), // control byte
            format!("{head}.{sig}é"), // non-ASCII
            format!("{head}.a+/b"), // standard alphabet
            format!("{head}.Zh"),  // non-zero trailing bits
            r#"{"payload":"e30","signatures":[]}"#.to_owned(), // JSON serialisation
        ];
        for case in cases {
            assert_eq!(parse(&case).unwrap_err(), DenyReason::Malformed, "{case:?}");
        }
    }

    #[test]
    fn headers_and_payloads_must_be_strict_objects() {
        for (header, payload) in [
            (r#"{"alg":"RS256","alg":"none"}"#, "{}"),
            (r#"{"alg":"RS256"}"#, r#"{"sub":"a","sub":"b"}"#),
            (r#"{"alg":"RS256"}"#, r#"["not","an","object"]"#),
            (r#"{"alg":"RS256"}"#, "not json"),
            (r#"["RS256"]"#, "{}"),
            (r#"{"alg":"RS256","kid":7}"#, "{}"),
        ] {
            let text = token(header, payload);
            assert_eq!(
                parse(&text).and_then(|jws| jws.claims()).unwrap_err(),
                DenyReason::Malformed,
                "{header} {payload}"
            );
        }
    }

    #[test]
    fn any_payload_bytes_parse_but_only_objects_are_claims() {
        for payload in ["foo", ""] {
            let text = token(r#"{"alg":"ES256"}"#, payload);
            let jws = parse(&text).unwrap();
            assert_eq!(
                jws.claims().unwrap_err(),
                DenyReason::Malformed,
                "{payload:?}"
            );
        }
    }

    #[test]
    fn crit_is_never_understood() {
        for header in [
            r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"RS256","crit":[]}"#,
            r#"{"alg":"RS256","b64":false,"crit":["b64"]}"#,
        ] {
            assert_eq!(
                parse(&token(header, "{}")).unwrap_err(),
                DenyReason::Malformed,
                "{header}"
            );
        }
    }
}
