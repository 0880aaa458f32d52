//! The stats wsgate keeps, as proxy-wasm metrics. Envoy shows each under `wasmcustom.`, for
//! example `wasmcustom.wsgate.allowed` at its admin `/stats`.
//!
//! - `wsgate.allowed`, `wsgate.denied`: every guarded decision, one or the other;
//! - `wsgate.denied.<reason>`: one counter per [`DenyReason`], named by [`DenyReason::name`];
//! - `wsgate.jwks_fetch_success`, `wsgate.jwks_fetch_failed`: finished key fetch attempts
//!   (discovery and JWKS together count as one), counted by the VM that fetched;
//! - `wsgate.jwks_keys` (gauge): usable keys in the current key set;
//! - `wsgate.closed_on_expiry`: accepted WebSockets closed because their token expired
//!   (`close_on_expiry`);
//! - `wsgate.jwt_cache_hit`, `wsgate.jwt_cache_miss`: tokens answered from the verified-token
//!   cache, and tokens verified (cached when valid).

use crate::decision::{Decision, DenyReason};

/// Accepted guarded requests.
pub const ALLOWED: &str = "wsgate.allowed";
/// Refused guarded requests.
pub const DENIED: &str = "wsgate.denied";
/// Successful key fetches.
pub const JWKS_FETCH_SUCCESS: &str = "wsgate.jwks_fetch_success";
/// Failed key fetches.
pub const JWKS_FETCH_FAILED: &str = "wsgate.jwks_fetch_failed";
/// WebSockets closed when their token expired.
pub const CLOSED_ON_EXPIRY: &str = "wsgate.closed_on_expiry";
/// Tokens answered from the cache.
pub const JWT_CACHE_HIT: &str = "wsgate.jwt_cache_hit";
/// Tokens verified with the cache on.
pub const JWT_CACHE_MISS: &str = "wsgate.jwt_cache_miss";
/// Usable keys now (gauge).
pub const JWKS_KEYS: &str = "wsgate.jwks_keys";

/// The per-reason counter of `reason`.
pub fn denied(reason: DenyReason) -> String {
    format!("{DENIED}.{}", reason.name())
}

/// Every counter, in documentation order.
pub fn counters() -> Vec<String> {
    let mut names = vec![ALLOWED.to_owned(), DENIED.to_owned()];
    names.extend(DenyReason::ALL.into_iter().map(denied));
    names.push(JWKS_FETCH_SUCCESS.to_owned());
    names.push(JWKS_FETCH_FAILED.to_owned());
    names.push(CLOSED_ON_EXPIRY.to_owned());
    names.push(JWT_CACHE_HIT.to_owned());
    names.push(JWT_CACHE_MISS.to_owned());
    names
}

/// The counters one decision moves.
pub fn moved_by(decision: &Decision) -> Vec<String> {
    match decision {
        Decision::Allow(_) => vec![ALLOWED.to_owned()],
        Decision::Deny(denial) => vec![DENIED.to_owned(), denied(denial.reason)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_counter_per_reason() {
        let names = counters();
        assert_eq!(names.len(), 2 + DenyReason::ALL.len() + 5);
        assert!(names.contains(&"wsgate.denied.keys_unavailable".to_owned()));
        let denial = Decision::Deny(DenyReason::WrongAudience.into());
        assert_eq!(
            moved_by(&denial),
            ["wsgate.denied", "wsgate.denied.wrong_audience"]
        );
    }
}
