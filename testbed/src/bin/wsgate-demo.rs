//! `make demo`: the stack of `envoy/envoy.yaml` (Envoy with the built wsgate module, an OpenID
//! Connect issuer and a WebSocket echo upstream) on free loopback ports, and a scripted client
//! that shows each outcome. Exits non-zero if any outcome is not what wsgate promises, so the
//! demo is also a smoke test.

use std::process::ExitCode;

use serde_json::json;
use testbed::client::{self, Response, Socket};
use testbed::demo::DemoStack;
use testbed::envoy::{self, EnvoyBinary};
use testbed::issuer::DEMO_AUDIENCE;
use testbed::keys::RSA_2048_OTHER;

fn main() -> ExitCode {
    let binary = match EnvoyBinary::locate() {
        Ok(binary) => binary,
        Err(why) => {
            eprintln!("demo: {why}");
            return ExitCode::FAILURE;
        }
    };
    let module = envoy::module_path();
    let stack = match DemoStack::start() {
        Ok(stack) => stack,
        Err(why) => {
            eprintln!("demo: {why}");
            return ExitCode::FAILURE;
        }
    };
    let DemoStack {
        issuer,
        echo,
        envoy,
    } = &stack;
    let listener = envoy.listener();

    println!("wsgate demo: the stack of envoy/envoy.yaml on free loopback ports");
    println!("  Envoy     {} (listener http://{listener})", binary.source);
    println!(
        "  module    {} ({} bytes)",
        module.display(),
        std::fs::metadata(&module).map_or(0, |m| m.len())
    );
    println!(
        "  issuer    {} (discovery + JWKS, fetched by wsgate)",
        issuer.issuer()
    );
    println!("  upstream  WebSocket echo at {}", echo.addr());
    println!();

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
    let correlation = [
        ("x-ms-call-correlation-id", "demo-correlation-1"),
        ("x-ms-call-connection-id", "demo-connection-1"),
    ];

    let plain = client::request(listener, "GET", "/ws", &[]);
    let verdict = check(plain.status == 400);
    println!(
        "1. GET /ws without an upgrade            -> {}  [{verdict}]",
        summary(&plain)
    );

    let missing = attempt(listener, None, &correlation);
    let verdict = check(missing.as_ref().is_err_and(|r| r.status == 401));
    println!(
        "2. upgrade /ws without a token           -> {}  [{verdict}]",
        outcome(&missing)
    );

    let now = testbed::now();
    let forged = RSA_2048_OTHER.sign(
        json!({"kid": "demo-key-1"}),
        &json!({"iss": issuer.issuer(), "aud": DEMO_AUDIENCE, "sub": "mallory", "exp": now + 300}),
    );
    let bad = attempt(listener, Some(&forged), &correlation);
    let verdict = check(bad.as_ref().is_err_and(|r| r.status == 401));
    println!(
        "3. upgrade /ws with a forged token       -> {}  [{verdict}]",
        outcome(&bad)
    );

    let good = issuer
        .mint("demo-caller", DEMO_AUDIENCE, 300)
        .unwrap_or_default();
    let mut headers = correlation.to_vec();
    headers.push(("x-jwt-sub", "admin"));
    match attempt(listener, Some(&good), &headers) {
        Ok((mut socket, response)) => {
            let reply = client::echo(&mut socket, "hello through wsgate");
            let verdict = check(response.status == 101 && reply == "hello through wsgate");
            println!(
                "4. upgrade /ws with the issuer's token   -> {} Switching Protocols; sent \"hello through wsgate\", echoed \"{reply}\"  [{verdict}]",
                response.status
            );
            socket.close(None).ok();
            if let Some(seen) = echo.last_on("/ws") {
                println!("   the client also sent a forged x-jwt-sub: admin; the upstream saw:");
                for name in [
                    "x-ms-call-correlation-id",
                    "x-ms-call-connection-id",
                    "x-jwt-sub",
                    "authorization",
                ] {
                    println!(
                        "     {name}: {}",
                        seen.header_values(name).join(", ").as_str().or_none()
                    );
                }
            }
        }
        Err(refused) => {
            check(false);
            println!(
                "4. upgrade /ws with the issuer's token   -> {}  [UNEXPECTED]",
                summary(&refused)
            );
        }
    }

    // Policies (envoy/envoy.yaml): the token's roles must hold media.stream, a browser
    // page must be the demo's own, and one identity may hold three sockets at once.
    let reader = issuer
        .mint_with_roles("demo-reader", DEMO_AUDIENCE, 300, &["reader"])
        .unwrap_or_default();
    let forbidden = attempt(listener, Some(&reader), &correlation);
    let verdict = check(forbidden.as_ref().is_err_and(|r| r.status == 403));
    println!(
        "5. a valid token whose roles lack media.stream -> {}  [{verdict}]",
        outcome(&forbidden)
    );
    let mut cross_site = correlation.to_vec();
    cross_site.push(("origin", "https://evil.example"));
    let hijack = attempt(listener, Some(&good), &cross_site);
    let verdict = check(hijack.as_ref().is_err_and(|r| r.status == 403));
    println!(
        "6. a valid token from a page on https://evil.example -> {}  [{verdict}]",
        outcome(&hijack)
    );
    let busy = issuer
        .mint("demo-busy-caller", DEMO_AUDIENCE, 300)
        .unwrap_or_default();
    let held: Vec<_> = (0..3)
        .filter_map(|_| attempt(listener, Some(&busy), &correlation).ok())
        .collect();
    let fourth = attempt(listener, Some(&busy), &correlation);
    let verdict = check(held.len() == 3 && fourth.as_ref().is_err_and(|r| r.status == 429));
    println!(
        "7. one identity holding {} sockets opens a fourth -> {}  [{verdict}]",
        held.len(),
        outcome(&fourth)
    );
    drop(held);

    let kid = issuer.rotate();
    let rotated = issuer
        .mint("demo-caller", DEMO_AUDIENCE, 300)
        .unwrap_or_default();
    let after = attempt(listener, Some(&rotated), &correlation);
    let verdict = check(after.is_ok());
    println!("8. the issuer rotates to {kid}; a token of the new key -> {} (refetched on the unknown kid)  [{verdict}]", outcome(&after));

    // Access-log lines of closed sockets reach Envoy's stdout within its flush interval.
    std::thread::sleep(std::time::Duration::from_millis(500));
    println!();
    println!("Envoy's log, wsgate's lines:");
    for line in envoy
        .log()
        .lines()
        .filter(|line| line.contains("decision=") || line.contains("jwks:"))
    {
        if let Some((_, message)) = line.split_once("wasm log ") {
            println!(
                "  {}",
                message
                    .trim_start_matches("wsgate ")
                    .trim_start_matches("wsgate ")
                    .trim_start_matches("wsgate: ")
            );
        }
    }
    println!();
    println!("Envoy's access log (wsgate's filter state fields):");
    for line in envoy.stdout().lines() {
        println!("  {line}");
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

/// A WebSocket handshake to `/ws` with `token` as a bearer token, if any, and `extra` headers.
fn attempt(
    listener: std::net::SocketAddr,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<(Socket, Response), Response> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = extra.to_vec();
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    client::websocket(listener, "/ws", &headers)
}

fn outcome(result: &Result<(Socket, Response), Response>) -> String {
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
    if let Some(seconds) = response.header("retry-after") {
        text.push_str(&format!(", Retry-After: {seconds}"));
    }
    text
}

trait OrNone {
    fn or_none(&self) -> &str;
}

impl OrNone for str {
    fn or_none(&self) -> &str {
        if self.is_empty() {
            "(none)"
        } else {
            self
        }
    }
}
