//! wsgate's test and demo parts, shared by the integration tests and the demo so that both
//! exercise the same pieces:
//!
//! - [`attacks`]: the attack catalogue, hostile requests each with the deny reason it must get;
//! - [`differential`]: the seeded token generator of the differential test against `jwt_authn`;
//! - [`keys`]: signing keys of every family wsgate verifies, their public JWKs, and a signer
//!   that writes compact JWS tokens byte for byte as a test asks;
//! - [`leaks`]: finds tokens and pieces of them in what Envoy writes;
//! - [`echo`]: a real WebSocket echo upstream that records what reached it;
//! - [`issuer`]: a real OpenID Connect issuer (discovery and JWKS) with switchable faults;
//! - [`envoy`]: finds an Envoy binary and runs it with the built module on loopback;
//! - [`files`]: a static file server, for loading the module by URL;
//! - [`client`]: a plain HTTP/1.1 client and a WebSocket client that report what came back;
//! - [`h2ws`]: a WebSocket over HTTP/2 (RFC 8441 extended CONNECT);
//! - [`vectors`]: the Wycheproof test vectors from `../shared/vectors`;
//! - [`crowd`]: thousands of WebSockets held open at once, and an upstream that holds them;
//! - [`shipped`]: the configurations under `envoy/` as shipped, moved onto loopback;
//! - [`demo`]: the demo stack of `envoy/envoy.yaml` on free ports, with the page for trying
//!   the gate from a browser.
//!
//! Nothing here is part of the filter; none of it is compiled into the module.

pub mod attacks;
pub mod client;
pub mod crowd;
pub mod demo;
pub mod differential;
pub mod echo;
pub mod envoy;
pub mod files;
pub mod h2ws;
pub mod http;
pub mod issuer;
pub mod keys;
pub mod leaks;
pub mod shipped;
pub mod stack;
pub mod vectors;

/// Nanoseconds since the Unix epoch, now (for unique names).
pub fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0)
}

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// Today's date as `YYYY-MM-DD` (from `date`), for result file names; `undated` without it.
pub fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|date| !date.is_empty())
        .unwrap_or_else(|| "undated".into())
}
