//! JSON Web Key Sets (RFC 7517 §5): which keys a token may be verified with.
//!
//! A key set is parsed once into [`KeySet`]; keys that wsgate will not use are left out and
//! reported as [`SkippedKey`]s so the operator can see why. A key is left out when:
//! - `use` is present and is not `sig`, or `key_ops` is present without `verify`;
//! - its `kty`/`crv` is not one wsgate verifies with (RSA, EC P-256, OKP Ed25519); symmetric
//!   (`oct`) keys are never used, so HS* can never be accepted from a key set;
//! - its `alg` is present but is not an accepted algorithm of the key's family;
//! - its material is unusable: not canonical base64url, an RSA modulus under 2048 bits, an
//!   exponent the backend refuses, a point not on the curve;
//! - its `kid` is shared with another key of the set: which of them the issuer meant is
//!   ambiguous, so none of them is trusted.
//!
//! A set with no usable key at all is an error, since every token would be refused.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::base64url;
use crate::signature::{JwsAlgorithm, KeyFamily, VerifyingKey};
use crate::strict_json;

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
                for (position, key) in skipped.iter().enumerate() {
                    if position > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{key}")?;
                }
                Ok(())
            }
        }
    }
}

/// The usable keys of one JWKS document.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a JWKS document. On success, also returns the keys that were left out.
    pub fn parse(document: &[u8]) -> Result<(KeySet, Vec<SkippedKey>), JwksError> {
        let object = strict_json::parse_object(document)
            .map_err(|error| JwksError::NotJson(error.to_string()))?;
        Self::from_object(&object)
    }

    /// Builds a key set from an already parsed JWKS object.
    pub fn from_object(
        object: &Map<String, Value>,
    ) -> Result<(KeySet, Vec<SkippedKey>), JwksError> {
        let Some(Value::Array(entries)) = object.get("keys") else {
            return Err(JwksError::MissingKeys);
        };

        let mut candidates = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
            match parse_key(entry) {
                Ok(key) => candidates.push((index, key)),
                Err(why) => skipped.push(SkippedKey { index, kid, why }),
            }
        }

        let mut kid_count: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, key) in &candidates {
            if let Some(kid) = key.kid() {
                *kid_count.entry(kid).or_default() += 1;
            }
        }
        let ambiguous: Vec<String> = kid_count
            .into_iter()
            .filter(|&(_, count)| count > 1)
            .map(|(kid, _)| kid.to_owned())
            .collect();

        let mut keys = Vec::new();
        for (index, key) in candidates {
            match key.kid() {
                Some(kid) if ambiguous.iter().any(|shared| shared == kid) => {
                    skipped.push(SkippedKey {
                        index,
                        kid: key.kid.clone(),
                        why: "its kid is shared with another key of the set".to_owned(),
                    });
                }
                _ => keys.push(key),
            }
        }
        skipped.sort_by_key(|key| key.index);

        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(skipped));
        }
        Ok((KeySet { keys }, skipped))
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

fn parse_key(entry: &Value) -> Result<Jwk, String> {
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
    let key = match kty {
        "RSA" => VerifyingKey::rsa(&bytes_member(jwk, "n")?, &bytes_member(jwk, "e")?),
        "EC" => match string_member(jwk, "crv")? {
            "P-256" => VerifyingKey::p256(&bytes_member(jwk, "x")?, &bytes_member(jwk, "y")?),
            other => return Err(format!("EC curve {other:?} is not supported")),
        },
        "OKP" => match string_member(jwk, "crv")? {
            "Ed25519" => VerifyingKey::ed25519(&bytes_member(jwk, "x")?),
            other => return Err(format!("OKP curve {other:?} is not supported")),
        },
        "oct" => return Err("symmetric keys are never used".to_owned()),
        other => return Err(format!("key type {other:?} is not supported")),
    }
    .map_err(|error| error.to_string())?;

    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => match JwsAlgorithm::from_name(name) {
            Some(alg) if alg.family() == key.family() => Some(alg),
            _ => return Err(format!("\"alg\" {name:?} does not fit a {kty} key")),
        },
        Some(_) => return Err("\"alg\" is not a string".to_owned()),
    };
    Ok(Jwk { kid, alg, key })
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
        let (set, skipped) = KeySet::parse(&doc).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
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
        let (set, skipped) = KeySet::parse(&doc).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        skipped[0].why.clone()
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
        let (set, skipped) = KeySet::parse(&doc).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(skipped.iter().map(|k| k.index).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(set.candidates(JwsAlgorithm::Rs256, Some("same")).count(), 0);
    }

    #[test]
    fn documents_without_usable_keys_are_errors() {
        assert_eq!(KeySet::parse(b"{}").unwrap_err(), JwksError::MissingKeys);
        assert_eq!(
            KeySet::parse(br#"{"keys":{}}"#).unwrap_err(),
            JwksError::MissingKeys
        );
        assert_eq!(
            KeySet::parse(br#"{"keys":[]}"#).unwrap_err().to_string(),
            "\"keys\" is empty"
        );
        assert!(matches!(KeySet::parse(b"[]"), Err(JwksError::NotJson(_))));
        assert!(matches!(
            KeySet::parse(b"<html>"),
            Err(JwksError::NotJson(_))
        ));
        let dup = br#"{"keys":[],"keys":[]}"#;
        assert!(matches!(KeySet::parse(dup), Err(JwksError::NotJson(_))));
        let err = KeySet::parse(&set_of(&[
            serde_json::json!({"kty":"oct","kid":"h","k":"AA"}),
        ]))
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
        let (set, _) = KeySet::parse(&set_of(&[jwk])).unwrap();
        assert_eq!(
            set.candidates(JwsAlgorithm::Ps256, Some("pinned")).count(),
            1
        );
        assert_eq!(
            set.candidates(JwsAlgorithm::Rs256, Some("pinned")).count(),
            0
        );
    }
}
