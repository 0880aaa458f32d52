//! No token, and no piece of one, in anything Envoy writes about a request, at every level
//! of Envoy's `wasm` logger and in the access log, for accepted and refused tokens from a
//! header and from a query parameter. And the check can fail: the same requests through the
//! test-only leak-canary build (Cargo.toml's `leak-canary`, which logs the `Authorization`
//! value cut to 128 characters like every logged request value) trip it, in the log and in
//! the access log, where a search for the whole token finds nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use testbed::client;
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy};
use testbed::keys::{jwks, RSA_2048, RSA_2048_OTHER};
use testbed::leaks::token_fragments;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "leaks";
const ACCESS_LOG_FORMAT: &str = "path=%REQ(:PATH)% decision=%FILTER_STATE(wasm.wsgate.decision:PLAIN)% reason=%FILTER_STATE(wasm.wsgate.reason:PLAIN)% sub=%FILTER_STATE(wasm.wsgate.sub:PLAIN)% correlation_id=%FILTER_STATE(wasm.wsgate.correlation_id:PLAIN)% canary=%FILTER_STATE(wasm.wsgate.canary:PLAIN)% status=%RESPONSE_CODE%\n";

/// What Envoy wrote while `module` decided the same requests at every log level: its log,
/// the access log, and the tokens sent.
struct Written {
    log: String,
    access_log: String,
    tokens: Vec<String>,
}

fn exercise(module: &Path) -> Written {
    let echo = Echo::start();
    let plugin = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "jwks": jwks(&[(&RSA_2048, "k")]),
        "from_params": ["access_token"],
        // A claim no token has: every accepted request then writes a `debug` line, which
        // shows the module follows the level set below.
        "claim_to_headers": [{"header_name": "x-jwt-absent", "claim_name": "absent"}]
    });
    let mut bootstrap = envoy::bootstrap(echo.addr(), vec![envoy::wasm_filter(&plugin, module)]);
    let access_path = std::env::temp_dir().join(format!(
        "wsgate-leaks-{}-{}.log",
        std::process::id(),
        testbed::now_nanos()
    ));
    envoy::add_access_log(&mut bootstrap, &access_path, ACCESS_LOG_FORMAT);
    let envoy = Envoy::start(&bootstrap);
    let now = testbed::now();
    let claims = |exp: u64| json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "s", "exp": exp});
    let good = RSA_2048.sign(json!({"kid": "k"}), &claims(now + 600));
    let forged = RSA_2048_OTHER.sign(json!({"kid": "k"}), &claims(now + 600));
    let expired = RSA_2048.sign(json!({"kid": "k"}), &claims(now - 3600));
    let upgrade = |path: &str, headers: &[(&str, &str)]| {
        client::websocket(envoy.listener(), path, headers).map(|_| ())
    };
    let mut requests = 0;
    for level in ["trace", "debug", "info", "warning"] {
        envoy
            .admin_post(&format!("/logging?wasm={level}"))
            .unwrap_or_else(|| panic!("Envoy refused wasm log level {level}"));
        if matches!(level, "trace" | "debug") {
            // Until the module's own debug line comes (it reads the level on each tick).
            let deadline = Instant::now() + Duration::from_secs(5);
            let before = envoy.log().matches("claim_to_headers: not set").count();
            loop {
                upgrade("/ws", &[("authorization", &format!("Bearer {good}"))]).expect("accepted");
                requests += 1;
                if envoy.log().matches("claim_to_headers: not set").count() > before {
                    break;
                }
                assert!(Instant::now() < deadline, "{level}: no debug line");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let bearer = |token: &str| format!("Bearer {token}");
        let id = format!("leak-{level}");
        let with_id = |extra: &[(&'static str, String)]| {
            let mut headers: Vec<(&str, String)> = vec![("x-ms-call-correlation-id", id.clone())];
            headers.extend(extra.iter().cloned());
            headers
        };
        // (path, headers, accepted)
        type Case<'a> = (String, Vec<(&'a str, String)>, bool);
        let cases: Vec<Case> = vec![
            (
                "/ws".into(),
                with_id(&[("authorization", bearer(&good))]),
                true,
            ),
            (
                format!("/ws?room=1&access_token={good}"),
                with_id(&[]),
                true,
            ),
            (
                "/ws".into(),
                with_id(&[("authorization", bearer(&forged))]),
                false,
            ),
            (format!("/ws?access_token={expired}"), with_id(&[]), false),
            (
                format!("/ws?access_token={good}"),
                with_id(&[("authorization", bearer(&forged))]),
                false,
            ),
        ];
        for (path, headers, accept) in &cases {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_eq!(upgrade(path, &headers).is_ok(), *accept, "{level} {path}");
            requests += 1;
        }
        // Not an upgrade, with a token: refused before any verification.
        let plain = client::request(
            envoy.listener(),
            "GET",
            &format!("/ws?access_token={good}"),
            &[&format!("authorization: Bearer {good}")],
        );
        assert_eq!(plain.status, 400);
        requests += 1;
    }
    let log = envoy.log_with("correlation_id=leak-warning", Duration::from_secs(5));
    // Envoy writes an access-log line per request once it ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    let access_log = loop {
        let text = std::fs::read_to_string(&access_path).unwrap_or_default();
        if text.lines().count() >= requests {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {requests} access-log lines",
            text.lines().count()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_file(&access_path);
    assert_eq!(envoy.vm_failures(), 0, "{log}");
    Written {
        log,
        access_log,
        tokens: vec![good, forged, expired],
    }
}

#[test]
fn no_piece_of_a_token_is_written_at_any_level() {
    let written = exercise(&envoy::module_path());
    let tokens: Vec<&str> = written.tokens.iter().map(String::as_str).collect();
    assert!(
        written.log.contains("reason=bad_signature"),
        "{}",
        written.log
    );
    assert!(
        written.log.contains("claim_to_headers: not set"),
        "{}",
        written.log
    );
    let in_log = token_fragments(&written.log, &tokens);
    assert!(in_log.is_empty(), "Envoy's log: {in_log:?}");
    let in_access_log = token_fragments(&written.access_log, &tokens);
    assert!(
        in_access_log.is_empty(),
        "the access log: {in_access_log:?}\n{}",
        written.access_log
    );
}

/// The mutation this check now catches: a build that logs the `Authorization` value. A
/// search for the whole token or signature, as before, finds nothing of it.
#[test]
fn the_check_catches_a_build_that_logs_a_cut_token() {
    let written = exercise(&envoy::canary_module_path());
    let tokens: Vec<&str> = written.tokens.iter().map(String::as_str).collect();
    assert!(written.log.contains("canary="), "{}", written.log);
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !written.log.contains(token) && !written.log.contains(signature),
            "the canary is meant to log a cut token, which the old check missed"
        );
    }
    assert!(!token_fragments(&written.log, &tokens).is_empty());
    assert!(!token_fragments(&written.access_log, &tokens).is_empty());
}
