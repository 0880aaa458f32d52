//! JSON Web Key Sets (RFC 7517 §5): which keys a token may be verified with.
//!
//! A key set is parsed once into [`KeySet`]; keys that wsgate will not use are left out and
//! reported as [`SkippedKey`]s so the operator can see why. A key is left out when:
//! - `use` is present and is not `sig`, or `key_ops` is present without `verify`;
//! - its `kty`/`crv` is not one wsgate verifies with (RSA, EC P-256, OKP Ed25519); symmetric
//!   (`oct`) keys are never used, so HS* can never be accepted from a key set;
//! - its `alg` is present but is not an accepted algorithm of the key's family;
//! - its material is unusable: not canonical base64url, an RSA modulus under 2048 bits or
//!   over [`KeyLimits::max_rsa_key_bits`], an exponent the backend refuses, a point not on
//!   the curve;
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
}

impl Default for KeyLimits {
    fn default() -> Self {
        KeyLimits {
            max_rsa_key_bits: DEFAULT_MAX_RSA_KEY_BITS,
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
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { x: Vec<u8>, y: Vec<u8> },
    Ed25519 { x: Vec<u8> },
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
            "EC" => match string_member(jwk, "crv")? {
                "P-256" => Material::P256 {
                    x: bytes_member(jwk, "x")?,
                    y: bytes_member(jwk, "y")?,
                },
                other => return Err(format!("EC curve {other:?} is not supported")),
            },
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
            Material::P256 { x, y } => VerifyingKey::p256(x, y),
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
            Material::P256 { .. } => KeyFamily::P256,
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
            Self::P256 => "EC",
            Self::Ed25519 => "OKP",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testbed::keys::{ED25519, P256, RSA_2048};

    fn set_of(keys: &[Value]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap()
    }

    #[test]
    fn parses_each_supported_family() {
        let doc = set_of(&[
            RSA_2048.public_jwk("r"),
            P256.public_jwk("e"),
            ED25519.public_jwk("o"),
        ]);
        let (set, report) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
        assert_eq!(report, KeyReport::default());
        assert_eq!(set.len(), 3);
        assert_eq!(set.candidates(JwsAlgorithm::Rs256, Some("r")).count(), 1);
        assert_eq!(set.candidates(JwsAlgorithm::Ps512, None).count(), 1);
        assert_eq!(set.candidates(JwsAlgorithm::Es256, Some("r")).count(), 0);
        assert_eq!(set.candidates(JwsAlgorithm::EdDsa, Some("o")).count(), 1);
    }

    fn skipped_reason(mut jwk: Value, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        if let Some(object) = jwk.as_object_mut() {
            edit(object);
        }
        let doc = set_of(&[jwk, P256.public_jwk("keep")]);
        let (set, report) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(report.skipped.len(), 1, "{report:?}");
        report.skipped[0].why.clone()
    }

    #[test]
    fn unusable_keys_are_skipped_with_a_reason() {
        let rsa = || RSA_2048.public_jwk("k");
        assert!(skipped_reason(rsa(), |k| {
            k.insert("use".into(), "enc".into());
        })
        .contains("not \"sig\""));
        assert!(skipped_reason(rsa(), |k| {
            k.insert("key_ops".into(), serde_json::json!(["encrypt"]));
        })
        .contains("key_ops"));
        assert!(skipped_reason(rsa(), |k| {
            k.insert("alg".into(), "ES256".into());
        })
        .contains("does not fit"));
        assert!(skipped_reason(rsa(), |k| {
            k.insert("alg".into(), "HS256".into());
        })
        .contains("does not fit"));
        assert!(skipped_reason(rsa(), |k| {
            k.insert("e".into(), "AQ".into()); // exponent 1
        })
        .contains("exponent"));
        assert!(skipped_reason(rsa(), |k| {
            k.insert("n".into(), base64url::encode(&[0xab; 128]).into());
        })
        .contains("1024 bits"));
        assert!(skipped_reason(rsa(), |k| {
            let n = k["n"].as_str().unwrap().to_owned();
            k.insert("n".into(), format!("{n}=").into());
        })
        .contains("base64url"));
        assert!(
            skipped_reason(serde_json::json!({"kty":"oct","k":"c2VjcmV0"}), |_| {})
                .contains("symmetric")
        );
        assert!(skipped_reason(
            serde_json::json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA"}),
            |_| {}
        )
        .contains("P-384"));
        assert!(skipped_reason(serde_json::json!("a string"), |_| {}).contains("not a JSON object"));
    }

    #[test]
    fn shared_kid_makes_both_keys_unusable() {
        let doc = set_of(&[
            RSA_2048.public_jwk("same"),
            P256.public_jwk("same"),
            ED25519.public_jwk("other"),
        ]);
        let (set, report) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
        assert_eq!(set.len(), 1);
        let skipped = report.skipped.iter().map(|k| k.index).collect::<Vec<_>>();
        assert_eq!(skipped, [0, 1]);
        assert_eq!(set.candidates(JwsAlgorithm::Rs256, Some("same")).count(), 0);
    }

    /// Ambiguity is decided before keys are prepared: an entry with a point off its curve
    /// still makes its `kid` ambiguous, so a good key sharing it is not trusted either.
    #[test]
    fn a_broken_key_sharing_a_kid_makes_it_ambiguous_too() {
        let mut broken = P256.public_jwk("same");
        broken["y"] = base64url::encode(&[0x01; 32]).into();
        let doc = set_of(&[
            RSA_2048.public_jwk("same"),
            broken,
            ED25519.public_jwk("other"),
        ]);
        let (set, report) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
        assert_eq!(set.len(), 1);
        let skipped = report.skipped.iter().map(|k| k.index).collect::<Vec<_>>();
        assert_eq!(skipped, [0, 1]);
    }

    #[test]
    fn documents_without_usable_keys_are_errors() {
        assert_eq!(
            KeySet::parse(b"{}", KeyLimits::default()).unwrap_err(),
            JwksError::MissingKeys
        );
        assert_eq!(
            KeySet::parse(br#"{"keys":{}}"#, KeyLimits::default()).unwrap_err(),
            JwksError::MissingKeys
        );
        assert_eq!(
            KeySet::parse(br#"{"keys":[]}"#, KeyLimits::default())
                .unwrap_err()
                .to_string(),
            "\"keys\" is empty"
        );
        assert!(matches!(
            KeySet::parse(b"[]", KeyLimits::default()),
            Err(JwksError::NotJson(_))
        ));
        assert!(matches!(
            KeySet::parse(b"<html>", KeyLimits::default()),
            Err(JwksError::NotJson(_))
        ));
        let dup = br#"{"keys":[],"keys":[]}"#;
        assert!(matches!(
            KeySet::parse(dup, KeyLimits::default()),
            Err(JwksError::NotJson(_))
        ));
        let err = KeySet::parse(
            &set_of(&[serde_json::json!({"kty":"oct","kid":"h","k":"AA"})]),
            KeyLimits::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no usable key: key 0 (kid \"h\"): symmetric keys are never used"
        );
    }

    #[test]
    fn jwk_alg_pins_the_algorithm() {
        let mut jwk = RSA_2048.public_jwk("pinned");
        jwk["alg"] = "PS256".into();
        let (set, _) = KeySet::parse(&set_of(&[jwk]), KeyLimits::default()).unwrap();
        assert_eq!(
            set.candidates(JwsAlgorithm::Ps256, Some("pinned")).count(),
            1
        );
        assert_eq!(
            set.candidates(JwsAlgorithm::Rs256, Some("pinned")).count(),
            0
        );
    }

    #[test]
    fn rsa_moduli_above_max_rsa_key_bits_are_skipped() {
        use testbed::keys::rsa_jwk_of_bits;
        let parse = |bits: usize, max_rsa_key_bits: usize| {
            let doc = set_of(&[rsa_jwk_of_bits(bits, "k"), P256.public_jwk("keep")]);
            let (set, report) = KeySet::parse(&doc, KeyLimits { max_rsa_key_bits }).unwrap();
            (set.len(), report.skipped.first().map(|key| key.why.clone()))
        };
        assert_eq!(parse(4096, DEFAULT_MAX_RSA_KEY_BITS), (2, None));
        assert_eq!(
            parse(4097, DEFAULT_MAX_RSA_KEY_BITS),
            (
                1,
                Some("RSA modulus has 4097 bits; max_rsa_key_bits is 4096".into())
            )
        );
        assert_eq!(
            parse(65_536, DEFAULT_MAX_RSA_KEY_BITS).1,
            Some("RSA modulus has 65536 bits; max_rsa_key_bits is 4096".into())
        );
        assert_eq!(parse(8192, MAX_RSA_KEY_BITS_LIMIT), (2, None));
        assert_eq!(parse(2049, DEFAULT_MAX_RSA_KEY_BITS), (2, None));
    }

    #[test]
    fn at_most_max_keys_are_kept_and_the_rest_counted() {
        let keys: Vec<Value> = (0..MAX_KEYS + 50)
            .map(|i| P256.public_jwk(&format!("k{i}")))
            .collect();
        let (set, report) = KeySet::parse(&set_of(&keys), KeyLimits::default()).unwrap();
        assert_eq!((set.len(), report.beyond_limits), (MAX_KEYS, 50));
        assert_eq!(set.candidates(JwsAlgorithm::Es256, Some("k99")).count(), 1);
        assert_eq!(set.candidates(JwsAlgorithm::Es256, Some("k100")).count(), 0);
        let warning = report.warnings().last().unwrap();
        assert!(
            warning.starts_with("50 more key(s) beyond the limits"),
            "{warning}"
        );
    }

    #[test]
    fn at_most_max_key_entries_are_looked_at() {
        let mut keys = vec![serde_json::json!({"kty": "oct", "k": "AA"}); MAX_KEY_ENTRIES + 7];
        keys.push(P256.public_jwk("late"));
        let error = KeySet::parse(&set_of(&keys), KeyLimits::default()).unwrap_err();
        let JwksError::NoUsableKey(skipped) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(skipped.len(), MAX_KEY_ENTRIES);
        assert!(
            error
                .to_string()
                .ends_with(&format!("; and {} more", MAX_KEY_ENTRIES - 10)),
            "{error}"
        );
    }

    /// The worst key sets that the largest `max_document_bytes` (16 MiB) admits: the most
    /// RSA keys of the largest size each limit allows (every one costs Montgomery
    /// constants to prepare), and the most Ed25519 keys whose point fails to decompress
    /// (each a field exponentiation, and never counted as usable). Keys are prepared for
    /// at most MAX_KEYS usable keys and MAX_KEY_ENTRIES entries, so each costs
    /// milliseconds; the bound asserted is loose, to stay clear of a noisy machine, and
    /// still far below the seconds to minutes that unbounded preparation took.
    #[test]
    fn the_worst_document_within_max_document_bytes_costs_milliseconds() {
        const DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
        let fill = |entry: &dyn Fn(usize) -> Value| {
            let mut keys = Vec::new();
            let mut size = 16;
            while size < DOCUMENT_BYTES - 4096 {
                let key = entry(keys.len());
                size += key.to_string().len() + 1;
                keys.push(key);
            }
            set_of(&keys)
        };
        let bad_point = base64url::encode(&[0xff; 32]);
        let cases = [
            (
                "RSA-4096",
                fill(&|i| testbed::keys::rsa_jwk_of_bits(4096, &format!("k{i}"))),
                KeyLimits::default(),
            ),
            (
                "RSA-8192",
                fill(&|i| testbed::keys::rsa_jwk_of_bits(8192, &format!("k{i}"))),
                KeyLimits {
                    max_rsa_key_bits: MAX_RSA_KEY_BITS_LIMIT,
                },
            ),
            (
                "Ed25519 off the curve",
                fill(&|i| {
                    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": format!("k{i}"),
                                       "x": bad_point})
                }),
                KeyLimits::default(),
            ),
        ];
        for (what, document, limits) in cases {
            assert!(document.len() <= DOCUMENT_BYTES);
            let started = std::time::Instant::now();
            let parsed = KeySet::parse(&document, limits);
            let took = started.elapsed();
            eprintln!(
                "worst document, {what}: {} bytes parsed in {} ms",
                document.len(),
                took.as_millis()
            );
            match parsed {
                Ok((set, _)) => assert_eq!(set.len(), MAX_KEYS, "{what}"),
                Err(JwksError::NoUsableKey(skipped)) => {
                    assert_eq!(skipped.len(), MAX_KEY_ENTRIES, "{what}")
                }
                Err(other) => panic!("{what}: {other}"),
            }
            assert!(took.as_secs_f64() < 3.0, "{what}: {took:?}");
        }
    }
}
