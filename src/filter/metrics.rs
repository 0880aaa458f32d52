//! The stats of [`crate::decision::stats`] as host metrics, defined once per VM (Envoy gives
//! every VM the same metric for the same name).

use std::collections::HashMap;

use log::{debug, warn};

use crate::decision::stats;
use crate::host::{Host, MetricKind};

pub(super) struct Metrics<H: Host> {
    host: H,
    ids: HashMap<String, u32>,
}

impl<H: Host> Metrics<H> {
    /// Defines every stat; one the host refuses is logged and then never moved.
    pub(super) fn define(host: H) -> Metrics<H> {
        let mut ids = HashMap::new();
        let names = stats::counters()
            .into_iter()
            .map(|name| (name, MetricKind::Counter))
            .chain([(stats::JWKS_KEYS.to_owned(), MetricKind::Gauge)]);
        for (name, kind) in names {
            match host.define_metric(kind, &name) {
                Ok(id) => {
                    ids.insert(name, id);
                }
                Err(error) => warn!("stat {name} not defined: {error}"),
            }
        }
        Metrics { host, ids }
    }

    pub(super) fn increment(&self, name: &str) {
        if let Some(id) = self.ids.get(name) {
            if let Err(error) = self.host.increment_metric(*id, 1) {
                debug!("stat {name} not moved: {error}");
            }
        }
    }

    pub(super) fn set_gauge(&self, name: &str, value: usize) {
        if let Some(id) = self.ids.get(name) {
            let value = u64::try_from(value).unwrap_or(u64::MAX);
            if let Err(error) = self.host.record_metric(*id, value) {
                debug!("stat {name} not set: {error}");
            }
        }
    }
}
