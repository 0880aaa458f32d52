//! wsgate: a proxy-wasm HTTP filter that guards WebSocket endpoints behind Envoy and Istio.
//!
//! On a guarded path a request must be a WebSocket upgrade (else a local **400**) and carry
//! exactly one valid bearer JWT (else a local **401** with an RFC 6750 `WWW-Authenticate`
//! header, or a **503** while no keys can be had), and pass the rule's policies (`origins`
//! and `claims`: a **403**; a per-identity socket quota: a **429**); an accepted one goes
//! upstream with a verified identity and without the token.
//! Everything else passes untouched.
//!
//! The crate is split in two, and its folders are layered (lowest first; each uses only
//! lower ones, as `tests/layering.rs` checks):
//!
//! - leaves: [`encoding`] (canonical base64url, strict JSON), [`deny`] (every deny reason
//!   and its reply), [`provider`] (provider ids and the provider table), [`sockets`] (the
//!   accepted WebSockets `close_on_expiry` closes, by deadline), [`shared`] (the shared data
//!   the worker VMs coordinate through, as a trait), and `host`;
//! - [`request`]: the request as the core sees it, which paths are guarded (normalised to
//!   fail closed) and whether it is a WebSocket upgrade; [`signature`]: the one seam to the
//!   signature backends, and the RS*/PS* arithmetic; [`quota`]: open sockets per identity,
//!   counted across the VMs;
//! - [`keys`]: key sets and their bounds, the issuer's documents, when to fetch them, the
//!   key set shared by Envoy's worker VMs and the requests waiting for a fetch;
//! - [`token`]: where the bearer token is, its JWS form, its claims, the verification
//!   pipeline, what it yields and the cache of verified tokens;
//! - [`decision`]: the per-request [`decision::gate::Gate`] and its one final
//!   [`decision::Outcome`]; the rules, what the upstream receives, the log line and
//!   access-log fields, and the stat names;
//! - [`config`]: the plugin configuration, parsed strictly, each error naming its field,
//!   and built into the types above;
//! - the glue: `filter`, the thin contexts that read the request, ask the gate, apply its
//!   outcome and fetch keys, all through `host`, the one seam to proxy-wasm (a trait, the
//!   real host behind it, and a recording fake for native tests). Only `host` calls the
//!   host.

pub mod config;
pub mod decision;
pub mod deny;
pub mod encoding;
pub mod keys;
pub mod provider;
pub mod quota;
pub mod request;
pub mod shared;
pub mod signature;
pub mod sockets;
pub mod token;

// Natively the glue is compiled, linted and tested against the recording host, but never
// registered: only `register` and the real host are unused there.
mod filter;
mod host;

// Bench-only builds' repeated steps (`bench-repeat-*` features); nothing in any other build.
mod bench_repeat;

// The module's entry point. Off (`default-features = false`) only for another module that
// links this crate, such as the test probe in testbed/probe.
#[cfg(all(target_arch = "wasm32", feature = "module"))]
proxy_wasm::main! {{
    filter::register();
}}
