//! `max_sockets_per_identity` in the glue: the slot the gate counted for a stream is held
//! until the stream ends, then given back; a give-back that lost to other VMs too often is
//! tried again on the next ticks. On each tick the VM stamps itself alive, so that other VMs
//! keep counting its sockets (see [`crate::quota`]).

use log::warn;

use super::plugin::Plugin;
use crate::host::Host;
use crate::quota::Slot;

/// Give-backs kept for retrying; past that the oldest is dropped (its identity's count stays
/// one too high until this VM dies).
const MAX_UNRELEASED: usize = 4096;

/// Holds `slot` for stream `context_id` until it ends.
pub(super) fn hold<H: Host>(plugin: &Plugin<H>, context_id: u32, slot: Slot) {
    plugin.with_state(|state| state.slots.insert(context_id, slot));
}

/// Gives back the slot stream `context_id` held, if any.
pub(super) fn release<H: Host>(plugin: &Plugin<H>, context_id: u32, now_ms: u64) {
    plugin.with_state(|state| {
        let (Some(slot), Some(quota)) = (state.slots.remove(&context_id), &state.quota) else {
            return;
        };
        if !quota.release(&slot, now_ms) {
            warn!("socket count not given back yet (shared data busy); retrying on the next tick");
            if state.unreleased.len() >= MAX_UNRELEASED {
                state.unreleased.remove(0);
            }
            state.unreleased.push(slot);
        }
    });
}

/// On a tick: stamps this VM alive, and retries the give-backs that failed.
pub(super) fn on_tick<H: Host>(plugin: &Plugin<H>, now_ms: u64) {
    plugin.with_state(|state| {
        let Some(quota) = &state.quota else { return };
        if !quota.beat(now_ms) {
            warn!("socket counts: this VM's alive stamp not written (shared data busy)");
        }
        state.unreleased.retain(|slot| !quota.release(slot, now_ms));
    });
}
