//! Applying the gate's outcome to the effective request: upstream headers first, then the
//! log line, access-log fields and stats, then for a refusal the local reply.

use log::{debug, error, info, warn};

use super::plugin::Plugin;
use super::slots;
use crate::bench_repeat;
use crate::decision::record::Record;
use crate::decision::stats;
use crate::decision::{CacheUse, Outcome, Verdict};
use crate::deny::{DenyReason, Replies};
use crate::host::Host;
use crate::request::RequestHead;

/// Applies `outcome` to the request `head` of stream `context_id`, which must be the
/// effective context. Returns whether it may go on upstream. An outcome that would wait for
/// keys is applied as its denial: the request could not be parked.
pub(super) fn outcome<H: Host>(
    plugin: &Plugin<H>,
    outcome: Outcome,
    head: &RequestHead,
    context_id: u32,
) -> bool {
    let host = &plugin.host;
    let settings = &plugin.settings;
    let gate = &settings.gate;
    let mut outcome = outcome.without_waiting();
    count_cache(plugin, outcome.cache);
    // Held until the stream ends, whatever happens to the request from here on.
    if let Some(slot) = outcome.slot.take() {
        slots::hold(plugin, context_id, slot, host.now_ms());
    }
    // Header edits come first: an accepted request whose edits the host refused is
    // refused instead (upstream_edit_failed), and logged and counted as such. On a
    // refused request the local reply goes out whatever the edits did.
    let priced = cfg!(feature = "bench-repeat-record");
    let edits = bench_repeat::priced(priced, || gate.upstream_edits(&outcome, head));
    // For a refusal every edit is tried, whatever one refused: the token cut must not wait
    // on a claim header's removal (nothing goes upstream; what Envoy logs is at stake).
    let try_every_edit = !matches!(outcome.verdict, Verdict::Allow(_));
    let applied = edits.apply(|name, value| {
        if cfg!(feature = "bench-omit-edits") {
            return true;
        }
        match host.set_request_header(name, value) {
            Ok(()) => true,
            Err(refusal) => {
                error!("could not edit header {name:?}: {refusal}");
                try_every_edit
            }
        }
    });
    if !edits.unset.is_empty() {
        debug!(
            "claim_to_headers: not set (claim absent or not a plain value): {:?}",
            edits.unset
        );
    }
    let outcome = match (applied, outcome.verdict) {
        (Err(_), Verdict::Allow(_)) => Outcome {
            verdict: Verdict::Deny(DenyReason::UpstreamEditFailed.into()),
            ..outcome
        },
        (_, verdict) => Outcome { verdict, ..outcome },
    };
    let provider = gate.provider_name(outcome.provider);
    let record = bench_repeat::priced(priced, || {
        Record::of(
            &outcome,
            head,
            &settings.correlation,
            provider,
            gate.names_providers(),
            gate.replies(),
        )
    });
    // An accepted request is logged at debug unless `log_allowed`, as `jwt_authn` logs
    // neither at info: a line is a host call and a write. The level is checked first, so
    // a line not written is not formatted either.
    if !record.allowed() {
        warn!("{}", record.log_line());
    } else if settings.log_allowed {
        info!("{}", record.log_line());
    } else {
        debug!("{}", record.log_line());
    }
    // Each field is a host call (with `access_log_fields: false`, none are).
    let fields = if settings.access_log_fields && !cfg!(feature = "bench-omit-fields") {
        record.access_log_fields()
    } else {
        Vec::new()
    };
    let mut buffer = String::with_capacity(32);
    for (name, value) in fields {
        if let Err(refusal) = host.set_property(property(&mut buffer, name), value.as_bytes()) {
            warn!("access-log field {name} not set: {refusal}");
        }
    }
    for name in bench_repeat::priced(priced, || stats::moved_by(&outcome, provider)) {
        plugin.metrics.increment(&name);
    }
    match (&outcome.verdict, outcome.provider) {
        (Verdict::Allow(identity), Some(id)) => {
            if settings.close_on_expiry {
                if let Some(deadline) = identity.expires_at_ms(gate.clock_skew_seconds(id)) {
                    plugin.with_sockets(|sockets| sockets.open(context_id, deadline));
                }
            }
            true
        }
        (Verdict::Deny(denial) | Verdict::AwaitKeys(_, denial), _) => {
            reply(host, gate.replies(), denial.reason);
            false
        }
        // Never built: an accepted token always has its provider.
        (Verdict::Allow(_), None) => {
            reply(host, gate.replies(), DenyReason::UpstreamEditFailed);
            false
        }
    }
}

/// The property of access-log field `name`, written into `buffer` (one allocation for every
/// field): Envoy keeps it as filter state `wasm.wsgate.<name>`.
fn property<'b>(buffer: &'b mut String, name: &str) -> &'b str {
    buffer.clear();
    buffer.push_str("wsgate.");
    buffer.push_str(name);
    buffer
}

/// Counts a decision's use of the token cache: each decision once, a parked request's
/// first one included.
pub(super) fn count_cache<H: Host>(plugin: &Plugin<H>, cache: CacheUse) {
    match cache {
        CacheUse::Hit => plugin.metrics.increment(stats::JWT_CACHE_HIT),
        CacheUse::Miss => plugin.metrics.increment(stats::JWT_CACHE_MISS),
        CacheUse::Off => {}
    }
}

/// Sends the local reply `replies` gives `reason`. If the host refuses it, the stream is
/// reset: a refused request must not stay paused, nor go on.
pub(super) fn reply<H: Host>(host: &H, replies: &Replies, reason: DenyReason) {
    let reply = replies.reply(reason);
    let retry_after = reply.retry_after.map(|seconds| seconds.to_string());
    let mut headers = vec![("content-type", "text/plain; charset=utf-8")];
    if let Some(challenge) = reply.www_authenticate.as_deref() {
        headers.push(("www-authenticate", challenge));
    }
    if let Some(seconds) = retry_after.as_deref() {
        headers.push(("retry-after", seconds));
    }
    if let Err(refusal) = host.send_response(reply.status, &headers, reply.body.as_bytes()) {
        error!("local reply not sent ({refusal}); resetting the stream");
        if let Err(refusal) = host.reset_request() {
            error!("stream not reset either: {refusal}");
        }
    }
}
