//! A decision's log line and local reply.

use log::{info, warn};
use proxy_wasm::hostcalls;

use crate::decision::{Decision, DenyReason};
use crate::request::RequestHead;

/// Logs `decision` for `head` and, for a denial, sends the local reply. Returns whether the
/// request may go on upstream. Call with the request's context effective.
pub(super) fn enforce(decision: &Decision, head: &RequestHead) -> bool {
    match decision {
        Decision::Unguarded => true,
        Decision::Allow(identity) => {
            info!(
                "decision=allow path={} iss={} sub={}",
                head.path(),
                identity.claim_str("iss").unwrap_or("-"),
                identity.claim_str("sub").unwrap_or("-"),
            );
            true
        }
        Decision::Deny(reason) => {
            warn!(
                "decision=deny reason={reason} status={} path={}",
                reason.reply().status,
                head.path()
            );
            reply(*reason);
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
