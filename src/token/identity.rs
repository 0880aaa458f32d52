//! What verifying a token yields: the verified [`Identity`], or a [`Denial`] that says why
//! not and what the token claimed.

use std::rc::Rc;

use serde_json::{Map, Value};

use crate::deny::DenyReason;

/// The verified identity of an accepted request. Claims and payload are shared, not copied,
/// between the token cache and each request it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Every claim of the verified payload.
    pub claims: Rc<Map<String, Value>>,
    /// The payload exactly as signed (canonical base64url), for `forward_payload_header`.
    pub payload: Rc<str>,
}

impl Identity {
    /// A string claim, when present as a string.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A claim by name, or by dotted path through nested objects (`realm_access.roles`), as
    /// `jwt_authn`'s `claim_to_headers` reaches them: a claim whose own name holds the dots
    /// (`https://example.com/roles`) is found first.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name).or_else(|| {
            let mut parts = name.split('.');
            let first = self.claims.get(parts.next()?)?;
            parts.try_fold(first, |value, part| value.get(part))
        })
    }

    /// When the token stops being valid, in milliseconds since the epoch: `exp` plus
    /// `skew_seconds` (a verified token always has a numeric `exp`).
    pub fn expires_at_ms(&self, skew_seconds: u64) -> Option<u64> {
        let exp = self.claims.get("exp").and_then(Value::as_f64)?;
        let at = (exp + skew_seconds as f64) * 1000.0;
        (at.is_finite() && at >= 0.0).then(|| at.min(u64::MAX as f64) as u64)
    }
}

/// What a refused token said about itself, unverified: for the operator's log line only,
/// never for a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    pub iss: Option<String>,
    pub sub: Option<String>,
}

impl Claimed {
    /// `iss` and `sub` when they are strings.
    pub fn from_claims(claims: &Map<String, Value>) -> Self {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        Claimed {
            iss: text("iss"),
            sub: text("sub"),
        }
    }
}

/// A refusal: its reason, and what the token claimed when it got far enough to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    pub claimed: Claimed,
}

impl From<DenyReason> for Denial {
    fn from(reason: DenyReason) -> Self {
        Denial {
            reason,
            claimed: Claimed::default(),
        }
    }
}
