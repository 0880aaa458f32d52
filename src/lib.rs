//! wsgate: a proxy-wasm HTTP filter that guards WebSocket endpoints behind Envoy and Istio.
//!
//! On a guarded path a request must be a WebSocket upgrade (else a local **400**) and carry
//! exactly one valid bearer JWT (else a local **401** with an RFC 6750 `WWW-Authenticate`
//! header); an accepted one goes upstream with a verified identity and without the token.
//! Everything else passes untouched.
//!
//! The crate is split in two:
//!
//! - a pure core that knows nothing of the host and is tested natively with `cargo test`:
//!   [`config`] (the plugin configuration), [`request`] (the request as the core sees it),
//!   [`path`] (which paths are guarded, normalised to fail closed), [`spelling`] (the
//!   spellings a backend takes for one name), [`upgrade`] (WebSocket upgrade detection),
//!   [`extractor`] (where the token is), [`jws`] (compact JWS parsing), [`claims`]
//!   (`iss`/`aud`/`exp`/`nbf`), [`jwks`] (key sets and their bounds), [`fetch`] (issuer
//!   endpoints and documents), [`fetcher`] (when to fetch keys, and what came of it), [`jwks_cache`] (the key set shared by Envoy's worker VMs),
//!   [`parked`] (requests waiting for a key fetch), [`signature`] (the one seam to the
//!   signature backends) and [`rsa_verify`] (RS*/PS* arithmetic), [`strict_json`] and
//!   [`base64url`] (canonical encodings), [`authenticator`] (the verification pipeline),
//!   [`token_cache`] (verified tokens), [`decision`] (allow/deny and the deny reasons),
//!   [`gate`] (the per-request decision), [`upstream`] (what the upstream receives),
//!   [`record`] (the log line and access-log fields) and [`stats`] (stat names);
//! - `filter`, the thin proxy-wasm glue that reads the request, asks the [`gate::Gate`] and
//!   applies its [`decision::Decision`], and fetches keys for [`jwks_cache`]. Host calls live
//!   only there.

pub mod authenticator;
pub mod base64url;
pub mod claims;
pub mod config;
pub mod decision;
pub mod extractor;
pub mod fetch;
pub mod fetcher;
pub mod gate;
pub mod jwks;
pub mod jwks_cache;
pub mod jws;
pub mod parked;
pub mod path;
pub mod record;
pub mod request;
pub mod rsa_verify;
pub mod signature;
pub mod spelling;
pub mod stats;
pub mod strict_json;
pub mod token_cache;
pub mod upgrade;
pub mod upstream;

// Only the wasm build registers the glue; natively it is compiled (and linted) but unused.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod filter;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    filter::register();
}}
