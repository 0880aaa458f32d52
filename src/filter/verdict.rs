//! Applying a decision to the effective request: upstream headers first, then the log line,
//! access-log fields and stats, then for a refusal the local reply.

use log::{debug, error, info, warn};

use super::plugin::Plugin;
use crate::decision::record::Record;
use crate::decision::stats;
use crate::decision::upstream;
use crate::decision::{Decision, Denial, DenyReason};
use crate::host::Host;
use crate::request::RequestHead;

/// Applies `decision` to the request `head` of stream `context_id`, which must be the
/// effective context. Returns whether it may go on upstream.
pub(super) fn enforce<H: Host>(
    plugin: &Plugin<H>,
    decision: Decision,
    head: &RequestHead,
    context_id: u32,
) -> bool {
    let host = &plugin.host;
    // Header edits come first: an accepted request whose edits the host refused is
    // refused instead (upstream_edit_failed), and logged and counted as such. On a
    // refused request the local reply goes out whatever the edits did.
    let settings = &plugin.settings;
    let edits = upstream::edits(&settings.upstream, &decision, head);
    // For a refusal every edit is tried, whatever one refused: the token cut must not wait
    // on a claim header's removal (nothing goes upstream; what Envoy logs is at stake).
    let try_every_edit = matches!(decision, Decision::Deny(_));
    let applied = edits.apply(|name, value| match host.set_request_header(name, value) {
        Ok(()) => true,
        Err(refusal) => {
            error!("could not edit header {name:?}: {refusal}");
            try_every_edit
        }
    });
    if !edits.unset.is_empty() {
        debug!(
            "claim_to_headers: not set (claim absent or not a plain value): {:?}",
            edits.unset
        );
    }
    let decision = match (applied, decision) {
        (Err(_), Decision::Allow(identity)) => Decision::Deny(Denial {
            provider: Some(identity.provider),
            ..DenyReason::UpstreamEditFailed.into()
        }),
        (_, decision) => decision,
    };
    let record = Record::of(
        &decision,
        head,
        &settings.correlation,
        &settings.provider_names,
    );
    if record.allowed() {
        info!("{}", record.log_line());
    } else {
        warn!("{}", record.log_line());
    }
    // Each field is a host call (with `access_log_fields: false`, none are).
    let fields = if settings.access_log_fields {
        record.access_log_fields()
    } else {
        Vec::new()
    };
    for (name, value) in fields {
        // Envoy keeps it as filter state `wasm.wsgate.<name>`.
        if let Err(refusal) = host.set_property(&format!("wsgate.{name}"), value.as_bytes()) {
            warn!("access-log field {name} not set: {refusal}");
        }
    }
    for name in stats::moved_by(&decision, &settings.provider_names) {
        plugin.metrics.increment(&name);
    }
    match decision {
        Decision::Allow(identity) => {
            if settings.close_on_expiry {
                let skew = settings.gate.clock_skew_seconds(identity.provider);
                if let Some(deadline) = identity.expires_at_ms(skew) {
                    plugin.with_sockets(|sockets| sockets.open(context_id, deadline));
                }
            }
            true
        }
        Decision::Deny(denial) => {
            reply(host, denial.reason);
            false
        }
    }
}

/// Sends the local reply for `reason`. If the host refuses it, the stream is reset: a
/// refused request must not stay paused, nor go on.
pub(super) fn reply<H: Host>(host: &H, reason: DenyReason) {
    let reply = reason.reply();
    let mut headers = vec![("content-type", "text/plain; charset=utf-8")];
    if let Some(challenge) = reply.www_authenticate.as_deref() {
        headers.push(("www-authenticate", challenge));
    }
    if let Err(refusal) = host.send_response(reply.status, &headers, reply.body.as_bytes()) {
        error!("local reply not sent ({refusal}); resetting the stream");
        if let Err(refusal) = host.reset_request() {
            error!("stream not reset either: {refusal}");
        }
    }
}
