//! A remote key source (`jwks_uri` or `openid_config_url`, with `cluster` and the fetch
//! timings) as [`RemoteKeys`].

use crate::config::raw::RemoteSection;
use crate::config::{bounded, ConfigError};
use crate::keys::remote::{
    Endpoint, RemoteDocument, RemoteKeys, DEFAULT_FETCH_TIMEOUT_MS, DEFAULT_MAX_DOCUMENT_BYTES,
    DEFAULT_MAX_STALE_KEYS_SECONDS, DEFAULT_MIN_REFRESH_INTERVAL_SECONDS,
    DEFAULT_REFRESH_INTERVAL_SECONDS,
};

impl TryFrom<RemoteSection> for RemoteKeys {
    type Error = ConfigError;

    /// A remote source needs `cluster`; `jwks_cluster` only applies to discovery; the
    /// timings and the document cap are bounded, and unknown-`kid` refetches may not come
    /// more often than scheduled refreshes.
    fn try_from(raw: RemoteSection) -> Result<Self, ConfigError> {
        let source = raw.source;
        let cluster = raw
            .cluster
            .ok_or_else(|| ConfigError::new("cluster", format!("is required with \"{source}\"")))?;
        if cluster.is_empty() {
            return Err(ConfigError::new("cluster", "must be a non-empty string"));
        }
        let endpoint = Endpoint::parse(&raw.url, &cluster)
            .map_err(|problem| ConfigError::new(source, problem))?;
        let document = if source == "openid_config_url" {
            let jwks_cluster = match raw.jwks_cluster {
                None => cluster,
                Some(name) if !name.is_empty() => name,
                Some(_) => {
                    return Err(ConfigError::new(
                        "jwks_cluster",
                        "must be a non-empty string",
                    ))
                }
            };
            RemoteDocument::Discovery {
                discovery: endpoint,
                jwks_cluster,
            }
        } else {
            if raw.jwks_cluster.is_some() {
                return Err(ConfigError::new(
                    "jwks_cluster",
                    "only applies with \"openid_config_url\"; with \"jwks_uri\" use \"cluster\"",
                ));
            }
            RemoteDocument::Jwks(endpoint)
        };
        let fetch_timeout_ms = bounded(
            "fetch_timeout_ms",
            raw.fetch_timeout_ms,
            (100, 60_000),
            DEFAULT_FETCH_TIMEOUT_MS,
        )?;
        let refresh_interval_seconds = bounded(
            "refresh_interval_seconds",
            raw.refresh_interval_seconds,
            (1, 7 * 86_400),
            DEFAULT_REFRESH_INTERVAL_SECONDS,
        )?;
        let min_refresh_interval_seconds = bounded(
            "min_refresh_interval_seconds",
            raw.min_refresh_interval_seconds,
            (0, 86_400),
            DEFAULT_MIN_REFRESH_INTERVAL_SECONDS.min(refresh_interval_seconds),
        )?;
        if min_refresh_interval_seconds > refresh_interval_seconds {
            return Err(ConfigError::new(
                "min_refresh_interval_seconds",
                "must not exceed \"refresh_interval_seconds\"",
            ));
        }
        let max_document_bytes = bounded(
            "max_document_bytes",
            raw.max_document_bytes,
            (1024, 16 * 1024 * 1024),
            DEFAULT_MAX_DOCUMENT_BYTES,
        )?;
        // At least two refresh intervals: refreshes come at 90-100% of the interval, so one
        // failed refresh must not drop the keys.
        let shortest_stale = refresh_interval_seconds.saturating_mul(2);
        let max_stale_keys_seconds = bounded(
            "max_stale_keys_seconds",
            raw.max_stale_keys_seconds,
            (0, 365 * 86_400),
            DEFAULT_MAX_STALE_KEYS_SECONDS.max(shortest_stale),
        )?;
        if max_stale_keys_seconds != 0 && max_stale_keys_seconds < shortest_stale {
            return Err(ConfigError::new(
                "max_stale_keys_seconds",
                "must be 0 (no limit) or at least twice \"refresh_interval_seconds\": one \
                 failed refresh must not drop the keys",
            ));
        }
        Ok(RemoteKeys {
            document,
            fetch_timeout_ms,
            refresh_interval_seconds,
            min_refresh_interval_seconds,
            max_stale_keys_seconds,
            max_document_bytes: usize::try_from(max_document_bytes)
                .map_err(|_| ConfigError::new("max_document_bytes", "is too large"))?,
        })
    }
}
