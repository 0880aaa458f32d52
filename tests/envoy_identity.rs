//! What the upstream, the operator and Envoy's stats see of each decision, through a real
//! Envoy: correlation headers and a verified identity upstream (never a client's copy), one
//! log line per decision, access-log fields from filter state, and exact counters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use testbed::client::{self, Response};
use testbed::envoy;
use testbed::issuer::{Behaviour, Issuer};
use testbed::keys::{TestKey, P256, RSA_2048, RSA_2048_OTHER};
use testbed::stack::Stack;

/// The issuer of the inline keys.
const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "my-resource-id";
const ACCESS_LOG_FORMAT: &str = "decision=%FILTER_STATE(wasm.wsgate.decision:PLAIN)% reason=%FILTER_STATE(wasm.wsgate.reason:PLAIN)% correlation_id=%FILTER_STATE(wasm.wsgate.correlation_id:PLAIN)% connection_id=%FILTER_STATE(wasm.wsgate.connection_id:PLAIN)% sub=%FILTER_STATE(wasm.wsgate.sub:PLAIN)% status=%RESPONSE_CODE%\n";

fn identity_settings() -> Value {
    json!({
        "claim_to_headers": [
            {"header_name": "x-jwt-sub", "claim_name": "sub"},
            {"header_name": "x-jwt-tenant", "claim_name": "org.tenant"}
        ],
        "forward_payload_header": "x-jwt-payload",
        // Accepted requests' lines at info, as these tests read them (the default is debug).
        "log_allowed": true
    })
}

/// Envoy with wsgate: inline keys unless `issuer` is given (then `jwks_uri` on it).
fn start(settings: Value, issuer: Option<&Issuer>) -> Stack {
    let issuer_name = issuer.map_or(ISSUER.to_owned(), Issuer::issuer);
    let mut plugin = json!({ "issuer": issuer_name, "audiences": [AUDIENCE] });
    match issuer {
        Some(issuer) => {
            plugin["jwks_uri"] = json!(issuer.jwks_url());
            plugin["cluster"] = json!("issuer");
        }
        None => plugin["jwks"] = testbed::keys::jwks(&[(&RSA_2048, "rsa"), (&P256, "ec")]),
    }
    let plugin = envoy::with_settings(plugin, &settings);
    let issuers = issuer
        .map(|issuer| ("issuer", issuer.clone()))
        .into_iter()
        .collect();
    Stack::logged(issuers, 1, ACCESS_LOG_FORMAT, |upstream| {
        envoy::gate_bootstrap(upstream, &plugin)
    })
}

/// The issuer the stack's tokens name: its issuer's, or the inline keys' [`ISSUER`].
fn issuer_of(stack: &Stack) -> String {
    stack
        .issuers()
        .next()
        .map_or(ISSUER.to_owned(), Issuer::issuer)
}

fn claims(stack: &Stack) -> Value {
    let now = testbed::now();
    json!({"iss": issuer_of(stack), "aud": AUDIENCE, "sub": "caller-7", "org": {"tenant": "t-42"}, "exp": now + 600})
}

fn sign(key: &TestKey, kid: &str, claims: &Value) -> String {
    key.sign(json!({ "kid": kid }), claims)
}

fn open(stack: &Stack, headers: &[(&str, &str)]) -> Result<Response, Response> {
    client::websocket(stack.envoy.listener(), "/ws", headers).map(|(mut socket, response)| {
        assert_eq!(client::echo(&mut socket, "hi"), "hi");
        socket.close(None).ok();
        response
    })
}

fn access_log_lines(stack: &Stack, count: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(stack.access_log()).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= count || started.elapsed() > Duration::from_secs(15) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_upstream_gets_correlation_ids_and_a_verified_identity_only() {
    let stack = start(identity_settings(), None);
    let token = sign(&RSA_2048, "rsa", &claims(&stack));
    let bearer = format!("Bearer {token}");
    open(
        &stack,
        &[
            ("authorization", &bearer),
            ("x-ms-call-correlation-id", "corr-123"),
            ("x-ms-call-connection-id", "conn-456"),
            ("x-jwt-sub", "admin"),
            ("x-jwt-payload", "eyJzdWIiOiJhZG1pbiJ9"),
        ],
    )
    .expect("accepted");
    let seen = stack
        .echo
        .last_on("/ws")
        .expect("the upstream saw the handshake");
    assert_eq!(seen.header("x-ms-call-correlation-id"), Some("corr-123"));
    assert_eq!(seen.header("x-ms-call-connection-id"), Some("conn-456"));
    assert_eq!(
        seen.header_values("x-jwt-sub"),
        ["caller-7"],
        "only the verified sub"
    );
    assert_eq!(
        seen.header("x-jwt-tenant"),
        Some("t-42"),
        "nested claim by dotted path"
    );
    let payload = seen.header("x-jwt-payload").expect("payload header");
    let decoded: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(decoded, claims_without_time(&decoded, &claims(&stack)));
    assert!(
        seen.header_values("authorization").is_empty(),
        "the token stays at the proxy"
    );

    // A token without the nested claim: the client's copy is removed, nothing is set.
    let mut bare = claims(&stack);
    bare.as_object_mut().unwrap().remove("org");
    let bearer = format!("Bearer {}", sign(&P256, "ec", &bare));
    open(
        &stack,
        &[("authorization", &bearer), ("x-jwt-tenant", "evil-corp")],
    )
    .expect("accepted");
    let seen = stack.echo.last_on("/ws").unwrap();
    assert!(
        seen.header_values("x-jwt-tenant").is_empty(),
        "{:?}",
        seen.headers
    );

    // Refused requests never reach the upstream at all.
    let before = stack.echo.seen().len();
    let refused = open(&stack, &[("x-jwt-sub", "admin")]).unwrap_err();
    assert_eq!(refused.status, 401);
    assert_eq!(stack.echo.seen().len(), before);
}

/// `expected` with `exp` taken from `actual` (the claims were built twice, a second apart).
fn claims_without_time(actual: &Value, expected: &Value) -> Value {
    let mut expected = expected.clone();
    expected["exp"] = actual["exp"].clone();
    expected
}

#[test]
fn forward_true_keeps_the_token_for_the_upstream() {
    let mut settings = identity_settings();
    settings["forward"] = json!(true);
    let stack = start(settings, None);
    let bearer = format!("Bearer {}", sign(&RSA_2048, "rsa", &claims(&stack)));
    open(&stack, &[("authorization", &bearer)]).expect("accepted");
    assert_eq!(
        stack.echo.last_on("/ws").unwrap().header("authorization"),
        Some(bearer.as_str())
    );
}

#[test]
fn one_log_line_and_one_access_log_record_per_decision() {
    let stack = start(identity_settings(), None);
    let good = sign(&RSA_2048, "rsa", &claims(&stack));
    let bad = sign(&RSA_2048_OTHER, "rsa", &claims(&stack));
    let good_bearer = format!("Bearer {good}");
    let bad_bearer = format!("Bearer {bad}");
    open(
        &stack,
        &[
            ("authorization", &good_bearer),
            ("x-ms-call-correlation-id", "c-1"),
            ("x-ms-call-connection-id", "n-1"),
        ],
    )
    .unwrap();
    open(
        &stack,
        &[
            ("authorization", &bad_bearer),
            ("x-ms-call-correlation-id", "c-2"),
        ],
    )
    .unwrap_err();
    open(&stack, &[("x-ms-call-connection-id", "n-3")]).unwrap_err();

    let log = stack.envoy.log();
    let decisions: Vec<&str> = log.lines().filter(|l| l.contains("decision=")).collect();
    assert_eq!(decisions.len(), 3, "{decisions:#?}");
    assert!(decisions[0].contains("[info]") && decisions[0].contains("decision=allow path=/ws iss=https://issuer.example sub=caller-7 correlation_id=c-1 connection_id=n-1"), "{}", decisions[0]);
    assert!(decisions[1].contains("[warning]") && decisions[1].contains("decision=deny reason=bad_signature status=401 path=/ws claimed_iss=https://issuer.example claimed_sub=caller-7 correlation_id=c-2 connection_id=\"not provided\""), "{}", decisions[1]);
    assert!(decisions[2].contains("decision=deny reason=missing_token status=401 path=/ws correlation_id=\"not provided\" connection_id=n-3"), "{}", decisions[2]);
    // No token nor any piece of one (values are cut to 128 characters, so a whole-token
    // search would miss a leak; tests/envoy_leaks.rs proves this one catches it).
    let leaks = testbed::leaks::token_fragments(&log, &[good.as_str(), bad.as_str()]);
    assert!(leaks.is_empty(), "a token reached Envoy's log: {leaks:?}");

    let records = access_log_lines(&stack, 3);
    assert_eq!(
        records,
        [
            "decision=allow reason=- correlation_id=c-1 connection_id=n-1 sub=caller-7 status=101",
            "decision=deny reason=bad_signature correlation_id=c-2 connection_id=not provided sub=- status=401",
            "decision=deny reason=missing_token correlation_id=not provided connection_id=n-3 sub=- status=401",
        ]
    );
}

#[test]
fn access_log_fields_false_leaves_the_access_log_without_them() {
    let mut settings = identity_settings();
    settings["access_log_fields"] = json!(false);
    let stack = start(settings, None);
    let bearer = format!("Bearer {}", sign(&RSA_2048, "rsa", &claims(&stack)));
    open(
        &stack,
        &[
            ("authorization", &bearer),
            ("x-ms-call-correlation-id", "c-1"),
        ],
    )
    .expect("accepted");
    assert_eq!(
        access_log_lines(&stack, 1),
        ["decision=- reason=- correlation_id=- connection_id=- sub=- status=101"]
    );
    let log = stack
        .envoy
        .log_with("correlation_id=c-1", Duration::from_secs(5));
    assert!(log.contains("decision=allow"), "the log line stays: {log}");
}

/// Sets Envoy's `wasm` log level; wsgate's VMs read it on their next tick (100 ms).
fn wasm_log_level(stack: &Stack, level: &str) {
    stack
        .envoy
        .admin_post(&format!("/logging?wasm={level}"))
        .unwrap_or_else(|| panic!("Envoy refused wasm log level {level}"));
}

/// Opens an accepted connection (correlation `c-quiet`) and then a refused one (`c-refused`):
/// Envoy's log once it holds the refusal.
fn accept_quietly_then_refuse(stack: &Stack, bearer: &str) -> String {
    open(
        stack,
        &[
            ("authorization", bearer),
            ("x-ms-call-correlation-id", "c-quiet"),
        ],
    )
    .expect("accepted");
    let refused = open(stack, &[("x-ms-call-correlation-id", "c-refused")]).unwrap_err();
    assert_eq!(refused.status, 401);
    stack
        .envoy
        .log_with("correlation_id=c-refused", Duration::from_secs(5))
}

/// Opens accepted connections with `headers` until Envoy's log holds `needle`: the log.
fn accept_until_logged(stack: &Stack, headers: &[(&str, &str)], needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        open(stack, headers).expect("accepted");
        let log = stack.envoy.log_with(needle, Duration::from_millis(300));
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "never logged {needle:?}: {log}");
    }
}

#[test]
fn the_log_line_follows_envoys_wasm_log_level() {
    let stack = start(identity_settings(), None);
    let bearer = format!("Bearer {}", sign(&RSA_2048, "rsa", &claims(&stack)));
    let mut bare = claims(&stack);
    bare.as_object_mut().unwrap().remove("org");
    let bare_bearer = format!("Bearer {}", sign(&RSA_2048, "rsa", &bare));

    // At `warning` (Istio's default) an accepted request's `info` line is not written (Envoy
    // would drop it anyway; wsgate no longer formats it), a refusal's `warning` line is.
    wasm_log_level(&stack, "warning");
    std::thread::sleep(Duration::from_millis(500));
    let log = accept_quietly_then_refuse(&stack, &bearer);
    assert!(log.contains("reason=missing_token"), "{log}");
    assert!(!log.contains("c-quiet"), "an info line at warning");

    // At `debug`, within a tick, the module's own debug lines come too: only a module that
    // follows Envoy's level hands them over (a token without the claim `x-jwt-tenant` is
    // copied from).
    wasm_log_level(&stack, "debug");
    let log = accept_until_logged(
        &stack,
        &[("authorization", &bare_bearer)],
        "claim_to_headers: not set",
    );
    assert!(log.contains("[\"x-jwt-tenant\"]"), "{log}");

    // Back at `info`, the accepted requests' lines.
    wasm_log_level(&stack, "info");
    let log = accept_until_logged(
        &stack,
        &[
            ("authorization", &bearer),
            ("x-ms-call-correlation-id", "c-loud"),
        ],
        "correlation_id=c-loud",
    );
    assert!(log.contains("decision=allow"), "{log}");
    // At every level it ran at (warning, debug, info), no token nor any piece of one.
    let tokens = [bearer.as_str(), bare_bearer.as_str()];
    let leaks = testbed::leaks::token_fragments(&log, &tokens);
    assert!(leaks.is_empty(), "a token reached Envoy's log: {leaks:?}");
}

/// By default (#31) an accepted request's line is at `debug`, as `jwt_authn` logs neither
/// at `info`: at `info` only refusals are written, and at `debug` both.
#[test]
fn accepted_requests_are_logged_at_debug_unless_log_allowed() {
    let stack = start(json!({}), None);
    let bearer = format!("Bearer {}", sign(&RSA_2048, "rsa", &claims(&stack)));
    let log = accept_quietly_then_refuse(&stack, &bearer);
    assert!(
        !log.contains("c-quiet"),
        "an accepted request at info: {log}"
    );
    wasm_log_level(&stack, "debug");
    let log = accept_until_logged(
        &stack,
        &[
            ("authorization", &bearer),
            ("x-ms-call-correlation-id", "c-debug"),
        ],
        "correlation_id=c-debug",
    );
    let line = log.lines().find(|line| line.contains("c-debug")).unwrap();
    assert!(
        line.contains("[debug]") && line.contains("decision=allow"),
        "{line}"
    );
}

#[test]
fn counters_move_by_exactly_what_was_decided() {
    let issuer = Issuer::start(&[(&RSA_2048, "rsa")]);
    issuer.set_behaviour(Behaviour::Down);
    let stack = start(json!({}), Some(&issuer));
    let listener = stack.envoy.listener();

    // keys_unavailable: the issuer is down from the start. A 503 with Retry-After: the
    // client's credentials may be fine, so it should retry (#28).
    let good = sign(&RSA_2048, "rsa", &claims(&stack));
    let bearer = |token: &str| format!("Bearer {token}");
    let unavailable = open(&stack, &[("authorization", &bearer(&good))]).unwrap_err();
    assert_eq!(unavailable.status, 503, "{unavailable:?}");
    assert_eq!(unavailable.header("retry-after"), Some("5"));
    issuer.set_behaviour(Behaviour::Normal);
    let started = Instant::now();
    while stack
        .envoy
        .stats("wsgate")
        .get("wasmcustom.wsgate.jwks_fetch_success")
        .copied()
        .unwrap_or(0)
        == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no successful fetch"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let now = testbed::now();
    let with = |claim: &str, value: Value| {
        let mut c = claims(&stack);
        c[claim] = value;
        sign(&RSA_2048, "rsa", &c)
    };
    let without_exp = {
        let mut c = claims(&stack);
        c.as_object_mut().unwrap().remove("exp");
        sign(&RSA_2048, "rsa", &c)
    };
    let tokens: Vec<(&str, String)> = vec![
        ("allowed", good.clone()),
        ("allowed", good.clone()),
        ("malformed", "a.b".to_owned()),
        (
            "unsupported_algorithm",
            RSA_2048.sign(json!({"kid": "rsa", "alg": "HS256"}), &claims(&stack)),
        ),
        ("unknown_key", sign(&RSA_2048, "not-there", &claims(&stack))),
        (
            "bad_signature",
            sign(&RSA_2048_OTHER, "rsa", &claims(&stack)),
        ),
        ("missing_expiry", without_exp),
        ("expired", with("exp", json!(now - 3600))),
        ("not_yet_valid", with("nbf", json!(now + 3600))),
        (
            "wrong_issuer",
            with("iss", json!("https://elsewhere.example")),
        ),
        ("wrong_audience", with("aud", json!("other"))),
        ("token_too_large", "x".repeat(9000)),
    ];
    for (expected, token) in &tokens {
        let outcome = open(&stack, &[("authorization", &bearer(token))]);
        assert_eq!(outcome.is_ok(), *expected == "allowed", "{expected}");
    }
    assert_eq!(client::request(listener, "GET", "/ws", &[]).status, 400); // not_websocket
    assert_eq!(open(&stack, &[]).unwrap_err().status, 401); // missing_token
    let two = [
        ("authorization", bearer(&good)),
        ("authorization", bearer(&good)),
    ];
    let two: Vec<(&str, &str)> = two.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(open(&stack, &two).unwrap_err().status, 401); // multiple_tokens
    assert_eq!(
        client::request(listener, "GET", "/elsewhere", &[]).status,
        200
    ); // unguarded: no counter

    let stats = stack.envoy.stats("wsgate");
    let get = |name: &str| {
        stats
            .get(&format!("wasmcustom.wsgate.{name}"))
            .copied()
            .unwrap_or_else(|| panic!("no stat {name} in {stats:#?}"))
    };
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for reason in [
        "keys_unavailable",
        "malformed",
        "unsupported_algorithm",
        "unknown_key",
        "bad_signature",
        "missing_expiry",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "token_too_large",
        "not_websocket",
        "missing_token",
        "multiple_tokens",
    ] {
        expected.insert(reason, 1);
    }
    for (reason, count) in &expected {
        assert_eq!(get(&format!("denied.{reason}")), *count, "denied.{reason}");
    }
    assert_eq!(get("denied"), 14);
    assert_eq!(get("allowed"), 2);
    // The first success, then the refetch the unknown kid forced.
    assert_eq!(get("jwks_fetch_success"), 2);
    // The second use of the good token came from the cache; the ten other tokens that reached
    // verification (all but the oversized one) were misses.
    assert_eq!(get("jwt_cache_hit"), 1);
    assert_eq!(get("jwt_cache_miss"), 11);
    assert!(get("jwks_fetch_failed") >= 1);
    assert_eq!(get("jwks_keys"), 1);
}
