//! Deciding the requests parked for keys once they are ready (see
//! [`Parked::take_ready`](crate::keys::parked::Parked::take_ready)), and resuming the
//! accepted ones.

use log::{debug, error};

use super::apply;
use super::plugin::{Keys, ParkedRequest, Plugin};
use crate::host::Host;

/// Decides up to `budget` parked requests whose provider's fetch attempt has finished (in
/// any VM) or whose deadline has passed, then makes the root context `root_id` effective
/// again. Returns how many it decided and whether more are ready (each decision may run
/// Envoy's callbacks into the VM within it: see [`super::root::CALL_BUDGET`]).
pub(super) fn resolve<H: Host>(
    plugin: &Plugin<H>,
    root_id: u32,
    now: u64,
    budget: usize,
) -> (usize, bool) {
    let (ready, more) = plugin
        .with_state(|state| {
            let mut ready = Vec::new();
            let mut more = false;
            for (_, provider) in state.providers.iter_mut() {
                let completed = match &provider.keys {
                    Keys::Remote { cache, .. } => cache.state().completed,
                    Keys::Inline(_) => continue,
                };
                let have_keys = provider.current_keys(now).is_some();
                let limit = budget.saturating_sub(ready.len());
                let (taken, left) = provider
                    .parked
                    .take_ready_at_most(completed, have_keys, now, limit);
                ready.extend(taken);
                more |= left;
            }
            (ready, more)
        })
        .unwrap_or_default();
    let decided = ready.len();
    if ready.is_empty() {
        return (0, more);
    }
    let host = &plugin.host;
    for (context_id, ParkedRequest { head, rule }) in ready {
        if host.set_effective_context(context_id).is_err() {
            debug!("a parked request ended before its keys came");
            continue;
        }
        // Decided again by the rule it was parked with, and this time without waiting.
        let outcome = plugin.decide(&rule, &head, now, false);
        if apply::outcome(plugin, outcome, &head, context_id) {
            if let Err(refusal) = host.resume_request() {
                debug!("an accepted request could not be resumed (it ended?): {refusal}");
            }
        }
    }
    if let Err(refusal) = host.set_effective_context(root_id) {
        error!("root context not made effective again: {refusal}");
    }
    (decided, more)
}
