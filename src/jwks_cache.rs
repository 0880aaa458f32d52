//! The key set that all of Envoy's worker VMs share, and who fetches it when.
//!
//! Envoy runs one VM per worker thread, each with its own root context. They coordinate
//! through proxy-wasm shared data (behind the [`SharedStore`] trait, so this module is plain
//! Rust) under names scoped to the plugin and its key source:
//!
//! - `{scope}/lease`: who is fetching and until when; taken with compare-and-swap, so one
//!   discovery + one JWKS fetch serves every worker per refresh;
//! - `{scope}/state`: [`SharedState`], updated with compare-and-swap: the key-set version,
//!   when the next refresh is due, consecutive failures, when the last unknown-`kid` refetch
//!   ran, and how many fetch attempts have finished;
//! - `{scope}/jwks`: the last good JWKS document, prefixed with its version;
//! - `{scope}/version`: that version alone, the one entry read on every request, so a VM
//!   notices a new key set cheaply and parses it once.
//!
//! A failed fetch keeps the last good key set and schedules a retry with capped exponential
//! backoff and jitter. An unknown `kid` may force a refetch at most once per
//! `min_refresh_interval` across all workers.

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::jwks::KeySet;

/// Process-wide storage shared by the VMs: proxy-wasm shared data, or a map in tests.
pub trait SharedStore {
    /// The value under `key` and its CAS token; `(None, None)` when absent.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Stores `value` if `cas` still matches (any value when `cas` is `None`);
    /// `false` on a CAS mismatch.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// What every VM knows about the shared key set and its fetching.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedState {
    /// Version of the key set in `{scope}/jwks`; 0 before the first success.
    pub version: u64,
    /// Usable keys in that set.
    pub keys: usize,
    /// When (ms since the epoch) the next scheduled fetch is due.
    pub next_refresh_ms: u64,
    /// Consecutive failed attempts.
    pub failures: u32,
    /// When the last unknown-`kid` refetch was granted.
    pub forced_ms: u64,
    /// Fetch attempts finished, successful or not.
    pub completed: u64,
    /// The last failure, while failing.
    pub last_error: Option<String>,
}

/// Timing of fetches, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub refresh_interval_ms: u64,
    pub min_refresh_interval_ms: u64,
    /// How long one whole fetch (discovery and JWKS) may take before its lease lapses.
    pub lease_ms: u64,
}

/// Why a VM wants a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The refresh schedule (including the very first fetch and retries after failures).
    Scheduled,
    /// A well-formed token named a `kid` the current set does not have.
    UnknownKey,
}

/// The answer to [`JwksCache::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This VM holds the lease and must fetch, then call `succeed` or `fail`.
    Fetch(Ticket),
    /// Another VM is fetching; attempts finished so far are given to wait on.
    InProgress { completed: u64 },
    /// Nothing to do: not due, or rate-limited.
    Idle,
}

/// Proof of holding the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    until_ms: u64,
}

/// Largest delay between retries after failures.
pub const MAX_BACKOFF_MS: u64 = 60_000;
const FIRST_BACKOFF_MS: u64 = 1_000;
const CAS_ATTEMPTS: usize = 16;

/// One VM's handle on the shared key set.
pub struct JwksCache<S: SharedStore> {
    store: S,
    scope: String,
    owner: u64,
    timing: Timing,
    parsed: Option<(u64, Rc<KeySet>)>,
}

impl<S: SharedStore> JwksCache<S> {
    /// A handle for `scope`, as VM `owner` (any number unique among the VMs).
    pub fn new(store: S, scope: &str, owner: u64, timing: Timing) -> Self {
        JwksCache {
            store,
            scope: scope.to_owned(),
            owner,
            timing,
            parsed: None,
        }
    }

    fn name(&self, entry: &str) -> String {
        format!("{}/{entry}", self.scope)
    }

    /// Creates the shared entries that do not exist yet, so that every later change can be
    /// a compare-and-swap. Envoy configures the main thread's VM before any worker's.
    pub fn init(&self) {
        for (entry, empty) in [
            ("lease", Lease::FREE.encode()),
            ("state", encode_state(&SharedState::default())),
        ] {
            let name = self.name(entry);
            if self.store.get(&name).0.is_none() {
                self.store.set(&name, &empty, None);
            }
        }
    }

    /// How long one whole fetch may take; also how long a request waits for one.
    pub fn lease_ms(&self) -> u64 {
        self.timing.lease_ms
    }

    /// The shared state now.
    pub fn state(&self) -> SharedState {
        self.read_state().0
    }

    fn read_state(&self) -> (SharedState, Option<u32>) {
        let (bytes, cas) = self.store.get(&self.name("state"));
        let state = bytes
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        (state, cas)
    }

    /// Updates the state with compare-and-swap, retrying on contention.
    fn update_state(&self, change: impl Fn(&mut SharedState) -> bool) -> Option<SharedState> {
        for _ in 0..CAS_ATTEMPTS {
            let (mut state, cas) = self.read_state();
            if !change(&mut state) {
                return None;
            }
            if self
                .store
                .set(&self.name("state"), &encode_state(&state), cas)
            {
                return Some(state);
            }
        }
        None
    }

    /// The current key set, parsed once per version by this VM; `None` before the first
    /// successful fetch.
    pub fn keys(&mut self) -> Option<Rc<KeySet>> {
        self.versioned_keys().map(|(_, keys)| keys)
    }

    /// The current key set with its version.
    pub fn versioned_keys(&mut self) -> Option<(u64, Rc<KeySet>)> {
        let version = self
            .store
            .get(&self.name("version"))
            .0
            .and_then(|bytes| bytes.try_into().ok())
            .map(u64::from_le_bytes)?;
        if let Some((parsed_version, keys)) = &self.parsed {
            if *parsed_version == version {
                return Some((version, keys.clone()));
            }
        }
        let document = self.store.get(&self.name("jwks")).0?;
        let (prefix, jwks) = document.split_at_checked(8)?;
        let stored_version = u64::from_le_bytes(prefix.try_into().ok()?);
        let keys = Rc::new(KeySet::parse(jwks).ok()?.0);
        self.parsed = Some((stored_version, keys.clone()));
        Some((stored_version, keys))
    }

    /// The lease as stored, with its CAS token.
    fn read_lease(&self) -> (Option<Lease>, Option<u32>) {
        let (bytes, cas) = self.store.get(&self.name("lease"));
        (bytes.as_deref().and_then(Lease::decode), cas)
    }

    /// Whether an unknown-`kid` refetch may run at `now_ms`: at most one per
    /// `min_refresh_interval` across all VMs.
    fn forced_refetch_allowed(&self, state: &SharedState, now_ms: u64) -> bool {
        state.forced_ms == 0
            || now_ms
                >= state
                    .forced_ms
                    .saturating_add(self.timing.min_refresh_interval_ms)
    }

    /// Asks to fetch at `now_ms` for `trigger`.
    pub fn begin(&self, now_ms: u64, trigger: Trigger) -> Begin {
        let (lease, lease_cas) = self.read_lease();
        let state = self.state();
        if lease.is_some_and(|lease| lease.held_at(now_ms)) {
            return Begin::InProgress {
                completed: state.completed,
            };
        }
        match trigger {
            Trigger::Scheduled if now_ms < state.next_refresh_ms => return Begin::Idle,
            Trigger::Scheduled => {}
            Trigger::UnknownKey => {
                let granted = self.update_state(|state| {
                    let allowed = self.forced_refetch_allowed(state, now_ms);
                    if allowed {
                        state.forced_ms = now_ms;
                    }
                    allowed
                });
                if granted.is_none() {
                    return Begin::Idle;
                }
            }
        }
        let mine = Lease {
            owner: self.owner,
            until_ms: now_ms.saturating_add(self.timing.lease_ms),
        };
        if self
            .store
            .set(&self.name("lease"), &mine.encode(), lease_cas)
        {
            Begin::Fetch(Ticket {
                until_ms: mine.until_ms,
            })
        } else {
            Begin::InProgress {
                completed: state.completed,
            }
        }
    }

    /// Publishes a validated JWKS `document` with `keys` usable keys, fetched under `ticket`.
    /// A document identical to the current one keeps its version, so no VM parses it again.
    /// Returns the state before and after.
    pub fn succeed(
        &mut self,
        ticket: &Ticket,
        document: &[u8],
        keys: usize,
        now_ms: u64,
    ) -> (SharedState, SharedState) {
        let before = self.state();
        let current = self.store.get(&self.name("jwks")).0;
        let unchanged = before.version > 0
            && current.as_deref().and_then(|stored| stored.get(8..)) == Some(document);
        let version = if unchanged {
            before.version
        } else {
            let version = before.version.saturating_add(1);
            let mut stored = version.to_le_bytes().to_vec();
            stored.extend_from_slice(document);
            self.store.set(&self.name("jwks"), &stored, None);
            self.store
                .set(&self.name("version"), &version.to_le_bytes(), None);
            version
        };
        let refresh = self.timing.refresh_interval_ms;
        let state = self
            .update_state(|state| {
                state.version = version;
                state.keys = keys;
                state.next_refresh_ms = now_ms.saturating_add(refresh);
                state.failures = 0;
                state.completed = state.completed.saturating_add(1);
                state.last_error = None;
                true
            })
            .unwrap_or_default();
        self.release(ticket);
        (before, state)
    }

    /// Records a failed attempt under `ticket`; the last good key set stays. `jitter` in
    /// `[0, 1)` spreads retries. Returns the state before and after.
    pub fn fail(
        &self,
        ticket: &Ticket,
        error: &str,
        now_ms: u64,
        jitter: f64,
    ) -> (SharedState, SharedState) {
        let before = self.state();
        let refresh = self.timing.refresh_interval_ms;
        let after = self
            .update_state(|state| {
                state.failures = state.failures.saturating_add(1);
                state.next_refresh_ms =
                    now_ms.saturating_add(backoff_ms(state.failures, refresh, jitter));
                state.completed = state.completed.saturating_add(1);
                state.last_error = Some(error.to_owned());
                true
            })
            .unwrap_or_default();
        self.release(ticket);
        (before, after)
    }

    /// Whether a request that found no usable key (`trigger` says which way) should wait
    /// for a fetch: `Some(attempts finished so far)` to wait on, `None` to be decided now.
    /// No keys: wait unless failing and backing off. Unknown `kid`: wait when a fetch is
    /// running or a forced refetch is allowed.
    pub fn worth_waiting(&self, trigger: Trigger, now_ms: u64) -> Option<u64> {
        let state = self.state();
        let running = self
            .read_lease()
            .0
            .is_some_and(|lease| lease.held_at(now_ms));
        let wait = running
            || match trigger {
                Trigger::Scheduled => now_ms >= state.next_refresh_ms,
                Trigger::UnknownKey => self.forced_refetch_allowed(&state, now_ms),
            };
        wait.then_some(state.completed)
    }

    fn release(&self, ticket: &Ticket) {
        let (held, cas) = self.read_lease();
        if held
            == Some(Lease {
                owner: self.owner,
                until_ms: ticket.until_ms,
            })
        {
            self.store
                .set(&self.name("lease"), &Lease::FREE.encode(), cas);
        }
    }
}

/// Delay before retry number `failures` (1-based): 1 s doubling up to
/// `min(MAX_BACKOFF_MS, refresh_interval_ms)`, scaled by a jitter factor in `[0.5, 1)`.
pub fn backoff_ms(failures: u32, refresh_interval_ms: u64, jitter: f64) -> u64 {
    let cap = MAX_BACKOFF_MS
        .min(refresh_interval_ms)
        .max(FIRST_BACKOFF_MS);
    let doublings = failures.saturating_sub(1).min(16);
    let full = FIRST_BACKOFF_MS.saturating_mul(1 << doublings).min(cap);
    let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    (full as f64 * factor) as u64
}

fn encode_state(state: &SharedState) -> Vec<u8> {
    serde_json::to_vec(state).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lease {
    owner: u64,
    until_ms: u64,
}

impl Lease {
    const FREE: Lease = Lease {
        owner: 0,
        until_ms: 0,
    };

    /// Whether some VM holds this lease at `now_ms`.
    fn held_at(self, now_ms: u64) -> bool {
        self.owner != 0 && self.until_ms > now_ms
    }

    fn encode(self) -> Vec<u8> {
        let mut bytes = self.owner.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.until_ms.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Lease> {
        let (owner, until) = bytes.split_at_checked(8)?;
        Some(Lease {
            owner: u64::from_le_bytes(owner.try_into().ok()?),
            until_ms: u64::from_le_bytes(until.try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use testbed::keys::{jwks, P256, RSA_2048};

    /// Shared data as Envoy keeps it: every set bumps a process-wide CAS counter.
    #[derive(Default)]
    struct Memory {
        entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        next_cas: RefCell<u32>,
    }

    impl SharedStore for &Memory {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            match self.entries.borrow().get(key) {
                Some((value, cas)) => (Some(value.clone()), Some(*cas)),
                None => (None, None),
            }
        }

        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            let mut entries = self.entries.borrow_mut();
            if let (Some(expected), Some((_, current))) = (cas, entries.get(key)) {
                if expected != *current {
                    return false;
                }
            }
            *self.next_cas.borrow_mut() += 1;
            entries.insert(key.to_owned(), (value.to_vec(), *self.next_cas.borrow()));
            true
        }
    }

    const TIMING: Timing = Timing {
        refresh_interval_ms: 600_000,
        min_refresh_interval_ms: 30_000,
        lease_ms: 11_000,
    };

    fn vm(memory: &Memory, owner: u64) -> JwksCache<&Memory> {
        let cache = JwksCache::new(memory, "wsgate/test", owner, TIMING);
        cache.init();
        cache
    }

    fn document() -> Vec<u8> {
        jwks(&[(&RSA_2048, "a"), (&P256, "b")])
            .to_string()
            .into_bytes()
    }

    fn ticket(begin: Begin) -> Ticket {
        match begin {
            Begin::Fetch(ticket) => ticket,
            other => panic!("expected to fetch, got {other:?}"),
        }
    }

    #[test]
    fn one_vm_fetches_and_every_vm_sees_the_keys() {
        let memory = Memory::default();
        let (mut one, mut two) = (vm(&memory, 1), vm(&memory, 2));
        assert!(one.keys().is_none());
        let t = ticket(one.begin(1_000, Trigger::Scheduled));
        assert_eq!(
            two.begin(1_000, Trigger::Scheduled),
            Begin::InProgress { completed: 0 }
        );
        let (_, state) = one.succeed(&t, &document(), 2, 1_500);
        assert_eq!(
            (state.keys, state.completed, state.next_refresh_ms),
            (2, 1, 601_500)
        );
        assert_eq!(two.keys().unwrap().len(), 2);
        assert_eq!(one.keys().unwrap().len(), 2);
        // Not due again until the refresh interval has passed, for anyone.
        assert_eq!(two.begin(2_000, Trigger::Scheduled), Begin::Idle);
        assert!(matches!(
            two.begin(601_500, Trigger::Scheduled),
            Begin::Fetch(_)
        ));
    }

    #[test]
    fn each_version_is_parsed_once_per_vm() {
        let memory = Memory::default();
        let mut one = vm(&memory, 1);
        let t = ticket(one.begin(0, Trigger::Scheduled));
        one.succeed(&t, &document(), 2, 10);
        let first = one.keys().unwrap();
        assert!(
            Rc::ptr_eq(&first, &one.keys().unwrap()),
            "same version, same parse"
        );
        let t = ticket(one.begin(700_000, Trigger::Scheduled));
        one.succeed(
            &t,
            &jwks(&[(&P256, "c")]).to_string().into_bytes(),
            1,
            700_000,
        );
        let second = one.keys().unwrap();
        assert!(!Rc::ptr_eq(&first, &second));
        assert_eq!(second.len(), 1);
        // The same document again: same version, nothing to parse.
        let t = ticket(one.begin(1_400_000, Trigger::Scheduled));
        let (before, after) = one.succeed(
            &t,
            &jwks(&[(&P256, "c")]).to_string().into_bytes(),
            1,
            1_400_000,
        );
        assert_eq!(before.version, after.version);
        assert!(Rc::ptr_eq(&second, &one.keys().unwrap()));
    }

    #[test]
    fn a_lapsed_lease_can_be_taken_over() {
        let memory = Memory::default();
        let (one, two) = (vm(&memory, 1), vm(&memory, 2));
        let _abandoned = ticket(one.begin(0, Trigger::Scheduled));
        assert!(matches!(
            two.begin(10_999, Trigger::Scheduled),
            Begin::InProgress { .. }
        ));
        assert!(matches!(
            two.begin(11_000, Trigger::Scheduled),
            Begin::Fetch(_)
        ));
    }

    #[test]
    fn failures_keep_the_keys_and_back_off() {
        let memory = Memory::default();
        let mut one = vm(&memory, 1);
        let t = ticket(one.begin(0, Trigger::Scheduled));
        one.succeed(&t, &document(), 2, 0);
        let t = ticket(one.begin(600_000, Trigger::Scheduled));
        let (before, after) = one.fail(&t, "HTTP status 500", 600_000, 0.0);
        assert_eq!(before.failures, 0);
        assert_eq!((after.failures, after.next_refresh_ms), (1, 600_500));
        assert_eq!(after.last_error.as_deref(), Some("HTTP status 500"));
        assert_eq!(one.keys().unwrap().len(), 2, "last good set stays");
        assert_eq!(one.begin(600_499, Trigger::Scheduled), Begin::Idle);
        let t = ticket(one.begin(600_500, Trigger::Scheduled));
        let (_, after) = one.fail(&t, "HTTP status 500", 600_500, 0.999);
        assert_eq!(after.failures, 2);
        assert!(
            after.next_refresh_ms > 600_500 + 1_900,
            "{}",
            after.next_refresh_ms
        );
        let t = ticket(one.begin(after.next_refresh_ms, Trigger::Scheduled));
        let (_, state) = one.succeed(&t, &document(), 2, after.next_refresh_ms);
        assert_eq!((state.failures, state.last_error), (0, None));
    }

    #[test]
    fn unknown_kid_refetches_at_most_once_per_interval_across_vms() {
        let memory = Memory::default();
        let (mut one, two) = (vm(&memory, 1), vm(&memory, 2));
        let t = ticket(one.begin(0, Trigger::Scheduled));
        one.succeed(&t, &document(), 2, 0);
        let t = ticket(one.begin(5_000, Trigger::UnknownKey));
        // While it runs, others wait for it rather than fetching.
        assert!(matches!(
            two.begin(5_001, Trigger::UnknownKey),
            Begin::InProgress { completed: 1 }
        ));
        one.succeed(&t, &document(), 2, 5_100);
        let mut fetches = 0;
        for step in 0..200u64 {
            if let Begin::Fetch(t) = two.begin(5_200 + step * 100, Trigger::UnknownKey) {
                fetches += 1;
                two.fail(&t, "x", 5_200 + step * 100, 0.5);
            }
        }
        // 20 s of unknown kids after one forced fetch at 5 s: none until 35 s.
        assert_eq!(fetches, 0);
        assert!(matches!(
            two.begin(35_000, Trigger::UnknownKey),
            Begin::Fetch(_)
        ));
    }

    #[test]
    fn who_waits_for_a_fetch() {
        let memory = Memory::default();
        let mut one = vm(&memory, 1);
        // Before anything: the first fetch is due, so a request without keys waits.
        assert_eq!(one.worth_waiting(Trigger::Scheduled, 0), Some(0));
        let t = ticket(one.begin(0, Trigger::Scheduled));
        assert_eq!(one.worth_waiting(Trigger::Scheduled, 1), Some(0), "running");
        one.fail(&t, "down", 100, 0.0);
        // Backing off: decide now.
        assert_eq!(one.worth_waiting(Trigger::Scheduled, 200), None);
        assert_eq!(
            one.worth_waiting(Trigger::Scheduled, 600),
            Some(1),
            "retry due"
        );
        let t = ticket(one.begin(600, Trigger::Scheduled));
        one.succeed(&t, &document(), 2, 700);
        assert_eq!(one.worth_waiting(Trigger::UnknownKey, 800), Some(2));
        let t = ticket(one.begin(800, Trigger::UnknownKey));
        one.succeed(&t, &document(), 2, 900);
        assert_eq!(
            one.worth_waiting(Trigger::UnknownKey, 1_000),
            None,
            "rate-limited"
        );
        assert_eq!(one.worth_waiting(Trigger::UnknownKey, 30_800), Some(3));
    }

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        assert_eq!(backoff_ms(1, 600_000, 0.0), 500);
        assert_eq!(backoff_ms(1, 600_000, 1.0), 1_000);
        assert_eq!(backoff_ms(3, 600_000, 1.0), 4_000);
        assert_eq!(backoff_ms(30, 600_000, 1.0), MAX_BACKOFF_MS);
        assert_eq!(
            backoff_ms(30, 5_000, 1.0),
            5_000,
            "never beyond the refresh interval"
        );
    }

    #[test]
    fn corrupt_shared_entries_are_no_keys_not_a_panic() {
        let memory = Memory::default();
        let mut one = vm(&memory, 1);
        (&memory).set("wsgate/test/version", b"\x01", None);
        assert!(one.keys().is_none());
        (&memory).set("wsgate/test/version", &7u64.to_le_bytes(), None);
        (&memory).set("wsgate/test/jwks", b"short", None);
        assert!(one.keys().is_none());
        (&memory).set("wsgate/test/state", b"{not json", None);
        (&memory).set("wsgate/test/lease", b"\x00", None);
        assert!(matches!(one.begin(0, Trigger::Scheduled), Begin::Fetch(_)));
    }
}
