//! Keys and signatures in the forms a host's verifier takes: a DER SubjectPublicKeyInfo
//! (RFC 5280 §4.1.2.7) for the key, and for ECDSA a DER `ECDSA-Sig-Value` (RFC 3279 §2.2.3)
//! instead of JWS's fixed-width `r || s` (RFC 7518 §3.4).
//!
//! Every encoding (lengths, INTEGER signs and leading zeros, OIDs, BIT STRING) comes from
//! RustCrypto's `der`; the structures are those of RFC 5280, RFC 8017 and RFC 3279, named
//! where they are built. (`spki` and `pkcs1` wrap the same `der` calls; measured, they cost
//! the module about 2 KB more.) Keys are encoded once, when a key set is loaded.

use der::asn1::{BitStringRef, Null, ObjectIdentifier, UintRef};
use der::{Encode, Header, Length, Tag};

/// `rsaEncryption` (RFC 8017 Appendix C).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480 §2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1`, P-256 (RFC 5480 §2.1.1.1).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The SubjectPublicKeyInfo of an RSA key (big-endian `n` and `e`): `rsaEncryption` with
/// NULL parameters, and the PKCS #1 `RSAPublicKey` (RFC 8017 §A.1.1) as the key. `None` if
/// they cannot be encoded.
pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Option<Vec<u8>> {
    let key = sequence(&[
        UintRef::new(modulus).ok()?.to_der().ok()?,
        UintRef::new(exponent).ok()?.to_der().ok()?,
    ])?;
    spki(RSA_ENCRYPTION.to_der().ok()?, Null.to_der().ok()?, &key)
}

/// The SubjectPublicKeyInfo of a P-256 key from its affine coordinates (32 bytes each):
/// `id-ecPublicKey` on the named curve, and the uncompressed point (SEC 1 §2.3.3).
pub fn p256_spki(x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let point = [&[0x04][..], x, y].concat();
    spki(
        EC_PUBLIC_KEY.to_der().ok()?,
        SECP256R1.to_der().ok()?,
        &point,
    )
}

/// `SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey
/// BIT STRING }`, with `AlgorithmIdentifier ::= SEQUENCE { algorithm, parameters }`.
fn spki(algorithm: Vec<u8>, parameters: Vec<u8>, key: &[u8]) -> Option<Vec<u8>> {
    sequence(&[
        sequence(&[algorithm, parameters])?,
        BitStringRef::from_bytes(key).ok()?.to_der().ok()?,
    ])
}

/// A DER SEQUENCE of the already encoded `parts`.
fn sequence(parts: &[Vec<u8>]) -> Option<Vec<u8>> {
    let contents = parts.concat();
    let mut der = Vec::with_capacity(contents.len() + 4);
    Header::new(Tag::Sequence, Length::try_from(contents.len()).ok()?)
        .ok()?
        .encode_to_vec(&mut der)
        .ok()?;
    der.extend_from_slice(&contents);
    Some(der)
}

/// An ES256 signature, `r || s` (64 bytes), as DER `ECDSA-Sig-Value ::= SEQUENCE { r
/// INTEGER, s INTEGER }`; `None` when it is not 64 bytes. (Whether `r` and `s` are in range
/// is the verifier's business: out of range, nothing verifies.)
pub fn es256_signature_der(signature: &[u8]) -> Option<Vec<u8>> {
    if signature.len() != 64 {
        return None;
    }
    let (r, s) = signature.split_at(32);
    sequence(&[
        UintRef::new(r).ok()?.to_der().ok()?,
        UintRef::new(s).ok()?.to_der().ok()?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_keys_are_spki_with_rsa_encryption() {
        let mut modulus = vec![0xc5u8; 256];
        modulus[255] |= 1;
        let der = rsa_spki(&modulus, &[1, 0, 1]).unwrap();
        // SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING { SEQUENCE { n, e } } }
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x22]);
        assert_eq!(
            &der[4..19],
            &[
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
                0x00
            ]
        );
        assert_eq!(&der[der.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);
        // A modulus with its top bit set gets its sign byte.
        assert!(der.windows(4).any(|w| w == [0x02, 0x82, 0x01, 0x01]));
        // Leading zero bytes are not part of the integer.
        let mut padded = vec![0u8; 3];
        padded.extend_from_slice(&modulus);
        assert_eq!(rsa_spki(&padded, &[0, 1, 0, 1]).unwrap(), der);
    }

    #[test]
    fn p256_keys_are_spki_with_the_named_curve() {
        let der = p256_spki(&[1; 32], &[2; 32]).unwrap();
        assert_eq!(der.len(), 91);
        assert_eq!(&der[..2], &[0x30, 0x59]);
        assert!(der.ends_with(&[[0x04].as_slice(), &[1; 32], &[2; 32]].concat()));
        assert_eq!(p256_spki(&[1; 31], &[2; 32]), None);
    }

    #[test]
    fn es256_signatures_become_der_sequences_of_two_integers() {
        let mut rs = [0x11u8; 64];
        rs[32] = 0x80; // s with its top bit set needs a sign byte
        let der = es256_signature_der(&rs).unwrap();
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..4], &[0x02, 0x20]);
        assert_eq!(&der[36..39], &[0x02, 0x21, 0x00]);
        assert_eq!(es256_signature_der(&rs[..63]), None);
        // Leading zero bytes are not part of an integer: zero is one byte.
        assert_eq!(
            es256_signature_der(&[0u8; 64]).unwrap(),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
    }
}
