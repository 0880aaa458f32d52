//! [`SharedStore`] over proxy-wasm shared data, which Envoy shares among all VMs of a `vm_id`.

use proxy_wasm::hostcalls;

use crate::keys::jwks_cache::SharedStore;

/// Proxy-wasm shared data.
pub(super) struct HostSharedData;

impl SharedStore for HostSharedData {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}
