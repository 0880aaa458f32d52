//! Tokens where real clients put them (headers, query parameters, cookies, a
//! `Sec-WebSocket-Protocol` entry), WebSockets over HTTP/2, and sockets that do not outlive
//! their token, through a real Envoy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testbed::client;
use testbed::echo::{Echo, Seen};
use testbed::envoy::{self, Envoy};
use testbed::h2ws;
use testbed::keys::{jwks, RSA_2048};
use testbed::stack::Stack;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "my-resource-id";

fn start(settings: Value) -> Stack {
    let plugin = envoy::with_settings(
        json!({ "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks(&[(&RSA_2048, "k")]), "log_allowed": true }),
        &settings,
    );
    Stack::start(Vec::new(), 1, |upstream| {
        let mut bootstrap = envoy::gate_bootstrap(upstream, &plugin);
        envoy::enable_http2_websockets(&mut bootstrap);
        bootstrap
    })
}

fn token_expiring_in(seconds: u64) -> String {
    let now = testbed::now();
    RSA_2048.sign(
        json!({"kid": "k"}),
        &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "caller", "exp": now + seconds}),
    )
}

fn all_sources() -> Value {
    json!({
        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}, {"name": "x-token"}],
        "from_params": ["access_token"],
        "from_cookies": ["session"],
        "from_subprotocol": {"prefix": "access_token."}
    })
}

/// Everything the upstream saw of a request, to search for the token.
fn everything(seen: &Seen) -> String {
    let mut text = seen.path.clone();
    for (name, value) in &seen.headers {
        text.push_str(&format!("\n{name}: {value}"));
    }
    text
}

#[test]
fn each_source_alone_is_accepted_and_the_token_stays_at_the_proxy() {
    let stack = start(all_sources());
    let token = token_expiring_in(600);
    let bearer = format!("Bearer {token}");
    let cookie = format!("theme=dark; session={token}; lang=en");
    // No space after the comma: tungstenite matches the server's choice against the offered
    // list without trimming (browsers send ", "; wsgate accepts both).
    let entry = format!("access_token.{token},chat.v1");
    let query_path = format!("/ws?room=7&access_token={token}&x=1");
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "authorization header",
            "/ws",
            vec![("authorization", &bearer)],
        ),
        ("custom header", "/ws", vec![("x-token", &token)]),
        ("query parameter", &query_path, vec![]),
        ("cookie", "/ws", vec![("cookie", &cookie)]),
        (
            "subprotocol",
            "/ws",
            vec![("sec-websocket-protocol", &entry)],
        ),
    ];
    for (name, path, headers) in cases {
        let (mut socket, response) = client::websocket(stack.envoy.listener(), path, &headers)
            .unwrap_or_else(|refused| panic!("{name}: refused {refused:?}"));
        assert_eq!(response.status, 101, "{name}");
        assert_eq!(client::echo(&mut socket, name), name);
        socket.close(None).ok();
        let seen = stack.echo.seen().pop().unwrap();
        assert!(
            !everything(&seen).contains(&token),
            "{name}: the token reached the upstream:\n{}",
            everything(&seen)
        );
        match name {
            "query parameter" => assert_eq!(
                seen.path, "/ws?room=7&x=1",
                "other parameters kept, in order"
            ),
            "cookie" => assert_eq!(seen.header("cookie"), Some("theme=dark; lang=en")),
            "subprotocol" => {
                assert_eq!(seen.header("sec-websocket-protocol"), Some("chat.v1"));
                assert_eq!(
                    response.header("sec-websocket-protocol"),
                    Some("chat.v1"),
                    "negotiated"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn two_tokens_in_two_sources_are_refused() {
    let stack = start(all_sources());
    let token = token_expiring_in(600);
    let bearer = format!("Bearer {token}");
    let cookie = format!("session={token}");
    let path = format!("/ws?access_token={token}");
    for (name, path, headers) in [
        (
            "header and parameter",
            path.as_str(),
            vec![("authorization", bearer.as_str())],
        ),
        (
            "cookie and custom header",
            "/ws",
            vec![("cookie", cookie.as_str()), ("x-token", token.as_str())],
        ),
    ] {
        let refused = client::websocket(stack.envoy.listener(), path, &headers)
            .map(|_| ())
            .expect_err(name);
        assert_eq!(refused.status, 401, "{name}");
        assert!(
            refused
                .header("www-authenticate")
                .unwrap()
                .contains("invalid_request"),
            "{name}"
        );
    }
    assert!(stack.echo.seen().is_empty());
}

/// A refused token is cut too: nothing goes upstream, but Envoy's access log writes the
/// request as it stands after the filter, and a refused token may be valid elsewhere.
#[test]
fn a_refused_token_is_not_in_envoys_access_log() {
    let echo = Echo::start();
    let plugin = envoy::with_settings(
        json!({ "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks(&[(&RSA_2048, "k")]) }),
        &all_sources(),
    );
    let mut bootstrap = envoy::gate_bootstrap(echo.addr(), &plugin);
    let log = std::env::temp_dir().join(format!(
        "wsgate-refused-{}-{}.log",
        std::process::id(),
        testbed::now_nanos()
    ));
    envoy::add_access_log(
        &mut bootstrap,
        &log,
        "%RESPONSE_CODE% path=%REQ(:PATH)% protocol=%REQ(SEC-WEBSOCKET-PROTOCOL)% \
         cookie=%REQ(COOKIE)% auth=%REQ(AUTHORIZATION)% reason=%FILTER_STATE(wasm.wsgate.reason:PLAIN)%\n",
    );
    let envoy = Envoy::start(&bootstrap);
    let now = testbed::now();
    let expired = RSA_2048.sign(
        json!({"kid": "k"}),
        &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "caller", "exp": now - 600}),
    );
    let query = format!("/ws?room=1&access_token={expired}&x=2");
    let protocol = format!("access_token.{expired}, chat.v1");
    let cookie = format!("theme=dark; session={expired}");
    let bearer = format!("Bearer {expired}");
    let attempts: [(&str, Vec<(&str, &str)>); 4] = [
        (&query, vec![]),
        ("/ws", vec![("sec-websocket-protocol", &protocol)]),
        ("/ws", vec![("cookie", &cookie)]),
        ("/ws", vec![("authorization", &bearer)]),
    ];
    for (path, headers) in &attempts {
        let refused = client::websocket(envoy.listener(), path, headers)
            .map(|_| ())
            .expect_err("an expired token is refused");
        assert_eq!(refused.status, 401);
    }
    // Not an upgrade at all, with a token in the query: refused first for that, and the
    // token is cut all the same.
    let plain = client::request(envoy.listener(), "GET", &query, &[]);
    assert_eq!(plain.status, 400);
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() > attempts.len() || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = std::fs::remove_file(&log);
    let reasons: Vec<&str> = text
        .lines()
        .map(|line| line.rsplit("reason=").next().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons,
        ["expired", "expired", "expired", "expired", "not_websocket"],
        "{text}"
    );
    assert!(
        !text.contains("eyJ"),
        "a refused token in the access log:\n{text}"
    );
    assert!(text.contains("path=/ws?room=1&x=2 "), "{text}");
    assert!(text.contains("protocol=chat.v1 "), "{text}");
    assert!(text.contains("cookie=theme=dark "), "{text}");
    assert!(echo.seen().is_empty());
}

#[test]
fn websockets_over_http2() {
    let stack = start(json!({}));
    let bearer = format!("Bearer {}", token_expiring_in(600));
    let (status, reply) = h2ws::echo(
        stack.envoy.listener(),
        "/ws",
        &[("authorization", &bearer)],
        "over h2",
    )
    .unwrap_or_else(|refused| panic!("refused {refused:?}"));
    assert_eq!((status, reply.as_str()), (200, "over h2"));
    let refused = h2ws::echo(stack.envoy.listener(), "/ws", &[], "x").unwrap_err();
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, "Unauthorized WebSocket connection.");
    let plain = h2ws::request(stack.envoy.listener(), "GET", "/ws");
    assert_eq!(
        (plain.status, plain.body.as_str()),
        (400, "WebSocket connection expected.")
    );
    let log = stack.envoy.log();
    assert_eq!(log.matches("decision=allow").count(), 1, "{log}");
}

#[test]
fn a_socket_is_closed_soon_after_its_token_expires() {
    let stack = start(json!({ "close_on_expiry": true, "clock_skew_seconds": 0 }));
    let short = format!("Bearer {}", token_expiring_in(3));
    let long = format!("Bearer {}", token_expiring_in(600));
    let expires = Instant::now() + Duration::from_secs(3);
    let (mut doomed, _) =
        client::websocket(stack.envoy.listener(), "/ws", &[("authorization", &short)]).unwrap();
    let (mut lasting, _) =
        client::websocket(stack.envoy.listener(), "/ws", &[("authorization", &long)]).unwrap();
    // Idle: no frames flow on the doomed socket; it must still be closed.
    let closed_at = match doomed.read() {
        Err(tungstenite::Error::Io(error))
            if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            panic!("the socket was still open 10 s later")
        }
        Err(_) | Ok(tungstenite::Message::Close(_)) => Instant::now(),
        Ok(other) => panic!("unexpected frame {other:?}"),
    };
    let late = closed_at.saturating_duration_since(expires);
    eprintln!("closed {late:?} after expiry");
    assert!(
        closed_at + Duration::from_millis(1100) >= expires,
        "closed before the token expired"
    );
    assert!(
        late < Duration::from_secs(3),
        "closed {late:?} after expiry"
    );
    assert_eq!(
        client::echo(&mut lasting, "still here"),
        "still here",
        "a long-lived token's socket stays open"
    );
    let closed = stack
        .envoy
        .stats("wsgate")
        .get("wasmcustom.wsgate.closed_on_expiry")
        .copied();
    assert_eq!(closed, Some(1));
}
