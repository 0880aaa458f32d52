//! The root context's side of key fetching: hand each tick and each answer to this VM's
//! [`KeyFetcher`], dispatch what it asks for, and log and count how each attempt finished.
//! What to fetch and when is the fetcher's business, not this file's.

use std::time::Duration;

use log::{debug, info, warn};

use super::plugin::{random_unit, Keys, Plugin, ProviderState, VmState};
use crate::decision::stats;
use crate::host::Host;
use crate::keys::fetcher::{Dispatch, Finished, KeyFetcher, Step};
use crate::keys::jwks_cache::{JwksCache, SharedState};
use crate::keys::remote::{self, FetchError};
use crate::provider::ProviderId;

/// Runs `step` with provider `id`'s fetcher in this VM and its shared key cache (`None`
/// with inline keys).
fn with_fetcher<H: Host, T>(
    plugin: &Plugin<H>,
    id: ProviderId,
    step: impl FnOnce(&mut KeyFetcher, &mut JwksCache<super::plugin::SharedData<H>>) -> T,
) -> Option<T> {
    plugin
        .with_state(|state| match &mut state.providers.get_mut(id)?.keys {
            Keys::Remote { cache, fetcher } => Some(step(fetcher, cache)),
            Keys::Inline(_) => None,
        })
        .flatten()
}

/// A tick: for each provider with remote keys, starts a fetch when this VM wins the lease
/// for a due refresh or a forced refetch, and lets go of requests waiting for a refetch
/// that will not come.
pub(super) fn on_tick<H: Host>(plugin: &Plugin<H>, now: u64) {
    let ids: Vec<ProviderId> = plugin
        .with_state(|state: &mut VmState<H>| state.providers.iter().map(|(id, _)| id).collect())
        .unwrap_or_default();
    for id in ids {
        let dispatch = plugin
            .with_state(|state| {
                let ProviderState { keys, parked } = state.providers.get_mut(id)?;
                let Keys::Remote { cache, fetcher } = keys else {
                    return None;
                };
                let outcome = fetcher.on_tick(cache, now, parked.wants_refetch());
                if outcome.release_unknown_keys {
                    parked.release_unknown_keys();
                }
                outcome.dispatch
            })
            .flatten();
        if let Some(dispatch) = dispatch {
            take_step(plugin, id, Step::Dispatch(dispatch), now);
        }
    }
}

/// The answer to call `call` (`num_headers` 0 when the call failed): read it within
/// `max_document_bytes` and hand it to the fetcher. Answers to other calls are left alone.
pub(super) fn on_answer<H: Host>(
    plugin: &Plugin<H>,
    call: u32,
    num_headers: usize,
    body_size: usize,
) {
    // The provider whose fetcher made this call.
    let expecting = plugin
        .with_state(|state| {
            state
                .providers
                .iter()
                .find_map(|(id, provider)| match &provider.keys {
                    Keys::Remote { fetcher, .. } if fetcher.expects(call) => {
                        Some((id, fetcher.max_document_bytes()))
                    }
                    _ => None,
                })
        })
        .flatten();
    let Some((id, limit)) = expecting else {
        return;
    };
    let host = &plugin.host;
    // A call that failed (reset, or timed out after its headers arrived) is reported with
    // no headers, and Envoy then has no response maps at all: asking for one returns
    // BadArgument, on which the SDK panics. So nothing is read from a failed call.
    let answer = if num_headers == 0 {
        Err(FetchError::NoResponse)
    } else {
        let status = host
            .call_response_status()
            .map(|status| String::from_utf8_lossy(&status).into_owned());
        let body = if body_size == 0 {
            Vec::new()
        } else {
            host.call_response_body(body_size.min(limit.saturating_add(1)))
        };
        remote::judge(status.as_deref(), body_size, &body, limit).map(|()| body)
    };
    let now = host.now_ms();
    let step = with_fetcher(plugin, id, |fetcher, cache| {
        fetcher.on_answer(cache, call, answer, now, random_unit(now))
    })
    .unwrap_or(Step::Ignored);
    take_step(plugin, id, step, now);
}

/// Does what provider `id`'s fetcher asked: dispatches its next call (a refused
/// dispatch finishes the attempt), or logs and counts how an attempt finished.
fn take_step<H: Host>(plugin: &Plugin<H>, id: ProviderId, step: Step, now: u64) {
    let finished = match step {
        Step::Ignored => return,
        Step::Finished(finished) => finished,
        Step::Dispatch(dispatch) => match dispatch_call(&plugin.host, &dispatch) {
            Ok(call) => {
                with_fetcher(plugin, id, |fetcher, _| fetcher.dispatched(call));
                return;
            }
            Err(error) => {
                let finished = with_fetcher(plugin, id, |fetcher, cache| {
                    fetcher.failed_to_dispatch(cache, error, now, random_unit(now))
                });
                let Some(Some(finished)) = finished else {
                    return;
                };
                finished
            }
        },
    };
    report(plugin, id, finished, now);
}

/// Dispatches `dispatch`: the host's call id, or why it was refused.
fn dispatch_call<H: Host>(host: &H, dispatch: &Dispatch) -> Result<u32, FetchError> {
    let endpoint = &dispatch.endpoint;
    debug!("jwks: fetching {}", endpoint.url);
    host.dispatch_get(
        &endpoint.cluster,
        &endpoint.authority,
        &endpoint.path,
        Duration::from_millis(dispatch.timeout_ms),
    )
    .map_err(|refusal| {
        FetchError::Dispatch(format!(
            "{} (is cluster {:?} defined?)",
            refusal.status, endpoint.cluster
        ))
    })
}

/// Logs and counts how a fetch attempt of provider `id` finished.
fn report<H: Host>(plugin: &Plugin<H>, id: ProviderId, finished: Finished, now: u64) {
    let metrics = &plugin.metrics;
    let provider = plugin.settings.gate.provider_name(Some(id));
    // Lines without a URL name the provider, where providers are named.
    let whose = provider.map_or(String::new(), |name| format!(" (provider {name})"));
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
            metrics.increment_with(provider, stats::JWKS_FETCH_SUCCESS);
            metrics.set_keys(provider, after.key_count);
            if before.failures > 0 {
                info!(
                    "jwks: recovered after {} failed attempt(s){whose}",
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
            metrics.increment_with(provider, stats::JWKS_FETCH_FAILED);
            let message = error.to_string();
            if after.stale_version != 0 && after.stale_version != before.stale_version {
                metrics.increment_with(provider, stats::JWKS_KEYS_DROPPED);
                metrics.set_keys(provider, 0);
                warn!(
                    "jwks: key set version {} dropped{whose}: no fetch has succeeded for \
                     max_stale_keys_seconds; tokens are refused as keys_unavailable until one \
                     does",
                    after.stale_version
                );
            }
            if before.last_error.as_deref() != Some(message.as_str()) {
                warn!(
                    "jwks: fetch failed{whose}: {message}; {}; retrying in {} ms",
                    kept(&after),
                    after.next_refresh_ms.saturating_sub(now)
                );
            } else {
                debug!("jwks: fetch failed again{whose}: {message}");
            }
        }
    }
}

fn kept(state: &SharedState) -> String {
    if state.version == 0 {
        "no keys yet".to_owned()
    } else {
        format!("keeping the last {} key(s)", state.key_count)
    }
}
