//! One root context per VM: configuration, key fetching, and the requests waiting for keys.
//!
//! With remote keys the root ticks every [`TICK`] and hands each tick and each call's answer
//! to the pure [`KeyFetcher`], which decides (against the shared
//! [`JwksCache`](crate::keys::jwks_cache::JwksCache)) whether this VM fetches and which document
//! comes next; the root only dispatches what it asks for, and logs and counts how each
//! attempt finished. When an attempt finishes, here or in another VM, waiting requests are
//! decided with whatever keys there are then.

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
use crate::decision::gate::Gate;
use crate::decision::stats;
use crate::keys::fetch::{self, FetchError};
use crate::keys::fetcher::{Dispatch, Finished, KeyFetcher, Step};
use crate::keys::jwks::VersionedKeys;
use crate::keys::jwks_cache::{JwksCache, SharedState, Timing};
use crate::token::token_cache::TokenCache;

/// How often a VM with remote keys looks at the shared fetch state.
const TICK: Duration = Duration::from_millis(100);

pub(super) struct GateRoot {
    context_id: u32,
    plugin: Option<Rc<Plugin>>,
    /// With remote keys: this VM's fetcher.
    fetcher: Option<KeyFetcher>,
}

impl GateRoot {
    pub(super) fn new(context_id: u32) -> Self {
        GateRoot {
            context_id,
            plugin: None,
            fetcher: None,
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
        let Some(limit) = self
            .fetcher
            .as_ref()
            .filter(|fetcher| fetcher.expects(call))
            .map(KeyFetcher::max_document_bytes)
        else {
            return;
        };
        // A call that failed (reset, or timed out after its headers arrived) is reported with
        // no headers, and Envoy then has no response maps at all: asking for one returns
        // BadArgument, on which the SDK panics. So nothing is read from a failed call.
        let answer = if num_headers == 0 {
            Err(FetchError::NoResponse)
        } else {
            let status =
                hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
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
            fetch::judge(status.as_deref(), body_size, &body, limit).map(|()| body)
        };
        let now = now_ms();
        let step = self
            .fetching(|fetcher, cache, _| {
                fetcher.on_answer(cache, call, answer, now, random_unit())
            })
            .unwrap_or(Step::Ignored);
        self.take_step(step, now);
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
                self.fetcher = None;
                Keys::Inline(VersionedKeys {
                    version: 0,
                    keys: Rc::new(keys),
                })
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
                self.fetcher = Some(KeyFetcher::new(remote, issuer, config.key_limits));
                let _ = hostcalls::set_tick_period(TICK);
                Keys::Remote(cache.into())
            }
        };
        let metrics = Metrics::define();
        if let Keys::Inline(inline) = &keys {
            metrics.set_gauge(stats::JWKS_KEYS, inline.keys.len());
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
                TokenCache::new(
                    config.jwt_cache_size,
                    crate::token::token_cache::MAX_CACHE_BYTES,
                )
                .into()
            }),
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

    /// Runs one step of fetching with this VM's fetcher, the shared key cache and the
    /// plugin; `None` with inline keys, before a configuration, or if the cache were
    /// already borrowed (a single-threaded callback never has it so).
    fn fetching<T>(
        &mut self,
        step: impl FnOnce(&mut KeyFetcher, &mut JwksCache<HostSharedData>, &Plugin) -> T,
    ) -> Option<T> {
        let plugin = self.plugin.clone()?;
        let fetcher = self.fetcher.as_mut()?;
        let Keys::Remote(cache) = &plugin.keys else {
            return None;
        };
        let mut cache = cache.try_borrow_mut().ok()?;
        Some(step(fetcher, &mut cache, &plugin))
    }

    /// Starts a fetch when this VM wins the lease for a due refresh or a forced refetch.
    fn maybe_fetch(&mut self, now: u64) {
        let dispatch = self.fetching(|fetcher, cache, plugin| {
            let wants_refetch = plugin
                .waiters
                .try_borrow()
                .is_ok_and(|waiters| waiters.wants_refetch());
            let outcome = fetcher.on_tick(cache, now, wants_refetch);
            if outcome.release_unknown_keys {
                if let Ok(mut waiters) = plugin.waiters.try_borrow_mut() {
                    waiters.release_unknown_keys();
                }
            }
            outcome.dispatch
        });
        if let Some(Some(dispatch)) = dispatch {
            self.take_step(Step::Dispatch(dispatch), now);
        }
    }

    /// Does what the fetcher asked: dispatches its next call (a refused dispatch finishes
    /// the attempt), or logs and counts how an attempt finished.
    fn take_step(&mut self, step: Step, now: u64) {
        let finished = match step {
            Step::Ignored => return,
            Step::Finished(finished) => finished,
            Step::Dispatch(dispatch) => {
                debug!("jwks: fetching {}", dispatch.endpoint.url);
                let error = match dispatch_call(&dispatch) {
                    Ok(call) => {
                        if let Some(fetcher) = self.fetcher.as_mut() {
                            fetcher.dispatched(call);
                        }
                        return;
                    }
                    Err(error) => error,
                };
                let finished = self.fetching(|fetcher, cache, _| {
                    fetcher.failed_to_dispatch(cache, error, now, random_unit())
                });
                let Some(Some(finished)) = finished else {
                    return;
                };
                finished
            }
        };
        if let Some(plugin) = self.plugin.clone() {
            report(&plugin, finished, now);
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

/// Logs and counts how a fetch attempt finished.
fn report(plugin: &Plugin, finished: Finished, now: u64) {
    match finished {
        Finished::Published {
            url,
            keys,
            report,
            before,
            after,
        } => {
            for key in &report.skipped {
                debug!("jwks: {url}: ignoring {key}");
            }
            if let Some(warning) = report.beyond_limits_warning() {
                warn!("jwks: {url}: {warning}");
            }
            plugin.metrics.increment(stats::JWKS_FETCH_SUCCESS);
            plugin.metrics.set_gauge(stats::JWKS_KEYS, after.key_count);
            if before.failures > 0 {
                info!(
                    "jwks: recovered after {} failed attempt(s)",
                    before.failures
                );
            }
            if before.version != after.version {
                info!(
                    "jwks: {keys} usable key(s) from {url} ({} ignored), version {}",
                    report.ignored(),
                    after.version
                );
            } else {
                debug!("jwks: {url} unchanged");
            }
        }
        Finished::NotPublished { url, why } => warn!("jwks: {url}: not published: {why}"),
        Finished::Failed {
            error,
            before,
            after,
        } => {
            plugin.metrics.increment(stats::JWKS_FETCH_FAILED);
            let message = error.to_string();
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

/// Dispatches `dispatch`: the host's call id, or why it was refused.
fn dispatch_call(dispatch: &Dispatch) -> Result<u32, FetchError> {
    let endpoint = &dispatch.endpoint;
    let timeout_ms = dispatch.timeout_ms;
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
        format!("keeping the last {} key(s)", state.key_count)
    }
}

fn random_u64() -> u64 {
    RandomState::new().hash_one(now_ms())
}

/// A number in `[0, 1)`.
fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}
