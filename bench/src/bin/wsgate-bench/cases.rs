//! What is measured: the configurations (no auth, the floor, `jwt_authn`, wsgate with and
//! without its cache or Envoy's crypto, a baseline module), the signature algorithms, the
//! Envoy bootstrap of each, and how the timed parts run.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{json, Value};
use testbed::envoy;
use testbed::keys::{TestKey, ED25519, P256, P384, P521, RSA_2048};

pub const ISSUER: &str = "https://issuer.example";

pub const AUDIENCE: &str = "my-resource-id";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    WasmFloor,
    JwtAuthn,
    JwtAuthnCached,
    /// Cache off, the module's verifiers (`crypto: "wasm"`).
    Wsgate,
    /// Cache off, Envoy's verifier (`crypto: "host"`).
    WsgateHost,
    /// Cache on, the default verifier choice (`crypto: "auto"`).
    WsgateCached,
    /// `WsgateCached` with the `--baseline-module` (part two only).
    WsgateCachedBaseline,
    /// `WsgateHost` with the `--baseline-module` (part two only): the cold path's A/B.
    WsgateHostBaseline,
}

impl Auth {
    pub const ALL: [Auth; 7] = [
        Auth::None,
        Auth::WasmFloor,
        Auth::JwtAuthn,
        Auth::JwtAuthnCached,
        Auth::Wsgate,
        Auth::WsgateHost,
        Auth::WsgateCached,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Auth::None => "no auth",
            Auth::WasmFloor => "wasm floor (wsgate, unguarded path)",
            Auth::JwtAuthn => "jwt_authn",
            Auth::JwtAuthnCached => "jwt_authn + jwt_cache_config",
            Auth::Wsgate => "wsgate, cache off, wasm crypto",
            Auth::WsgateHost => "wsgate, cache off, Envoy's crypto",
            Auth::WsgateCached => "wsgate, cache on",
            Auth::WsgateCachedBaseline => "wsgate, cache on, baseline module",
            Auth::WsgateHostBaseline => "wsgate, cache off, Envoy's crypto, baseline module",
        }
    }

    pub fn needs_token(self) -> bool {
        !matches!(self, Auth::None | Auth::WasmFloor)
    }
}

/// How the timed parts (two and three) run.
pub struct Settings {
    /// Measured seconds per run, after a one-second warm-up.
    pub seconds: u64,
    pub concurrency: usize,
    pub rounds: usize,
    /// Part two runs only the warm-path rows (no auth, the floor, cached, baseline).
    pub warm_only: bool,
    /// Part two runs only wsgate cached against the baseline module: an A/B of two modules'
    /// warm paths, as many rounds as the noise needs.
    pub ab_only: bool,
    /// With `ab_only`: both modules' Envoys run at once, on one CPU (`--together`).
    pub together: bool,
}

pub fn bootstrap(auth: Auth, upstream: SocketAddr, module: &Path, jwks_text: &str) -> Value {
    let wsgate = |paths: &[&str], cache: usize, crypto: &str| {
        envoy::wasm_filter(
            &json!({"paths": paths, "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks_text, "jwt_cache_size": cache, "crypto": crypto}),
            module,
        )
    };
    let jwt_authn = |cached: bool| {
        let mut provider = json!({"issuer": ISSUER, "audiences": [AUDIENCE], "local_jwks": {"inline_string": jwks_text}});
        if cached {
            provider["jwt_cache_config"] = json!({"jwt_cache_size": 1024});
        }
        json!({
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": {"bench": provider},
                "rules": [{"match": {"prefix": "/ws"}, "requires": {"provider_name": "bench"}}]
            }
        })
    };
    let filters = match auth {
        Auth::None => vec![],
        Auth::WasmFloor => vec![wsgate(&["/unguarded"], 0, "wasm")],
        Auth::JwtAuthn => vec![jwt_authn(false)],
        Auth::JwtAuthnCached => vec![jwt_authn(true)],
        Auth::Wsgate => vec![wsgate(&["/ws"], 0, "wasm")],
        Auth::WsgateHost => vec![wsgate(&["/ws"], 0, "host")],
        Auth::WsgateCached => vec![wsgate(&["/ws"], 1024, "auto")],
        // A module from before `crypto` existed refuses the field: leave it out.
        Auth::WsgateCachedBaseline => vec![envoy::wasm_filter(
            &json!({"paths": ["/ws"], "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks_text, "jwt_cache_size": 1024}),
            module,
        )],
        Auth::WsgateHostBaseline => vec![wsgate(&["/ws"], 0, "host")],
    };
    envoy::bootstrap(upstream, filters)
}

/// The signature algorithms measured.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
    /// Envoy's crypto only: the module has no P-384 arithmetic.
    Es384,
    /// Envoy's crypto only, as ES384.
    Es512,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 5] = [Alg::Rs256, Alg::Es256, Alg::Es384, Alg::Es512, Alg::EdDsa];

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn key(self) -> (&'static TestKey, &'static str) {
        match self {
            Alg::Rs256 => (&RSA_2048, "rs"),
            Alg::Es256 => (&P256, "es"),
            Alg::Es384 => (&P384, "es384"),
            Alg::Es512 => (&P521, "es512"),
            Alg::EdDsa => (&ED25519, "ed"),
        }
    }
}
