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
//! - `{scope}/jwks`: the last good JWKS document, prefixed with its version; written only
//!   with compare-and-swap by the VM whose lease no other VM has taken over, so a version
//!   never names two documents, and a fetch whose lease was taken over (another VM has
//!   fetched since) never overwrites a newer set;
//! - `{scope}/version`: that version alone, the one entry read on every request, so a VM
//!   notices a new key set cheaply and parses it once; it only ever grows.
//!
//! Scheduled refreshes come after a random 90–100% of `refresh_interval`, so that proxies
//! started together drift apart instead of asking the issuer in lockstep. A failed fetch
//! keeps the last good key set and schedules a retry with capped exponential backoff and
//! jitter, but not forever: past `max_stale_keys_seconds` since the last successful fetch
//! the set is no longer served ([`JwksCache::current`] answers `None`), so a withdrawn key
//! cannot be kept valid by making refreshes fail. Each VM learns when the last fetch
//! succeeded from the state it reads on every tick, so while the set is fresh the check
//! costs a request nothing; a set that looks stale is checked against the state again
//! before a request is refused. An unknown `kid` may force a refetch at most once per
//! `min_refresh_interval` across all workers.

use std::cell::Cell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::keys::jwks::{KeyLimits, KeySet, VersionedKeys};

use crate::shared::{self, SharedStore};

/// What every VM knows about the shared key set and its fetching.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedState {
    /// Version of the key set in `{scope}/jwks`; 0 before the first success.
    pub version: u64,
    /// How many usable keys that set has.
    #[serde(alias = "keys")]
    pub key_count: usize,
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
    /// When (ms since the epoch) a fetch last succeeded; 0 before the first, or when
    /// written by a module that did not record it (then the set is trusted until the next
    /// tick of a VM that records it starts the clock, see [`JwksCache::begin`]).
    #[serde(default)]
    pub fetched_ms: u64,
    /// The version a failing VM found past `max_stale_keys_seconds` and dropped, so that
    /// the drop is logged and counted once; 0 while the set is fresh.
    #[serde(default)]
    pub stale_version: u64,
}

impl SharedState {
    /// Until when (ms since the epoch) its key set may be served with `max_stale_ms` (0:
    /// forever).
    pub fn trusted_until_ms(&self, max_stale_ms: u64) -> u64 {
        if max_stale_ms == 0 || self.fetched_ms == 0 {
            u64::MAX
        } else {
            self.fetched_ms.saturating_add(max_stale_ms)
        }
    }
}

/// Timing of fetches, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub refresh_interval_ms: u64,
    pub min_refresh_interval_ms: u64,
    /// How long one whole fetch (discovery and JWKS) may take before its lease lapses.
    pub lease_ms: u64,
    /// `max_stale_keys_seconds` in ms: how long after the last successful fetch its set is
    /// served; 0, forever.
    pub max_stale_ms: u64,
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
    /// Another VM is fetching (requests wait on [`JwksCache::worth_waiting`]).
    InProgress,
    /// Nothing to do: not due, or rate-limited.
    Idle,
}

/// Proof of holding the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    until_ms: u64,
}

/// Why a fetched key set was not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The fetch outlived its lease and another VM took the lease over, so it may have
    /// fetched something newer: this document is dropped rather than risk replacing it.
    LeaseLapsed,
    /// The shared entries kept changing under this VM; nothing was written.
    Contended,
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::LeaseLapsed => "the fetch outlived its lease; another fetch may be newer",
            Self::Contended => "the shared key set kept changing while publishing",
        })
    }
}

/// Largest delay between retries after failures.
pub const MAX_BACKOFF_MS: u64 = 60_000;
/// Scheduled refreshes come up to this fraction of `refresh_interval` early, at random.
pub const REFRESH_JITTER: f64 = 0.1;
const FIRST_BACKOFF_MS: u64 = 1_000;
const CAS_ATTEMPTS: usize = 16;

/// One VM's handle on the shared key set.
pub struct JwksCache<S: SharedStore> {
    store: S,
    scope: String,
    owner: u64,
    timing: Timing,
    limits: KeyLimits,
    /// The version this VM parsed last, and its keys (`None`: that version's document did
    /// not parse within this VM's limits, and is not parsed again).
    parsed: Option<(u64, Option<Rc<KeySet>>)>,
    /// Until when this VM serves the current set, from the state last read (0: not read
    /// yet). See [`SharedState::trusted_until_ms`].
    trusted_until_ms: Cell<u64>,
}

impl<S: SharedStore> JwksCache<S> {
    /// A handle for `scope`, as VM `owner` (any number unique among the VMs), parsing
    /// key sets within `limits`.
    pub fn new(store: S, scope: &str, owner: u64, timing: Timing, limits: KeyLimits) -> Self {
        JwksCache {
            store,
            scope: scope.to_owned(),
            owner,
            timing,
            limits,
            parsed: None,
            trusted_until_ms: Cell::new(0),
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
            ("jwks", 0u64.to_le_bytes().to_vec()),
            ("version", 0u64.to_le_bytes().to_vec()),
        ] {
            shared::create_if_absent(&self.store, &self.name(entry), &empty);
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

    /// The shared state and its CAS token. Every read also tells this VM until when the
    /// current key set may be served.
    fn read_state(&self) -> (SharedState, Option<u32>) {
        let (bytes, cas) = self.store.get(&self.name("state"));
        let state: SharedState = bytes
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        self.trust(&state);
        (state, cas)
    }

    /// Notes until when `state`, as read or written last, lets this VM serve its key set.
    fn trust(&self, state: &SharedState) {
        self.trusted_until_ms
            .set(state.trusted_until_ms(self.timing.max_stale_ms));
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
                self.trust(&state);
                return Some(state);
            }
        }
        None
    }

    /// [`current`](Self::current)'s keys alone, for tests, at time 0.
    #[cfg(test)]
    pub fn keys(&mut self) -> Option<Rc<KeySet>> {
        self.current(0).map(|current| current.keys)
    }

    /// The current key set with its version at `now_ms`, parsed once per version by this
    /// VM; `None` before the first successful fetch, when that version does not parse here,
    /// or when it is older than `max_stale_keys_seconds` (the last successful fetch as of
    /// this VM's last read of the state, at most a tick ago).
    pub fn current(&mut self, now_ms: u64) -> Option<VersionedKeys> {
        if self.timing.max_stale_ms > 0 && now_ms >= self.trusted_until_ms.get() {
            // Not read yet, or stale as of the last read: read again, so that a fetch that
            // succeeded in another VM since counts at once. Only a stale set pays for it.
            self.read_state();
            if now_ms >= self.trusted_until_ms.get() {
                return None;
            }
        }
        let version = self.read_version().0.filter(|&version| version > 0)?;
        if let Some((parsed_version, keys)) = &self.parsed {
            if *parsed_version >= version {
                return Some(VersionedKeys {
                    version: *parsed_version,
                    keys: keys.clone()?,
                });
            }
        }
        let (stored_version, jwks) = self.read_document().0?;
        let keys = KeySet::parse(&jwks, self.limits)
            .ok()
            .map(|(keys, _)| Rc::new(keys));
        self.parsed = Some((stored_version, keys.clone()));
        Some(VersionedKeys {
            version: stored_version,
            keys: keys?,
        })
    }

    /// `{scope}/version` as stored (`None` when absent or corrupt), with its CAS token.
    fn read_version(&self) -> (Option<u64>, Option<u32>) {
        let (bytes, cas) = self.store.get(&self.name("version"));
        let version = bytes
            .and_then(|bytes| bytes.try_into().ok())
            .map(u64::from_le_bytes);
        (version, cas)
    }

    /// The stored document with its version (`None` before the first), and the entry's
    /// CAS token.
    fn read_document(&self) -> (Option<(u64, Vec<u8>)>, Option<u32>) {
        let (bytes, cas) = self.store.get(&self.name("jwks"));
        let document = bytes.and_then(|mut bytes| {
            let prefix: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
            let version = u64::from_le_bytes(prefix);
            bytes.drain(..8);
            (version > 0).then_some((version, bytes))
        });
        (document, cas)
    }

    /// Whether the lease is still the one `ticket` proves this VM took: no other VM has
    /// taken it over since (even past its time, a lease nobody took is still this VM's).
    fn holds(&self, ticket: &Ticket) -> bool {
        self.read_lease().0 == Some(Lease::mine(self.owner, ticket))
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

    /// Asks to fetch at `now_ms` for `trigger`. Also starts the staleness clock of a key
    /// set whose last fetch time is not recorded (state written by a module from before
    /// `max_stale_keys_seconds`) from now, rather than never.
    pub fn begin(&self, now_ms: u64, trigger: Trigger) -> Begin {
        let (lease, lease_cas) = self.read_lease();
        let mut state = self.state();
        if self.timing.max_stale_ms > 0 && state.version > 0 && state.fetched_ms == 0 {
            let started = self.update_state(|state| {
                let unrecorded = state.version > 0 && state.fetched_ms == 0;
                if unrecorded {
                    state.fetched_ms = now_ms;
                }
                unrecorded
            });
            state = started.unwrap_or_else(|| self.state());
        }
        if lease.is_some_and(|lease| lease.held_at(now_ms)) {
            return Begin::InProgress;
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
            Begin::InProgress
        }
    }

    /// Publishes a validated JWKS `document` with `keys` usable keys, fetched under `ticket`,
    /// and schedules the next refresh after a random 90–100% of the interval (`jitter` in
    /// `[0, 1)` picks where). A document identical to the current one keeps its version, so
    /// no VM parses it again. The document goes in with compare-and-swap, and only while the
    /// lease is still this VM's (even past its time, if no other VM took it over): a
    /// version never names two documents, and a fetch whose lease was taken over is
    /// dropped. Returns the state before and after.
    pub fn succeed(
        &mut self,
        ticket: &Ticket,
        document: &[u8],
        keys: usize,
        now_ms: u64,
        jitter: f64,
    ) -> Result<(SharedState, SharedState), PublishError> {
        let before = self.state();
        let version = self.publish(ticket, document)?;
        self.raise_version(version);
        let refresh = self.timing.refresh_interval_ms;
        let early = (refresh as f64 * REFRESH_JITTER * jitter.clamp(0.0, 1.0)) as u64;
        let after = self
            .update_state(|state| {
                if version >= state.version {
                    state.version = version;
                    state.key_count = keys;
                }
                state.next_refresh_ms = now_ms.saturating_add(refresh.saturating_sub(early));
                state.fetched_ms = now_ms;
                state.stale_version = 0;
                state.failures = 0;
                state.completed = state.completed.saturating_add(1);
                state.last_error = None;
                true
            })
            .unwrap_or_else(|| self.state());
        self.release(ticket);
        Ok((before, after))
    }

    /// Ends an attempt under `ticket` whose document was not published ([`PublishError`]):
    /// counts it as finished, so requests waiting on it are decided with the keys there are,
    /// and frees the lease if it is still this VM's. The schedule is left as it is: after a
    /// lapse, the VM that took over has set it; after contention, a retry is due at once.
    pub fn abandon(&self, ticket: &Ticket) -> SharedState {
        let after = self
            .update_state(|state| {
                state.completed = state.completed.saturating_add(1);
                true
            })
            .unwrap_or_else(|| self.state());
        self.release(ticket);
        after
    }

    /// Stores `document` under the next version, or finds it already current; its version.
    fn publish(&self, ticket: &Ticket, document: &[u8]) -> Result<u64, PublishError> {
        for _ in 0..CAS_ATTEMPTS {
            if !self.holds(ticket) {
                return Err(PublishError::LeaseLapsed);
            }
            let (current, cas) = self.read_document();
            let current_version = match current {
                Some((version, stored)) if stored == document => return Ok(version),
                Some((version, _)) => version,
                None => 0,
            };
            let version = current_version.max(self.state().version).saturating_add(1);
            let mut stored = version.to_le_bytes().to_vec();
            stored.extend_from_slice(document);
            if cas.is_some() && self.store.set(&self.name("jwks"), &stored, cas) {
                return Ok(version);
            }
            if cas.is_none() {
                // Entries are created by `init`; one that vanished is re-created, then
                // taken with compare-and-swap like any other.
                self.init();
            }
        }
        Err(PublishError::Contended)
    }

    /// Raises `{scope}/version` to `version`, never lowering it.
    fn raise_version(&self, version: u64) {
        for _ in 0..CAS_ATTEMPTS {
            let (current, cas) = self.read_version();
            if current.unwrap_or(0) >= version
                || self
                    .store
                    .set(&self.name("version"), &version.to_le_bytes(), cas)
            {
                return;
            }
        }
    }

    /// Records a failed attempt under `ticket`; the last good key set stays, until it is
    /// older than `max_stale_keys_seconds`: the first failure past that marks its version
    /// dropped (`stale_version`), so the drop is reported once. `jitter` in `[0, 1)` spreads
    /// retries. Returns the state before and after.
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
                let stale =
                    state.version > 0 && now_ms >= state.trusted_until_ms(self.timing.max_stale_ms);
                if stale {
                    state.stale_version = state.version;
                }
                true
            })
            .unwrap_or_else(|| self.state());
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
        if held == Some(Lease::mine(self.owner, ticket)) {
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

    /// The lease that `ticket` proves VM `owner` took.
    fn mine(owner: u64, ticket: &Ticket) -> Lease {
        Lease {
            owner,
            until_ms: ticket.until_ms,
        }
    }

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
mod tests;
