//! The verification pipeline: one token in, a verified identity or one deny reason out.
//!
//! Cheap checks come first so that malformed or mis-addressed tokens cost microseconds and
//! never reach signature arithmetic: size and shape ([`jws`](crate::token::jws)), the algorithm
//! allowlist, the claims ([`claims`](crate::token::claims)), then the key lookup. Only a token that
//! passes all of them is verified, against each key that fits its `kid` and `alg`.

use serde_json::{Map, Value};

use crate::bench_repeat;
use crate::deny::DenyReason;
use crate::keys::jwks::KeySet;
use crate::signature::{InModule, Verifier};
use crate::token::claims::ClaimsPolicy;
use crate::token::identity::{Claimed, Denial, Identity};
use crate::token::jws::CompactJws;

/// Default cap on a token's length in bytes, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// How many keys a token without `kid` is tried against at most. Issuers that rotate keep
/// two or three of a family at once; a set of 100 RSA-4096 keys would otherwise cost 100
/// verifications per forged token. A token without `kid` that more keys fit is refused
/// unverified ([`DenyReason::AmbiguousKey`]).
pub const MAX_KEYS_WITHOUT_KID: usize = 4;

/// Verifies tokens against a [`ClaimsPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticator {
    pub policy: ClaimsPolicy,
    pub max_token_bytes: usize,
}

impl Authenticator {
    /// Verifies `token` with `keys` at time `now` (seconds since the epoch). A refusal of a
    /// token that could be read carries what it claimed (`iss`, `sub`), unverified.
    pub fn authenticate(&self, token: &str, keys: &KeySet, now: u64) -> Result<Identity, Denial> {
        self.authenticate_with(token, keys, now, &InModule)
    }

    /// [`authenticate`](Self::authenticate), with `verifier` doing the signature arithmetic.
    pub fn authenticate_with(
        &self,
        token: &str,
        keys: &KeySet,
        now: u64,
        verifier: &dyn Verifier,
    ) -> Result<Identity, Denial> {
        let jws = CompactJws::parse(token, self.max_token_bytes)?;
        let claims = jws.claims()?;
        self.authenticate_parsed(&jws, claims, keys, now, verifier)
    }

    /// The rest of [`authenticate_with`](Self::authenticate_with), for a token already
    /// parsed (`claims` are `jws`'s): the claims policy, then the signature.
    pub fn authenticate_parsed(
        &self,
        jws: &CompactJws<'_>,
        claims: Map<String, Value>,
        keys: &KeySet,
        now: u64,
        verifier: &dyn Verifier,
    ) -> Result<Identity, Denial> {
        let deny = |reason: DenyReason| Denial {
            claimed: Claimed::from_claims(&claims),
            ..reason.into()
        };
        bench_repeat::priced(cfg!(feature = "bench-repeat-claims"), || {
            self.policy.check(&claims, now)
        })
        .map_err(deny)?;
        verify_signature(jws, keys, verifier).map_err(deny)?;
        Ok(Identity {
            payload: jws.payload_segment().into(),
            claims: claims.into(),
        })
    }
}

/// The signature step alone: verifies `jws` with `verifier` against each key of `keys` that
/// fits its `kid` and `alg` (so a key of another type or curve is never offered).
/// [`DenyReason::UnknownKey`] when none fits, [`DenyReason::AmbiguousKey`] when the token
/// has no `kid` and more than [`MAX_KEYS_WITHOUT_KID`] fit, [`DenyReason::BadSignature`]
/// when none verifies.
pub fn verify_signature(
    jws: &CompactJws<'_>,
    keys: &KeySet,
    verifier: &dyn Verifier,
) -> Result<(), DenyReason> {
    // The first candidate found (the search, lazy, is done by the peek).
    let (mut candidates, any) = bench_repeat::priced(cfg!(feature = "bench-repeat-keys"), || {
        let mut candidates = keys.candidates(jws.alg(), jws.kid()).peekable();
        let any = candidates.peek().is_some();
        (candidates, any)
    });
    if !any {
        return Err(DenyReason::UnknownKey);
    }
    // Without `kid` the candidates are every key of the family: count them again (the
    // iterator above is opaque, so not clonable).
    if jws.kid().is_none()
        && keys
            .candidates(jws.alg(), None)
            .nth(MAX_KEYS_WITHOUT_KID)
            .is_some()
    {
        return Err(DenyReason::AmbiguousKey);
    }
    if candidates
        .any(|jwk| verifier.verify(jwk.key(), jws.alg(), jws.signing_input(), jws.signature()))
    {
        Ok(())
    } else {
        Err(DenyReason::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use testbed::keys::{jwks, TestKey, ED25519, P256, RSA_2048, RSA_2048_OTHER};

    const NOW: u64 = 1_800_000_000;
    const ISSUER: &str = "https://issuer.example";

    fn authenticator() -> Authenticator {
        Authenticator {
            policy: ClaimsPolicy {
                issuer: ISSUER.into(),
                audiences: vec!["api".into()],
                clock_skew_seconds: 60,
                max_lifetime_seconds: None,
            },
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    fn keys() -> KeySet {
        let doc = jwks(&[(&RSA_2048, "rsa"), (&P256, "ec"), (&ED25519, "ed")]);
        KeySet::parse(doc.to_string().as_bytes(), Default::default())
            .unwrap()
            .0
    }

    fn claims() -> Value {
        json!({"iss": ISSUER, "aud": "api", "sub": "caller", "exp": NOW + 600})
    }

    fn check(token: &str) -> Result<Identity, DenyReason> {
        authenticator()
            .authenticate(token, &keys(), NOW)
            .map_err(|denial| denial.reason)
    }

    #[test]
    fn each_family_verifies() {
        for (key, kid) in [(&*RSA_2048, "rsa"), (&*P256, "ec"), (&*ED25519, "ed")] {
            let token = key.sign(json!({"kid": kid}), &claims());
            let identity = check(&token).unwrap_or_else(|e| panic!("{kid}: {e}"));
            assert_eq!(identity.claim_str("sub"), Some("caller"));
        }
        for alg in ["RS384", "RS512", "PS256", "PS384", "PS512"] {
            let token = RSA_2048.sign(json!({"kid": "rsa", "alg": alg}), &claims());
            assert!(check(&token).is_ok(), "{alg}");
        }
    }

    #[test]
    fn a_token_without_kid_is_tried_against_every_fitting_key() {
        let token = P256.sign(json!({}), &claims());
        assert!(check(&token).is_ok());
    }

    #[test]
    fn unknown_kid_or_no_fitting_key() {
        let token = RSA_2048.sign(json!({"kid": "nope"}), &claims());
        assert_eq!(check(&token).unwrap_err(), DenyReason::UnknownKey);
        // kid of an EC key, but an RSA algorithm: no key fits.
        let token = RSA_2048.sign(json!({"kid": "ec"}), &claims());
        assert_eq!(check(&token).unwrap_err(), DenyReason::UnknownKey);
        let only_ec = KeySet::parse(
            jwks(&[(&P256, "ec")]).to_string().as_bytes(),
            Default::default(),
        )
        .unwrap()
        .0;
        let token = RSA_2048.sign(json!({}), &claims());
        assert_eq!(
            authenticator()
                .authenticate(&token, &only_ec, NOW)
                .unwrap_err()
                .reason,
            DenyReason::UnknownKey
        );
    }

    #[test]
    fn a_signature_by_another_key_is_bad() {
        let token = RSA_2048_OTHER.sign(json!({"kid": "rsa"}), &claims());
        assert_eq!(check(&token).unwrap_err(), DenyReason::BadSignature);
        let token = RSA_2048_OTHER.sign(json!({}), &claims());
        assert_eq!(check(&token).unwrap_err(), DenyReason::BadSignature);
    }

    #[test]
    fn tampering_with_the_payload_breaks_the_signature() {
        let token = RSA_2048.sign(json!({"kid": "rsa"}), &claims());
        let mut forged = claims();
        forged["sub"] = "admin".into();
        let forged_payload = crate::encoding::base64url::encode(forged.to_string().as_bytes());
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(check(&tampered).unwrap_err(), DenyReason::BadSignature);
    }

    #[test]
    fn ecdsa_zero_signature_is_bad() {
        let token = P256.sign(json!({"kid": "ec"}), &claims());
        let (input, _) = token.rsplit_once('.').unwrap();
        let zero = format!("{input}.{}", crate::encoding::base64url::encode(&[0u8; 64]));
        assert_eq!(check(&zero).unwrap_err(), DenyReason::BadSignature);
    }

    #[test]
    fn hs256_with_the_rsa_public_key_as_secret_is_refused_before_any_key_is_used() {
        let header = crate::encoding::base64url::encode(br#"{"alg":"HS256","kid":"rsa"}"#);
        let payload = crate::encoding::base64url::encode(claims().to_string().as_bytes());
        let token = format!("{header}.{payload}.c2lnbmF0dXJl");
        assert_eq!(check(&token).unwrap_err(), DenyReason::UnsupportedAlgorithm);
    }

    #[test]
    fn claims_are_checked_before_the_signature() {
        // Signed by a stranger AND expired: the cheap check answers.
        let mut old = claims();
        old["exp"] = json!(NOW - 3600);
        let token = RSA_2048_OTHER.sign(json!({"kid": "rsa"}), &old);
        assert_eq!(check(&token).unwrap_err(), DenyReason::Expired);
    }

    #[test]
    fn each_claim_failure_names_its_reason() {
        let cases: [(&str, Value, DenyReason); 5] = [
            (
                "iss",
                json!("https://evil.example"),
                DenyReason::WrongIssuer,
            ),
            ("aud", json!("someone-else"), DenyReason::WrongAudience),
            ("exp", json!(NOW - 61), DenyReason::Expired),
            ("nbf", json!(NOW + 61), DenyReason::NotYetValid),
            ("exp", Value::Null, DenyReason::Malformed),
        ];
        for (claim, value, reason) in cases {
            let mut c = claims();
            c[claim] = value;
            let token = RSA_2048.sign(json!({"kid": "rsa"}), &c);
            assert_eq!(check(&token).unwrap_err(), reason, "{claim}");
        }
    }

    #[test]
    fn a_refusal_carries_what_the_token_claimed() {
        let token = RSA_2048_OTHER.sign(json!({"kid": "rsa"}), &claims());
        let denial = authenticator()
            .authenticate(&token, &keys(), NOW)
            .unwrap_err();
        assert_eq!(denial.reason, DenyReason::BadSignature);
        assert_eq!(denial.claimed.iss.as_deref(), Some(ISSUER));
        assert_eq!(denial.claimed.sub.as_deref(), Some("caller"));
        let denial = authenticator()
            .authenticate("garbage", &keys(), NOW)
            .unwrap_err();
        assert_eq!(denial.claimed, Claimed::default());
    }

    #[test]
    fn an_identity_keeps_the_payload_as_signed() {
        let token = P256.sign(json!({"kid": "ec"}), &claims());
        let identity = check(&token).unwrap();
        assert_eq!(&*identity.payload, token.split('.').nth(1).unwrap());
    }

    #[test]
    fn keys_offered_by_the_token_are_ignored() {
        let stranger: &TestKey = &RSA_2048_OTHER;
        let header = json!({
            "kid": "rsa",
            "jwk": stranger.public_jwk("rsa"),
            "jku": "https://evil.example/jwks",
            "x5u": "https://evil.example/cert",
            "x5c": ["MIIB"],
        });
        let token = stranger.sign(header, &claims());
        assert_eq!(check(&token).unwrap_err(), DenyReason::BadSignature);
    }

    /// #25: a token without `kid` is tried against at most four keys of its family; more
    /// than that is refused unverified. With a `kid`, or with four, it verifies as before.
    #[test]
    fn a_token_without_kid_is_tried_against_a_few_keys_only() {
        let set = |count: usize| {
            let kids: Vec<String> = (0..count).map(|i| format!("k{i}")).collect();
            let entries: Vec<(&TestKey, &str)> =
                kids.iter().map(|kid| (&*P256, kid.as_str())).collect();
            KeySet::parse(jwks(&entries).to_string().as_bytes(), Default::default())
                .unwrap()
                .0
        };
        let unnamed = P256.sign(json!({}), &claims());
        let named = P256.sign(json!({"kid": "k4"}), &claims());
        let decide = |token: &str, keys: &KeySet| {
            authenticator()
                .authenticate(token, keys, NOW)
                .map(|_| ())
                .map_err(|denial| denial.reason)
        };
        assert_eq!(decide(&unnamed, &set(MAX_KEYS_WITHOUT_KID)), Ok(()));
        assert_eq!(
            decide(&unnamed, &set(MAX_KEYS_WITHOUT_KID + 1)),
            Err(DenyReason::AmbiguousKey)
        );
        assert_eq!(decide(&named, &set(MAX_KEYS_WITHOUT_KID + 1)), Ok(()));
    }
}
