//! Several providers and rules by path, through a real Envoy with two workers: `acs` with
//! inline keys, `entra` by OpenID Connect discovery from one testbed issuer, `tools` by a
//! direct `jwks_uri` from another; `/ws` takes `acs` and `entra`, the prefix `/calls/` only
//! `acs`, `/tools` only `tools`, and every other path passes untouched.
//!
//! `acs` and `entra` sign under the same `kid`, so a token that claims one provider's
//! issuer and is signed with the other's key shows which keys verify it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use serde_json::{json, Value};
use testbed::client::{self, Response};
use testbed::issuer::{Issuer, DISCOVERY_PATH, JWKS_PATH};
use testbed::keys::{jwks, TestKey, P256, RSA_2048, RSA_2048_OTHER};
use testbed::stack::Stack;

const ACS: &str = "https://acscallautomation.communication.azure.com";

/// The three providers and their rules, on Envoy with two workers.
fn start() -> Stack {
    start_refreshing(600)
}

/// [`start`], the remote providers refreshing every `refresh_seconds`.
fn start_refreshing(refresh_seconds: u64) -> Stack {
    let entra = Issuer::start(&[(&RSA_2048_OTHER, "k")]);
    let tools = Issuer::start(&[(&P256, "k")]);
    let plugin = json!({
        "log_allowed": true,
        "providers": {
            "acs": {
                "issuer": ACS,
                "audiences": ["acs-resource"],
                "jwks": jwks(&[(&RSA_2048, "k")]),
                "claim_to_headers": [{"header_name": "x-acs-sub", "claim_name": "sub"}]
            },
            "entra": {
                "issuer": entra.issuer(),
                "audiences": ["api://media"],
                "openid_config_url": entra.discovery_url(),
                "cluster": "entra",
                "refresh_interval_seconds": refresh_seconds,
                "forward_payload_header": "x-entra-payload"
            },
            "tools": {
                "issuer": tools.issuer(),
                "audiences": ["tools"],
                "jwks_uri": tools.jwks_url(),
                "cluster": "tools",
                "refresh_interval_seconds": refresh_seconds
            }
        },
        "rules": [
            {"match": {"path": "/ws"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "acs"}, {"provider_name": "entra"}]}}},
            {"match": {"prefix": "/calls/"}, "requires": {"provider_name": "acs"}},
            {"match": {"path": "/tools"}, "requires": {"provider_name": "tools"}}
        ]
    });
    Stack::gate(&plugin, vec![("entra", entra), ("tools", tools)], 2)
}

fn sign(key: &TestKey, iss: &str, aud: &str, sub: &str) -> String {
    let now = testbed::now();
    key.sign(
        json!({"kid": "k"}),
        &json!({"iss": iss, "aud": aud, "sub": sub, "exp": now + 600}),
    )
}

fn acs() -> String {
    sign(&RSA_2048, ACS, "acs-resource", "acs-caller")
}

fn entra(stack: &Stack) -> String {
    sign(
        &RSA_2048_OTHER,
        &stack.issuer("entra").issuer(),
        "api://media",
        "entra-user",
    )
}

fn tools(stack: &Stack) -> String {
    sign(&P256, &stack.issuer("tools").issuer(), "tools", "tool")
}

/// Opens a WebSocket on `path` with `token` (and `extra` headers): the 101, or the refusal.
fn open(stack: &Stack, path: &str, token: &str, extra: &[(&str, &str)]) -> Result<u16, Response> {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    headers.extend_from_slice(extra);
    client::websocket(stack.envoy.listener(), path, &headers).map(|(mut socket, response)| {
        assert_eq!(client::echo(&mut socket, "ping"), "ping");
        socket.close(None).ok();
        response.status
    })
}

/// Opens a WebSocket as [`open`] does, which must be accepted.
fn accept(stack: &Stack, path: &str, token: &str, extra: &[(&str, &str)]) {
    if let Err(response) = open(stack, path, token, extra) {
        panic!(
            "{path}: refused with {} {:?}",
            response.status,
            response.header("www-authenticate")
        );
    }
}

/// The `WWW-Authenticate` description of a refusal, which must be a 401.
fn refusal(outcome: Result<u16, Response>) -> String {
    let response = outcome.expect_err("a refusal");
    assert_eq!(response.status, 401);
    response
        .header("www-authenticate")
        .unwrap_or_default()
        .to_owned()
}

/// The stats under `wasmcustom.wsgate.`, by the rest of their name.
fn stats(stack: &Stack) -> std::collections::BTreeMap<String, u64> {
    stack
        .envoy
        .stats("wsgate")
        .into_iter()
        .filter_map(|(name, value)| {
            Some((name.strip_prefix("wasmcustom.wsgate.")?.to_owned(), value))
        })
        .collect()
}

fn assert_healthy(stack: &Stack) {
    assert_eq!(stack.envoy.vm_failures(), 0, "{}", stack.envoy.log());
}

#[test]
fn each_providers_tokens_are_accepted_where_its_rules_allow_them() {
    let stack = start();
    // /ws takes acs and entra; each gets what its own provider sets upstream, and a
    // client's copy of another provider's header never passes.
    accept(&stack, "/ws", &acs(), &[]);
    let seen = stack.echo.last_on("/ws").unwrap();
    assert_eq!(seen.header("x-acs-sub"), Some("acs-caller"));
    assert_eq!(seen.header("authorization"), None, "forward is off");
    let forged = [("x-acs-sub", "acs-admin"), ("x-entra-payload", "forged")];
    let token = entra(&stack);
    accept(&stack, "/ws", &token, &forged);
    let seen = stack.echo.last_on("/ws").unwrap();
    assert_eq!(seen.header("x-acs-sub"), None, "acs's header, removed");
    let payload = token.split('.').nth(1).unwrap();
    assert_eq!(
        seen.header("x-entra-payload"),
        Some(payload),
        "not the forged one"
    );

    // The prefix takes acs only, in every spelling of the path.
    for path in ["/calls/42/media", "/CALLS/42/media", "//calls/42"] {
        accept(&stack, path, &acs(), &[]);
        let refused = refusal(open(&stack, path, &entra(&stack), &[]));
        assert!(
            refused.contains("issuer is not accepted"),
            "{path}: {refused}"
        );
    }
    // /tools takes tools only; tools' tokens are refused on /ws.
    accept(&stack, "/tools", &tools(&stack), &[]);
    let refused = refusal(open(&stack, "/tools", &acs(), &[]));
    assert!(refused.contains("issuer is not accepted"), "{refused}");
    let refused = refusal(open(&stack, "/ws", &tools(&stack), &[]));
    assert!(refused.contains("issuer is not accepted"), "{refused}");
    // No rule: untouched, token or not; a sibling of the /calls/ directory included.
    for path in ["/elsewhere", "/callsadmin/ws"] {
        let response = client::request(stack.envoy.listener(), "GET", path, &[]);
        assert_eq!(response.status, 200, "{path}");
    }

    let log = stack.envoy.log();
    assert!(
        log.contains("decision=allow provider=entra path=/ws iss="),
        "{log}"
    );
    assert!(
        log.contains("decision=deny reason=wrong_issuer status=401 provider=- path=/ws"),
        "{log}"
    );
    assert!(
        log.contains(
            "configured: rules [\"/ws -> acs|entra\", \"/calls/* -> acs\", \"/tools -> tools\"]"
        ),
        "{log}"
    );
    assert_healthy(&stack);
}

/// `acs` and `entra` both sign under `kid` "k": a token that claims one's issuer is checked
/// with that provider's key only, and the other's key never verifies it.
#[test]
fn one_providers_key_never_verifies_a_token_of_anothers_issuer() {
    let stack = start();
    let claims_entra = sign(
        &RSA_2048,
        &stack.issuer("entra").issuer(),
        "api://media",
        "mallory",
    );
    let refused = refusal(open(&stack, "/ws", &claims_entra, &[]));
    assert!(refused.contains("signature is invalid"), "{refused}");
    let claims_acs = sign(&RSA_2048_OTHER, ACS, "acs-resource", "mallory");
    let refused = refusal(open(&stack, "/ws", &claims_acs, &[]));
    assert!(refused.contains("signature is invalid"), "{refused}");
    // Nor does one provider's audience pass for another's.
    let crossed = sign(
        &RSA_2048_OTHER,
        &stack.issuer("entra").issuer(),
        "acs-resource",
        "x",
    );
    let refused = refusal(open(&stack, "/ws", &crossed, &[]));
    assert!(refused.contains("audience is not accepted"), "{refused}");
    let stats = stats(&stack);
    assert_eq!(stats["provider.entra.denied"], 2);
    assert_eq!(stats["provider.acs.denied"], 1);
    assert_eq!(stats["denied.bad_signature"], 2);
    assert_healthy(&stack);
}

/// Each remote provider's keys are fetched once per refresh for both workers, and each
/// provider counts its own decisions and fetches.
#[test]
fn one_fetch_per_provider_for_two_workers_and_stats_per_provider() {
    let stack = start_refreshing(2);
    for _ in 0..8 {
        accept(&stack, "/ws", &entra(&stack), &[]);
        accept(&stack, "/tools", &tools(&stack), &[]);
        accept(&stack, "/calls/1", &acs(), &[]);
    }
    refusal(open(&stack, "/tools", &acs(), &[]));
    // Every VM configures and ticks (each worker's, whether or not a request reached it).
    let vms = stack
        .envoy
        .log()
        .matches("configured: provider=entra")
        .count();
    assert!(vms >= 2, "{vms} VM(s) configured");
    // Waited for a cause, not for time: each issuer's third JWKS request (the first fetch
    // and two scheduled refreshes, 1.8-2 s apart). Both VMs tick ten times a second all
    // along, so a second VM fetching too would show as two requests close together.
    let started = std::time::Instant::now();
    while stack.issuer("entra").hits(JWKS_PATH) < 3 || stack.issuer("tools").hits(JWKS_PATH) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no third refresh"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for name in ["entra", "tools"] {
        let issuer = stack.issuer(name);
        let gap = issuer.shortest_gap(JWKS_PATH).expect("three fetches");
        assert!(
            gap >= Duration::from_millis(1500),
            "{name}: two JWKS fetches {gap:?} apart"
        );
    }
    let entra_fetches = stack.issuer("entra").hits(JWKS_PATH) as u64;
    let tools_fetches = stack.issuer("tools").hits(JWKS_PATH) as u64;
    // The counters move once each answer is handled, a moment after the issuer saw the
    // request: wait for them to catch up (the next refresh is over a second away).
    let fetched = |provider: &str| {
        stats(&stack)
            .get(&format!("provider.{provider}.jwks_fetch_success"))
            .copied()
    };
    while fetched("entra") != Some(entra_fetches) || fetched("tools") != Some(tools_fetches) {
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "the fetch counters never matched the issuers' hits"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        stack.issuer("entra").hits(DISCOVERY_PATH) as u64,
        entra_fetches,
        "entra: discovery each time"
    );
    assert_eq!(
        stack.issuer("tools").hits(DISCOVERY_PATH),
        0,
        "tools: no discovery"
    );

    let stats = stats(&stack);
    let expected: Value = json!({
        "allowed": 24, "denied": 1, "denied.wrong_issuer": 1,
        "provider.acs.allowed": 8, "provider.entra.allowed": 8, "provider.tools.allowed": 8,
        "provider.tools.denied": 1, "provider.acs.denied": 0, "provider.entra.denied": 0,
        "provider.entra.jwks_fetch_success": entra_fetches,
        "provider.tools.jwks_fetch_success": tools_fetches,
        "provider.acs.jwks_fetch_success": 0, "jwks_fetch_success": entra_fetches + tools_fetches,
        "provider.acs.jwks_keys": 1, "provider.entra.jwks_keys": 1, "provider.tools.jwks_keys": 1,
    });
    for (name, value) in expected.as_object().unwrap() {
        assert_eq!(
            stats.get(name).copied(),
            value.as_u64(),
            "{name} in {stats:#?}"
        );
    }
    assert_healthy(&stack);
}
