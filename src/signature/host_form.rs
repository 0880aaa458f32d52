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

use crate::signature::KeyFamily;

/// `rsaEncryption` (RFC 8017 Appendix C).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480 §2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1`, P-256 (RFC 5480 §2.1.1.1).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1`, P-384 (RFC 5480 §2.1.1.1).
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// `secp521r1`, P-521 (RFC 5480 §2.1.1.1).
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// The named curve of an EC family, and its coordinate (and `r`, `s`) width in bytes.
fn curve(family: KeyFamily) -> Option<(ObjectIdentifier, usize)> {
    match family {
        KeyFamily::P256 => Some((SECP256R1, 32)),
        KeyFamily::P384 => Some((SECP384R1, 48)),
        KeyFamily::P521 => Some((SECP521R1, 66)),
        KeyFamily::Rsa | KeyFamily::Ed25519 => None,
    }
}

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

/// The SubjectPublicKeyInfo of a key of the NIST curve `family` from its affine
/// coordinates (32, 48 or 66 bytes each): `id-ecPublicKey` on the named curve, and the
/// uncompressed point (SEC 1 §2.3.3). `None` for another family or another width.
pub fn ec_spki(family: KeyFamily, x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
    let (oid, width) = curve(family)?;
    if x.len() != width || y.len() != width {
        return None;
    }
    let point = [&[0x04][..], x, y].concat();
    spki(EC_PUBLIC_KEY.to_der().ok()?, oid.to_der().ok()?, &point)
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

/// A JWS ECDSA signature on the curve `family`, `r || s` (64, 96 or 132 bytes: RFC 7518
/// §3.4), as DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`; `None` when it is
/// not exactly twice the curve's width. (Whether `r` and `s` are in range is the verifier's
/// business: out of range, nothing verifies.)
pub fn ecdsa_signature_der(family: KeyFamily, signature: &[u8]) -> Option<Vec<u8>> {
    let (_, width) = curve(family)?;
    if signature.len() != 2 * width {
        return None;
    }
    let (r, s) = signature.split_at(width);
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
    fn ec_keys_are_spki_with_the_named_curve() {
        let der = ec_spki(KeyFamily::P256, &[1; 32], &[2; 32]).unwrap();
        assert_eq!(der.len(), 91);
        assert_eq!(&der[..2], &[0x30, 0x59]);
        assert!(der.ends_with(&[[0x04].as_slice(), &[1; 32], &[2; 32]].concat()));
        assert_eq!(ec_spki(KeyFamily::P256, &[1; 31], &[2; 32]), None);
        // P-384: 120 bytes, secp384r1 = 06 05 2b 81 04 00 22.
        let der = ec_spki(KeyFamily::P384, &[1; 48], &[2; 48]).unwrap();
        assert_eq!((der.len(), &der[..2]), (120, &[0x30, 0x76][..]));
        assert!(der
            .windows(7)
            .any(|w| w == [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]));
        // P-521: 158 bytes, secp521r1 = 06 05 2b 81 04 00 23.
        let der = ec_spki(KeyFamily::P521, &[1; 66], &[1; 66]).unwrap();
        assert_eq!((der.len(), &der[..3]), (158, &[0x30, 0x81, 0x9b][..]));
        assert!(der
            .windows(7)
            .any(|w| w == [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23]));
        // A coordinate of another curve's width, or a family without a curve: none.
        assert_eq!(ec_spki(KeyFamily::P384, &[1; 32], &[2; 32]), None);
        assert_eq!(ec_spki(KeyFamily::P521, &[1; 65], &[2; 66]), None);
        assert_eq!(ec_spki(KeyFamily::Rsa, &[1; 32], &[2; 32]), None);
    }

    #[test]
    fn es256_signatures_become_der_sequences_of_two_integers() {
        let mut rs = [0x11u8; 64];
        rs[32] = 0x80; // s with its top bit set needs a sign byte
        let der = ecdsa_signature_der(KeyFamily::P256, &rs).unwrap();
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..4], &[0x02, 0x20]);
        assert_eq!(&der[36..39], &[0x02, 0x21, 0x00]);
        assert_eq!(ecdsa_signature_der(KeyFamily::P256, &rs[..63]), None);
        // Leading zero bytes are not part of an integer: zero is one byte.
        assert_eq!(
            ecdsa_signature_der(KeyFamily::P256, &[0u8; 64]).unwrap(),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
        // P-384 and P-521: halves of 48 and 66 bytes, and only those lengths.
        let der = ecdsa_signature_der(KeyFamily::P384, &[0x11; 96]).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x64, 0x02, 0x30]);
        let der = ecdsa_signature_der(KeyFamily::P521, &[0x01; 132]).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x81, 0x88, 0x02, 0x42]);
        for (family, wrong) in [
            (KeyFamily::P384, 64),
            (KeyFamily::P384, 97),
            (KeyFamily::P521, 130),
        ] {
            assert_eq!(ecdsa_signature_der(family, &vec![1; wrong]), None);
        }
        assert_eq!(ecdsa_signature_der(KeyFamily::Rsa, &[1; 64]), None);
    }
}
