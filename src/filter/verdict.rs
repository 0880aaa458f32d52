//! Applying a decision: its log line, access-log fields, stats, upstream headers and, for a
//! refusal, the local reply. Call with the request's context effective.

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use super::Plugin;
use crate::decision::record::Record;
use crate::decision::stats;
use crate::decision::{Decision, DenyReason};
use crate::request::RequestHead;

/// Applies `decision` to the request `head` of stream `context_id`. Returns whether it may
/// go on upstream.
pub(super) fn enforce(
    plugin: &Plugin,
    decision: &Decision,
    head: &RequestHead,
    context_id: u32,
) -> bool {
    // Header edits come first: an accepted request whose edits the host refused is
    // refused instead (upstream_edit_failed), and logged and counted as such. On a
    // refused request the local reply goes out whatever the edits did.
    let edits = plugin.upstream.edits(decision, head);
    let applied = edits.apply(|name, value| {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value).is_ok()
    });
    if !edits.unset.is_empty() {
        debug!(
            "claim_to_headers: not set (claim absent or not a plain value): {:?}",
            edits.unset
        );
    }
    let failed;
    let decision = match (applied, decision) {
        (Err(failure), Decision::Allow(_)) => {
            error!(
                "could not edit header {:?} of an accepted request; refusing it",
                failure.header
            );
            failed = Decision::Deny(DenyReason::UpstreamEditFailed.into());
            &failed
        }
        _ => decision,
    };
    if let Some(record) = Record::of(decision, head, &plugin.correlation) {
        if record.allowed() {
            info!("{}", record.log_line());
        } else {
            warn!("{}", record.log_line());
        }
        for (name, value) in record.access_log_fields() {
            // Envoy keeps it as filter state `wasm.wsgate.<name>`.
            let _ =
                hostcalls::set_property(vec![&format!("wsgate.{name}")], Some(value.as_bytes()));
        }
    }
    for name in stats::moved_by(decision) {
        plugin.metrics.increment(&name);
    }
    match decision {
        Decision::Unguarded => true,
        Decision::Allow(identity) => {
            let deadline = identity.expires_at_ms(plugin.gate.clock_skew_seconds());
            if let (Some(open), Some(deadline)) = (&plugin.open_sockets, deadline) {
                if let Ok(mut open) = open.try_borrow_mut() {
                    open.push((context_id, deadline));
                }
            }
            true
        }
        Decision::Deny(denial) => {
            reply(denial.reason);
            false
        }
    }
}

/// Sends the local reply for `reason`.
pub(super) fn reply(reason: DenyReason) {
    let reply = reason.reply();
    let mut headers = vec![("content-type", "text/plain; charset=utf-8")];
    if let Some(challenge) = reply.www_authenticate.as_deref() {
        headers.push(("www-authenticate", challenge));
    }
    // The SDK only returns Ok here; anything else it treats as a host bug.
    let _ = hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes()));
}
