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
    /// Defines every stat, with each named provider's (`providers`, empty in the
    /// single-issuer form); one the host refuses is logged and then never moved.
    pub(super) fn define(host: H, providers: &[String]) -> Metrics<H> {
        let mut ids = HashMap::new();
        let per_provider = providers.iter().flat_map(|name| {
            stats::provider_counters(name)
                .into_iter()
                .map(|stat| (stat, MetricKind::Counter))
                .chain([(
                    stats::of_provider(name, stats::JWKS_KEYS),
                    MetricKind::Gauge,
                )])
        });
        let names = stats::counters()
            .into_iter()
            .map(|name| (name, MetricKind::Counter))
            .chain([
                (stats::JWKS_KEYS.to_owned(), MetricKind::Gauge),
                (stats::EXPIRY_TRACKED.to_owned(), MetricKind::Gauge),
            ])
            .chain(per_provider);
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
        self.add(name, 1);
    }

    /// Moves stat `name` by `by` (for a gauge, every VM's moves add up in the one Envoy keeps).
    pub(super) fn add(&self, name: &str, by: i64) {
        if cfg!(feature = "bench-omit-stats") {
            return;
        }
        if let Some(id) = self.ids.get(name) {
            if let Err(error) = self.host.increment_metric(*id, by) {
                debug!("stat {name} not moved: {error}");
            }
        }
    }

    /// Moves plugin-wide counter `stat`, and the named `provider`'s own.
    pub(super) fn increment_with(&self, provider: Option<&str>, stat: &str) {
        self.increment(stat);
        if let Some(name) = provider {
            self.increment(&stats::of_provider(name, stat));
        }
    }

    /// Sets a provider's usable key count: its own gauge when it is named, the plugin-wide
    /// `wsgate.jwks_keys` in the single-issuer form (with several providers, each one's
    /// gauge says it).
    pub(super) fn set_keys(&self, provider: Option<&str>, count: usize) {
        match provider {
            Some(name) => self.set_gauge(&stats::of_provider(name, stats::JWKS_KEYS), count),
            None => self.set_gauge(stats::JWKS_KEYS, count),
        }
    }

    fn set_gauge(&self, name: &str, value: usize) {
        if let Some(id) = self.ids.get(name) {
            let value = u64::try_from(value).unwrap_or(u64::MAX);
            if let Err(error) = self.host.record_metric(*id, value) {
                debug!("stat {name} not set: {error}");
            }
        }
    }
}
