//! The registered claims wsgate requires (RFC 7519 §4.1): who issued the token, whom it is
//! for, and when it is valid.
//!
//! - `iss` must equal the configured issuer exactly (no case folding, no trailing-slash
//!   tolerance: a different string is a different issuer);
//! - `aud`, a string or an array of strings, must contain one of the configured audiences;
//!   any other shape is refused;
//! - `exp` is required and must be a number; the token is refused at or after
//!   `exp + clock_skew_seconds` (RFC 7519 §4.1.4);
//! - `nbf`, when present, must be a number; the token is refused before
//!   `nbf - clock_skew_seconds`;
//! - with `max_lifetime_seconds` (`jwt_authn`'s `max_lifetime`), a token whose lifetime
//!   (`exp - iat`, or `exp - now` without `iat`) exceeds it is refused.
//!
//! Before any of that, the registered claims must be well typed when present (RFC 7519
//! §4.1), as `jwt_authn` requires: `iss`, `sub` and `jti` strings, `exp`, `nbf` and `iat`
//! NumericDates, here finite numbers from 0 to the end of the year 9999; otherwise the
//! token is [`DenyReason::Malformed`]. A `sub` of `7` or an `exp` of `1e20` is no identity a
//! backend should be handed.
//!
//! Time is whole seconds since the epoch, as the host tells it.

use serde_json::{Map, Value};

use crate::deny::DenyReason;

/// What the claims of an accepted token must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsPolicy {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub clock_skew_seconds: u64,
    /// `max_lifetime_seconds`: the longest lifetime accepted; `None`, any.
    pub max_lifetime_seconds: Option<u64>,
}

/// The last second of the year 9999 (UTC): the latest NumericDate accepted.
pub const LATEST_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// Claims that must be strings when present.
const STRING_CLAIMS: [&str; 3] = ["iss", "sub", "jti"];

/// Claims that must be NumericDates when present.
const DATE_CLAIMS: [&str; 3] = ["exp", "nbf", "iat"];

impl ClaimsPolicy {
    /// Checks `claims` at time `now` (seconds since the epoch).
    pub fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<(), DenyReason> {
        let typed = STRING_CLAIMS
            .iter()
            .all(|name| claims.get(*name).map_or(true, Value::is_string))
            && DATE_CLAIMS.iter().all(|name| {
                claims
                    .get(*name)
                    .map_or(true, |value| numeric_date(value).is_ok())
            });
        if !typed {
            return Err(DenyReason::Malformed);
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(DenyReason::WrongIssuer);
        }
        if !self.audience_matches(claims.get("aud")) {
            return Err(DenyReason::WrongAudience);
        }
        let skew = self.clock_skew_seconds as f64;
        let now = now as f64;
        let exp = match claims.get("exp") {
            None | Some(Value::Null) => return Err(DenyReason::MissingExpiry),
            Some(value) => numeric_date(value)?,
        };
        if now >= exp + skew {
            return Err(DenyReason::Expired);
        }
        if let Some(value) = claims.get("nbf") {
            if now + skew < numeric_date(value)? {
                return Err(DenyReason::NotYetValid);
            }
        }
        if let Some(max) = self.max_lifetime_seconds {
            let start = match claims.get("iat") {
                Some(iat) => numeric_date(iat)?,
                None => now,
            };
            if exp - start > max as f64 {
                return Err(DenyReason::LifetimeTooLong);
            }
        }
        Ok(())
    }

    fn audience_matches(&self, aud: Option<&Value>) -> bool {
        let wanted = |candidate: &str| self.audiences.iter().any(|audience| audience == candidate);
        match aud {
            Some(Value::String(one)) => wanted(one),
            Some(Value::Array(many)) => {
                many.iter().all(Value::is_string)
                    && many.iter().filter_map(Value::as_str).any(wanted)
            }
            _ => false,
        }
    }
}

/// A NumericDate: a finite number of seconds from 0 to [`LATEST_NUMERIC_DATE`].
fn numeric_date(value: &Value) -> Result<f64, DenyReason> {
    value
        .as_f64()
        .filter(|seconds| seconds.is_finite() && (0.0..=LATEST_NUMERIC_DATE).contains(seconds))
        .ok_or(DenyReason::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn policy() -> ClaimsPolicy {
        ClaimsPolicy {
            issuer: "https://issuer.example".into(),
            audiences: vec!["api-a".into(), "api-b".into()],
            clock_skew_seconds: 60,
            max_lifetime_seconds: None,
        }
    }

    fn check(claims: Value) -> Result<(), DenyReason> {
        policy().check(claims.as_object().unwrap(), NOW)
    }

    fn good() -> Value {
        json!({"iss": "https://issuer.example", "aud": "api-a", "exp": NOW + 300})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut claims = good();
        claims[key] = value;
        claims
    }

    fn without(key: &str) -> Value {
        let mut claims = good();
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    #[test]
    fn a_good_token_passes() {
        assert_eq!(check(good()), Ok(()));
        assert_eq!(check(with("aud", json!(["other", "api-b"]))), Ok(()));
        assert_eq!(check(with("exp", json!(NOW as f64 + 0.5))), Ok(()));
    }

    #[test]
    fn issuer_must_match_exactly() {
        for iss in [
            json!("https://issuer.example/"),
            json!("HTTPS://ISSUER.EXAMPLE"),
            json!("https://other"),
        ] {
            assert_eq!(
                check(with("iss", iss.clone())),
                Err(DenyReason::WrongIssuer),
                "{iss}"
            );
        }
        assert_eq!(check(without("iss")), Err(DenyReason::WrongIssuer));
    }

    #[test]
    fn audience_must_be_one_of_ours() {
        for aud in [
            json!("api-c"),
            json!([]),
            json!(["api-c"]),
            json!(["api-a", 7]),
            json!(7),
            json!({"aud": "api-a"}),
            Value::Null,
        ] {
            assert_eq!(
                check(with("aud", aud.clone())),
                Err(DenyReason::WrongAudience),
                "{aud}"
            );
        }
        assert_eq!(check(without("aud")), Err(DenyReason::WrongAudience));
    }

    #[test]
    fn expiry_is_required_and_honoured_with_skew() {
        assert_eq!(check(without("exp")), Err(DenyReason::MissingExpiry));
        // Present but null is a claim of the wrong type, as for jwt_authn.
        assert_eq!(check(with("exp", Value::Null)), Err(DenyReason::Malformed));
        assert_eq!(
            check(with("exp", json!("1800000300"))),
            Err(DenyReason::Malformed)
        );
        // Within skew: still accepted; at exp + skew: refused.
        assert_eq!(check(with("exp", json!(NOW - 59))), Ok(()));
        assert_eq!(
            check(with("exp", json!(NOW - 60))),
            Err(DenyReason::Expired)
        );
        assert_eq!(check(with("exp", json!(0))), Err(DenyReason::Expired));
    }

    #[test]
    fn not_before_is_honoured_with_skew() {
        assert_eq!(check(with("nbf", json!(NOW + 60))), Ok(()));
        assert_eq!(
            check(with("nbf", json!(NOW + 61))),
            Err(DenyReason::NotYetValid)
        );
        assert_eq!(
            check(with("nbf", json!("soon"))),
            Err(DenyReason::Malformed)
        );
    }

    #[test]
    fn zero_skew_is_exact() {
        let strict = ClaimsPolicy {
            clock_skew_seconds: 0,
            ..policy()
        };
        let claims = with("exp", json!(NOW));
        assert_eq!(
            strict.check(claims.as_object().unwrap(), NOW),
            Err(DenyReason::Expired)
        );
        let claims = with("exp", json!(NOW + 1));
        assert_eq!(strict.check(claims.as_object().unwrap(), NOW), Ok(()));
    }

    /// #25: registered claims of the wrong type are malformed, as `jwt_authn` has them.
    #[test]
    fn registered_claims_must_be_well_typed() {
        for (name, value) in [
            ("iss", json!(1)),
            ("iss", Value::Null),
            ("sub", json!(7)),
            ("sub", json!(["alice"])),
            ("sub", Value::Null),
            ("jti", json!({"id": 1})),
            ("iat", json!("1800000000")),
            ("iat", json!(-1)),
            ("iat", Value::Null),
            ("nbf", json!(true)),
            ("exp", json!(1e20)),
            ("exp", json!(LATEST_NUMERIC_DATE + 1.0)),
            ("exp", json!(-5)),
        ] {
            assert_eq!(
                check(with(name, value.clone())),
                Err(DenyReason::Malformed),
                "{name}: {value}"
            );
        }
        // Their well-typed neighbours pass.
        for (name, value) in [
            ("sub", json!("alice")),
            ("jti", json!("id-1")),
            ("iat", json!(NOW - 10)),
            ("iat", json!(0)),
            ("nbf", json!(NOW as f64 - 0.5)),
            ("exp", json!(LATEST_NUMERIC_DATE)),
        ] {
            assert_eq!(check(with(name, value.clone())), Ok(()), "{name}: {value}");
        }
    }

    #[test]
    fn a_lifetime_over_the_maximum_is_refused() {
        let bounded = ClaimsPolicy {
            max_lifetime_seconds: Some(3600),
            ..policy()
        };
        let check = |claims: Value| bounded.check(claims.as_object().unwrap(), NOW);
        let mut claims = with("exp", json!(NOW + 3600));
        assert_eq!(check(claims.clone()), Ok(()), "exp - now, at the bound");
        claims["exp"] = json!(NOW + 3601);
        assert_eq!(check(claims.clone()), Err(DenyReason::LifetimeTooLong));
        claims["iat"] = json!(NOW + 1);
        assert_eq!(check(claims.clone()), Ok(()), "exp - iat, at the bound");
        claims["iat"] = json!(NOW - 100);
        claims["exp"] = json!(NOW + 3600);
        assert_eq!(check(claims), Err(DenyReason::LifetimeTooLong), "exp - iat");
        // Without the setting, any lifetime up to the year 9999.
        assert_eq!(
            policy().check(
                with("exp", json!(LATEST_NUMERIC_DATE)).as_object().unwrap(),
                NOW
            ),
            Ok(())
        );
    }
}
