//! What wsgate fetches from the issuer and how it judges the answers, without the host.
//!
//! An [`Endpoint`] is where a document lives: the Envoy cluster that reaches the host, and
//! the `:authority` and `:path` taken from its URL. [`judge`] turns an HTTP answer into the
//! document or a [`FetchError`]; [`jwks_uri_from_discovery`] reads an OpenID Connect
//! discovery document (OpenID Connect Discovery 1.0 §3–4), refusing one whose `issuer` is not
//! the configured issuer, as §4.3 requires.

use std::fmt;

use serde_json::Value;

use crate::encoding::strict_json;

/// Default timeout of one fetch.
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 5_000;
/// Default interval between scheduled refreshes.
pub const DEFAULT_REFRESH_INTERVAL_SECONDS: u64 = 600;
/// Default `max_stale_keys_seconds`: a day.
pub const DEFAULT_MAX_STALE_KEYS_SECONDS: u64 = 86_400;
/// Default shortest interval between unknown-`kid` refetches.
pub const DEFAULT_MIN_REFRESH_INTERVAL_SECONDS: u64 = 30;
/// Default cap on a discovery or JWKS document.
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 256 * 1024;

/// The first document to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteDocument {
    /// An OpenID Connect discovery document (`openid_config_url`); its `jwks_uri` is then
    /// fetched through `jwks_cluster`.
    Discovery {
        discovery: Endpoint,
        jwks_cluster: String,
    },
    /// The JWKS itself (`jwks_uri`).
    Jwks(Endpoint),
}

/// How keys are fetched from the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteKeys {
    pub document: RemoteDocument,
    pub fetch_timeout_ms: u64,
    pub refresh_interval_seconds: u64,
    pub min_refresh_interval_seconds: u64,
    pub max_document_bytes: usize,
    /// How long a key set is trusted after the last fetch that brought it, while refreshes
    /// fail; 0, forever.
    pub max_stale_keys_seconds: u64,
}

impl RemoteKeys {
    /// The URL of the first document, which also names the shared key set.
    pub fn source_url(&self) -> &str {
        match &self.document {
            RemoteDocument::Discovery { discovery, .. } => &discovery.url,
            RemoteDocument::Jwks(jwks) => &jwks.url,
        }
    }

    /// The cluster the first document is fetched through.
    pub fn cluster(&self) -> &str {
        match &self.document {
            RemoteDocument::Discovery { discovery, .. } => &discovery.cluster,
            RemoteDocument::Jwks(jwks) => &jwks.cluster,
        }
    }
}

/// A document's location, as `dispatch_http_call` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as configured or discovered (for logs).
    pub url: String,
    /// The Envoy cluster that reaches the host.
    pub cluster: String,
    /// `host[:port]`, sent as `:authority`.
    pub authority: String,
    /// Path and query, sent as `:path`.
    pub path: String,
}

impl Endpoint {
    /// Parses an `http://` or `https://` URL (no user info, no fragment) reached through
    /// `cluster`.
    pub fn parse(url: &str, cluster: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url:?} has no host, or has user info"));
        }
        if url.contains('#') || url.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            return Err(format!("{url:?} has a fragment, spaces or non-ASCII bytes"));
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(Endpoint {
            url: url.to_owned(),
            cluster: cluster.to_owned(),
            authority: authority.to_owned(),
            path,
        })
    }
}

/// Why a fetch produced no usable document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The call could not be dispatched (unknown cluster, bad headers).
    Dispatch(String),
    /// No response: refused connection, reset or timeout.
    NoResponse,
    /// A status other than 200.
    Status(u16),
    /// A body over the configured cap.
    TooLarge { limit: usize },
    /// The discovery document is unusable.
    Discovery(String),
    /// The JWKS is unusable.
    Jwks(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dispatch(why) => write!(f, "cannot dispatch the call: {why}"),
            Self::NoResponse => f.write_str("no response (connection refused, reset or timed out)"),
            Self::Status(status) => write!(f, "HTTP status {status}"),
            Self::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            Self::Discovery(why) => write!(f, "discovery document: {why}"),
            Self::Jwks(why) => write!(f, "JWKS: {why}"),
        }
    }
}

/// Judges an answer: `status` is the `:status` header (absent when the call failed),
/// `body_size` what the host says the body holds, `body` what was read of it.
pub fn judge(
    status: Option<&str>,
    body_size: usize,
    body: &[u8],
    limit: usize,
) -> Result<(), FetchError> {
    let status = status.ok_or(FetchError::NoResponse)?;
    let status: u16 = status.trim().parse().map_err(|_| FetchError::NoResponse)?;
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    if body_size > limit || body.len() > limit {
        return Err(FetchError::TooLarge { limit });
    }
    Ok(())
}

/// Reads `jwks_uri` from a discovery document whose `issuer` must equal `issuer` exactly.
pub fn jwks_uri_from_discovery(document: &[u8], issuer: &str) -> Result<String, FetchError> {
    let object = strict_json::parse_object(document)
        .map_err(|error| FetchError::Discovery(format!("not a JSON object: {error}")))?;
    match object.get("issuer") {
        Some(Value::String(found)) if found == issuer => {}
        Some(Value::String(found)) => {
            return Err(FetchError::Discovery(format!(
                "issuer {found:?} is not the configured issuer {issuer:?}"
            )))
        }
        _ => return Err(FetchError::Discovery("no \"issuer\"".to_owned())),
    }
    match object.get("jwks_uri") {
        Some(Value::String(uri)) if !uri.is_empty() => Ok(uri.clone()),
        _ => Err(FetchError::Discovery("no \"jwks_uri\"".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_authority_and_path() {
        let acs = Endpoint::parse(
            "https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration",
            "acs",
        )
        .unwrap();
        assert_eq!(acs.authority, "acscallautomation.communication.azure.com");
        assert_eq!(acs.path, "/calling/.well-known/acsopenidconfiguration");
        assert_eq!(acs.cluster, "acs");
        let local = Endpoint::parse("http://127.0.0.1:8081", "issuer").unwrap();
        assert_eq!(
            (local.authority.as_str(), local.path.as_str()),
            ("127.0.0.1:8081", "/")
        );
        let query = Endpoint::parse("http://h?x=1", "c").unwrap();
        assert_eq!(query.path, "/?x=1");
    }

    #[test]
    fn endpoints_refuse_what_is_not_a_plain_url() {
        for url in [
            "ftp://h/x",
            "//h/x",
            "https://",
            "https:///x",
            "https://u:p@h/x",
            "https://h/x#f",
            "https://h/a b",
            "https://h/é",
        ] {
            assert!(Endpoint::parse(url, "c").is_err(), "{url}");
        }
    }

    #[test]
    fn answers_are_judged() {
        assert_eq!(judge(Some("200"), 2, b"{}", 10), Ok(()));
        assert_eq!(judge(None, 0, b"", 10), Err(FetchError::NoResponse));
        assert_eq!(judge(Some("503"), 0, b"", 10), Err(FetchError::Status(503)));
        assert_eq!(judge(Some("404"), 0, b"", 10), Err(FetchError::Status(404)));
        assert_eq!(
            judge(Some("200"), 11, b"", 10),
            Err(FetchError::TooLarge { limit: 10 })
        );
        assert_eq!(judge(Some("junk"), 0, b"", 10), Err(FetchError::NoResponse));
    }

    #[test]
    fn discovery_yields_jwks_uri_for_the_right_issuer_only() {
        let doc = br#"{"issuer":"https://acscallautomation.communication.azure.com","jwks_uri":"https://acscallautomation.communication.azure.com/calling/keys"}"#;
        assert_eq!(
            jwks_uri_from_discovery(doc, "https://acscallautomation.communication.azure.com")
                .unwrap(),
            "https://acscallautomation.communication.azure.com/calling/keys"
        );
        for issuer in [
            "https://acscallautomation.communication.azure.com/",
            "https://evil.example",
        ] {
            assert!(matches!(
                jwks_uri_from_discovery(doc, issuer),
                Err(FetchError::Discovery(_))
            ));
        }
        for bad in [
            &br#"{"issuer":"i"}"#[..],
            br#"{"jwks_uri":"https://x"}"#,
            b"<html>",
            br#"{"issuer":"i","issuer":"i","jwks_uri":"u"}"#,
        ] {
            assert!(
                matches!(
                    jwks_uri_from_discovery(bad, "i"),
                    Err(FetchError::Discovery(_))
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
