//! The stats of [`crate::decision::stats`] as proxy-wasm metrics, defined once per VM (Envoy gives
//! every VM the same metric for the same name).

use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::decision::stats;

#[derive(Default)]
pub(super) struct Metrics {
    ids: HashMap<String, u32>,
}

impl Metrics {
    pub(super) fn define() -> Metrics {
        let mut ids = HashMap::new();
        for name in stats::counters() {
            if let Ok(id) = hostcalls::define_metric(MetricType::Counter, &name) {
                ids.insert(name, id);
            }
        }
        if let Ok(id) = hostcalls::define_metric(MetricType::Gauge, stats::JWKS_KEYS) {
            ids.insert(stats::JWKS_KEYS.to_owned(), id);
        }
        Metrics { ids }
    }

    pub(super) fn increment(&self, name: &str) {
        if let Some(id) = self.ids.get(name) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }

    pub(super) fn set_gauge(&self, name: &str, value: usize) {
        if let Some(id) = self.ids.get(name) {
            let _ = hostcalls::record_metric(*id, u64::try_from(value).unwrap_or(u64::MAX));
        }
    }
}
