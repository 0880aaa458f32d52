//! The stats wsgate keeps, as proxy-wasm metrics. Envoy shows each under `wasmcustom.`, for
//! example `wasmcustom.wsgate.allowed` at its admin `/stats`.
//!
//! - `wsgate.allowed`, `wsgate.denied`: every guarded decision, one or the other;
//! - `wsgate.denied.<reason>`: one counter per [`DenyReason`], named by [`DenyReason::name`];
//! - `wsgate.jwks_fetch_success`, `wsgate.jwks_fetch_failed`: finished key fetch attempts
//!   (discovery and JWKS together count as one), counted by the VM that fetched;
//! - `wsgate.jwks_keys` (gauge): usable keys in the current key set;
//! - `wsgate.jwks_keys_dropped`: key sets dropped because refreshes kept failing for
//!   `max_stale_keys_seconds`, counted by the VM whose failure found it;
//! - `wsgate.closed_on_expiry`: accepted WebSockets closed because their token expired
//!   (`close_on_expiry`);
//! - `wsgate.expiry_tracked` (gauge): accepted WebSockets `close_on_expiry` is watching,
//!   summed over the worker VMs (0 when it is off, and again once every socket has ended);
//! - `wsgate.jwt_cache_hit`, `wsgate.jwt_cache_miss`: tokens answered from the verified-token
//!   cache, and tokens verified (cached when valid).
//!
//! With named `providers`, each provider also has its own, under `wsgate.provider.<name>.`:
//! `allowed`, `denied` (refusals after its policy was chosen for the token),
//! `jwks_fetch_success`, `jwks_fetch_failed`, `jwks_keys_dropped` and the gauge `jwks_keys`.

use crate::decision::{Outcome, Verdict};
use crate::deny::DenyReason;

/// Accepted guarded requests.
pub const ALLOWED: &str = "wsgate.allowed";
/// Refused guarded requests.
pub const DENIED: &str = "wsgate.denied";
/// Successful key fetches.
pub const JWKS_FETCH_SUCCESS: &str = "wsgate.jwks_fetch_success";
/// Failed key fetches.
pub const JWKS_FETCH_FAILED: &str = "wsgate.jwks_fetch_failed";
/// Key sets dropped past `max_stale_keys_seconds`.
pub const JWKS_KEYS_DROPPED: &str = "wsgate.jwks_keys_dropped";
/// WebSockets closed when their token expired.
pub const CLOSED_ON_EXPIRY: &str = "wsgate.closed_on_expiry";
/// Tokens answered from the cache.
pub const JWT_CACHE_HIT: &str = "wsgate.jwt_cache_hit";
/// Tokens verified with the cache on.
pub const JWT_CACHE_MISS: &str = "wsgate.jwt_cache_miss";
/// Usable keys now (gauge).
pub const JWKS_KEYS: &str = "wsgate.jwks_keys";
/// Open WebSockets tracked for `close_on_expiry` (gauge).
pub const EXPIRY_TRACKED: &str = "wsgate.expiry_tracked";

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
    names.push(JWKS_KEYS_DROPPED.to_owned());
    names.push(CLOSED_ON_EXPIRY.to_owned());
    names.push(JWT_CACHE_HIT.to_owned());
    names.push(JWT_CACHE_MISS.to_owned());
    names
}

/// Provider `name`'s own stat `stat` (`allowed`, or a plugin-wide stat's name such as
/// [`JWKS_KEYS`]), `wsgate.provider.<name>.<stat>`.
pub fn of_provider(name: &str, stat: &str) -> String {
    let stat = stat.strip_prefix("wsgate.").unwrap_or(stat);
    format!("wsgate.provider.{name}.{stat}")
}

/// Provider `name`'s counters.
pub fn provider_counters(name: &str) -> Vec<String> {
    [
        ALLOWED,
        DENIED,
        JWKS_FETCH_SUCCESS,
        JWKS_FETCH_FAILED,
        JWKS_KEYS_DROPPED,
    ]
    .into_iter()
    .map(|stat| of_provider(name, stat))
    .collect()
}

/// The counters one outcome moves; with a named `provider` (the one that decided), its own
/// too.
pub fn moved_by(outcome: &Outcome, provider: Option<&str>) -> Vec<String> {
    let (mut names, verdict) = match &outcome.verdict {
        Verdict::Allow(_) => (vec![ALLOWED.to_owned()], ALLOWED),
        Verdict::Deny(denial) | Verdict::AwaitKeys(_, denial) => {
            (vec![DENIED.to_owned(), denied(denial.reason)], DENIED)
        }
    };
    if let Some(name) = provider {
        names.push(of_provider(name, verdict));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_counter_per_reason() {
        let names = counters();
        assert_eq!(names.len(), 2 + DenyReason::ALL.len() + 6);
        assert!(names.contains(&"wsgate.denied.keys_unavailable".to_owned()));
        let denial = Outcome::refused(DenyReason::WrongAudience, Default::default());
        assert_eq!(
            moved_by(&denial, None),
            ["wsgate.denied", "wsgate.denied.wrong_audience"]
        );
    }

    #[test]
    fn a_named_provider_counts_its_own_decisions() {
        let denial = Outcome::refused(DenyReason::Expired, Default::default());
        assert_eq!(
            moved_by(&denial, Some("entra")),
            [
                "wsgate.denied",
                "wsgate.denied.expired",
                "wsgate.provider.entra.denied"
            ]
        );
        let unattributed = Outcome::refused(DenyReason::WrongIssuer, Default::default());
        assert_eq!(moved_by(&unattributed, None).len(), 2);
        assert_eq!(
            provider_counters("acs"),
            [
                "wsgate.provider.acs.allowed",
                "wsgate.provider.acs.denied",
                "wsgate.provider.acs.jwks_fetch_success",
                "wsgate.provider.acs.jwks_fetch_failed",
                "wsgate.provider.acs.jwks_keys_dropped"
            ]
        );
        assert_eq!(
            of_provider("acs", JWKS_KEYS),
            "wsgate.provider.acs.jwks_keys"
        );
    }
}
