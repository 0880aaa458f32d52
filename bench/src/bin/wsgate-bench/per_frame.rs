//! Part three of `make bench`: what the filter costs on an open WebSocket, per message.
//!
//! Envoy passes an upgraded stream's bytes through the HTTP filter chain, so a Wasm filter is
//! called for every chunk each way, long after it has decided the upgrade. A media stream
//! (the Azure Communication Services case) sends many small frames for as long as a call
//! lasts, so this cost recurs where the handshake's does not. Each connection here upgrades
//! once, then echoes small masked frames back-to-back; what is measured is Envoy's CPU per
//! echoed message (one frame up, one frame down).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use testbed::envoy::Envoy;
use testbed::keys::{jwks, RSA_2048};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cases::{bootstrap, Auth, Settings, AUDIENCE, ISSUER};
use crate::traffic::upgrade;

/// Payload bytes per frame: 20 ms of 8 kHz 16-bit mono audio.
const PAYLOAD: usize = 320;

const CASES: [Auth; 4] = [
    Auth::None,
    Auth::WasmFloor,
    Auth::JwtAuthnCached,
    Auth::WsgateCached,
];

/// Runs each configuration `settings.rounds` times in alternating order against the echo
/// upstream at `upstream`, and returns the report section and the number of failed sockets.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    module: &Path,
    upstream: SocketAddr,
    settings: &Settings,
) -> (String, usize) {
    let jwks_text = jwks(&[(&RSA_2048, "k")]).to_string();
    let claims =
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": testbed::now() + 3600});
    let token: Arc<str> = RSA_2048.sign(json!({"kid": "k"}), &claims).into();
    let mut runs: Vec<(Auth, f64, f64, usize)> = Vec::new();
    for round in 0..settings.rounds {
        let mut order = CASES.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for auth in order {
            let config = bootstrap(auth, upstream, module, &jwks_text);
            let envoy = Envoy::start_with(&config, 1);
            let listener = envoy.listener();
            runtime.block_on(echo_load(
                listener,
                token.clone(),
                settings.concurrency,
                Duration::from_secs(1),
            ));
            let before = envoy.cpu_time();
            let started = Instant::now();
            let (messages, failures) = runtime.block_on(echo_load(
                listener,
                token.clone(),
                settings.concurrency,
                Duration::from_secs(settings.seconds),
            ));
            let elapsed = started.elapsed().as_secs_f64();
            let cpu_us = envoy
                .cpu_time()
                .zip(before)
                .map_or(f64::NAN, |(after, before)| {
                    after.saturating_sub(before).as_secs_f64() * 1e6 / messages.max(1) as f64
                });
            eprintln!(
                "bench: per message: {:<38} {:>8.0}/s {:>6.2} µs of Envoy CPU{}",
                auth.name(),
                messages as f64 / elapsed,
                cpu_us,
                if failures > 0 {
                    format!("  ({failures} failed)")
                } else {
                    String::new()
                }
            );
            runs.push((auth, messages as f64 / elapsed, cpu_us, failures));
        }
    }
    let failures = runs.iter().map(|run| run.3).sum();
    (report(&runs, settings), failures)
}

/// `concurrency` WebSockets, each echoing frames until `duration` has passed. Returns the
/// messages echoed and the connections that failed.
async fn echo_load(
    addr: SocketAddr,
    token: Arc<str>,
    concurrency: usize,
    duration: Duration,
) -> (usize, usize) {
    let deadline = Instant::now() + duration;
    let echoed = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (token, echoed, failed) = (token.clone(), echoed.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            if socket(addr, &token, deadline, &echoed).await.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    (
        echoed.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    )
}

/// One WebSocket: upgrade, then a masked binary frame and its echo, again and again.
async fn socket(
    addr: SocketAddr,
    token: &str,
    deadline: Instant,
    echoed: &AtomicUsize,
) -> Result<(), String> {
    let mut stream = upgrade(addr, Some(token)).await?;
    // 0x82: final binary frame; 126: a 16-bit length follows; the mask is zero, so the
    // payload goes as is.
    let mut frame = vec![0x82, 0x80 | 126];
    frame.extend_from_slice(&(PAYLOAD as u16).to_be_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&[0x55u8; PAYLOAD]);
    // The echo comes back unmasked: 2 + 2 header bytes and the payload.
    let mut reply = vec![0u8; 4 + PAYLOAD];
    while Instant::now() < deadline {
        stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        stream
            .read_exact(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        echoed.fetch_add(1, Ordering::Relaxed);
    }
    let _ = stream.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await;
    Ok(())
}

fn report(runs: &[(Auth, f64, f64, usize)], settings: &Settings) -> String {
    let mean = |auth: Auth, of: fn(&(Auth, f64, f64, usize)) -> f64| {
        let values: Vec<f64> = runs.iter().filter(|r| r.0 == auth).map(of).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let mut out = String::new();
    let _ = writeln!(out, "\n## Per WebSocket message, on open connections\n");
    let _ = writeln!(out, "- load: {} WebSockets through Envoy to the echo upstream, each upgraded once (one reused token) and then sending {PAYLOAD}-byte binary frames back-to-back, each echoed; {} s per run after a 1 s warm-up, {} rounds in alternating order (means), 1 Envoy worker", settings.concurrency, settings.seconds, settings.rounds);
    let _ = writeln!(
        out,
        "- Envoy CPU per echoed message (a frame each way), from `/proc`\n"
    );
    let _ = writeln!(
        out,
        "| configuration | messages/s | Envoy CPU µs/message | over no auth µs | failures |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    let base = mean(Auth::None, |r| r.2);
    for auth in CASES {
        let (Some(rate), Some(cpu)) = (mean(auth, |r| r.1), mean(auth, |r| r.2)) else {
            continue;
        };
        let over = base.map_or("-".to_owned(), |b| format!("{:+.2}", cpu - b));
        let failures: usize = runs.iter().filter(|r| r.0 == auth).map(|r| r.3).sum();
        let _ = writeln!(
            out,
            "| {} | {rate:.0} | {cpu:.2} | {over} | {failures} |",
            auth.name()
        );
    }
    out
}
