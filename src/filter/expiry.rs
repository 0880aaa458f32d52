//! `close_on_expiry`: resetting accepted WebSockets once their token has expired.

use log::{error, info};

use super::plugin::Plugin;
use crate::decision::stats;
use crate::host::Host;

/// Resets every accepted WebSocket whose token has expired, then makes the root context
/// `root_id` effective again.
pub(super) fn close_expired<H: Host>(plugin: &Plugin<H>, root_id: u32, now: u64) {
    if !plugin.settings.close_on_expiry {
        return;
    }
    // Only what has expired is looked at: the cost of a tick does not grow with the
    // sockets that stay open.
    let expired = plugin
        .with_state(|state| state.open_sockets.expired(now))
        .unwrap_or_default();
    if expired.is_empty() {
        return;
    }
    let host = &plugin.host;
    for (context_id, deadline) in expired {
        if host.set_effective_context(context_id).is_err() {
            continue; // already gone
        }
        match host.reset_request() {
            Ok(()) => {
                info!(
                    "closed a WebSocket whose token expired {} ms ago",
                    now.saturating_sub(deadline)
                );
                plugin.metrics.increment(stats::CLOSED_ON_EXPIRY);
            }
            Err(refusal) => error!("a WebSocket whose token expired was not closed: {refusal}"),
        }
    }
    if let Err(refusal) = host.set_effective_context(root_id) {
        error!("root context not made effective again: {refusal}");
    }
}
