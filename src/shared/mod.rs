//! Process-wide storage shared by Envoy's worker VMs (proxy-wasm shared data), as a trait:
//! what the key cache and the socket quota coordinate through, so both stay plain Rust.
//!
//! Shared data has no listing and no deletion, and a compare-and-swap token guards each
//! write; a key written for the first time is written whatever its token (the host has no
//! "create if absent"), so callers create their entries before traffic can race them.

#[cfg(test)]
pub(crate) mod memory;

/// Process-wide storage shared by the VMs: proxy-wasm shared data, or a map in tests.
pub trait SharedStore {
    /// The value under `key` and its CAS token; `(None, None)` when absent.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Stores `value` if `cas` still matches (any value when `cas` is `None`);
    /// `false` on a CAS mismatch.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}
