//! The one seam between wsgate and its host: every call the filter makes to Envoy, as the
//! [`Host`] trait.
//!
//! [`ProxyWasm`] is the real host and the only code that calls `proxy_wasm::hostcalls`;
//! `Recording` (tests only) is an in-memory host that records what the glue asked of it and
//! can be told to refuse any call, so that `cargo test` checks how the glue applies
//! decisions, resumes parked requests and handles fetches, without Envoy.
//!
//! Calls that can fail return [`HostError`]; the glue decides what a refusal means (a header
//! that could not be removed fails the request closed, a metric that could not be moved is
//! logged) and never drops one silently. The few calls whose failure has an obvious neutral
//! answer (no shared-data entry, no call status, an empty configuration, no log level) give
//! that answer, and [`ProxyWasm`] logs the refusal.

mod proxy_wasm;
#[cfg(test)]
pub(crate) mod recording;

use std::fmt;
use std::time::Duration;

pub(crate) use self::proxy_wasm::ProxyWasm;

/// The host refused a call: which one, and the status it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostError {
    pub call: &'static str,
    pub status: HostStatus,
}

/// Why the host refused a call: the proxy-wasm ABI's status, or what else went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostStatus {
    NotFound,
    BadArgument,
    SerializationFailure,
    ParseFailure,
    Empty,
    /// A shared-data write lost to another VM's (its compare-and-swap value was stale).
    CasMismatch,
    InternalFailure,
    /// A status this crate does not know.
    Other(u32),
    /// A log level the host named that the `log` crate does not know.
    UnknownLevel(u32),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} refused: {}", self.call, self.status)
    }
}

impl fmt::Display for HostStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(status) => write!(f, "status {status}"),
            Self::UnknownLevel(level) => write!(f, "unknown level {level}"),
            named => write!(f, "{named:?}"),
        }
    }
}

/// The kinds of metric wsgate defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    Counter,
    Gauge,
}

/// Everything wsgate asks of the host. Request calls act on the effective context: the
/// stream whose callback is running, or the one made effective with
/// [`set_effective_context`](Host::set_effective_context).
pub(crate) trait Host {
    /// Milliseconds since the epoch; 0 if the host cannot tell (which makes every token not
    /// yet valid: failing closed).
    fn now_ms(&self) -> u64;
    /// The plugin's configuration bytes (empty if there are none).
    fn plugin_configuration(&self) -> Vec<u8>;
    /// The plugin's name (`plugin_name` property; empty if the host has none).
    fn plugin_name(&self) -> String;
    /// The most detailed log level the host writes for wasm now (Envoy: the `wasm`
    /// component's level, which `/logging` can change at run time).
    fn log_level(&self) -> Result<log::LevelFilter, HostError>;
    /// Asks for `on_tick` every `period`.
    fn set_tick_period(&self, period: Duration) -> Result<(), HostError>;

    /// The value of request header `name`, if present.
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError>;
    /// Every request header, pseudo-headers included, in order.
    fn request_headers(&self) -> Result<Vec<(String, Vec<u8>)>, HostError>;
    /// Sets request header `name` to `value`, or removes it with `None`.
    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError>;
    /// Sets filter state `path` (Envoy keeps `["wsgate.x"]` as `wasm.wsgate.x`).
    fn set_property(&self, path: &str, value: &[u8]) -> Result<(), HostError>;
    /// Ends the request with a local reply.
    fn send_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError>;
    /// Lets a paused request go on upstream.
    fn resume_request(&self) -> Result<(), HostError>;
    /// Resets the request's stream.
    fn reset_request(&self) -> Result<(), HostError>;
    /// Makes `context_id` the effective context; fails when it is gone.
    fn set_effective_context(&self, context_id: u32) -> Result<(), HostError>;

    /// Dispatches a GET of `path` on `cluster`: the call's id.
    fn dispatch_get(
        &self,
        cluster: &str,
        authority: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<u32, HostError>;
    /// The `:status` of the call whose answer is being delivered.
    fn call_response_status(&self) -> Option<Vec<u8>>;
    /// Up to `max_bytes` of the body of the call whose answer is being delivered.
    fn call_response_body(&self, max_bytes: usize) -> Vec<u8>;

    /// A shared-data entry and its CAS token.
    fn get_shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes a shared-data entry if `cas` still matches (any value with `None`).
    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError>;

    /// Calls the host's foreign function `name` with `arguments`: its answer. Any status but
    /// Ok is an error, whatever the host answers (an unknown status included).
    fn call_foreign(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostError>;

    /// Defines a metric: its id.
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostError>;
    /// Adds `by` to counter `id`.
    fn increment_metric(&self, id: u32, by: i64) -> Result<(), HostError>;
    /// Sets gauge `id`.
    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError>;
}
