//! Signing keys and a compact-JWS signer for tests and the demo.
//!
//! Keys are generated once per process. [`TestKey::sign`] signs exactly the header and
//! claims it is given, so tests can write hostile tokens (odd `alg`, duplicate members,
//! missing claims) as easily as good ones.

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{
    Ed25519, Es256, ModulusBits, Rsa, RsaPrivateKey, RsaPublicKey, SigningKey as _,
};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use rand_core::{OsRng, RngCore as _};
use serde_json::{json, Value};

type P256Signing = <Es256 as Algorithm>::SigningKey;
type Ed25519Signing = <Ed25519 as Algorithm>::SigningKey;

/// A private key of one family.
pub enum TestKey {
    Rsa(Box<RsaPrivateKey>),
    P256(Box<P256Signing>),
    /// ES384's curve (RustCrypto's `p384`: jwt-compact has no ES384).
    P384(Box<p384::ecdsa::SigningKey>),
    /// ES512's curve (RustCrypto's `p521`).
    P521(Box<p521::ecdsa::SigningKey>),
    Ed25519(Box<Ed25519Signing>),
}

/// A 2048-bit RSA key.
pub static RSA_2048: LazyLock<TestKey> = LazyLock::new(|| TestKey::rsa(ModulusBits::TwoKibibytes));
/// A second, unrelated 2048-bit RSA key (for "signed by someone else" and rotation).
pub static RSA_2048_OTHER: LazyLock<TestKey> =
    LazyLock::new(|| TestKey::rsa(ModulusBits::TwoKibibytes));
/// A P-256 key.
pub static P256: LazyLock<TestKey> = LazyLock::new(TestKey::p256);
/// A P-384 key.
pub static P384: LazyLock<TestKey> =
    LazyLock::new(|| TestKey::P384(Box::new(p384::ecdsa::SigningKey::random(&mut OsRng))));
/// A P-521 key.
pub static P521: LazyLock<TestKey> =
    LazyLock::new(|| TestKey::P521(Box::new(p521::ecdsa::SigningKey::random(&mut OsRng))));
/// An Ed25519 key.
pub static ED25519: LazyLock<TestKey> = LazyLock::new(TestKey::ed25519);

impl TestKey {
    /// A fresh RSA key of the given size.
    pub fn rsa(bits: ModulusBits) -> Self {
        let (private, _) = Rsa::generate(&mut OsRng, bits).expect("RSA key generation");
        Self::Rsa(Box::new(private.into_inner()))
    }

    /// A fresh RSA key whose modulus has exactly `bits` bits, any size the `rsa` crate
    /// generates (2049, 2055, 2072: sizes that are not a multiple of 32 or 8).
    pub fn rsa_of_bits(bits: usize) -> Self {
        let private = RsaPrivateKey::new(&mut OsRng, bits).expect("RSA key generation");
        Self::Rsa(Box::new(private))
    }

    /// A fresh P-256 key.
    pub fn p256() -> Self {
        Self::P256(Box::new(P256Signing::random(&mut OsRng)))
    }

    /// A fresh Ed25519 key.
    pub fn ed25519() -> Self {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let secret = Ed25519Signing::from_slice(&seed).expect("a 32-byte Ed25519 seed");
        Self::Ed25519(Box::new(secret))
    }

    /// A key from a private JWK (as [`TestKey::private_jwk`] writes it).
    pub fn from_private_jwk(jwk: &Value) -> Result<Self, String> {
        let scalar = || {
            URL_SAFE_NO_PAD
                .decode(jwk["d"].as_str().unwrap_or_default())
                .map_err(|e| e.to_string())
        };
        match jwk["crv"].as_str() {
            Some("P-384") => {
                return p384::ecdsa::SigningKey::from_slice(&scalar()?)
                    .map(|key| Self::P384(Box::new(key)))
                    .map_err(|e| e.to_string())
            }
            Some("P-521") => {
                return p521::ecdsa::SigningKey::from_slice(&scalar()?)
                    .map(|key| Self::P521(Box::new(key)))
                    .map_err(|e| e.to_string())
            }
            _ => {}
        }
        let jwk: JsonWebKey<'_> = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
        match &jwk {
            JsonWebKey::Rsa { .. } => {
                RsaPrivateKey::try_from(&jwk).map(|key| Self::Rsa(Box::new(key)))
            }
            JsonWebKey::EllipticCurve { .. } => {
                P256Signing::try_from(&jwk).map(|key| Self::P256(Box::new(key)))
            }
            JsonWebKey::KeyPair { .. } => {
                Ed25519Signing::try_from(&jwk).map(|key| Self::Ed25519(Box::new(key)))
            }
            JsonWebKey::Symmetric { .. } => {
                return Err("symmetric keys are not signing keys here".to_owned())
            }
            _ => return Err("unsupported key".to_owned()),
        }
        .map_err(|e| e.to_string())
    }

    /// The private JWK of this key (keep it out of anything but demos and tests).
    pub fn private_jwk(&self) -> Value {
        let jwk = match self {
            Self::Rsa(key) => serde_json::to_value(JsonWebKey::from(key.as_ref())),
            Self::P256(key) => serde_json::to_value(JsonWebKey::from(key.as_ref())),
            Self::P384(key) => {
                let mut jwk = self.public_jwk("");
                jwk["d"] = URL_SAFE_NO_PAD.encode(key.to_bytes()).into();
                Ok(jwk)
            }
            Self::P521(key) => {
                let mut jwk = self.public_jwk("");
                jwk["d"] = URL_SAFE_NO_PAD.encode(key.to_bytes()).into();
                Ok(jwk)
            }
            Self::Ed25519(key) => serde_json::to_value(JsonWebKey::from(key.as_ref())),
        };
        jwk.expect("JWK serialises")
    }

    /// The algorithm this key signs with unless a test says otherwise.
    pub fn default_alg(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RS256",
            Self::P256(_) => "ES256",
            Self::P384(_) => "ES384",
            Self::P521(_) => "ES512",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    /// The public JWK, with `kid` and `use: sig`.
    pub fn public_jwk(&self, kid: &str) -> Value {
        let jwk = match self {
            Self::Rsa(key) => {
                let public = RsaPublicKey::from(key.as_ref());
                serde_json::to_value(JsonWebKey::from(&public))
            }
            Self::P256(key) => serde_json::to_value(JsonWebKey::from(key.verifying_key())),
            Self::P384(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                let (x, y) = (point.x().map(|x| x.to_vec()), point.y().map(|y| y.to_vec()));
                Ok(ec_jwk(
                    "P-384",
                    &x.unwrap_or_default(),
                    &y.unwrap_or_default(),
                ))
            }
            Self::P521(key) => {
                let point = p521::ecdsa::VerifyingKey::from(key.as_ref()).to_encoded_point(false);
                let (x, y) = (point.x().map(|x| x.to_vec()), point.y().map(|y| y.to_vec()));
                Ok(ec_jwk(
                    "P-521",
                    &x.unwrap_or_default(),
                    &y.unwrap_or_default(),
                ))
            }
            Self::Ed25519(key) => serde_json::to_value(JsonWebKey::from(&key.to_verifying_key())),
        };
        let mut jwk = jwk.expect("JWK serialises");
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        jwk
    }

    /// Signs `header` (`alg` is added unless present) and `claims` as a compact JWS.
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let mut header = header;
        if header.get("alg").is_none() {
            header["alg"] = self.default_alg().into();
        }
        let alg = header["alg"]
            .as_str()
            .unwrap_or(self.default_alg())
            .to_owned();
        self.sign_raw(
            &alg,
            serde_json::to_string(&header).expect("header").as_bytes(),
            serde_json::to_string(claims).expect("claims").as_bytes(),
        )
    }

    /// Signs exactly these header and payload bytes with `alg`'s arithmetic.
    /// An `alg` that does not fit this key family signs as [`Self::default_alg`].
    pub fn sign_raw(&self, alg: &str, header: &[u8], payload: &[u8]) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self.signature(alg, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The raw signature of `message`. A P-384 or P-521 key signs the digest of the hash
    /// `alg` names (`ES256`: SHA-256, and so on), so that tests can make a curve sign with
    /// another algorithm's hash; its own algorithm's otherwise, or when the curve cannot.
    pub fn signature(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        use p384::ecdsa::signature::hazmat::PrehashSigner as _;
        use sha2::Digest as _;
        let digest = |alg: &str, own: &str| match if alg.starts_with("ES") { alg } else { own } {
            "ES256" => sha2::Sha256::digest(message).to_vec(),
            "ES384" => sha2::Sha384::digest(message).to_vec(),
            _ => sha2::Sha512::digest(message).to_vec(),
        };
        match self {
            Self::P384(key) => {
                let signature: p384::ecdsa::Signature = key
                    .sign_prehash(&digest(alg, "ES384"))
                    .expect("a P-384 signature");
                return signature.to_bytes().to_vec();
            }
            Self::P521(key) => {
                let signature: p521::ecdsa::Signature = key
                    .sign_prehash(&digest(alg, "ES512"))
                    .or_else(|_| key.sign_prehash(&digest("ES512", "ES512")))
                    .expect("a P-521 signature");
                return signature.to_bytes().to_vec();
            }
            _ => {}
        }
        match self {
            Self::Rsa(key) => {
                let rsa: Rsa = alg.parse().unwrap_or(Rsa::rs256());
                rsa.sign(key, message).as_bytes().into_owned()
            }
            Self::P256(key) => Es256.sign(key, message).as_bytes().into_owned(),
            Self::Ed25519(key) => Ed25519.sign(key, message).as_bytes().into_owned(),
            Self::P384(_) | Self::P521(_) => Vec::new(),
        }
    }
}

/// A public EC JWK on `crv` from its coordinates.
fn ec_jwk(crv: &str, x: &[u8], y: &[u8]) -> Value {
    json!({"kty": "EC", "crv": crv, "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
}

/// A JWKS document holding the public halves of `keys`, each with its `kid`.
pub fn jwks(keys: &[(&TestKey, &str)]) -> Value {
    json!({ "keys": keys.iter().map(|(key, kid)| key.public_jwk(kid)).collect::<Vec<_>>() })
}

/// A public RSA JWK whose modulus has exactly `bits` bits: odd, top bit set, the rest a
/// fixed pattern. No private key exists for it; it is for tests of key-size bounds and of
/// what preparing a key costs, never for signatures.
pub fn rsa_jwk_of_bits(bits: usize, kid: &str) -> Value {
    let mut modulus = vec![0x5au8; bits.div_ceil(8)];
    if let Some(first) = modulus.first_mut() {
        let unused = 8 * bits.div_ceil(8) - bits;
        *first = (0xffu8 >> unused) & !(0x7fu8 >> unused) | 0x01;
    }
    if let Some(last) = modulus.last_mut() {
        *last |= 1;
    }
    json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(&modulus), "e": "AQAB"})
}
