//! The module loaded by URL, as Istio and Envoy Gateway load it under the hood: Envoy fetches
//! `dist/wsgate.wasm` (what `make dist` made) over HTTP through `vm_config.code.remote` and
//! checks it against `dist/wsgate.wasm.sha256` before it runs a byte of it.
//!
//! Run `make dist` first; a missing or stale `dist/` fails the test loudly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use serde_json::{json, Value};
use testbed::client;
use testbed::echo::Echo;
use testbed::envoy::{self, workspace_root, Envoy};
use testbed::files::Files;
use testbed::keys::{jwks, RSA_2048};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "my-resource-id";

/// `dist/`, checked to hold the module `make build` left and its checksum.
fn dist() -> (std::path::PathBuf, String) {
    let dir = workspace_root().join("dist");
    let module = std::fs::read(dir.join("wsgate.wasm"))
        .unwrap_or_else(|e| panic!("dist/wsgate.wasm: {e}: run `make dist`"));
    assert!(
        module == std::fs::read(envoy::module_path()).unwrap(),
        "dist/wsgate.wasm is not the module `make build` left: run `make dist`"
    );
    let line = std::fs::read_to_string(dir.join("wsgate.wasm.sha256")).unwrap();
    let sha256 = line.split_whitespace().next().unwrap().to_owned();
    (dir, sha256)
}

/// A gate bootstrap whose module Envoy fetches from `files` and checks against `sha256`.
fn remote_bootstrap(echo: &Echo, files: &Files, sha256: &str) -> Value {
    let config = json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks(&[(&RSA_2048, "rsa")]),
    });
    let mut bootstrap = envoy::gate_bootstrap(echo.addr(), &config);
    let filter = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        [0]["typed_config"]["http_filters"][0]["typed_config"]["config"];
    filter["vm_config"]["code"] = json!({ "remote": {
        "http_uri": {
            "uri": format!("http://{}/wsgate.wasm", files.addr()),
            "cluster": "wsgate_module",
            "timeout": "10s",
        },
        "sha256": sha256,
        "retry_policy": { "num_retries": 1 },
    }});
    envoy::add_cluster(&mut bootstrap, "wsgate_module", files.addr());
    bootstrap
}

fn token() -> String {
    RSA_2048.sign(
        json!({"kid": "rsa"}),
        &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "caller-1", "exp": testbed::now() + 600}),
    )
}

fn status(envoy: &Envoy, headers: &[(&str, &str)]) -> u16 {
    client::upgrade_status(envoy.listener(), "/ws", headers)
}

#[test]
fn the_module_loaded_by_url_with_its_checksum_guards_the_socket() {
    let (dir, sha256) = dist();
    let files = Files::serve(&dir);
    let echo = Echo::start();
    let envoy = Envoy::start(&remote_bootstrap(&echo, &files, &sha256));
    assert!(files.hits("/wsgate.wasm") >= 1, "Envoy fetched the module");
    assert_eq!(status(&envoy, &[]), 401);
    let bearer = format!("Bearer {}", token());
    assert_eq!(status(&envoy, &[("authorization", &bearer)]), 101);
    assert_eq!(
        echo.seen().len(),
        1,
        "only the authenticated upgrade went upstream"
    );
    let log = envoy.log_with("signatures: ", Duration::from_secs(10));
    assert!(!log.contains("panicked"), "{log}");
}

/// A module that is not the one pinned is never run: Envoy fetches it, finds the checksum
/// wrong, and the filter, failing closed, answers every request itself (503) instead of
/// letting it through unauthenticated.
#[test]
fn a_wrong_checksum_fails_closed() {
    let (dir, sha256) = dist();
    let files = Files::serve(&dir);
    let echo = Echo::start();
    // The right checksum with its first digit changed: the same bytes, served as before.
    let wrong = format!(
        "{}{}",
        if sha256.starts_with('0') { '1' } else { '0' },
        &sha256[1..]
    );
    let envoy = Envoy::start(&remote_bootstrap(&echo, &files, &wrong));
    let log = envoy.log_with("Plugin wsgate failed to load", Duration::from_secs(30));
    assert!(files.hits("/wsgate.wasm") >= 1, "Envoy fetched the module");
    let bearer = format!("Bearer {}", token());
    assert_eq!(status(&envoy, &[]), 503);
    assert_eq!(status(&envoy, &[("authorization", &bearer)]), 503);
    assert!(echo.seen().is_empty(), "nothing reached the upstream");
    assert!(
        log.contains("Retry limit exceeded for fetching data"),
        "{log}"
    );
    assert!(!log.contains("signatures: "), "the module never ran: {log}");
}
