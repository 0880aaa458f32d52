//! JSON Web Key Sets (RFC 7517 §5): which keys a token may be verified with.
//!
//! A key set is parsed once into [`KeySet`]; keys that wsgate will not use are left out and
//! reported as [`SkippedKey`]s so the operator can see why. A key is left out when:
//! - `use` is present and is not `sig`, or `key_ops` is present without `verify`;
//! - its `kty`/`crv` is not one wsgate verifies with (RSA, EC P-256, P-384 and P-521, OKP
//!   Ed25519), or is P-384 or P-521 where no host verifier checks them
//!   ([`KeyLimits::p384`], [`KeyLimits::p521`]); symmetric (`oct`) keys are never used, so
//!   HS* can never be accepted from a key set;
//! - its `alg` is present but is not an accepted algorithm of the key's family;
//! - its material is unusable: not canonical base64url, an RSA modulus under 2048 bits or
//!   over [`KeyLimits::max_rsa_key_bits`], an exponent the backend refuses, a coordinate not
//!   of its curve's exact width (32, 48 or 66 bytes), a P-256 point not on the curve (a
//!   P-384 or P-521 point is checked by the host that verifies with it);
//! - its `kid` is shared with another entry that passes the cheap checks (members,
//!   encodings, sizes), even one whose material later proves unusable: which of them the
//!   issuer meant is ambiguous, so none of them is trusted;
//! - it comes after the first [`MAX_KEYS`] usable keys, or after the first
//!   [`MAX_KEY_ENTRIES`] entries: these are counted, not prepared.
//!
//! A set with no usable key at all is an error, since every token would be refused.
//!
//! The bounds keep what a key set costs small whatever the issuer serves: a document is
//! checked entry by entry cheaply (JSON, base64url, sizes) before any key is prepared for
//! verification, and at most [`MAX_KEYS`] keys are prepared, so the worst document that
//! `max_document_bytes` admits costs milliseconds per VM, and no key can make a
//! verification cost more than a [`KeyLimits::max_rsa_key_bits`] modulus does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::encoding::base64url;
use crate::encoding::strict_json;
use crate::signature::{
    rsa_modulus_bits, JwsAlgorithm, KeyFamily, VerifyingKey, MIN_RSA_MODULUS_BITS,
};

/// Most usable keys kept from one document; later ones are counted in
/// [`KeyReport::beyond_limits`].
pub const MAX_KEYS: usize = 100;
/// Most entries of `keys` looked at; later ones are counted in [`KeyReport::beyond_limits`].
pub const MAX_KEY_ENTRIES: usize = 10 * MAX_KEYS;
/// Default largest RSA modulus (`max_rsa_key_bits`).
pub const DEFAULT_MAX_RSA_KEY_BITS: usize = 4096;
/// The most `max_rsa_key_bits` may be raised to.
pub const MAX_RSA_KEY_BITS_LIMIT: usize = 8192;
/// Entries of a "no usable key" error that are spelled out.
const LISTED_IN_ERRORS: usize = 10;

/// What a key set may make wsgate do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    /// Largest RSA modulus, in bits, that a key may have (`max_rsa_key_bits`): a larger one
    /// costs more to prepare and to verify with than any issuer needs.
    pub max_rsa_key_bits: usize,
    /// Whether P-384 keys are kept: only a host verifier checks ES384, so they are left out
    /// where the host's did not pass its self-test (the module has no P-384 arithmetic).
    pub p384: bool,
    /// Whether P-521 keys are kept, as [`KeyLimits::p384`] for ES512.
    pub p521: bool,
}

impl KeyLimits {
    /// Whether keys of `family` are kept (P-384 and P-521 only where a host verifies them).
    pub fn keeps(self, family: KeyFamily) -> bool {
        match family {
            KeyFamily::P384 => self.p384,
            KeyFamily::P521 => self.p521,
            KeyFamily::Rsa | KeyFamily::P256 | KeyFamily::Ed25519 => true,
        }
    }
}

impl Default for KeyLimits {
    fn default() -> Self {
        KeyLimits {
            max_rsa_key_bits: DEFAULT_MAX_RSA_KEY_BITS,
            p384: true,
            p521: true,
        }
    }
}

/// What a document held besides its usable keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// Keys left out, in document order, and why.
    pub skipped: Vec<SkippedKey>,
    /// Entries not looked at, or usable keys not kept, past [`MAX_KEY_ENTRIES`] or
    /// [`MAX_KEYS`].
    pub beyond_limits: usize,
}

impl KeyReport {
    /// Entries of the document that give no usable key.
    pub fn ignored(&self) -> usize {
        self.skipped.len() + self.beyond_limits
    }

    /// One line per skipped key, then [`beyond_limits_warning`](Self::beyond_limits_warning).
    pub fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.skipped
            .iter()
            .map(|key| format!("ignoring {key}"))
            .chain(self.beyond_limits_warning())
    }

    /// The line for the keys beyond the limits, when there are any.
    pub fn beyond_limits_warning(&self) -> Option<String> {
        (self.beyond_limits > 0).then(|| {
            format!(
                "{} more key(s) beyond the limits: wsgate keeps the first {MAX_KEYS} usable \
                 keys of the first {MAX_KEY_ENTRIES} entries",
                self.beyond_limits
            )
        })
    }
}

/// One usable verification key.
#[derive(Debug, Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<JwsAlgorithm>,
    key: VerifyingKey,
}

impl Jwk {
    /// The key id, if the set gave one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether this key may verify a token signed with `alg`: same family, and the JWK's own
    /// `alg` (when present) names exactly `alg`.
    pub fn fits(&self, alg: JwsAlgorithm) -> bool {
        self.key.family() == alg.family() && self.alg.map_or(true, |own| own == alg)
    }

    /// The backend key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// A key that was present in the document but will not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array.
    pub index: usize,
    /// Its `kid`, when it had a string one.
    pub kid: Option<String>,
    /// Why it is not used.
    pub why: String,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key {} (kid {kid:?}): {}", self.index, self.why),
            None => write!(f, "key {}: {}", self.index, self.why),
        }
    }
}

/// Why a document is not a usable key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// Not a JSON object (or not strict JSON).
    NotJson(String),
    /// No `keys` array.
    MissingKeys,
    /// Keys were there, but none is usable.
    NoUsableKey(Vec<SkippedKey>),
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(why) => write!(f, "not a JSON key set: {why}"),
            Self::MissingKeys => f.write_str("no \"keys\" array"),
            Self::NoUsableKey(skipped) if skipped.is_empty() => f.write_str("\"keys\" is empty"),
            Self::NoUsableKey(skipped) => {
                f.write_str("no usable key: ")?;
                for (position, key) in skipped.iter().take(LISTED_IN_ERRORS).enumerate() {
                    if position > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{key}")?;
                }
                match skipped.len().checked_sub(LISTED_IN_ERRORS) {
                    Some(more) if more > 0 => write!(f, "; and {more} more"),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// A key set with the version it was published under ([`crate::keys::jwks_cache`]; 0 for an
/// inline set), so that what was verified with it can be tied to it (the token cache).
#[derive(Debug, Clone)]
pub struct VersionedKeys {
    pub version: u64,
    pub keys: std::rc::Rc<KeySet>,
}

/// The usable keys of one JWKS document.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a JWKS document within `limits`. On success, also reports what was left out.
    pub fn parse(document: &[u8], limits: KeyLimits) -> Result<(KeySet, KeyReport), JwksError> {
        let object = strict_json::parse_object(document)
            .map_err(|error| JwksError::NotJson(error.to_string()))?;
        Self::from_object(&object, limits)
    }

    /// Builds a key set from an already parsed JWKS object, within `limits`.
    pub fn from_object(
        object: &Map<String, Value>,
        limits: KeyLimits,
    ) -> Result<(KeySet, KeyReport), JwksError> {
        let Some(Value::Array(entries)) = object.get("keys") else {
            return Err(JwksError::MissingKeys);
        };
        let mut report = KeyReport {
            beyond_limits: entries.len().saturating_sub(MAX_KEY_ENTRIES),
            ..KeyReport::default()
        };

        // Cheap checks first, for every entry looked at: nothing is prepared yet.
        let mut candidates = Vec::new();
        for (index, entry) in entries.iter().take(MAX_KEY_ENTRIES).enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
            match Candidate::parse(entry, limits) {
                Ok(candidate) => candidates.push((index, candidate)),
                Err(why) => report.skipped.push(SkippedKey { index, kid, why }),
            }
        }

        let mut kid_count: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, candidate) in &candidates {
            if let Some(kid) = &candidate.kid {
                *kid_count.entry(kid).or_default() += 1;
            }
        }
        let ambiguous: BTreeSet<String> = kid_count
            .into_iter()
            .filter(|&(_, count)| count > 1)
            .map(|(kid, _)| kid.to_owned())
            .collect();

        // Then the keys are prepared, at most MAX_KEYS of them.
        let mut keys = Vec::new();
        for (index, candidate) in candidates {
            let kid = candidate.kid.clone();
            if kid.as_ref().is_some_and(|kid| ambiguous.contains(kid)) {
                let why = "its kid is shared with another key of the set".to_owned();
                report.skipped.push(SkippedKey { index, kid, why });
            } else if keys.len() == MAX_KEYS {
                report.beyond_limits += 1;
            } else {
                match candidate.prepare() {
                    Ok(key) => keys.push(key),
                    Err(why) => report.skipped.push(SkippedKey { index, kid, why }),
                }
            }
        }
        report.skipped.sort_by_key(|key| key.index);

        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(report.skipped));
        }
        Ok((KeySet { keys }, report))
    }

    /// This set without the P-384 and P-521 keys `limits` leaves out (an inline set, parsed
    /// before the host verifier was known), and how many were left out.
    pub fn within(&self, limits: KeyLimits) -> (KeySet, usize) {
        let keys: Vec<Jwk> = self
            .keys
            .iter()
            .filter(|key| limits.keeps(key.key.family()))
            .cloned()
            .collect();
        let dropped = self.keys.len() - keys.len();
        (KeySet { keys }, dropped)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys a token signed with `alg` and naming `kid` may be verified with: those with
    /// that `kid` when the token names one, else every key that fits `alg`
    /// (as Envoy's `jwt_authn` does for tokens without `kid`).
    pub fn candidates<'a>(
        &'a self,
        alg: JwsAlgorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |key| key.fits(alg) && (kid.is_none() || key.kid() == kid))
    }
}

/// A key that passed every cheap check, not yet prepared for verification.
struct Candidate {
    kid: Option<String>,
    alg: Option<JwsAlgorithm>,
    material: Material,
}

/// Decoded key material.
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// A NIST curve key (P-256, P-384 or P-521).
    Ec {
        family: KeyFamily,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

impl Candidate {
    /// The cheap checks of one `keys` entry: members, encodings and sizes.
    fn parse(entry: &Value, limits: KeyLimits) -> Result<Candidate, String> {
        let Value::Object(jwk) = entry else {
            return Err("not a JSON object".to_owned());
        };
        let kid = match jwk.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err("\"kid\" is not a string".to_owned()),
        };
        match jwk.get("use") {
            None => {}
            Some(Value::String(usage)) if usage == "sig" => {}
            Some(other) => return Err(format!("\"use\" is {other}, not \"sig\"")),
        }
        if let Some(ops) = jwk.get("key_ops") {
            let verifies = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
            if !verifies {
                return Err("\"key_ops\" does not allow \"verify\"".to_owned());
            }
        }
        let kty = string_member(jwk, "kty")?;
        let material = match kty {
            "RSA" => {
                let n = bytes_member(jwk, "n")?;
                let bits = rsa_modulus_bits(&n);
                if bits < MIN_RSA_MODULUS_BITS {
                    return Err(format!(
                        "RSA modulus has {bits} bits; {MIN_RSA_MODULUS_BITS} is the minimum"
                    ));
                }
                if bits > limits.max_rsa_key_bits {
                    return Err(format!(
                        "RSA modulus has {bits} bits; max_rsa_key_bits is {}",
                        limits.max_rsa_key_bits
                    ));
                }
                Material::Rsa {
                    n,
                    e: bytes_member(jwk, "e")?,
                }
            }
            "EC" => {
                let (curve, family) = match string_member(jwk, "crv")? {
                    "P-256" => ("P-256", KeyFamily::P256),
                    "P-384" => ("P-384", KeyFamily::P384),
                    "P-521" => ("P-521", KeyFamily::P521),
                    other => return Err(format!("EC curve {other:?} is not supported")),
                };
                if !limits.keeps(family) {
                    return Err(format!(
                        "EC curve {curve:?} is verified only by the host's verify_signature, \
                         which did not pass its self-test here (or crypto is \"wasm\")"
                    ));
                }
                Material::Ec {
                    family,
                    x: bytes_member(jwk, "x")?,
                    y: bytes_member(jwk, "y")?,
                }
            }
            "OKP" => match string_member(jwk, "crv")? {
                "Ed25519" => Material::Ed25519 {
                    x: bytes_member(jwk, "x")?,
                },
                other => return Err(format!("OKP curve {other:?} is not supported")),
            },
            "oct" => return Err("symmetric keys are never used".to_owned()),
            other => return Err(format!("key type {other:?} is not supported")),
        };
        let alg = match jwk.get("alg") {
            None => None,
            Some(Value::String(name)) => match JwsAlgorithm::from_name(name) {
                Some(alg) if alg.family() == material.family() => Some(alg),
                _ => return Err(format!("\"alg\" {name:?} does not fit a {kty} key")),
            },
            Some(_) => return Err("\"alg\" is not a string".to_owned()),
        };
        Ok(Candidate { kid, alg, material })
    }

    /// The key ready to verify with: Montgomery constants, a point checked on its curve.
    fn prepare(self) -> Result<Jwk, String> {
        let key = match &self.material {
            Material::Rsa { n, e } => VerifyingKey::rsa(n, e),
            Material::Ec {
                family: KeyFamily::P256,
                x,
                y,
            } => VerifyingKey::p256(x, y),
            Material::Ec { family, x, y } => VerifyingKey::host_ec(*family, x, y),
            Material::Ed25519 { x } => VerifyingKey::ed25519(x),
        }
        .map_err(|error| error.to_string())?;
        Ok(Jwk {
            kid: self.kid,
            alg: self.alg,
            key,
        })
    }
}

impl Material {
    fn family(&self) -> KeyFamily {
        match self {
            Material::Rsa { .. } => KeyFamily::Rsa,
            Material::Ec { family, .. } => *family,
            Material::Ed25519 { .. } => KeyFamily::Ed25519,
        }
    }
}

fn string_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("\"{name}\" is missing or not a string"))
}

fn bytes_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    base64url::decode(string_member(jwk, name)?)
        .ok_or_else(|| format!("\"{name}\" is not canonical base64url"))
}

impl KeyFamily {
    /// The JWK `kty` of this family.
    pub fn kty(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::P256 | Self::P384 | Self::P521 => "EC",
            Self::Ed25519 => "OKP",
        }
    }
}

#[cfg(test)]
mod tests;
