//! `make demo`: Envoy with the built wsgate module in front of a WebSocket echo upstream,
//! all on loopback, and a scripted client that shows each outcome. Exits non-zero if any
//! outcome is not what wsgate promises, so the demo is also a smoke test.

use std::process::ExitCode;

use serde_json::json;
use testbed::client::{self, Response};
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy, EnvoyBinary};
use testbed::keys::{jwks, RSA_2048};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "my-resource-id";

fn main() -> ExitCode {
    let binary = match EnvoyBinary::locate() {
        Ok(binary) => binary,
        Err(why) => {
            eprintln!("demo: {why}");
            return ExitCode::FAILURE;
        }
    };
    let module = envoy::module_path();
    let echo = Echo::start();
    let plugin = json!({
        "paths": ["/ws"],
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "jwks": jwks(&[(&RSA_2048, "demo-key")]),
        "clock_skew_seconds": 60,
        "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
    });
    let envoy = Envoy::start(&envoy::bootstrap(
        echo.addr(),
        vec![envoy::wasm_filter(&plugin, &module)],
    ));
    let listener = envoy.listener();

    println!("wsgate demo");
    println!("  Envoy     {} (listener http://{listener})", binary.source);
    println!(
        "  module    {} ({} bytes)",
        module.display(),
        std::fs::metadata(&module).map_or(0, |m| m.len())
    );
    println!("  upstream  WebSocket echo at {}", echo.addr());
    println!("  plugin    paths [\"/ws\"], issuer {ISSUER}, audiences [\"{AUDIENCE}\"], inline JWKS with one RS256 key");
    println!();

    let now = testbed::now();
    let claims = |exp: u64| json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "demo-caller", "iat": now, "exp": exp});
    let good = RSA_2048.sign(json!({"kid": "demo-key"}), &claims(now + 300));
    let expired = RSA_2048.sign(json!({"kid": "demo-key"}), &claims(now - 3600));

    let mut failures = 0;
    let mut check = |ok: bool| {
        if !ok {
            failures += 1;
        }
        if ok {
            "ok"
        } else {
            "UNEXPECTED"
        }
    };

    let plain = client::request(listener, "GET", "/ws", &[]);
    let verdict = check(plain.status == 400);
    println!(
        "1. GET /ws, no upgrade                  -> {}  [{verdict}]",
        summary(&plain)
    );

    let missing = attempt(listener, None, &[]);
    let verdict = check(missing.as_ref().is_err_and(|r| r.status == 401));
    println!(
        "2. upgrade /ws, no token                -> {}  [{verdict}]",
        outcome(&missing)
    );

    let stale = attempt(listener, Some(&expired), &[]);
    let verdict = check(stale.as_ref().is_err_and(|r| r.status == 401));
    println!(
        "3. upgrade /ws, expired token           -> {}  [{verdict}]",
        outcome(&stale)
    );

    let accepted = attempt(listener, Some(&good), &[("x-jwt-sub", "admin")]);
    match accepted {
        Ok((mut socket, response)) => {
            let reply = client::echo(&mut socket, "hello through wsgate");
            let verdict = check(response.status == 101 && reply == "hello through wsgate");
            println!("4. upgrade /ws, valid RS256 token       -> {} Switching Protocols (the client also sent a forged x-jwt-sub: admin), sent \"hello through wsgate\", echoed \"{reply}\"  [{verdict}]", response.status);
            socket.close(None).ok();
            if let Some(seen) = echo.last_on("/ws") {
                for name in [
                    "x-ms-call-correlation-id",
                    "x-ms-call-connection-id",
                    "x-jwt-sub",
                    "authorization",
                ] {
                    println!(
                        "     upstream saw {name}: {}",
                        seen.header(name).unwrap_or("(none)")
                    );
                }
            }
        }
        Err(refused) => {
            check(false);
            println!(
                "4. upgrade /ws, valid token + forged x-jwt-sub -> {}  [UNEXPECTED]",
                summary(&refused)
            );
        }
    }

    println!();
    println!("Envoy's log, wsgate's lines:");
    for line in envoy
        .log()
        .lines()
        .filter(|line| line.contains("decision="))
    {
        if let Some((_, message)) = line.split_once("wsgate wsgate wsgate: ") {
            println!("  {message}");
        }
    }
    println!();
    println!("Envoy's stats (admin /stats), non-zero:");
    for (name, value) in envoy.stats("wasmcustom.wsgate") {
        if value > 0 {
            println!("  {name}: {value}");
        }
    }
    println!();
    if failures == 0 {
        println!("demo: every outcome as expected");
        ExitCode::SUCCESS
    } else {
        println!("demo: {failures} outcome(s) not as expected");
        ExitCode::FAILURE
    }
}

fn attempt(
    listener: std::net::SocketAddr,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<(client::Socket, Response), Response> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("x-ms-call-correlation-id", "demo-correlation-1"),
        ("x-ms-call-connection-id", "demo-connection-1"),
    ];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    headers.extend_from_slice(extra);
    client::websocket(listener, "/ws", &headers)
}

fn outcome(result: &Result<(client::Socket, Response), Response>) -> String {
    match result {
        Ok((_, response)) => format!("{} (accepted)", response.status),
        Err(refused) => summary(refused),
    }
}

fn summary(response: &Response) -> String {
    let mut text = format!("{} {:?}", response.status, response.body);
    if let Some(challenge) = response.header("www-authenticate") {
        text.push_str(&format!(", WWW-Authenticate: {challenge}"));
    }
    text
}
