//! `max_sockets_per_identity` in the glue: the slot the gate counted for a stream is held
//! until the stream ends, then given back; a give-back that lost to other VMs too often is
//! tried again on the next ticks. On each tick the VM stamps itself alive, so that other VMs
//! keep counting its sockets (see [`crate::quota`]).

use log::{error, warn};

use super::plugin::{Plugin, VmState};
use crate::host::Host;
use crate::quota::Slot;

/// Give-backs kept for retrying; past that the oldest is dropped, logged as an error (its
/// identity's count stays one too high until this VM's counts stop counting).
const MAX_UNRELEASED: usize = 4096;
/// Give-backs retried on one tick, so that a busy store cannot make a tick long.
const RETRIES_PER_TICK: usize = 64;

/// Holds `slot` for stream `context_id` until it ends. The glue holds it for a refused
/// request too: the stream ends soon, and `on_done` gives it back either way.
pub(super) fn hold<H: Host>(plugin: &Plugin<H>, context_id: u32, slot: Slot, now_ms: u64) {
    let held = plugin.with_state(|state| {
        // A context holds one slot; one already there (never, by the SDK) goes back.
        if let Some(earlier) = state.slots.insert(context_id, slot) {
            give_back(state, earlier, now_ms);
        }
    });
    if held.is_none() {
        error!("socket count of stream {context_id} not held: its identity counts one too many");
    }
}

/// Gives back the slot stream `context_id` held, if any. The clock (`now_ms`, a host
/// call) is read only when there is one: every guarded stream ends here.
pub(super) fn release<H: Host>(plugin: &Plugin<H>, context_id: u32, now_ms: impl FnOnce() -> u64) {
    plugin.with_state(|state| {
        if let Some(slot) = state.slots.remove(&context_id) {
            give_back(state, slot, now_ms());
        }
    });
}

/// Gives `slot` back now, or keeps it to retry on the next ticks.
fn give_back<H: Host>(state: &mut VmState<H>, slot: Slot, now_ms: u64) {
    let Some(quota) = &state.quota else { return };
    if quota.release(&slot, now_ms) {
        return;
    }
    warn!("socket count not given back yet (shared data busy); retrying on the next tick");
    if state.unreleased.len() >= MAX_UNRELEASED {
        state.unreleased.pop_front();
        error!("more than {MAX_UNRELEASED} socket counts not given back: one dropped");
    }
    state.unreleased.push_back(slot);
}

/// On a tick: stamps this VM alive, and retries a few of the give-backs that failed.
pub(super) fn on_tick<H: Host>(plugin: &Plugin<H>, now_ms: u64) {
    plugin.with_state(|state| {
        let Some(quota) = &state.quota else { return };
        if !quota.beat(now_ms) {
            warn!("socket counts: this VM's alive stamp not written (shared data busy)");
        }
        for _ in 0..RETRIES_PER_TICK.min(state.unreleased.len()) {
            let Some(slot) = state.unreleased.pop_front() else {
                break;
            };
            if !quota.release(&slot, now_ms) {
                state.unreleased.push_back(slot);
            }
        }
    });
}
