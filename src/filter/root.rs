//! One root context per VM: configuration, key fetching, and the requests waiting for keys.
//!
//! With remote keys the root ticks every [`TICK`]. Each tick it asks the shared
//! [`JwksCache`](crate::jwks_cache::JwksCache) whether to fetch (scheduled refresh, retry, or
//! an unknown `kid` a waiting request brought), and only the VM that wins the lease
//! dispatches the calls: discovery when configured, then the JWKS. When an attempt finishes,
//! here or in another VM, waiting requests are decided with whatever keys there are then.

use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;
use std::time::Duration;

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use super::metrics::Metrics;
use super::shared_data::HostSharedData;
use super::stream::GateStream;
use super::{now_ms, verdict, Keys, Plugin};
use crate::config::{Config, KeySource, RemoteDocument, RemoteKeys};
use crate::fetch::{self, Endpoint, FetchError};
use crate::gate::Gate;
use crate::jwks::{KeyLimits, KeySet};
use crate::jwks_cache::{Begin, JwksCache, SharedState, Ticket, Timing, Trigger};
use crate::stats;
use crate::token_cache::TokenCache;

/// How often a VM with remote keys looks at the shared fetch state.
const TICK: Duration = Duration::from_millis(100);

pub(super) struct GateRoot {
    context_id: u32,
    plugin: Option<Rc<Plugin>>,
    remote: Option<Remote>,
}

/// Remote-key settings and this VM's fetch in flight, if any.
struct Remote {
    keys: RemoteKeys,
    issuer: String,
    limits: KeyLimits,
    fetch: Option<Fetch>,
}

struct Fetch {
    ticket: Ticket,
    call: u32,
    stage: Stage,
}

enum Stage {
    Discovery { jwks_cluster: String },
    Jwks { url: String },
}

impl GateRoot {
    pub(super) fn new(context_id: u32) -> Self {
        GateRoot {
            context_id,
            plugin: None,
            remote: None,
        }
    }
}

impl Context for GateRoot {
    fn on_http_call_response(
        &mut self,
        call: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(remote) = self.remote.as_mut() else {
            return;
        };
        let Some(fetch) = remote.fetch.take_if(|fetch| fetch.call == call) else {
            return;
        };
        let limit = remote.keys.max_document_bytes;
        // A call that failed (reset, or timed out after its headers arrived) is reported with
        // no headers, and Envoy then has no response maps at all: asking for one returns
        // BadArgument, on which the SDK panics. So nothing is read from a failed call.
        if num_headers == 0 {
            self.advance(fetch, Err(FetchError::NoResponse));
            self.resolve_waiters(now_ms());
            return;
        }
        let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .map(|status| String::from_utf8_lossy(&status).into_owned());
        let body = if body_size == 0 {
            Vec::new()
        } else {
            hostcalls::get_buffer(
                BufferType::HttpCallResponseBody,
                0,
                body_size.min(limit.saturating_add(1)),
            )
            .ok()
            .flatten()
            .unwrap_or_default()
        };
        let outcome = fetch::judge(status.as_deref(), body_size, &body, limit);
        self.advance(fetch, outcome.map(|()| body));
        self.resolve_waiters(now_ms());
    }
}

impl RootContext for GateRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = match Config::parse(&bytes) {
            Ok(config) => config,
            Err(problem) => {
                error!("invalid plugin configuration: {problem}");
                self.plugin = None;
                return false;
            }
        };
        for skipped in &config.skipped_keys {
            warn!("jwks: {skipped}");
        }
        let gate = Gate::new(&config);
        let issuer = config.authenticator.policy.issuer.clone();
        let keys = match config.keys {
            KeySource::Inline(keys) => {
                info!(
                    "configured: paths={:?} issuer={issuer:?} keys={} (inline)",
                    config.paths,
                    keys.len()
                );
                self.remote = None;
                Keys::Inline(Rc::new(keys))
            }
            KeySource::Remote(remote) => {
                info!(
                    "configured: paths={:?} issuer={issuer:?} keys from {} via cluster {:?}",
                    config.paths,
                    remote.source_url(),
                    match &remote.document {
                        RemoteDocument::Discovery { discovery, .. } => &discovery.cluster,
                        RemoteDocument::Jwks(jwks) => &jwks.cluster,
                    }
                );
                let cache = JwksCache::new(
                    HostSharedData,
                    &scope(remote.source_url()),
                    random_u64(),
                    timing(&remote),
                    config.key_limits,
                );
                cache.init();
                self.remote = Some(Remote {
                    keys: remote,
                    issuer,
                    limits: config.key_limits,
                    fetch: None,
                });
                let _ = hostcalls::set_tick_period(TICK);
                Keys::Remote(cache.into())
            }
        };
        let metrics = Metrics::define();
        if let Keys::Inline(inline) = &keys {
            metrics.set_gauge(stats::JWKS_KEYS, inline.len());
        }
        if config.close_on_expiry {
            let _ = hostcalls::set_tick_period(TICK);
        }
        self.plugin = Some(Rc::new(Plugin {
            gate,
            keys,
            upstream: config.upstream,
            correlation: config.correlation,
            metrics,
            waiters: Default::default(),
            open_sockets: config.close_on_expiry.then(Default::default),
            token_cache: (config.jwt_cache_size > 0).then(|| {
                TokenCache::new(config.jwt_cache_size, crate::token_cache::MAX_CACHE_BYTES).into()
            }),
            skew_seconds: config.authenticator.policy.clock_skew_seconds,
        }));
        true
    }

    fn on_tick(&mut self) {
        let now = now_ms();
        self.maybe_fetch(now);
        self.resolve_waiters(now);
        self.close_expired(now);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never `None`: the SDK panics on it.
        Some(Box::new(GateStream::new(context_id, self.plugin.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl GateRoot {
    fn cache(&self) -> Option<&std::cell::RefCell<JwksCache<HostSharedData>>> {
        match &self.plugin.as_deref()?.keys {
            Keys::Remote(cache) => Some(cache),
            Keys::Inline(_) => None,
        }
    }

    /// Starts a fetch when this VM wins the lease for a due refresh or a forced refetch.
    fn maybe_fetch(&mut self, now: u64) {
        let Some(remote) = &self.remote else { return };
        if remote.fetch.is_some() {
            return;
        }
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let Some(cache) = self.cache() else { return };
        let wants_refetch = plugin
            .waiters
            .try_borrow()
            .is_ok_and(|waiters| waiters.wants_refetch());
        let begin = {
            let Ok(cache) = cache.try_borrow() else {
                return;
            };
            match wants_refetch.then(|| cache.begin(now, Trigger::UnknownKey)) {
                Some(Begin::Fetch(ticket)) => Begin::Fetch(ticket),
                Some(Begin::Idle) => {
                    // Rate-limited: the waiting unknown-kid requests are decided now.
                    if let Ok(mut waiters) = plugin.waiters.try_borrow_mut() {
                        waiters.release_unknown_keys();
                    }
                    cache.begin(now, Trigger::Scheduled)
                }
                _ => cache.begin(now, Trigger::Scheduled),
            }
        };
        if let Begin::Fetch(ticket) = begin {
            self.start(ticket);
        }
    }

    /// Dispatches the first call of a fetch.
    fn start(&mut self, ticket: Ticket) {
        let Some(remote) = &self.remote else { return };
        let timeout = remote.keys.fetch_timeout_ms;
        let (endpoint, stage) = match &remote.keys.document {
            RemoteDocument::Discovery {
                discovery,
                jwks_cluster,
            } => (
                discovery.clone(),
                Stage::Discovery {
                    jwks_cluster: jwks_cluster.clone(),
                },
            ),
            RemoteDocument::Jwks(jwks) => (
                jwks.clone(),
                Stage::Jwks {
                    url: jwks.url.clone(),
                },
            ),
        };
        debug!("jwks: fetching {}", endpoint.url);
        self.call(ticket, &endpoint, timeout, stage);
    }

    /// Dispatches one call of a fetch and remembers it, or finishes the fetch with the
    /// dispatch error.
    fn call(&mut self, ticket: Ticket, endpoint: &Endpoint, timeout_ms: u64, stage: Stage) {
        match dispatch(endpoint, timeout_ms) {
            Ok(call) => {
                if let Some(remote) = self.remote.as_mut() {
                    remote.fetch = Some(Fetch {
                        ticket,
                        call,
                        stage,
                    });
                }
            }
            Err(error) => self.finish(&ticket, Err(error)),
        }
    }

    /// Takes a fetch one step further with the body of the call that just answered.
    fn advance(&mut self, fetch: Fetch, answer: Result<Vec<u8>, FetchError>) {
        let Some(remote) = &self.remote else { return };
        let Fetch { ticket, stage, .. } = fetch;
        let body = match answer {
            Ok(body) => body,
            Err(error) => return self.finish(&ticket, Err(error)),
        };
        match stage {
            Stage::Discovery { jwks_cluster } => {
                let next = fetch::jwks_uri_from_discovery(&body, &remote.issuer).and_then(|uri| {
                    Endpoint::parse(&uri, &jwks_cluster)
                        .map_err(|why| FetchError::Discovery(format!("jwks_uri: {why}")))
                });
                let endpoint = match next {
                    Ok(endpoint) => endpoint,
                    Err(error) => return self.finish(&ticket, Err(error)),
                };
                let timeout = remote.keys.fetch_timeout_ms;
                let stage = Stage::Jwks {
                    url: endpoint.url.clone(),
                };
                self.call(ticket, &endpoint, timeout, stage);
            }
            Stage::Jwks { url } => {
                let parsed = KeySet::parse(&body, remote.limits)
                    .map_err(|error| FetchError::Jwks(error.to_string()));
                let outcome = parsed.map(|(keys, report)| {
                    for key in &report.skipped {
                        debug!("jwks: {url}: ignoring {key}");
                    }
                    if let Some(warning) = report.beyond_limits_warning() {
                        warn!("jwks: {url}: {warning}");
                    }
                    (url, body, keys.len(), report.ignored())
                });
                self.finish(&ticket, outcome);
            }
        }
    }

    /// Publishes the outcome of a fetch and logs it when the state changes.
    fn finish(
        &mut self,
        ticket: &Ticket,
        outcome: Result<(String, Vec<u8>, usize, usize), FetchError>,
    ) {
        let now = now_ms();
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let Some(cache) = self.cache() else { return };
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return;
        };
        match outcome {
            Ok((url, document, keys, skipped)) => {
                let (before, after) =
                    match cache.succeed(ticket, &document, keys, now, random_unit()) {
                        Ok(states) => states,
                        Err(why) => {
                            cache.abandon(ticket);
                            warn!("jwks: {url}: not published: {why}");
                            return;
                        }
                    };
                plugin.metrics.increment(stats::JWKS_FETCH_SUCCESS);
                plugin.metrics.set_gauge(stats::JWKS_KEYS, after.keys);
                if before.failures > 0 {
                    info!(
                        "jwks: recovered after {} failed attempt(s)",
                        before.failures
                    );
                }
                if before.version != after.version {
                    info!(
                        "jwks: {keys} usable key(s) from {url} ({skipped} ignored), version {}",
                        after.version
                    );
                } else {
                    debug!("jwks: {url} unchanged");
                }
            }
            Err(error) => {
                plugin.metrics.increment(stats::JWKS_FETCH_FAILED);
                let message = error.to_string();
                let (before, after) = cache.fail(ticket, &message, now, random_unit());
                if before.last_error.as_deref() != Some(message.as_str()) {
                    warn!(
                        "jwks: fetch failed: {message}; {}; retrying in {} ms",
                        kept(&after),
                        after.next_refresh_ms.saturating_sub(now)
                    );
                } else {
                    debug!("jwks: fetch failed again: {message}");
                }
            }
        }
    }

    /// Decides every waiting request whose fetch attempt has finished or whose deadline has
    /// passed, then makes the root context effective again.
    fn resolve_waiters(&mut self, now: u64) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let Some(cache) = self.cache() else { return };
        let completed = match cache.try_borrow() {
            Ok(cache) => cache.state().completed,
            Err(_) => return,
        };
        let have_keys = plugin.current_keys().is_some();
        let ready = match plugin.waiters.try_borrow_mut() {
            Ok(mut waiters) => waiters.take_ready(completed, have_keys, now),
            Err(_) => return,
        };
        if ready.is_empty() {
            return;
        }
        for (context_id, head) in ready {
            if hostcalls::set_effective_context(context_id).is_err() {
                continue; // the request is gone
            }
            let decision = plugin.decide(&head, now);
            if verdict::enforce(&plugin, &decision, &head, context_id) {
                let _ = hostcalls::resume_http_request();
            }
        }
        let _ = hostcalls::set_effective_context(self.context_id);
    }
}

impl GateRoot {
    /// Closes every accepted WebSocket whose token has expired (`close_on_expiry`), then makes
    /// the root context effective again.
    fn close_expired(&self, now: u64) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let Some(open) = &plugin.open_sockets else {
            return;
        };
        let expired: Vec<(u32, u64)> = match open.try_borrow_mut() {
            Ok(mut open) => {
                let (expired, alive) = open.drain(..).partition(|(_, deadline)| *deadline <= now);
                *open = alive;
                expired
            }
            Err(_) => return,
        };
        if expired.is_empty() {
            return;
        }
        for (context_id, deadline) in expired {
            if hostcalls::set_effective_context(context_id).is_err() {
                continue; // already gone
            }
            info!(
                "closed a WebSocket whose token expired {} ms ago",
                now.saturating_sub(deadline)
            );
            plugin.metrics.increment(stats::CLOSED_ON_EXPIRY);
            let _ = hostcalls::reset_http_request();
        }
        let _ = hostcalls::set_effective_context(self.context_id);
    }
}

fn dispatch(endpoint: &Endpoint, timeout_ms: u64) -> Result<u32, FetchError> {
    hostcalls::dispatch_http_call(
        &endpoint.cluster,
        vec![
            (":method", "GET"),
            (":path", &endpoint.path),
            (":authority", &endpoint.authority),
            ("accept", "application/json"),
        ],
        None,
        vec![],
        Duration::from_millis(timeout_ms),
    )
    .map_err(|status| {
        FetchError::Dispatch(format!(
            "{status:?} (is cluster {:?} defined?)",
            endpoint.cluster
        ))
    })
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
    }
}

/// Shared-data names for this plugin and key source.
fn scope(source_url: &str) -> String {
    let plugin = hostcalls::get_property(vec!["plugin_name"])
        .ok()
        .flatten()
        .map(|name| String::from_utf8_lossy(&name).into_owned())
        .unwrap_or_default();
    format!("wsgate/{plugin}/{source_url}")
}

fn kept(state: &SharedState) -> String {
    if state.version == 0 {
        "no keys yet".to_owned()
    } else {
        format!("keeping the last {} key(s)", state.keys)
    }
}

fn random_u64() -> u64 {
    RandomState::new().hash_one(now_ms())
}

/// A number in `[0, 1)`.
fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}
