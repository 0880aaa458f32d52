//! Process-wide storage shared by Envoy's worker VMs (proxy-wasm shared data), as a trait:
//! what the key cache and the socket quota coordinate through, so both stay plain Rust.
//!
//! Shared data has no listing and no deletion, and a compare-and-swap token guards each
//! write; a key written for the first time is written whatever its token (the host has no
//! "create if absent"), so callers create their entries ([`create_if_absent`]) before
//! traffic can race them. An entry that exists has a CAS token even when its value is empty
//! (Envoy then hands back no value at all): the token, not the value, says it exists.

#[cfg(test)]
pub(crate) mod memory;

/// Process-wide storage shared by the VMs: proxy-wasm shared data, or a map in tests.
pub trait SharedStore {
    /// The value under `key` and its CAS token; `(None, None)` when absent, and
    /// `(None, Some(cas))` when present but empty (as Envoy answers).
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Stores `value` if `cas` still matches (any value when `cas` is `None`);
    /// `false` on a CAS mismatch.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// Writes `initial` under `key` unless an entry is there already (empty ones included).
pub fn create_if_absent<S: SharedStore>(store: &S, key: &str, initial: &[u8]) {
    if store.get(key).1.is_none() {
        store.set(key, initial, None);
    }
}
