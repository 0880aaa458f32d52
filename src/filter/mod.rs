//! The proxy-wasm glue: the only code that talks to the host.
//!
//! - [`root`]: one root context per VM. Parses the configuration (refusing to start on any
//!   error, naming the field), and for remote keys drives fetching on its tick and resolves
//!   the requests that wait for keys.
//! - [`stream`]: one context per request. Reads the request head, asks the gate, and applies
//!   the decision, or parks the request when keys are being fetched.
//! - [`shared_data`]: the [`SharedStore`](crate::keys::jwks_cache::SharedStore) over proxy-wasm
//!   shared data.
//! - [`verdict`]: applying a decision: log line, access-log fields, stats, upstream headers,
//!   local reply.
//! - [`metrics`]: the stats as proxy-wasm metrics.
//!
//! Only the root context dispatches HTTP calls: the SDK delivers a call's response to the
//! context that made it, and a request's context may be gone by then.

mod metrics;
mod root;
mod shared_data;
mod stream;
mod verdict;

use std::cell::RefCell;
use std::time::UNIX_EPOCH;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

use crate::decision::gate::{CacheUse, Gate};
use crate::decision::record::CorrelationHeader;
use crate::decision::stats;
use crate::decision::upstream::UpstreamPolicy;
use crate::decision::Decision;
use crate::keys::jwks::VersionedKeys;
use crate::keys::jwks_cache::JwksCache;
use crate::keys::parked::Parked;
use crate::request::RequestHead;
use crate::token::token_cache::TokenCache;

use metrics::Metrics;
use shared_data::HostSharedData;

/// Registers the root context with the host. Called once per VM from `_initialize`.
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(root::GateRoot::new(context_id))
    });
}

/// What every request of one VM shares.
struct Plugin {
    gate: Gate,
    keys: Keys,
    upstream: UpstreamPolicy,
    correlation: Vec<CorrelationHeader>,
    metrics: Metrics,
    /// Requests paused until a key fetch finishes.
    waiters: RefCell<Parked<RequestHead>>,
    /// With `close_on_expiry`: accepted streams and when their token expires (ms).
    open_sockets: Option<RefCell<Vec<(u32, u64)>>>,
    /// Verified tokens, unless `jwt_cache_size` is 0.
    token_cache: Option<RefCell<TokenCache>>,
}

enum Keys {
    /// An inline set, version 0.
    Inline(VersionedKeys),
    Remote(RefCell<JwksCache<HostSharedData>>),
}

impl Plugin {
    /// The key set to verify with now, if there is one.
    fn current_keys(&self) -> Option<VersionedKeys> {
        match &self.keys {
            Keys::Inline(keys) => Some(keys.clone()),
            Keys::Remote(cache) => cache.try_borrow_mut().ok()?.current(),
        }
    }

    /// Decides `head` at `now_ms` with the current keys and the token cache, counting cache
    /// hits and misses.
    fn decide(&self, head: &RequestHead, now_ms: u64) -> Decision {
        let keys = self.current_keys();
        let mut cache = self
            .token_cache
            .as_ref()
            .and_then(|cache| cache.try_borrow_mut().ok());
        let (decision, used) =
            self.gate
                .decide_cached(head, keys.as_ref(), now_ms, cache.as_deref_mut());
        match used {
            CacheUse::Hit => self.metrics.increment(stats::JWT_CACHE_HIT),
            CacheUse::Miss => self.metrics.increment(stats::JWT_CACHE_MISS),
            CacheUse::Off => {}
        }
        decision
    }

    /// Forgets a request that has ended.
    fn forget(&self, context_id: u32) {
        if let Ok(mut waiters) = self.waiters.try_borrow_mut() {
            waiters.forget(context_id);
        }
        if let Some(Ok(mut open)) = self.open_sockets.as_ref().map(RefCell::try_borrow_mut) {
            open.retain(|(id, _)| *id != context_id);
        }
    }
}

/// The host's time in milliseconds since the epoch (0 if the host cannot tell, which makes
/// every token not yet valid: failing closed).
fn now_ms() -> u64 {
    proxy_wasm::hostcalls::get_current_time()
        .ok()
        .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
