//! `close_on_expiry`: resetting accepted WebSockets once their token has expired.

use std::time::Duration;

use log::{error, info};

use super::plugin::Plugin;
use crate::decision::stats;
use crate::host::Host;

/// Resets at most this many sockets in one tick. Envoy runs each reset stream's callbacks
/// into the VM within the reset, and V8's stack did not survive about a thousand of those in
/// one call (`RangeError: Maximum call stack size exceeded` from `proxy_on_log`, which kills
/// the VM; measured with Envoy 1.40 between 800 and 1024). More than this waits for the next
/// tick, which comes after [`BACKLOG_TICK`] instead of the usual period.
pub(super) const MAX_CLOSES_PER_TICK: usize = 256;

/// The tick period while more expired sockets wait than one tick closes: 8000 expiring
/// together are closed in 32 ticks. (128 on 5 ms ticks closed the last of 8000 1.8 s after
/// `exp` at the client, too near the 2 s bound; Envoy's 1 s delayed close is in both.)
pub(super) const BACKLOG_TICK: Duration = Duration::from_millis(1);

/// Resets up to [`MAX_CLOSES_PER_TICK`] accepted WebSockets whose token has expired, then
/// makes the root context `root_id` effective again. Returns whether more may be due.
pub(super) fn close_expired<H: Host>(plugin: &Plugin<H>, root_id: u32, now: u64) -> bool {
    if !plugin.settings.close_on_expiry {
        return false;
    }
    // Only what has expired is looked at: the cost of a tick does not grow with the
    // sockets that stay open.
    let (expired, more) = plugin
        .with_sockets(|sockets| {
            let expired = sockets.expired(now, MAX_CLOSES_PER_TICK);
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
