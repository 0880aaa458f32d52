//! A per-VM cache of verified tokens, so a token seen again costs a lookup instead of a
//! signature verification (the warm path; `jwt_authn`'s `jwt_cache_config`).
//!
//! - Keyed by the token itself, as `jwt_authn`'s cache is: a hit needs every byte of a
//!   token that was verified, so no crafted token can pass for a cached one. The hash only
//!   picks a bucket (std's keyed SipHash), and only verified tokens are ever inserted, so a
//!   client cannot crowd one bucket either. Until #14 the key was the token's SHA-256: the
//!   same guarantee, for some 3 µs of WebAssembly on every guarded request.
//! - An entry holds the verified identity and its deadline (`exp` plus skew); it is never
//!   served after that deadline. A hit shares the identity's claims, it does not copy them.
//! - An entry belongs to the key-set version of the provider that verified it: once that
//!   provider's key set changes, the entry is never served again (it is dropped at its next
//!   lookup), so a token signed by a rotated-out key is refused on its next request.
//! - Bounded by entries (`jwt_cache_size`) and by [`MAX_CACHE_BYTES`], which counts each
//!   entry's token and the tokens still held by stale queue slots; the oldest entries go
//!   first. The age queue is an index: removing an entry leaves its queue slot stale (each
//!   slot carries the entry's insertion number and keeps the token), stale slots are
//!   skipped when evicting, and the queue is compacted once it holds more than twice as
//!   many slots as entries (plus 16) or stale tokens hold a quarter of the bytes. So every
//!   operation is O(1) amortised instead of a scan of the queue.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use crate::provider::ProviderId;
use crate::token::identity::Identity;

/// Default number of entries per VM.
pub const DEFAULT_JWT_CACHE_SIZE: usize = 1024;
/// Bytes of cached identities per VM, at most.
pub const MAX_CACHE_BYTES: usize = 4 * 1024 * 1024;

struct Entry {
    /// The provider that verified it.
    provider: ProviderId,
    identity: Identity,
    deadline_ms: u64,
    /// The key-set version of the identity's provider it was verified under.
    version: u64,
    bytes: usize,
    /// Insertion number: the queue slot that is this entry's.
    stamp: u64,
}

/// Verified tokens of one VM.
pub struct TokenCache {
    capacity: usize,
    max_bytes: usize,
    entries: HashMap<Rc<str>, Entry>,
    /// Oldest first; a slot whose stamp is not its entry's is stale.
    order: VecDeque<(Rc<str>, u64)>,
    next_stamp: u64,
    /// Bytes accounted to the entries.
    bytes: usize,
    /// Bytes of tokens that only stale queue slots still hold.
    stale_bytes: usize,
}

impl TokenCache {
    /// A cache of at most `capacity` entries and `max_bytes` bytes.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        TokenCache {
            capacity,
            max_bytes,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_stamp: 0,
            bytes: 0,
            stale_bytes: 0,
        }
    }

    /// The provider and identity cached for `token` at `now_ms`, if any, and if it was
    /// verified under the key-set version `current` gives for that provider now.
    pub fn get(
        &mut self,
        token: &str,
        now_ms: u64,
        current: impl FnOnce(ProviderId) -> Option<u64>,
    ) -> Option<(ProviderId, Identity)> {
        let entry = self.entries.get(token)?;
        if now_ms >= entry.deadline_ms || current(entry.provider) != Some(entry.version) {
            self.remove(token);
            return None;
        }
        Some((entry.provider, entry.identity.clone()))
    }

    /// Caches `identity` for `token`, verified by `provider` under its key-set `version`,
    /// until `deadline_ms`.
    pub fn insert(
        &mut self,
        token: &str,
        version: u64,
        provider: ProviderId,
        identity: &Identity,
        deadline_ms: u64,
    ) {
        if self.capacity == 0 {
            return;
        }
        let bytes = token.len() + identity.payload.len() * 2 + 128;
        if bytes > self.max_bytes {
            return;
        }
        self.remove(token);
        // Stale slots leave only from the front or all at once: at a quarter of the bytes,
        // all at once (so each compaction frees that much, and costs O(1) per token freed).
        if self.stale_bytes > self.max_bytes / 4 {
            self.compact();
        }
        while self.entries.len() >= self.capacity || self.held() + bytes > self.max_bytes {
            let Some((oldest, stamp)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&oldest)
                .is_some_and(|entry| entry.stamp == stamp)
            {
                self.remove(&oldest);
            }
            // Its slot is gone, and the token with it.
            self.stale_bytes = self.stale_bytes.saturating_sub(oldest.len());
        }
        let identity = identity.clone();
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let token: Rc<str> = token.into();
        self.entries.insert(
            token.clone(),
            Entry {
                provider,
                identity,
                deadline_ms,
                version,
                bytes,
                stamp,
            },
        );
        self.order.push_back((token, stamp));
        self.bytes += bytes;
        if self.order.len() > 2 * self.entries.len() + 16 {
            self.compact();
        }
    }

    /// The entries' bytes and the stale slots' tokens: what [`MAX_CACHE_BYTES`] bounds.
    fn held(&self) -> usize {
        self.bytes + self.stale_bytes
    }

    /// Drops every stale queue slot, and the tokens they held.
    fn compact(&mut self) {
        let entries = &self.entries;
        let mut freed = 0;
        self.order.retain(|(token, stamp)| {
            let live = entries
                .get(token)
                .is_some_and(|entry| entry.stamp == *stamp);
            if !live {
                freed += token.len();
            }
            live
        });
        self.stale_bytes = self.stale_bytes.saturating_sub(freed);
    }

    /// Queue slots held now, stale ones included (never more than twice the entries, plus
    /// a few).
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.order.len()
    }

    /// Entries held now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes accounted to the entries held now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes of tokens held by stale queue slots now.
    #[cfg(test)]
    fn stale_bytes(&self) -> usize {
        self.stale_bytes
    }

    /// Removes an entry; its queue slot goes stale, holding the token until it is dropped.
    fn remove(&mut self, token: &str) {
        if let Some(entry) = self.entries.remove(token) {
            self.bytes -= entry.bytes;
            self.stale_bytes += token.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(sub: &str) -> Identity {
        Identity {
            claims: json!({"sub": sub}).as_object().unwrap().clone().into(),
            payload: "eyJzdWIiOiJ4In0".into(),
        }
    }

    #[test]
    fn a_hit_returns_what_was_verified() {
        let mut cache = TokenCache::new(8, MAX_CACHE_BYTES);
        assert!(cache.get("t1", 0, |_| Some(1)).is_none());
        cache.insert("t1", 1, ProviderId::at(0), &identity("alice"), 10_000);
        assert_eq!(
            cache.get("t1", 5_000, |_| Some(1)),
            Some((ProviderId::at(0), identity("alice")))
        );
        assert!(cache.get("t2", 5_000, |_| Some(1)).is_none());
    }

    /// The key is the whole token: one byte off anywhere is another token, and a hit shares
    /// the cached claims instead of copying them.
    #[test]
    fn only_the_exact_token_hits_and_a_hit_shares_its_claims() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
        let mut cache = TokenCache::new(8, MAX_CACHE_BYTES);
        cache.insert(token, 1, ProviderId::at(0), &identity("alice"), 10_000);
        for (at, _) in token.char_indices() {
            let mut other = token.to_owned();
            other.replace_range(at..=at, if &token[at..=at] == "x" { "y" } else { "x" });
            assert!(cache.get(&other, 0, |_| Some(1)).is_none(), "{other}");
        }
        for other in [&token[1..], &token[..token.len() - 1], &format!("{token}=")] {
            assert!(cache.get(other, 0, |_| Some(1)).is_none(), "{other}");
        }
        let (_, first) = cache.get(token, 0, |_| Some(1)).unwrap();
        let (_, second) = cache.get(token, 0, |_| Some(1)).unwrap();
        assert!(std::rc::Rc::ptr_eq(&first.claims, &second.claims));
        assert!(std::rc::Rc::ptr_eq(&first.payload, &second.payload));
    }

    #[test]
    fn entries_never_outlive_their_deadline() {
        let mut cache = TokenCache::new(8, MAX_CACHE_BYTES);
        cache.insert("t", 1, ProviderId::at(0), &identity("a"), 10_000);
        assert!(cache.get("t", 9_999, |_| Some(1)).is_some());
        assert!(cache.get("t", 10_000, |_| Some(1)).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_of_an_older_key_set_is_never_served() {
        let mut cache = TokenCache::new(8, MAX_CACHE_BYTES);
        cache.insert("t", 1, ProviderId::at(0), &identity("a"), 10_000);
        assert!(
            cache.get("t", 0, |_| Some(2)).is_none(),
            "verified under another key set"
        );
        assert!(
            cache.get("t", 0, |_| Some(1)).is_none(),
            "and gone for good"
        );
        cache.insert("t", 1, ProviderId::at(0), &identity("a"), 10_000);
        assert!(cache.get("t", 0, |_| None).is_none(), "no keys now");
    }

    /// Each entry follows its own provider's key set: another provider's rotation leaves
    /// it alone.
    #[test]
    fn entries_follow_their_own_providers_key_set() {
        let mut cache = TokenCache::new(8, MAX_CACHE_BYTES);
        let other = identity("b");
        cache.insert("a", 3, ProviderId::at(0), &identity("a"), 10_000);
        cache.insert("b", 7, ProviderId::at(1), &other, 10_000);
        let versions = |provider: ProviderId| Some(if provider.index() == 0 { 3 } else { 8 });
        assert!(cache.get("a", 0, versions).is_some());
        assert!(cache.get("b", 0, versions).is_none(), "provider 1 rotated");
    }

    #[test]
    fn stays_within_its_bounds_under_100k_distinct_tokens() {
        let mut cache = TokenCache::new(1000, 64 * 1024);
        for i in 0..100_000u64 {
            cache.insert(
                &format!("token-{i}"),
                7,
                ProviderId::at(0),
                &identity("x"),
                u64::MAX,
            );
            assert!(cache.len() <= 1000);
            assert!(cache.bytes() <= 64 * 1024);
        }
        assert!(
            cache.get("token-99999", 0, |_| Some(7)).is_some(),
            "the newest stay"
        );
        assert!(
            cache.get("token-0", 0, |_| Some(7)).is_none(),
            "the oldest went first"
        );
        let mut by_entries = TokenCache::new(100, MAX_CACHE_BYTES);
        for i in 0..100_000u64 {
            by_entries.insert(
                &format!("t{i}"),
                7,
                ProviderId::at(0),
                &identity("x"),
                u64::MAX,
            );
        }
        assert_eq!(by_entries.len(), 100);
    }

    #[test]
    fn size_zero_caches_nothing() {
        let mut cache = TokenCache::new(0, MAX_CACHE_BYTES);
        cache.insert("t", 1, ProviderId::at(0), &identity("a"), 10_000);
        assert!(cache.get("t", 0, |_| Some(1)).is_none());
    }

    #[test]
    fn the_age_queue_stays_bounded_and_evicts_the_oldest_live_entry() {
        let mut cache = TokenCache::new(4, MAX_CACHE_BYTES);
        // One token re-verified over and over (expired, then cached again): no eviction
        // ever runs, yet the queue must not grow with it.
        for round in 0..1000u64 {
            cache.insert(
                "again",
                1,
                ProviderId::at(0),
                &identity("a"),
                round * 10 + 5,
            );
            assert!(
                cache.get("again", round * 10 + 6, |_| Some(1)).is_none(),
                "expired"
            );
        }
        assert!(
            cache.slots() <= 2 * cache.len() + 17,
            "{} slots",
            cache.slots()
        );
        // Re-inserting a token makes it the newest: the oldest other one goes first.
        for token in ["t1", "t2", "t3", "t4"] {
            cache.insert(token, 1, ProviderId::at(0), &identity(token), 100_000);
        }
        cache.insert("t1", 1, ProviderId::at(0), &identity("t1"), 100_000);
        cache.insert("t5", 1, ProviderId::at(0), &identity("t5"), 100_000);
        assert!(
            cache.get("t2", 0, |_| Some(1)).is_none(),
            "t2 was the oldest"
        );
        for token in ["t1", "t3", "t4", "t5"] {
            assert!(cache.get(token, 0, |_| Some(1)).is_some(), "{token}");
        }
        assert_eq!(cache.len(), 4);
    }

    /// After a key-set change every entry is dropped at its next lookup. Its queue slot
    /// still holds the token: those bytes count against the bound until the slot goes, and
    /// caching the same tokens again drops the stale slots.
    #[test]
    fn a_rotation_leaves_no_uncounted_token_behind() {
        let mut cache = TokenCache::new(100, MAX_CACHE_BYTES);
        let tokens: Vec<String> = (0..50).map(|i| format!("token-{i:04}")).collect();
        for token in &tokens {
            cache.insert(token, 1, ProviderId::at(0), &identity("a"), u64::MAX);
        }
        let full = cache.bytes();
        for token in &tokens {
            assert!(cache.get(token, 0, |_| Some(2)).is_none(), "rotated");
        }
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        assert_eq!(cache.stale_bytes(), 50 * "token-0000".len(), "counted");
        for token in &tokens {
            cache.insert(token, 2, ProviderId::at(0), &identity("a"), u64::MAX);
        }
        assert_eq!((cache.len(), cache.bytes()), (50, full));
        assert!(cache.slots() <= 2 * cache.len() + 17, "{}", cache.slots());
        assert!(cache.stale_bytes() <= 17 * "token-0000".len());
    }

    /// Entries, and the tokens stale slots hold, stay within the bytes whatever mix of
    /// lookups that drop entries and inserts comes.
    #[test]
    fn stale_tokens_count_against_the_bytes() {
        let max = 16 * 1024;
        let mut cache = TokenCache::new(10_000, max);
        let big = "x".repeat(900);
        for i in 0..2_000u64 {
            let token = format!("{big}{i}");
            cache.insert(&token, 1, ProviderId::at(0), &identity("a"), u64::MAX);
            if i % 3 != 0 {
                assert!(cache.get(&token, 0, |_| Some(2)).is_none(), "rotated away");
            }
            assert!(
                cache.bytes() + cache.stale_bytes() <= max,
                "{} + {}",
                cache.bytes(),
                cache.stale_bytes()
            );
        }
        assert!(!cache.is_empty());
    }
}
