//! `close_on_expiry`: resetting accepted WebSockets once their token has expired.

use log::{error, info};

use super::plugin::Plugin;
use crate::decision::stats;
use crate::host::Host;

/// Resets up to `budget` accepted WebSockets whose token has expired (see
/// [`super::root::CALL_BUDGET`]), then makes the root context `root_id` effective again.
/// Returns whether more may be due.
pub(super) fn close_expired<H: Host>(
    plugin: &Plugin<H>,
    root_id: u32,
    now: u64,
    budget: usize,
) -> bool {
    if !plugin.settings.close_on_expiry {
        return false;
    }
    // Only what has expired is looked at: the cost of a tick does not grow with the
    // sockets that stay open.
    let (expired, more) = plugin
        .with_sockets(|sockets| {
            let expired = sockets.expired(now, budget);
            (expired, sockets.due(now))
        })
        .unwrap_or_default();
    if expired.is_empty() {
        return more;
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
    more
}
