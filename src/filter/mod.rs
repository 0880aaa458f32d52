//! The proxy-wasm glue: contexts that read the request, call the core and apply what it
//! decided, all through the [`Host`](crate::host::Host) seam.
//!
//! - [`root`]: one root context per VM: configuration, and on each tick the pieces below.
//! - [`stream`]: one context per request: reads the head, asks the gate, applies its
//!   outcome or parks the request while keys are fetched.
//! - [`plugin`]: what every context of a VM shares: immutable [`Settings`](plugin::Settings)
//!   and one mutable [`VmState`](plugin::VmState).
//! - [`apply`]: applying the gate's outcome: upstream headers, log line, access-log
//!   fields, stats, local reply.
//! - [`key_fetch`]: dispatching what the [`KeyFetcher`](crate::keys::fetcher::KeyFetcher)
//!   asks, handing it the answers, reporting how attempts finished.
//! - [`resume`]: deciding and resuming requests parked for keys.
//! - [`expiry`]: closing WebSockets whose token expired (`close_on_expiry`).
//! - [`slots`]: holding each accepted socket's count (`max_sockets_per_identity`) until
//!   it ends, and stamping the VM alive for the other VMs' counts.
//! - [`metrics`]: the stats as host metrics.
//! - [`log_level`]: the module's log level, following the host's.
//! - [`host_verifier`]: signatures verified by the host where its self-test passed.
//!
//! Only the root context dispatches HTTP calls: the SDK delivers a call's response to the
//! context that made it, and a request's context may be gone by then.

mod apply;
mod expiry;
mod host_verifier;
mod key_fetch;
mod log_level;
mod metrics;
mod plugin;
mod resume;
mod root;
mod slots;
mod stream;
#[cfg(test)]
mod tests;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

use crate::host::ProxyWasm;

/// Registers the root context with the host. Called once per VM from `_initialize` (so
/// natively, where the contexts run against the recording host, never). The level is
/// `info` until the root context reads the host's ([`log_level`]).
#[cfg_attr(not(all(target_arch = "wasm32", feature = "module")), allow(dead_code))]
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(root::GateRoot::new(context_id, ProxyWasm))
    });
}
