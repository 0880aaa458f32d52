//! What every context of one VM shares: the [`Settings`] the configuration fixed, and the
//! one mutable [`VmState`], reached only through [`Plugin::with_state`].
//!
//! No host call that can re-enter wsgate (a local reply, a reset, a resume, switching the
//! effective context) runs while the state is borrowed: a callback takes what it needs, lets
//! go, then calls the host, which may end a stream and so call back into `on_done`. Only
//! shared-data calls, which never call back, run under the borrow (the key cache's).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};

use super::host_verifier::HostVerifier;
use super::metrics::Metrics;
use crate::config::{Config, KeySource, Provider};
use crate::decision::gate::{Gate, KeysNow, SharedView};
use crate::decision::record::CorrelationHeader;
use crate::decision::rules::Rule;
use crate::decision::stats;
use crate::decision::Outcome;
use crate::deny::DenyReason;
use crate::host::{Host, HostStatus};
use crate::keys::fetcher::KeyFetcher;
use crate::keys::jwks::{KeyLimits, VersionedKeys};
use crate::keys::jwks_cache::{JwksCache, Timing, Trigger};
use crate::keys::parked::{Parked, Wait};
use crate::keys::remote::RemoteKeys;
use crate::provider::{ProviderId, ProviderTable};
use crate::quota::{Refusal, Slot, SocketQuota};
use crate::request::RequestHead;
use crate::shared::SharedStore;
use crate::sockets::OpenSockets;
use crate::token::token_cache::{TokenCache, MAX_CACHE_BYTES};

/// How often the root context ticks: for the host's log level always, and for key fetches,
/// parked requests and expired sockets when configured.
pub(super) const TICK: Duration = Duration::from_millis(100);

/// What the configuration fixed: read by every request, never changed.
pub(super) struct Settings {
    /// The decisions, and the one table of providers.
    pub gate: Gate,
    pub correlation: Vec<CorrelationHeader>,
    pub close_on_expiry: bool,
    /// Whether decisions set their access-log fields (`access_log_fields`).
    pub access_log_fields: bool,
    /// Whether accepted requests are logged at `info` (`log_allowed`), else at `debug`.
    pub log_allowed: bool,
}

/// What changes while the VM runs.
pub(super) struct VmState<H: Host> {
    /// Each provider's keys and parked requests.
    pub providers: ProviderTable<ProviderState<H>>,
    /// With `close_on_expiry`: accepted streams and when their token expires.
    pub open_sockets: OpenSockets,
    /// Verified tokens, unless `jwt_cache_size` is 0.
    pub token_cache: Option<TokenCache>,
    /// The open-socket counts shared with the other VMs, when a provider limits them.
    pub quota: Option<SocketQuota<SharedData<H>>>,
    /// The slot each accepted stream holds, by context id, until it ends.
    pub slots: HashMap<u32, Slot>,
    /// Slots whose give-back lost to other VMs too often: retried on each tick.
    pub unreleased: VecDeque<Slot>,
}

/// One provider's share of the VM state: each provider's keys are fetched, shared,
/// refreshed and waited for on their own.
pub(super) struct ProviderState<H: Host> {
    pub keys: Keys<H>,
    /// Requests paused until a fetch of this provider's keys finishes, each with its rule.
    pub parked: Parked<ParkedRequest>,
}

/// A request parked for keys: its head and the rule that guards it, so that it is decided
/// again without reading its path again.
pub(super) struct ParkedRequest {
    pub head: RequestHead,
    pub rule: Rule,
}

/// Where this VM's keys come from.
#[allow(clippy::large_enum_variant)] // one per VM
pub(super) enum Keys<H: Host> {
    /// An inline set, version 0.
    Inline(VersionedKeys),
    /// Fetched: the shared key set, and this VM's fetcher.
    Remote {
        cache: JwksCache<SharedData<H>>,
        fetcher: KeyFetcher,
    },
}

impl<H: Host> ProviderState<H> {
    /// The key set to verify with now, if there is one.
    pub fn current_keys(&mut self, now_ms: u64) -> Option<VersionedKeys> {
        match &mut self.keys {
            Keys::Inline(keys) => Some(keys.clone()),
            Keys::Remote { cache, .. } => cache.current(now_ms),
        }
    }
}

/// The host's shared data as the key cache's store.
pub(super) struct SharedData<H: Host>(H);

impl<H: Host> SharedStore for SharedData<H> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.0.get_shared_data(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        match self.0.set_shared_data(key, value, cas) {
            Ok(()) => true,
            // Another VM wrote first: the key cache expects this and reads again.
            Err(refusal) if refusal.status == HostStatus::CasMismatch => false,
            Err(refusal) => {
                warn!("shared data {key:?} not written: {refusal}");
                false
            }
        }
    }
}

/// One VM's plugin: the host, the settings, the verifier, the stats and the state.
pub(super) struct Plugin<H: Host> {
    pub host: H,
    pub settings: Settings,
    pub verifier: HostVerifier<H>,
    pub metrics: Metrics<H>,
    state: RefCell<VmState<H>>,
}

impl<H: Host + Clone> Plugin<H> {
    /// Reads and checks the configuration, logs what it configured, and asks for ticks (the
    /// host's log level is read on each; a refusal fails the plugin only when keys or
    /// sockets need them). The error is the reason the plugin must not start.
    pub fn configure(host: H) -> Result<Rc<Plugin<H>>, String> {
        let config = Config::parse(&host.plugin_configuration())
            .map_err(|problem| format!("invalid plugin configuration: {problem}"))?;
        let verifier = HostVerifier::start(host.clone(), config.crypto)?;
        // The marker scripts/build-wasm.sh and make dist refuse: such a module may fail open.
        #[cfg(feature = "bench-only")]
        log::error!(
            "wsgate-bench-only build: it leaves host calls out or repeats steps; never serve traffic with it"
        );
        // The entry `bench-repeat-shared-read` reads, as a remote key set's version.
        #[cfg(feature = "bench-repeat-shared-read")]
        let _ = host.set_shared_data(crate::bench_repeat::SHARED_ENTRY, &[0; 8], None);
        info!("signatures: {}", verifier.describe());
        let provider_names: Vec<String> = config
            .providers
            .iter()
            .filter_map(|provider| provider.name.clone())
            .collect();
        let metrics = Metrics::define(host.clone(), &provider_names);
        // P-384 and P-521 keys only where the host verifies ES384 and ES512.
        let key_limits = verifier.key_limits(config.key_limits);
        let providers: ProviderTable<ProviderState<H>> = config
            .providers
            .iter()
            .map(|provider| ProviderState {
                keys: provider_keys(&host, provider, &config, key_limits, &metrics),
                parked: Parked::default(),
            })
            .collect();
        if !provider_names.is_empty() {
            let rules: Vec<String> = config
                .rules
                .iter()
                .map(|rule| {
                    let names: Vec<&str> = rule
                        .providers
                        .iter()
                        .filter_map(|id| provider_names.get(id.index()).map(String::as_str))
                        .collect();
                    format!("{} -> {}", rule.shown, names.join("|"))
                })
                .collect();
            info!("configured: rules {rules:?}");
        }
        let remote = providers
            .values()
            .any(|provider| matches!(provider.keys, Keys::Remote { .. }));
        let quota = config
            .providers
            .iter()
            .any(|provider| provider.socket_limit.is_some())
            .then(|| {
                let now = host.now_ms();
                let vm = u32::try_from(random_u64(now) >> 32).unwrap_or_default();
                let scope = format!("wsgate/{}/quota", host.plugin_name());
                let quota = SocketQuota::new(SharedData(host.clone()), &scope, vm);
                quota.start(now);
                info!("configured: open sockets counted per identity across VMs (vm {vm})");
                quota
            });
        if let Err(error) = host.set_tick_period(TICK) {
            if remote || config.close_on_expiry || quota.is_some() {
                return Err(format!(
                    "cannot fetch keys, close expired sockets or count sockets: {error}"
                ));
            }
            // Only the log level is read on ticks here: it stays as read at configuration.
            warn!("a change of the host's log level will not be followed: {error}");
        }
        Ok(Rc::new(Plugin {
            settings: Settings {
                gate: config.gate(),
                correlation: config.correlation,
                close_on_expiry: config.close_on_expiry,
                access_log_fields: config.access_log_fields,
                log_allowed: config.log_allowed,
            },
            state: RefCell::new(VmState {
                providers,
                open_sockets: OpenSockets::default(),
                token_cache: (config.jwt_cache_size > 0)
                    .then(|| TokenCache::new(config.jwt_cache_size, MAX_CACHE_BYTES)),
                quota,
                slots: HashMap::new(),
                unreleased: VecDeque::new(),
            }),
            verifier,
            metrics,
            host,
        }))
    }
}

/// `provider`'s keys (one of `config`'s providers): its inline set, or its shared key cache
/// (in a shared-data scope of its own) and this VM's fetcher. Logs what it configured.
fn provider_keys<H: Host + Clone>(
    host: &H,
    provider: &Provider,
    config: &Config,
    key_limits: KeyLimits,
    metrics: &Metrics<H>,
) -> Keys<H> {
    for skipped in &provider.skipped_keys {
        warn!("jwks: {skipped}");
    }
    let issuer = &provider.authenticator.policy.issuer;
    // The single-issuer form says which paths; named providers are listed, then the rules.
    let subject = match &provider.name {
        None => {
            let paths: Vec<&str> = config
                .rules
                .iter()
                .map(|rule| rule.shown.as_str())
                .collect();
            format!("paths={paths:?}")
        }
        Some(name) => format!("provider={name}"),
    };
    match &provider.keys {
        KeySource::Inline(keys) => {
            let (keys, dropped) = keys.within(key_limits);
            if dropped > 0 {
                warn!(
                    "jwks: ignoring {dropped} P-384/P-521 key(s): only the host's \
                     verify_signature checks them, and it did not pass its self-test here"
                );
            }
            info!(
                "configured: {subject} issuer={issuer:?} keys={} (inline)",
                keys.len()
            );
            metrics.set_keys(provider.name.as_deref(), keys.len());
            Keys::Inline(VersionedKeys {
                version: 0,
                keys: Rc::new(keys),
            })
        }
        KeySource::Remote(remote) => {
            info!(
                "configured: {subject} issuer={issuer:?} keys from {} via cluster {:?}",
                remote.source_url(),
                remote.cluster()
            );
            let scope = match &provider.name {
                None => format!("wsgate/{}/{}", host.plugin_name(), remote.source_url()),
                Some(name) => format!(
                    "wsgate/{}/{name}/{}",
                    host.plugin_name(),
                    remote.source_url()
                ),
            };
            let cache = JwksCache::new(
                SharedData(host.clone()),
                &scope,
                random_u64(host.now_ms()),
                timing(remote),
                key_limits,
            );
            cache.init();
            Keys::Remote {
                cache,
                fetcher: KeyFetcher::new(remote.clone(), issuer.clone(), key_limits),
            }
        }
    }
}

impl<H: Host> Plugin<H> {
    /// Runs `step` on the VM state. `None` only if the state were already borrowed, which a
    /// callback that lets go before calling the host never sees; logged if it happens.
    pub fn with_state<T>(&self, step: impl FnOnce(&mut VmState<H>) -> T) -> Option<T> {
        match self.state.try_borrow_mut() {
            Ok(mut state) => Some(step(&mut state)),
            Err(_) => {
                error!("VM state already in use: a host call re-entered wsgate");
                None
            }
        }
    }

    /// Decides `head`, whose `rule` the gate found for its path, at `now_ms` with the
    /// current keys and the token cache; a request may wait for keys only when `waiting`
    /// (not one already parked). Fails closed (keys unavailable) if the state could not be
    /// reached.
    pub fn decide(&self, rule: &Rule, head: &RequestHead, now_ms: u64, waiting: bool) -> Outcome {
        let gate = &self.settings.gate;
        let verifier = &self.verifier;
        let decided = self.with_state(|state| {
            let VmState {
                providers,
                token_cache,
                quota,
                ..
            } = state;
            let mut keys = StateKeys {
                providers,
                quota: quota.as_ref(),
                now_ms,
                waiting,
            };
            gate.decide_by(
                rule,
                head,
                &mut keys,
                now_ms,
                token_cache.as_mut(),
                verifier,
            )
        });
        decided.unwrap_or_else(|| {
            let mut none = crate::decision::gate::FixedKeys(None);
            gate.decide_by(rule, head, &mut none, now_ms, None, verifier)
        })
    }

    /// Forgets a guarded request that has ended: O(1) for an open socket; the parked
    /// requests of each provider are few and short-lived. An unguarded request is never
    /// tracked, and its stream does not call this.
    pub fn forget(&self, context_id: u32) {
        self.with_state(|state| {
            for (_, provider) in state.providers.iter_mut() {
                provider.parked.forget(context_id);
            }
        });
        self.with_sockets(|sockets| sockets.close(context_id));
    }

    /// Runs `step` on the open sockets `close_on_expiry` tracks, and moves the
    /// `expiry_tracked` gauge by what it changed.
    pub fn with_sockets<T>(&self, step: impl FnOnce(&mut OpenSockets) -> T) -> Option<T> {
        let (result, before, after) = self.with_state(|state| {
            let before = state.open_sockets.len();
            let result = step(&mut state.open_sockets);
            (result, before, state.open_sockets.len())
        })?;
        if before != after {
            let by = i64::try_from(after).unwrap_or(i64::MAX)
                - i64::try_from(before).unwrap_or(i64::MAX);
            self.metrics.add(stats::EXPIRY_TRACKED, by);
        }
        Some(result)
    }
}

/// The VM's keys and socket counts as the gate sees them at `now_ms`: a request may wait
/// for a fetch only when `waiting`.
struct StateKeys<'a, H: Host> {
    providers: &'a mut ProviderTable<ProviderState<H>>,
    quota: Option<&'a SocketQuota<SharedData<H>>>,
    now_ms: u64,
    waiting: bool,
}

impl<H: Host> StateKeys<'_, H> {
    /// What a request waits for on provider `id`'s `trigger` fetch, if it may wait and the
    /// fetch may come.
    fn wait(&mut self, id: ProviderId, trigger: Trigger) -> Option<Wait> {
        if !self.waiting {
            return None;
        }
        let Keys::Remote { cache, .. } = &self.providers.get(id)?.keys else {
            return None;
        };
        let completed = cache.worth_waiting(trigger, self.now_ms)?;
        Some(Wait {
            trigger,
            completed,
            deadline_ms: self.now_ms.saturating_add(cache.lease_ms()),
        })
    }
}

impl<H: Host> SharedView for StateKeys<'_, H> {
    fn keys(&mut self, id: ProviderId) -> KeysNow {
        let now_ms = self.now_ms;
        if let Some(keys) = self
            .providers
            .get_mut(id)
            .and_then(|provider| provider.current_keys(now_ms))
        {
            return KeysNow::Ready(keys);
        }
        match self.wait(id, Trigger::Scheduled) {
            Some(wait) => KeysNow::Fetching(wait),
            None => KeysNow::Unavailable,
        }
    }

    fn refetch(&mut self, id: ProviderId) -> Option<Wait> {
        self.wait(id, Trigger::UnknownKey)
    }

    fn take_slot(
        &mut self,
        issuer: &str,
        identity: &str,
        limit: u32,
    ) -> Result<Option<Slot>, DenyReason> {
        // Only configured when a provider has a limit, so never absent when asked.
        let Some(quota) = self.quota else {
            return Err(DenyReason::QuotaUnavailable);
        };
        quota
            .acquire(issuer, identity, limit, self.now_ms)
            .map(Some)
            .map_err(Refusal::reason)
    }
}

fn timing(remote: &RemoteKeys) -> Timing {
    Timing {
        refresh_interval_ms: remote.refresh_interval_seconds.saturating_mul(1000),
        min_refresh_interval_ms: remote.min_refresh_interval_seconds.saturating_mul(1000),
        // Discovery and JWKS, each up to the timeout, plus a second of slack.
        lease_ms: remote
            .fetch_timeout_ms
            .saturating_mul(2)
            .saturating_add(1000),
        max_stale_ms: remote.max_stale_keys_seconds.saturating_mul(1000),
    }
}

/// A number no other VM is likely to draw: the process's random hash keys over `seed`.
pub(super) fn random_u64(seed: u64) -> u64 {
    RandomState::new().hash_one(seed)
}

/// A number in `[0, 1)`.
pub(super) fn random_unit(seed: u64) -> f64 {
    (random_u64(seed) >> 11) as f64 / (1u64 << 53) as f64
}
