//! #25 through a real Envoy, with docs/configuration.md's providers example (`/ws` takes `acs` or
//! `entra`, the prefix `/calls/` takes `acs` only, both by OpenID Connect discovery from a
//! testbed issuer) and the query and cookie sources on: every spelling that failed open
//! before is refused and nothing of it reaches the upstream, and the legitimate neighbours
//! of each still pass.
//!
//! The listener is the harness's, without Envoy's path normalisation or
//! `headers_with_underscores_action`, so what is refused here is refused by wsgate itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use testbed::client::{self, Response};
use testbed::issuer::Issuer;
use testbed::keys::{TestKey, RSA_2048, RSA_2048_OTHER};
use testbed::stack::Stack;

/// docs/configuration.md's providers example, its issuers and clusters on loopback.
fn start() -> Stack {
    let acs = Issuer::start(&[(&RSA_2048, "k")]);
    let entra = Issuer::start(&[(&RSA_2048_OTHER, "k")]);
    let plugin = json!({
        "providers": {
            "acs": {"issuer": acs.issuer(), "audiences": ["acs-resource"],
                    "openid_config_url": acs.discovery_url(), "cluster": "acs_issuer"},
            "entra": {"issuer": entra.issuer(), "audiences": ["api://media"],
                      "openid_config_url": entra.discovery_url(), "cluster": "entra_issuer",
                      "claim_to_headers": [{"header_name": "x-entra-oid", "claim_name": "oid"}]}
        },
        "rules": [
            {"match": {"path": "/ws"},
             "requires": {"requires_any": {"requirements": [{"provider_name": "acs"},
                                                            {"provider_name": "entra"}]}}},
            {"match": {"prefix": "/calls/"}, "requires": {"provider_name": "acs"}}
        ],
        "from_params": ["access_token"],
        "from_cookies": ["session"]
    });
    Stack::gate(
        &plugin,
        vec![("acs_issuer", acs), ("entra_issuer", entra)],
        2,
    )
}

fn sign(key: &TestKey, claims: Value) -> String {
    key.sign(json!({"kid": "k"}), &claims)
}

fn acs_claims(stack: &Stack) -> Value {
    let now = testbed::now();
    json!({"iss": stack.issuer("acs_issuer").issuer(), "aud": "acs-resource", "sub": "acs-caller",
           "iat": now, "exp": now + 600})
}

fn acs(stack: &Stack) -> String {
    sign(&RSA_2048, acs_claims(stack))
}

fn entra(stack: &Stack) -> String {
    let now = testbed::now();
    sign(
        &RSA_2048_OTHER,
        json!({"iss": stack.issuer("entra_issuer").issuer(), "aud": "api://media", "sub": "alice",
               "oid": "oid-alice", "exp": now + 600}),
    )
}

/// A handshake written byte for byte (tabs in values, paths no client library would send).
fn handshake(stack: &Stack, path: &str, headers: &[(&str, String)]) -> Response {
    let extra: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (*name, value.as_bytes()))
        .collect();
    client::raw_handshake(stack.envoy.listener(), path, &extra)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn every_spelling_that_failed_open_is_refused_and_reaches_nothing() {
    let stack = start();
    let (acs, entra) = (acs(&stack), entra(&stack));
    let other = sign(&RSA_2048, {
        let mut claims = acs_claims(&stack);
        claims["sub"] = json!("someone-else");
        claims
    });
    let typed = |name: &str, value: Value| {
        let mut claims = acs_claims(&stack);
        claims[name] = value;
        sign(&RSA_2048, claims)
    };
    // (what, path, headers, the reason Envoy's log names)
    type Case<'a> = (&'a str, String, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        // 1. A prefix rule and `..`: each path is under /calls/ to some backend.
        (
            "..;x, no token",
            "/calls/..;x".into(),
            vec![],
            "missing_token",
        ),
        (
            "%2e%2e, no token",
            "/calls/%2e%2e".into(),
            vec![],
            "missing_token",
        ),
        (
            "%2F.., no token",
            "/calls/x%2F..%2F..".into(),
            vec![],
            "missing_token",
        ),
        (
            "../, no token",
            "/calls/x/../..;y".into(),
            vec![],
            "missing_token",
        ),
        (
            "%3F/.., no token",
            "/x%3F/../ws".into(),
            vec![],
            "missing_token",
        ),
        (
            "%2F/.., no token",
            "/x%2Fy/../ws".into(),
            vec![],
            "missing_token",
        ),
        (
            "%00/.. with entra: /calls/1 is acs's",
            "/ws%00/../calls/1".into(),
            vec![("authorization", bearer(&entra))],
            "wrong_issuer",
        ),
        (
            "..;x/ws with entra: /calls/{id}/ws is acs's",
            "/calls/..;x/ws".into(),
            vec![("authorization", bearer(&entra))],
            "wrong_issuer",
        ),
        // 2. A second token behind a separator some backend splits on.
        (
            "cookie split on ','",
            "/ws".into(),
            vec![("cookie", format!("session={acs}; x=1, session={other}"))],
            "multiple_tokens",
        ),
        (
            "query split on ';'",
            format!("/ws?x=1;access_token={other}&access_token={acs}"),
            vec![],
            "multiple_tokens",
        ),
        (
            "Bearer<TAB>",
            format!("/ws?access_token={acs}"),
            vec![("authorization", format!("Bearer\t{other}"))],
            "multiple_tokens",
        ),
        (
            "a query a decoding proxy reveals",
            format!("/ws%3Faccess_token={other}?access_token={acs}"),
            vec![],
            "multiple_tokens",
        ),
        // 4. Registered claims of the wrong type or out of range.
        (
            "sub a number",
            "/ws".into(),
            vec![("authorization", bearer(&typed("sub", json!(7))))],
            "malformed",
        ),
        (
            "iat a string",
            "/ws".into(),
            vec![("authorization", bearer(&typed("iat", json!("0"))))],
            "malformed",
        ),
        (
            "exp 1e20",
            "/ws".into(),
            vec![("authorization", bearer(&typed("exp", json!(1e20))))],
            "malformed",
        ),
    ];
    for (what, path, headers, reason) in &cases {
        let refused = handshake(&stack, path, headers);
        assert_eq!(refused.status, 401, "{what}: {refused:?}");
        assert_eq!(refused.body, "Unauthorized WebSocket connection.", "{what}");
        let log = stack.envoy.log_with(
            &format!("reason={reason}"),
            std::time::Duration::from_secs(5),
        );
        assert!(log.contains(&format!("reason={reason}")), "{what}: {log}");
    }
    assert!(
        stack.echo.seen().is_empty(),
        "nothing refused reached the upstream: {:?}",
        stack.echo.seen()
    );

    // 3. A client copy of an owned header, in another spelling: the request is accepted,
    // and the upstream sees only the verified value.
    let accepted = handshake(
        &stack,
        "/ws",
        &[
            ("authorization", bearer(&entra)),
            ("x_entra_oid", "oid-admin".into()),
            ("X-Entra_OID", "oid-admin".into()),
        ],
    );
    assert_eq!(accepted.status, 101, "{accepted:?}");
    let seen = stack.echo.last_on("/ws").expect("reached the upstream");
    let oid: Vec<(&str, &str)> = seen
        .headers
        .iter()
        .filter(|(name, _)| name.replace('_', "-").eq_ignore_ascii_case("x-entra-oid"))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(oid, [("x-entra-oid", "oid-alice")], "{seen:?}");

    // The legitimate neighbours of each: still accepted, and the token cut.
    for (path, headers) in [
        ("/calls/1;v=2", vec![("authorization", bearer(&acs))]),
        ("/ws;v=1", vec![("authorization", bearer(&entra))]),
        (
            "/ws",
            vec![("cookie", format!("theme=a,b; session={acs}; lang=en"))],
        ),
    ] {
        let accepted = handshake(&stack, path, &headers);
        assert_eq!(accepted.status, 101, "{path} {headers:?}: {accepted:?}");
    }
    // A tab after the scheme alone is no token wsgate (or jwt_authn) accepts.
    let tab = handshake(
        &stack,
        "/calls/1",
        &[("authorization", format!("Bearer\t{acs}"))],
    );
    assert_eq!(tab.status, 401, "{tab:?}");
    let query = format!("/calls/1?room=1;lang=en&access_token={acs}");
    assert_eq!(handshake(&stack, &query, &[]).status, 101);
    let seen = stack
        .echo
        .last_on("/calls/1")
        .expect("reached the upstream");
    assert_eq!(
        seen.path, "/calls/1?room=1;lang=en",
        "the token cut, the rest as sent"
    );
    for seen in stack.echo.seen() {
        let text = format!("{seen:?}");
        assert!(!text.contains(&acs) && !text.contains(&entra), "{text}");
    }
}
