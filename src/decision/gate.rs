//! The per-request decision: which rule guards this path, is it a WebSocket upgrade, and
//! does it carry exactly one token that a provider the rule accepts verifies.
//!
//! The gate is pure: the glue hands it the request, its rule ([`Gate::rule_for`]), a
//! [`SharedView`] of each provider's keys and the host's time, and applies the one
//! [`Outcome`] it returns.
//!
//! Beyond a valid token, the rule's `origins` are checked before any token is looked at,
//! and its `claims`, then the provider's `max_sockets_per_identity`, once one verified.
//!
//! A token is matched to a provider by its unverified `iss`, among the providers the rule
//! accepts, and verified with that provider's keys and policy only: a key of one provider
//! never verifies a token that claims another's issuer. A rule with one provider skips the
//! match: that provider's policy refuses a foreign `iss` itself (`wrong_issuer`).

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::bench_repeat;
use crate::decision::policy::{self, SocketLimit};
use crate::decision::rules::Rule;
use crate::decision::upstream::{self, HeaderEdits, UpstreamPolicy};
use crate::decision::{CacheUse, Outcome, Verdict};
use crate::deny::{DenyReason, Replies};
use crate::keys::jwks::{KeySet, VersionedKeys};
use crate::keys::parked::Wait;
use crate::provider::{ProviderId, ProviderTable};
use crate::quota::{self, Slot};
use crate::request::path::NormalPath;
use crate::request::upgrade;
use crate::request::RequestHead;
use crate::signature::{InModule, Verifier};
use crate::token::authenticator::Authenticator;
use crate::token::extractor::{FoundToken, TokenSources};
use crate::token::identity::{Claimed, Denial, Identity};
use crate::token::jws::CompactJws;
use crate::token::token_cache::TokenCache;

/// What the gate knows of one provider.
#[derive(Debug, Clone)]
pub struct ProviderPolicy {
    /// Its name in `providers`; `None` in the single-issuer form, whose logs, access logs
    /// and stats name no provider.
    pub name: Option<String>,
    /// How its tokens are verified.
    pub authenticator: Authenticator,
    /// What the upstream receives with a token it verified.
    pub upstream: UpstreamPolicy,
    /// `max_sockets_per_identity`, when its identities' sockets are counted.
    pub socket_limit: Option<SocketLimit>,
}

/// A provider's keys, as the gate asks for them.
#[derive(Debug, Clone)]
pub enum KeysNow {
    /// A key set to verify with.
    Ready(VersionedKeys),
    /// None yet, and a fetch may bring one: what a request may wait for.
    Fetching(Wait),
    /// None, and none to wait for.
    Unavailable,
}

/// What the gate asks of state beyond the request: each provider's keys (read only for
/// the provider a token is matched to), and the open-socket counts.
pub trait SharedView {
    /// Provider `id`'s keys now.
    fn keys(&mut self, id: ProviderId) -> KeysNow;
    /// What a token naming a `kid` provider `id`'s set lacks may wait for: a refetch, when
    /// one may run.
    fn refetch(&mut self, id: ProviderId) -> Option<Wait>;
    /// Counts one more open socket of `identity`, of the provider whose issuer is `issuer`,
    /// unless it holds `limit` already: the slot to give back when it ends, or why not
    /// (`too_many_sockets`, `quota_unavailable`).
    fn take_slot(
        &mut self,
        issuer: &str,
        identity: &str,
        limit: u32,
    ) -> Result<Option<Slot>, DenyReason>;
}

/// The same key set (or none) for every provider, and never a wait: for native callers and
/// tests. It counts no sockets (there is no VM to share counts with): every slot is free.
pub struct FixedKeys(pub Option<VersionedKeys>);

impl SharedView for FixedKeys {
    fn keys(&mut self, _: ProviderId) -> KeysNow {
        self.0.clone().map_or(KeysNow::Unavailable, KeysNow::Ready)
    }

    fn refetch(&mut self, _: ProviderId) -> Option<Wait> {
        None
    }

    fn take_slot(&mut self, _: &str, _: &str, _: u32) -> Result<Option<Slot>, DenyReason> {
        Ok(None)
    }
}

/// Decides requests for one plugin configuration.
#[derive(Debug, Clone)]
pub struct Gate {
    providers: ProviderTable<ProviderPolicy>,
    rules: Vec<Rule>,
    /// For a path that cannot be normalised: the providers every rule accepts.
    undecidable: Rule,
    sources: TokenSources,
    /// `max_token_bytes`, a plugin-wide setting that every provider's policy carries:
    /// checked before a token is matched to a provider, and before the cache hashes it.
    max_token_bytes: usize,
    /// Every header any provider writes upstream: removed from every guarded request.
    owned_headers: Vec<String>,
    /// How refusals are answered.
    replies: Replies,
}

/// The token's verification: the provider that decided (if one was chosen), and its
/// verdict.
type Verified = (Option<ProviderId>, Verdict);

impl Gate {
    /// A gate for `providers`, `rules` naming them, tokens looked for in `sources`, and
    /// refusals answered by `replies`.
    pub fn new(
        providers: ProviderTable<ProviderPolicy>,
        rules: Vec<Rule>,
        sources: TokenSources,
        replies: Replies,
    ) -> Gate {
        let mut owned_headers: Vec<String> = Vec::new();
        for provider in providers.values() {
            for name in provider.upstream.owned() {
                if !owned_headers.contains(name) {
                    owned_headers.push(name.clone());
                }
            }
        }
        Gate {
            max_token_bytes: providers
                .values()
                .next()
                .map_or(0, |provider| provider.authenticator.max_token_bytes),
            undecidable: Rule::undecidable(&rules),
            providers,
            rules,
            sources,
            owned_headers,
            replies,
        }
    }

    /// How refusals are answered.
    pub fn replies(&self) -> &Replies {
        &self.replies
    }

    /// The providers, by id.
    pub fn providers(&self) -> &ProviderTable<ProviderPolicy> {
        &self.providers
    }

    /// Provider `id`'s name, when providers are named.
    pub fn provider_name(&self, id: Option<ProviderId>) -> Option<&str> {
        self.providers.get(id?)?.name.as_deref()
    }

    /// Whether providers are named (not the single-issuer form).
    pub fn names_providers(&self) -> bool {
        self.providers
            .values()
            .any(|provider| provider.name.is_some())
    }

    /// `clock_skew_seconds` of provider `id`: how long past `exp` its tokens still count.
    pub fn clock_skew_seconds(&self, id: ProviderId) -> u64 {
        self.providers.get(id).map_or(0, |provider| {
            provider.authenticator.policy.clock_skew_seconds
        })
    }

    /// The header changes `outcome` calls for on `head` (see [`upstream::edits`]).
    pub fn upstream_edits(&self, outcome: &Outcome, head: &RequestHead) -> HeaderEdits {
        let policy = outcome
            .provider
            .and_then(|id| self.providers.get(id))
            .map(|provider| &provider.upstream);
        upstream::edits(&self.owned_headers, policy, outcome, head)
    }

    /// The rule that decides requests to `path`, a `:path` value: for each of its readings
    /// ([`NormalPath::readings`]: query and fragment ignored, `..` and `;` parameters taken
    /// every way a backend may take them), the first rule whose match fits. `None`: no
    /// reading is guarded. One rule: that rule. Several: a backend may serve the request as
    /// any of their paths, so only the providers all of them accept may pass
    /// ([`Rule::common`]); a path that cannot be normalised is decided the same way over
    /// every rule. Lets the glue pass unguarded requests on after reading one header instead
    /// of all.
    pub fn rule_for(&self, path: &str) -> Option<Cow<'_, Rule>> {
        let mut matched: Vec<&Rule> = Vec::new();
        for reading in NormalPath::readings(path) {
            let rule = match reading {
                NormalPath::Undecidable => &self.undecidable,
                reading => match self.rules.iter().find(|rule| rule.matches(&reading)) {
                    Some(rule) => rule,
                    None => continue,
                },
            };
            if !matched.iter().any(|seen| std::ptr::eq(*seen, rule)) {
                matched.push(rule);
            }
        }
        match matched.as_slice() {
            [] => None,
            [one] => Some(Cow::Borrowed(*one)),
            several => Some(Cow::Owned(Rule::common(
                several,
                "(several rules)".to_owned(),
            ))),
        }
    }

    /// Decides `head` with `keys` for every provider at `now_ms` (milliseconds since the
    /// epoch), without a cache or waiting; `None` when its path is not guarded (it passes
    /// untouched).
    pub fn decide(
        &self,
        head: &RequestHead,
        keys: Option<&KeySet>,
        now_ms: u64,
    ) -> Option<Outcome> {
        let rule = self.rule_for(head.first(":path").unwrap_or_default())?;
        let keys = keys.map(|keys| VersionedKeys {
            version: 0,
            keys: Rc::new(keys.clone()),
        });
        Some(self.decide_by(&rule, head, &mut FixedKeys(keys), now_ms, None, &InModule))
    }

    /// Decides `head`, whose `rule` is this gate's [`Gate::rule_for`] its path, at `now_ms`
    /// (milliseconds since the epoch) with each provider's keys from `keys`, answering from
    /// `cache` when it holds the token and filling it, tied to the provider's key-set
    /// version, when a token verifies; `verifier` does the signature arithmetic.
    pub fn decide_by(
        &self,
        rule: &Rule,
        head: &RequestHead,
        keys: &mut dyn SharedView,
        now_ms: u64,
        cache: Option<&mut TokenCache>,
        verifier: &dyn Verifier,
    ) -> Outcome {
        // A refused request's tokens are still found, every one, so that each is cut
        // before Envoy logs the request; one pass finds them and how to cut them.
        let (mut scan, upgrade) = bench_repeat::priced(cfg!(feature = "bench-repeat-scan"), || {
            (self.sources.scan(head), upgrade::is_websocket_upgrade(head))
        });
        if !upgrade {
            return Outcome::refused(DenyReason::NotWebSocket, scan.cut);
        }
        // A browser's cross-site upgrade carries its cookies: refused before its token is.
        if !policy::origin_allowed(rule.origins.as_deref(), head) {
            return Outcome::refused(DenyReason::OriginNotAllowed, scan.cut);
        }
        let found = match scan.one() {
            Ok(Some(found)) => found,
            Ok(None) => return Outcome::refused(DenyReason::MissingToken, scan.cut),
            Err(reason) => return Outcome::refused(reason, scan.cut),
        };
        let ((provider, verdict), cache) = self.verify(rule, &found, keys, now_ms, cache, verifier);
        let (verdict, slot) = match (verdict, provider) {
            (Verdict::Allow(identity), Some(id)) => self.admit(rule, id, identity, keys),
            (verdict, _) => (verdict, None),
        };
        // A refused token is cut from the request too: nothing goes upstream, but Envoy's
        // access log may write `:path`.
        Outcome {
            provider,
            tokens: scan.cut,
            verdict,
            cache,
            slot,
        }
    }

    /// The policies a verified `identity` of provider `id` must still pass: the rule's
    /// `claims`, then the provider's `max_sockets_per_identity` (a token without its
    /// `identity_claim` as a string cannot be counted, so it fails the claims).
    fn admit(
        &self,
        rule: &Rule,
        id: ProviderId,
        identity: Identity,
        keys: &mut dyn SharedView,
    ) -> (Verdict, Option<Slot>) {
        let refuse = |reason: DenyReason, identity: &Identity| {
            let denial = Denial {
                claimed: Claimed::from_claims(&identity.claims),
                ..reason.into()
            };
            (Verdict::Deny(denial), None)
        };
        if !policy::claims_hold(&rule.claims, &identity) {
            return refuse(DenyReason::ClaimsNotSatisfied, &identity);
        }
        let Some((provider, limit)) = self.providers.get(id).and_then(|provider| {
            let limit = provider.socket_limit.as_ref()?;
            Some((provider, limit))
        }) else {
            return (Verdict::Allow(identity), None);
        };
        // An identity that cannot be counted (absent, not a string, longer than a count
        // holds) fails the claims: a 403, not a 503 a client would retry forever.
        let Some(who) = identity
            .claim(&limit.identity_claim)
            .and_then(Value::as_str)
            .filter(|who| who.len() <= quota::MAX_IDENTITY_BYTES)
        else {
            return refuse(DenyReason::ClaimsNotSatisfied, &identity);
        };
        let issuer = &provider.authenticator.policy.issuer;
        match keys.take_slot(issuer, who, limit.max) {
            Ok(slot) => (Verdict::Allow(identity), slot),
            Err(reason) => refuse(reason, &identity),
        }
    }

    /// The found token's verification, through the cache when there is one.
    fn verify(
        &self,
        rule: &Rule,
        found: &FoundToken,
        keys: &mut dyn SharedView,
        now_ms: u64,
        cache: Option<&mut TokenCache>,
        verifier: &dyn Verifier,
    ) -> (Verified, CacheUse) {
        // The size cap comes before anything else, hashing for the cache included.
        let oversized = found.token.len() > self.max_token_bytes;
        let Some(cache) = cache.filter(|_| !oversized) else {
            let (verified, _) = self.authenticate(rule, &found.token, keys, now_ms, verifier);
            return (verified, CacheUse::Off);
        };
        let hit = bench_repeat::priced(cfg!(feature = "bench-repeat-lookup"), || {
            cache.get(&found.token, now_ms, |id| version_now(keys, id))
        });
        if let Some((id, identity)) = hit {
            // Verified by a provider this rule may not accept: decided afresh (and so
            // refused, as that provider is the one its `iss` names).
            if rule.accepts(id) {
                // Priced on a hit, the bench's warm request (its cold one has no cache): each
                // repeat replaces the live entry, so the price is an upper figure.
                bench_repeat::again(cfg!(feature = "bench-repeat-insert"), || {
                    let version = version_now(keys, id).unwrap_or(0);
                    let deadline = identity.expires_at_ms(self.clock_skew_seconds(id));
                    cache.insert(&found.token, version, id, &identity, deadline.unwrap_or(0))
                });
                return ((Some(id), Verdict::Allow(identity)), CacheUse::Hit);
            }
        }
        match self.authenticate(rule, &found.token, keys, now_ms, verifier) {
            ((Some(id), Verdict::Allow(identity)), Some(version)) => {
                if let Some(deadline) = identity.expires_at_ms(self.clock_skew_seconds(id)) {
                    cache.insert(&found.token, version, id, &identity, deadline);
                }
                ((Some(id), Verdict::Allow(identity)), CacheUse::Miss)
            }
            (verified, _) => {
                // Without keys nothing was verified.
                let keyless = matches!(
                    &verified.1,
                    Verdict::Deny(denial) | Verdict::AwaitKeys(_, denial)
                        if denial.reason == DenyReason::KeysUnavailable
                );
                (
                    verified,
                    if keyless {
                        CacheUse::Off
                    } else {
                        CacheUse::Miss
                    },
                )
            }
        }
    }

    /// Verifies `token` with the provider `rule` accepts for it and that provider's keys;
    /// the verdict, and the version of the key set that verified it.
    fn authenticate(
        &self,
        rule: &Rule,
        token: &str,
        keys: &mut dyn SharedView,
        now_ms: u64,
        verifier: &dyn Verifier,
    ) -> (Verified, Option<u64>) {
        // A rule with one provider: without its keys nothing can be decided, so the token is
        // not looked at (the request waits for them, or is refused).
        let only = match rule.providers.as_slice() {
            [only] => match keys.keys(*only) {
                KeysNow::Ready(current) => Some(current),
                absent => return (no_keys(*only, absent, Claimed::default()), None),
            },
            _ => None,
        };
        let deny = |provider: Option<ProviderId>, denial: Denial| {
            ((provider, Verdict::Deny(denial)), None)
        };
        let parsed = bench_repeat::priced(cfg!(feature = "bench-repeat-parse"), || {
            CompactJws::parse(token, self.max_token_bytes).and_then(|jws| Ok((jws.claims()?, jws)))
        });
        let (claims, jws) = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => return deny(None, reason.into()),
        };
        let Some((id, authenticator)) = self.provider_for(rule, &claims) else {
            return deny(
                None,
                Denial {
                    claimed: Claimed::from_claims(&claims),
                    ..DenyReason::WrongIssuer.into()
                },
            );
        };
        let current = match only {
            Some(current) => current,
            None => match keys.keys(id) {
                KeysNow::Ready(current) => current,
                absent => return (no_keys(id, absent, Claimed::from_claims(&claims)), None),
            },
        };
        match authenticator.authenticate_parsed(
            &jws,
            claims,
            &current.keys,
            now_ms / 1000,
            verifier,
        ) {
            Ok(identity) => ((Some(id), Verdict::Allow(identity)), Some(current.version)),
            // A `kid` the set lacks: a refetch may bring it.
            Err(denial) if denial.reason == DenyReason::UnknownKey => {
                let verdict = match keys.refetch(id) {
                    Some(wait) => Verdict::AwaitKeys(wait, denial),
                    None => Verdict::Deny(denial),
                };
                ((Some(id), verdict), Some(current.version))
            }
            Err(denial) => ((Some(id), Verdict::Deny(denial)), Some(current.version)),
        }
    }

    /// The provider `rule` accepts whose issuer the token's `iss` names; the one provider
    /// of a rule that accepts one, whatever `iss` says.
    fn provider_for(
        &self,
        rule: &Rule,
        claims: &Map<String, Value>,
    ) -> Option<(ProviderId, &Authenticator)> {
        let policy = |id: ProviderId| Some((id, &self.providers.get(id)?.authenticator));
        if let [only] = rule.providers.as_slice() {
            return policy(*only);
        }
        let iss = claims.get("iss").and_then(Value::as_str)?;
        rule.providers
            .iter()
            .filter_map(|&id| policy(id))
            .find(|(_, authenticator)| authenticator.policy.issuer == iss)
    }
}

/// The version of provider `id`'s key set now, if it has one.
fn version_now(keys: &mut dyn SharedView, id: ProviderId) -> Option<u64> {
    match keys.keys(id) {
        KeysNow::Ready(current) => Some(current.version),
        _ => None,
    }
}

/// Provider `id` has no key set (`absent`): wait for the fetch that may bring one, or refuse.
fn no_keys(id: ProviderId, absent: KeysNow, claimed: Claimed) -> Verified {
    let denial = Denial {
        claimed,
        ..DenyReason::KeysUnavailable.into()
    };
    let verdict = match absent {
        KeysNow::Fetching(wait) => Verdict::AwaitKeys(wait, denial),
        _ => Verdict::Deny(denial),
    };
    (Some(id), verdict)
}

#[cfg(test)]
mod tests;
