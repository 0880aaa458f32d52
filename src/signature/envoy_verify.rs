//! Envoy's `verify_signature` foreign function, as bytes: the arguments it takes and the
//! answer it gives (Envoy's `source/extensions/common/wasm/ext/verify_signature.proto`).
//!
//! ```text
//! message VerifySignatureArguments {
//!   string hash_function = 1;  // "sha256", "sha384" or "sha512"
//!   bytes public_key = 2;      // DER SubjectPublicKeyInfo
//!   bytes signature = 3;       // RSA: as signed; ECDSA: DER ECDSA-Sig-Value
//!   bytes text = 4;            // what was signed: the JWS signing input
//! }
//! message VerifySignatureResult { bool result = 1; string error = 2; }
//! ```
//!
//! Envoy verifies RSA with PKCS#1 v1.5 only and ECDSA on any curve with any hash, so which
//! algorithms go to it, with which hash, is decided here: RS256/384/512, and ES256, ES384 and
//! ES512 each on the curve RFC 7518 §3.4 binds to it (the key set's `alg`/`kty`/`crv`
//! matching guarantees it, and [`ask`] checks it again); never PS* or EdDSA. Four length-delimited fields and a two-field answer are written and read here
//! directly; `tests/envoy_verify_proto.rs` checks both against `prost`, which is only a
//! dev-dependency. (prost in the module was not tried: with these pieces in, the module had
//! 5 KB of its 512 KiB budget left, and these are 60 lines.)

use std::fmt;

use crate::bench_repeat;
use crate::signature::{host_form, JwsAlgorithm, VerifyingKey};

/// The name of Envoy's foreign function.
pub const VERIFY_SIGNATURE: &str = "verify_signature";

/// Why the host gave no verdict on a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecided {
    /// The key has no DER form (it is not RSA or a NIST curve), or is not of the
    /// algorithm's family.
    NoKeyForm,
    /// The signature has no form Envoy takes (an ECDSA signature that is not twice its
    /// curve's width), or Envoy cannot verify the algorithm.
    NoSignatureForm,
    /// The host refused the call (a status such as NotFound or BadArgument).
    Refused(String),
    /// The host answered with bytes that are not a `VerifySignatureResult`.
    Unreadable,
}

impl fmt::Display for Undecided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Undecided::NoKeyForm => f.write_str("no DER form of the key"),
            Undecided::NoSignatureForm => f.write_str("no DER form of the signature"),
            Undecided::Refused(status) => f.write_str(status),
            Undecided::Unreadable => f.write_str("an answer that does not parse"),
        }
    }
}

/// Whether the host, through `call` (the encoded arguments in, its answer out), says the
/// `alg` signature of `text` under `key` is valid. The one sequence the filter's host
/// verifier and the test probe (`testbed/probe`) both run: key and signature to DER,
/// arguments encoded, the answer read strictly.
pub fn ask(
    key: &VerifyingKey,
    alg: JwsAlgorithm,
    text: &[u8],
    signature: &[u8],
    call: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<bool, Undecided> {
    // Envoy takes any curve with any hash: the curve is bound to the algorithm here.
    if key.family() != alg.family() {
        return Err(Undecided::NoKeyForm);
    }
    let spki = key.spki().ok_or(Undecided::NoKeyForm)?;
    let priced = cfg!(feature = "bench-repeat-args");
    let arguments = bench_repeat::priced(priced, || arguments(alg, spki, signature, text))
        .ok_or(Undecided::NoSignatureForm)?;
    let answer = call(&arguments).map_err(Undecided::Refused)?;
    bench_repeat::priced(priced, || verdict(&answer)).ok_or(Undecided::Unreadable)
}

/// The hash Envoy must use for `alg`, when Envoy can verify `alg` at all.
pub fn hash_function(alg: JwsAlgorithm) -> Option<&'static str> {
    match alg {
        JwsAlgorithm::Rs256 | JwsAlgorithm::Es256 => Some("sha256"),
        JwsAlgorithm::Rs384 | JwsAlgorithm::Es384 => Some("sha384"),
        JwsAlgorithm::Rs512 | JwsAlgorithm::Es512 => Some("sha512"),
        JwsAlgorithm::Ps256 | JwsAlgorithm::Ps384 | JwsAlgorithm::Ps512 | JwsAlgorithm::EdDsa => {
            None
        }
    }
}

/// The encoded arguments to verify the JWS `signature` of `text` under the key `spki`
/// with `alg`; `None` when Envoy cannot verify `alg`, or the signature cannot be put in the
/// form Envoy takes (an ECDSA signature that is not twice its curve's width, which no key
/// verifies either).
pub fn arguments(alg: JwsAlgorithm, spki: &[u8], signature: &[u8], text: &[u8]) -> Option<Vec<u8>> {
    let hash = hash_function(alg)?;
    let der;
    let signature = match alg {
        JwsAlgorithm::Es256 | JwsAlgorithm::Es384 | JwsAlgorithm::Es512 => {
            der = host_form::ecdsa_signature_der(alg.family(), signature)?;
            der.as_slice()
        }
        _ => signature,
    };
    let mut out = Vec::with_capacity(hash.len() + spki.len() + signature.len() + text.len() + 20);
    for (field, bytes) in [(1u8, hash.as_bytes()), (2, spki), (3, signature), (4, text)] {
        out.push(field << 3 | 2); // length-delimited
        let mut length = bytes.len();
        while length >= 0x80 {
            out.push((length as u8 & 0x7f) | 0x80);
            length >>= 7;
        }
        out.push(length as u8);
        out.extend_from_slice(bytes);
    }
    Some(out)
}

/// Whether Envoy's answer says the signature is valid: `Some(true)` only for a result
/// whose `result` is true, `Some(false)` for any other well-formed result, `None` for bytes
/// that are not a `VerifySignatureResult` (tags read as varints, field 0 refused, `result`
/// only as a varint, `error` only length-delimited, unknown fields skipped by wire type).
pub fn verdict(answer: &[u8]) -> Option<bool> {
    let mut valid = false;
    let mut rest = answer;
    while !rest.is_empty() {
        let (key, tail) = varint(rest)?;
        let (field, wire) = (key >> 3, key & 7);
        let (value, tail) = match wire {
            0 | 2 => varint(tail)?,
            _ => return None,
        };
        rest = match (field, wire) {
            (0, _) | (1, 2) | (2, 0) => return None,
            (1, 0) => {
                valid = value != 0;
                tail
            }
            (_, 0) => tail,
            _ => tail.get(usize::try_from(value).ok()?..)?,
        };
    }
    Some(valid)
}

/// A base-128 varint at the start of `bytes` (at most 64 bits), and what follows it.
fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may only hold the 64th bit.
        if index == 9 && bits > 1 {
            return None;
        }
        value |= bits << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, bytes.get(index + 1..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pkcs1_and_ecdsa_go_to_the_host() {
        for alg in JwsAlgorithm::ALL {
            let host = hash_function(alg).is_some();
            let expected = !matches!(
                alg,
                JwsAlgorithm::Ps256
                    | JwsAlgorithm::Ps384
                    | JwsAlgorithm::Ps512
                    | JwsAlgorithm::EdDsa
            );
            assert_eq!(host, expected, "{alg:?}");
            let width = match alg {
                JwsAlgorithm::Es384 => 96,
                JwsAlgorithm::Es512 => 132,
                _ => 64,
            };
            assert_eq!(
                arguments(alg, b"k", &vec![1; width], b"t").is_some(),
                expected
            );
        }
        assert_eq!(hash_function(JwsAlgorithm::Es384), Some("sha384"));
        assert_eq!(hash_function(JwsAlgorithm::Es512), Some("sha512"));
    }

    /// Envoy takes any curve with any hash: a key of another curve than the algorithm's is
    /// never sent (RFC 7518 §3.4 binds them).
    #[test]
    fn a_curve_that_is_not_the_algorithms_is_never_asked() {
        let p384 =
            VerifyingKey::host_ec(crate::signature::KeyFamily::P384, &[1; 48], &[2; 48]).unwrap();
        for alg in [
            JwsAlgorithm::Es256,
            JwsAlgorithm::Es512,
            JwsAlgorithm::Rs384,
        ] {
            let asked = ask(&p384, alg, b"t", &[1; 96], |_| panic!("asked for {alg:?}"));
            assert_eq!(asked, Err(Undecided::NoKeyForm), "{alg:?}");
        }
        let asked = ask(&p384, JwsAlgorithm::Es384, b"t", &[1; 96], |arguments| {
            assert!(arguments.windows(8).any(|w| w == b"\x0a\x06sha384"));
            Ok(vec![0x08, 0x01])
        });
        assert_eq!(asked, Ok(true));
    }

    #[test]
    fn arguments_are_four_length_delimited_fields() {
        let encoded = arguments(JwsAlgorithm::Rs384, b"key", &[7; 200], b"a.b").unwrap();
        let mut expected = vec![0x0a, 6];
        expected.extend_from_slice(b"sha384");
        expected.extend_from_slice(&[0x12, 3]);
        expected.extend_from_slice(b"key");
        expected.extend_from_slice(&[0x1a, 0xc8, 0x01]); // 200 as a varint
        expected.extend_from_slice(&[7; 200]);
        expected.extend_from_slice(&[0x22, 3]);
        expected.extend_from_slice(b"a.b");
        assert_eq!(encoded, expected);
    }

    #[test]
    fn es256_signatures_go_as_der_and_bad_ones_not_at_all() {
        let encoded = arguments(JwsAlgorithm::Es256, b"k", &[0x11; 64], b"t").unwrap();
        assert!(
            encoded.windows(2).any(|w| w == [0x1a, 70]),
            "DER of two 32-byte integers"
        );
        assert_eq!(
            arguments(JwsAlgorithm::Es256, b"k", &[0x11; 63], b"t"),
            None
        );
    }

    #[test]
    fn only_a_true_result_is_valid() {
        assert_eq!(verdict(&[0x08, 0x01]), Some(true));
        assert_eq!(verdict(&[]), Some(false));
        assert_eq!(verdict(&[0x08, 0x00]), Some(false));
        let mut error = vec![0x12, 5];
        error.extend_from_slice(b"nope!");
        assert_eq!(verdict(&error), Some(false));
        assert_eq!(verdict(&[0x08, 0x01, 0x12, 2, b'o', b'k']), Some(true));
        assert_eq!(verdict(&[0x12, 9, b'x']), None, "truncated");
        assert_eq!(verdict(&[0x08]), None, "truncated varint");
        assert_eq!(
            verdict(&[0x0d, 1, 2, 3, 4]),
            None,
            "fixed32 is not in the message"
        );
        assert_eq!(
            verdict(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            None
        );
        // A two-byte tag: field 146, length 2; the 08 01 inside it is not field 1.
        assert_eq!(verdict(&[0x92, 0x01, 0x02, 0x08, 0x01]), Some(false));
        assert_eq!(verdict(&[0x00, 0x01]), None, "field 0");
        assert_eq!(verdict(&[0x0a, 0x01, 0x01]), None, "result as bytes");
        assert_eq!(verdict(&[0x10, 0x01]), None, "error as a varint");
        assert_eq!(
            verdict(&[0x18, 0x05, 0x08, 0x01]),
            Some(true),
            "unknown varint field"
        );
        let mut too_wide = vec![0x08];
        too_wide.extend_from_slice(&[0xff; 9]);
        too_wide.push(0x02);
        assert_eq!(verdict(&too_wide), None, "more than 64 bits");
    }
}
