//! The one seam between wsgate and its signature backends.
//!
//! Everything above this module speaks of [`JwsAlgorithm`] and [`VerifyingKey`]; only this
//! module knows which code does the arithmetic for each algorithm family: RS*/PS* use
//! [`crate::signature::rsa`] (32-bit-limb Montgomery arithmetic, fast in WebAssembly), ES256 and
//! EdDSA jwt-compact's backends for `p256` and `ed25519-dalek`. ES384 and ES512 have no
//! backend in the module (RustCrypto's `p384` and `p521` would not fit its size budget):
//! only a host verifier checks them, and the module's answer for them is always "invalid". Replacing one family's
//! backend means changing its variant of [`VerifyingKey`], its constructor and its arm of
//! [`VerifyingKey::verify`], nothing else.
//!
//! Only asymmetric algorithms exist here: there is no way to express HS* or `none`.

pub mod envoy_verify;
pub mod host_form;
pub mod rsa;
pub mod self_test;

use jwt_compact::alg::{Ed25519, Es256};
use jwt_compact::Algorithm;

use crate::signature::rsa::{Hash, RsaVerifier};

/// The JWS algorithms wsgate accepts (RFC 7518 §3 and RFC 8037 §3.1 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
}

/// The key type an algorithm needs (JWK `kty`, and `crv` where there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    P256,
    P384,
    P521,
    Ed25519,
}

impl JwsAlgorithm {
    /// Every accepted algorithm.
    pub const ALL: [JwsAlgorithm; 10] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Es256,
        Self::Es384,
        Self::Es512,
        Self::EdDsa,
    ];

    /// The algorithm named exactly `name` (case-sensitive, as RFC 7515 requires), if accepted.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The registered name, as it appears in a JWS header or a JWK `alg`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The key family this algorithm verifies with: for ECDSA the curve RFC 7518 §3.4 binds
    /// to it (ES256 P-256, ES384 P-384, ES512 P-521), so no key verifies another curve's
    /// algorithm.
    pub fn family(self) -> KeyFamily {
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => {
                KeyFamily::Rsa
            }
            Self::Es256 => KeyFamily::P256,
            Self::Es384 => KeyFamily::P384,
            Self::Es512 => KeyFamily::P521,
            Self::EdDsa => KeyFamily::Ed25519,
        }
    }

    /// Whether the module's own backends verify this algorithm (all but ES384 and ES512,
    /// which only a host verifier checks).
    pub fn module_verifies(self) -> bool {
        !matches!(self, Self::Es384 | Self::Es512)
    }

    /// Hash and padding of an RSA algorithm: `(hash, pss)`.
    fn rsa(self) -> Option<(Hash, bool)> {
        match self {
            Self::Rs256 => Some((Hash::Sha256, false)),
            Self::Rs384 => Some((Hash::Sha384, false)),
            Self::Rs512 => Some((Hash::Sha512, false)),
            Self::Ps256 => Some((Hash::Sha256, true)),
            Self::Ps384 => Some((Hash::Sha384, true)),
            Self::Ps512 => Some((Hash::Sha512, true)),
            Self::Es256 | Self::Es384 | Self::Es512 | Self::EdDsa => None,
        }
    }
}

/// Smallest RSA modulus wsgate verifies with (RFC 7518 §3.3, §3.5).
pub const MIN_RSA_MODULUS_BITS: usize = 2048;

/// The length in bits of a big-endian modulus, leading zero bytes not counted.
pub fn rsa_modulus_bits(modulus: &[u8]) -> usize {
    let significant = modulus.iter().position(|&byte| byte != 0);
    significant.map_or(0, |first| {
        let leading = modulus
            .get(first)
            .map_or(0, |byte| byte.leading_zeros() as usize);
        (modulus.len() - first) * 8 - leading
    })
}

/// A public key ready to verify signatures: in the module backend's own representation, and
/// for RSA and the NIST curves also as the DER SubjectPublicKeyInfo a host verifier takes
/// (for P-384 and P-521, only that).
#[derive(Clone)]
pub struct VerifyingKey {
    backend: Backend,
    spki: Option<Box<[u8]>>,
}

#[derive(Clone)]
enum Backend {
    Rsa(Box<RsaVerifier>),
    P256(<Es256 as Algorithm>::VerifyingKey),
    Ed25519(<Ed25519 as Algorithm>::VerifyingKey),
    /// A P-384 or P-521 key: no arithmetic in the module, its SubjectPublicKeyInfo only. Its
    /// point is checked by the host when it parses the key (BoringSSL refuses a point off
    /// the curve), and until a host verifies with it, nothing does.
    HostOnly(KeyFamily),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VerifyingKey").field(&self.family()).finish()
    }
}

/// Why key material could not become a [`VerifyingKey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// RSA modulus shorter than [`MIN_RSA_MODULUS_BITS`].
    WeakRsaModulus { bits: usize },
    /// The backend refused the material (bad exponent, point not on the curve, wrong length).
    Rejected(String),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WeakRsaModulus { bits } => write!(
                f,
                "RSA modulus has {bits} bits; {MIN_RSA_MODULUS_BITS} is the minimum"
            ),
            Self::Rejected(why) => f.write_str(why),
        }
    }
}

impl VerifyingKey {
    /// An RSA key from its big-endian modulus and public exponent.
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Result<Self, KeyError> {
        let bits = rsa_modulus_bits(modulus);
        if bits < MIN_RSA_MODULUS_BITS {
            return Err(KeyError::WeakRsaModulus { bits });
        }
        let backend = RsaVerifier::new(modulus, exponent)
            .map(|key| Backend::Rsa(Box::new(key)))
            .map_err(|error| KeyError::Rejected(error.to_string()))?;
        Ok(VerifyingKey {
            backend,
            spki: host_form::rsa_spki(modulus, exponent).map(Vec::into_boxed_slice),
        })
    }

    /// A P-256 key from its affine coordinates (32 bytes each).
    pub fn p256(x: &[u8], y: &[u8]) -> Result<Self, KeyError> {
        if x.len() != 32 || y.len() != 32 {
            return Err(KeyError::Rejected(
                "a P-256 coordinate must be 32 bytes".to_owned(),
            ));
        }
        // SEC1's uncompressed form, 04 || x || y: the backend checks the point is on the
        // curve (and not the identity).
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(4);
        sec1.extend_from_slice(x);
        sec1.extend_from_slice(y);
        // The backend crate's own constructor, not jwt-compact's `from_slice`, which wraps
        // its error in `anyhow` (with what it drags in, 44 KB of module for an error message).
        let backend = <Es256 as Algorithm>::VerifyingKey::from_sec1_bytes(&sec1)
            .map(Backend::P256)
            .map_err(|_| KeyError::Rejected("not a point on P-256".to_owned()))?;
        Ok(VerifyingKey {
            backend,
            spki: host_form::ec_spki(KeyFamily::P256, x, y).map(Vec::into_boxed_slice),
        })
    }

    /// A P-384 (`family` [`KeyFamily::P384`], 48-byte coordinates) or P-521
    /// ([`KeyFamily::P521`], 66-byte) key from its affine coordinates, for a host verifier.
    pub fn host_ec(family: KeyFamily, x: &[u8], y: &[u8]) -> Result<Self, KeyError> {
        let (width, name) = match family {
            KeyFamily::P384 => (48, "P-384"),
            KeyFamily::P521 => (66, "P-521"),
            _ => return Err(KeyError::Rejected("not a host-only curve".to_owned())),
        };
        if x.len() != width || y.len() != width {
            return Err(KeyError::Rejected(format!(
                "a {name} coordinate must be {width} bytes"
            )));
        }
        let spki = host_form::ec_spki(family, x, y)
            .ok_or_else(|| KeyError::Rejected(format!("no DER form of the {name} key")))?;
        Ok(VerifyingKey {
            backend: Backend::HostOnly(family),
            spki: Some(spki.into_boxed_slice()),
        })
    }

    /// Whether the module's own backends can verify with this key (not for P-384 and
    /// P-521, which only a host verifier checks).
    pub fn module_verifies(&self) -> bool {
        !matches!(self.backend, Backend::HostOnly(_))
    }

    /// An Ed25519 key from its 32-byte encoding.
    pub fn ed25519(x: &[u8]) -> Result<Self, KeyError> {
        let bytes: &[u8; 32] = x
            .try_into()
            .map_err(|_| KeyError::Rejected("an Ed25519 key must be 32 bytes".to_owned()))?;
        let backend = <Ed25519 as Algorithm>::VerifyingKey::from_bytes(bytes)
            .map(Backend::Ed25519)
            .map_err(|_| KeyError::Rejected("not a point on Ed25519".to_owned()))?;
        Ok(VerifyingKey {
            backend,
            spki: None,
        })
    }

    /// The family of this key.
    pub fn family(&self) -> KeyFamily {
        match &self.backend {
            Backend::Rsa(_) => KeyFamily::Rsa,
            Backend::P256(_) => KeyFamily::P256,
            Backend::Ed25519(_) => KeyFamily::Ed25519,
            Backend::HostOnly(family) => *family,
        }
    }

    /// The key as a DER SubjectPublicKeyInfo, for a host verifier (RSA and NIST curve keys).
    pub fn spki(&self) -> Option<&[u8]> {
        self.spki.as_deref()
    }

    /// Whether `signature` is a valid `alg` signature of `message` under this key.
    ///
    /// A key used with an algorithm of another family is simply `false`, and so is every
    /// P-384 and P-521 signature: the module has no arithmetic for them.
    pub fn verify(&self, alg: JwsAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        match (&self.backend, alg.rsa()) {
            (Backend::Rsa(key), Some((hash, false))) => {
                key.verify_pkcs1v15(hash, message, signature)
            }
            (Backend::Rsa(key), Some((hash, true))) => key.verify_pss(hash, message, signature),
            (Backend::P256(key), None) if alg == JwsAlgorithm::Es256 => {
                <Es256 as Algorithm>::Signature::from_slice(signature)
                    .is_ok_and(|signature| Es256.verify_signature(&signature, key, message))
            }
            (Backend::Ed25519(key), None) if alg == JwsAlgorithm::EdDsa => {
                <Ed25519 as Algorithm>::Signature::from_slice(signature)
                    .is_ok_and(|signature| Ed25519.verify_signature(&signature, key, message))
            }
            _ => false,
        }
    }
}

/// Which code verifies signatures (the `crypto` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Crypto {
    /// The host's verifier for each algorithm whose self-test it passes; the module's for
    /// the rest.
    #[default]
    Auto,
    /// The host's verifier, which must pass its self-test for RS256, RS384, RS512, ES256,
    /// ES384 and ES512, or the plugin does not start.
    Host,
    /// The module's own verifiers only.
    Wasm,
}

impl Crypto {
    /// The setting named `name`: `auto`, `host` or `wasm`.
    pub fn from_name(name: &str) -> Option<Crypto> {
        match name {
            "auto" => Some(Crypto::Auto),
            "host" => Some(Crypto::Host),
            "wasm" => Some(Crypto::Wasm),
            _ => None,
        }
    }
}

/// Who does a verification's arithmetic. The pipeline asks it for each candidate key; the
/// module's own backends ([`InModule`]) are the default, and the glue may offer the host's.
pub trait Verifier {
    /// Whether `signature` is a valid `alg` signature of `message` under `key`.
    fn verify(
        &self,
        key: &VerifyingKey,
        alg: JwsAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool;
}

/// The module's own backends: [`VerifyingKey::verify`].
#[derive(Debug, Clone, Copy, Default)]
pub struct InModule;

impl Verifier for InModule {
    fn verify(
        &self,
        key: &VerifyingKey,
        alg: JwsAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        key.verify(alg, message, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in JwsAlgorithm::ALL {
            assert_eq!(JwsAlgorithm::from_name(alg.name()), Some(alg));
        }
        for name in [
            "none", "None", "NONE", "nOnE", "HS256", "rs256", "es384", "ES256K", "", "EDDSA",
        ] {
            assert_eq!(JwsAlgorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn short_rsa_modulus_is_refused_before_the_backend_sees_it() {
        let mut modulus = vec![0u8; 1]; // leading zero byte does not count
        modulus.extend(std::iter::repeat(0xff).take(128)); // 1024 bits
        assert_eq!(
            VerifyingKey::rsa(&modulus, &[1, 0, 1]).unwrap_err(),
            KeyError::WeakRsaModulus { bits: 1024 }
        );
        let mut almost = vec![0x7f];
        almost.extend(std::iter::repeat(0xff).take(255)); // 2047 bits
        assert_eq!(
            VerifyingKey::rsa(&almost, &[1, 0, 1]).unwrap_err(),
            KeyError::WeakRsaModulus { bits: 2047 }
        );
    }

    #[test]
    fn rsa_exponent_one_is_refused() {
        let modulus: Vec<u8> = std::iter::repeat(0xc5).take(256).collect();
        assert!(matches!(
            VerifyingKey::rsa(&modulus, &[1]),
            Err(KeyError::Rejected(_))
        ));
    }

    #[test]
    fn p256_point_off_the_curve_is_refused() {
        assert!(VerifyingKey::p256(&[1; 32], &[2; 32]).is_err());
        assert!(VerifyingKey::p256(&[1; 31], &[2; 32]).is_err());
    }

    #[test]
    fn signatures_of_the_wrong_length_are_false_not_a_panic() {
        use testbed::keys::{ED25519, P256, RSA_2048};
        let jwk = |key: &testbed::keys::TestKey| key.public_jwk("k");
        let b = |v: &serde_json::Value, name: &str| {
            crate::encoding::base64url::decode(v[name].as_str().unwrap()).unwrap()
        };
        let rsa = jwk(&RSA_2048);
        let ec = jwk(&P256);
        let ed = jwk(&ED25519);
        let keys = [
            (
                VerifyingKey::rsa(&b(&rsa, "n"), &b(&rsa, "e")).unwrap(),
                JwsAlgorithm::Rs256,
            ),
            (
                VerifyingKey::rsa(&b(&rsa, "n"), &b(&rsa, "e")).unwrap(),
                JwsAlgorithm::Ps256,
            ),
            (
                VerifyingKey::p256(&b(&ec, "x"), &b(&ec, "y")).unwrap(),
                JwsAlgorithm::Es256,
            ),
            (
                VerifyingKey::ed25519(&b(&ed, "x")).unwrap(),
                JwsAlgorithm::EdDsa,
            ),
        ];
        for (key, alg) in &keys {
            for length in [0, 1, 31, 63, 65, 255, 257, 1024] {
                assert!(
                    !key.verify(*alg, b"message", &vec![7u8; length]),
                    "{alg:?} {length}"
                );
            }
        }
    }

    #[test]
    fn p384_and_p521_keys_need_their_exact_width_and_only_a_host_verifies_them() {
        for (family, width, alg) in [
            (KeyFamily::P384, 48, JwsAlgorithm::Es384),
            (KeyFamily::P521, 66, JwsAlgorithm::Es512),
        ] {
            let key = VerifyingKey::host_ec(family, &vec![1; width], &vec![2; width]).unwrap();
            assert_eq!(key.family(), family);
            assert!(!key.module_verifies() && !alg.module_verifies());
            assert!(key.spki().is_some());
            assert!(!key.verify(alg, b"m", &vec![1; 2 * width]));
            for wrong in [width - 1, width + 1, 32] {
                assert!(VerifyingKey::host_ec(family, &vec![1; wrong], &vec![2; width]).is_err());
            }
        }
        assert!(VerifyingKey::host_ec(KeyFamily::P256, &[1; 32], &[2; 32]).is_err());
        assert_eq!(JwsAlgorithm::Es384.family(), KeyFamily::P384);
        assert_eq!(JwsAlgorithm::Es512.family(), KeyFamily::P521);
    }

    #[test]
    fn ed25519_wrong_length_is_refused() {
        assert!(VerifyingKey::ed25519(&[9; 31]).is_err());
    }
}
