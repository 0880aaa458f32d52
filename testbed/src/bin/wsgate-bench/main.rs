//! `make bench`: real WebSocket handshakes (upgrade, 101, one echoed message, close) at fixed
//! concurrency against Envoy in each configuration, in one run, same machine, same keys:
//! no auth; the wasm floor (wsgate on an unguarded path: the module runs, reads `:path`,
//! passes); Envoy's native `jwt_authn` (`local_jwks`) without and with its cache; wsgate
//! with its cache off and on. Each with one reused token (warm) and a distinct token per
//! connection (cold). Prints handshakes/s, p50/p99 latency, ratios to `jwt_authn`, the
//! module's size and the memory a worker's VM adds, and writes the table under
//! `bench/results/` (or `--results DIR`). Exits non-zero when anything failed.
//!
//! Part two ([`per_request`]) measures the filter's cost per request without handshakes, and
//! with `perf` where Envoy's CPU goes ([`profile`]); part three ([`per_frame`]) its cost per
//! message on open WebSockets; part four ([`sockets`]) what thousands of open sockets cost
//! (memory, unrelated traffic, expiry).
//!
//!     wsgate-bench [--count N] [--concurrency C] [--rounds R] [--seconds S] [--results DIR]
//!                  [--baseline-module WASM] [--per-request-only] [--warm-only] [--ab-only]
//!                  [--together] [--envoy-log-level LEVEL] [--sockets N] [--sockets-only]
//!
//! `--baseline-module` adds to part two a row for wsgate with its cache built from another
//! module (an earlier commit's), run in the same rounds, so that a change is judged by a
//! ratio within one run. `--per-request-only` runs part two alone and writes
//! `DATE-per-request.md`; `--warm-only` keeps only its warm rows (no auth, the floor,
//! `jwt_authn` cached, wsgate cached, the baseline); `--ab-only` (implies
//! `--per-request-only`, needs `--baseline-module`) only wsgate against the baseline, warm
//! (cache on) and cold (cache off, Envoy's crypto: every request verifies), for as many
//! rounds as this machine's noise needs (`WSGATE_WASM` picks "this module").
//! `--together` (with `--ab-only`) runs each module's Envoy beside its baseline's at once on
//! the same CPU, each round's ratio then taken under the same machine conditions: an A/A run read 0.99x to
//! 1.02x round by round, where one after the other an A/A run had read 0.87x to 1.33x, and
//! an A/B of two builds about 3% apart 0.52x to 1.72x.
//! `--sockets` sets part four's open sockets (8000: what one Envoy fits in this machine's
//! 20 000 open files); `--sockets-only` runs part four alone and writes `DATE-sockets.md`.
//! `--envoy-log-level` starts every Envoy at that level instead of `info` (`warning` is
//! Istio's default for its sidecars).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testbed::envoy::{self, Envoy, EnvoyBinary};
use testbed::keys::{jwks, RSA_2048};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

mod chart;
mod measure;
mod per_frame;
mod per_request;
mod profile;
mod sockets;
mod verify_cost;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "my-resource-id";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
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
    const ALL: [Auth; 7] = [
        Auth::None,
        Auth::WasmFloor,
        Auth::JwtAuthn,
        Auth::JwtAuthnCached,
        Auth::Wsgate,
        Auth::WsgateHost,
        Auth::WsgateCached,
    ];

    fn name(self) -> &'static str {
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

    fn needs_token(self) -> bool {
        !matches!(self, Auth::None | Auth::WasmFloor)
    }
}

/// How the timed parts (two and three) run.
struct Settings {
    /// Measured seconds per run, after a one-second warm-up.
    seconds: u64,
    concurrency: usize,
    rounds: usize,
    /// Part two runs only the warm-path rows (no auth, the floor, cached, baseline).
    warm_only: bool,
    /// Part two runs only wsgate cached against the baseline module: an A/B of two modules'
    /// warm paths, as many rounds as the noise needs.
    ab_only: bool,
    /// With `ab_only`: both modules' Envoys run at once, on one CPU (`--together`).
    together: bool,
}

/// Memory readings from the first round.
#[derive(Default)]
struct Memory {
    /// What Envoy's allocator reports after each reused-token run.
    allocated: Vec<(Auth, u64)>,
    /// Envoy's resident memory after the distinct-token runs of wsgate; with the cache on,
    /// the cache is full by then.
    resident_after_distinct: Vec<(Auth, u64)>,
}

struct Sample {
    /// The round it ran in, so that targets are judged round by round.
    round: usize,
    auth: Auth,
    distinct: bool,
    rate: f64,
    p50: Duration,
    p99: Duration,
    failures: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|arg| arg == "--crowd-upstream") {
        sockets::serve_upstream();
        return;
    }
    let arg = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|at| args.get(at + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let count = arg("--count", 6000);
    let sockets = arg("--sockets", 8000);
    let concurrency = arg("--concurrency", 16);
    let rounds = arg("--rounds", 3);
    let warmup = arg("--warmup", 1000);
    let seconds = arg("--seconds", 4);
    let results = args
        .iter()
        .position(|a| a == "--results")
        .and_then(|at| args.get(at + 1))
        .map_or_else(
            || envoy::workspace_root().join("bench/results"),
            std::path::PathBuf::from,
        );
    let text_arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|at| args.get(at + 1))
            .map(std::path::PathBuf::from)
    };
    if let Some(level) = text_arg("--envoy-log-level") {
        envoy::set_log_level(&level.to_string_lossy());
    }
    let baseline = text_arg("--baseline-module");
    if let Some(path) = &baseline {
        assert!(
            path.is_file(),
            "--baseline-module {}: no such file",
            path.display()
        );
    }
    let warm_only = args.iter().any(|a| a == "--warm-only");
    let ab_only = args.iter().any(|a| a == "--ab-only");
    let per_request_only = ab_only || args.iter().any(|a| a == "--per-request-only");
    assert!(
        !ab_only || baseline.is_some(),
        "--ab-only compares with --baseline-module, which is missing"
    );
    let together = args.iter().any(|a| a == "--together");
    assert!(!together || ab_only, "--together runs with --ab-only alone");
    let binary = EnvoyBinary::locate().unwrap_or_else(|why| panic!("{why}"));
    let module = envoy::module_path();
    if args.iter().any(|a| a == "--sockets-only") {
        sockets_only(
            &binary,
            &module,
            sockets,
            &results,
            seconds as u64,
            concurrency,
            rounds,
        );
        return;
    }
    if per_request_only {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let timed = Settings {
            seconds: seconds as u64,
            concurrency,
            rounds,
            warm_only,
            ab_only,
            together,
        };
        let (section, failures, bars) =
            per_request::run(&runtime, &module, baseline.as_deref(), &timed);
        let _ = std::fs::create_dir_all(&results);
        let stem = result_stem(&results, "per-request");
        let section = section + &chart_link(&results, &stem, PER_REQUEST_CHART, &bars);
        let report = format!(
            "# wsgate benchmark, part two only, {}\n\n- machine: {} cores, {}\n- Envoy: {} ({}), log level {}\n- module: {} bytes; baseline module: {}\n{section}",
            testbed::today(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model(),
            envoy_version(&binary),
            binary.source,
            envoy::log_level(),
            std::fs::metadata(&module).map_or(0, |m| m.len()),
            baseline.as_ref().map_or("none".to_owned(), |path| format!(
                "{} ({} bytes)",
                path.display(),
                std::fs::metadata(path).map_or(0, |m| m.len())
            )),
        );
        publish(&results, &stem, &report);
        if failures > 0 {
            eprintln!(
                "bench: {failures} request(s) failed; the results are not a valid comparison"
            );
            std::process::exit(1);
        }
        return;
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let upstream = runtime.block_on(start_echo());
    let upstream_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(serve_echo(upstream.0));
    });
    let upstream_addr = upstream.1;

    eprintln!("bench: signing {count} distinct RS256 tokens...");
    let now = testbed::now();
    let claims = move |i: usize| json!({"iss": ISSUER, "aud": AUDIENCE, "sub": format!("caller-{i}"), "exp": now + 3600});
    let distinct: Vec<String> = {
        let chunks: Vec<Vec<usize>> = (0..count)
            .collect::<Vec<_>>()
            .chunks(count.div_ceil(2).max(1))
            .map(<[usize]>::to_vec)
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                std::thread::spawn(move || {
                    chunk
                        .into_iter()
                        .map(|i| RSA_2048.sign(json!({"kid": "k"}), &claims(i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signer"))
            .collect()
    };
    let reused = RSA_2048.sign(json!({"kid": "k"}), &claims(usize::MAX));
    let jwks_text = jwks(&[(&RSA_2048, "k")]).to_string();

    let mut samples: Vec<Sample> = Vec::new();
    let mut memory = Memory::default();
    for round in 0..rounds {
        // Alternate the order between rounds so no configuration always runs first.
        let mut order: Vec<(Auth, bool)> = Auth::ALL
            .iter()
            .flat_map(|&auth| [(auth, false), (auth, true)])
            .collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (auth, distinct_tokens) in order {
            if !auth.needs_token() && distinct_tokens {
                continue;
            }
            let bootstrap = bootstrap(auth, upstream_addr, &module, &jwks_text);
            let envoy = Envoy::start_with(&bootstrap, 1);
            let listener = envoy.listener();
            let tokens: Arc<Vec<String>> = Arc::new(if distinct_tokens {
                distinct.clone()
            } else {
                vec![reused.clone()]
            });
            // Warm up (not measured), on tokens the run does not use when they must be distinct.
            // V8 compiles the module in tiers: let it reach the optimised one first.
            runtime.block_on(load(
                listener,
                Arc::new(vec![reused.clone()]),
                warmup,
                concurrency,
                auth.needs_token(),
            ));
            let started = Instant::now();
            let (mut latencies, failures) = runtime.block_on(load(
                listener,
                tokens,
                count,
                concurrency,
                auth.needs_token(),
            ));
            let elapsed = started.elapsed();
            latencies.sort();
            let pick = |q: f64| {
                latencies
                    .get(
                        ((latencies.len() as f64 * q) as usize)
                            .min(latencies.len().saturating_sub(1)),
                    )
                    .copied()
                    .unwrap_or_default()
            };
            let sample = Sample {
                round,
                auth,
                distinct: distinct_tokens,
                rate: latencies.len() as f64 / elapsed.as_secs_f64(),
                p50: pick(0.5),
                p99: pick(0.99),
                failures,
            };
            eprintln!(
                "bench: {:<38} {:<8} {:>8.0}/s p50 {:>6.2} ms p99 {:>6.2} ms{}",
                auth.name(),
                if distinct_tokens {
                    "distinct"
                } else {
                    "reused"
                },
                sample.rate,
                sample.p50.as_secs_f64() * 1e3,
                sample.p99.as_secs_f64() * 1e3,
                if failures > 0 {
                    format!("  ({failures} failed)")
                } else {
                    String::new()
                }
            );
            if round == 0 && !distinct_tokens {
                if let Some(allocated) = allocated(&envoy) {
                    memory.allocated.push((auth, allocated));
                }
            }
            if round == 0 && distinct_tokens && matches!(auth, Auth::Wsgate | Auth::WsgateCached) {
                if let Some(resident) = envoy.resident_bytes() {
                    memory.resident_after_distinct.push((auth, resident));
                }
            }
            samples.push(sample);
        }
    }
    drop(upstream_thread);

    let mut report = report(
        &samples,
        &memory,
        &binary,
        &module,
        count,
        concurrency,
        rounds,
    );
    // Parts two and three: timed runs, at most two rounds each.
    let timed = Settings {
        seconds: seconds as u64,
        concurrency,
        rounds: rounds.min(2),
        warm_only: false,
        ab_only: false,
        together: false,
    };
    let (section, request_failures, bars) =
        per_request::run(&runtime, &module, baseline.as_deref(), &timed);
    report.push_str(&section);
    let _ = std::fs::create_dir_all(&results);
    report.push_str(&chart_link(
        &results,
        &result_stem(&results, "per-request"),
        PER_REQUEST_CHART,
        &bars,
    ));
    let (section, socket_failures) = per_frame::run(&runtime, &module, upstream_addr, &timed);
    report.push_str(&section);
    let (section, open_failures, bars) = sockets::run(&runtime, &module, sockets, &timed);
    report.push_str(&section);
    report.push_str(&chart_link(
        &results,
        &result_stem(&results, "sockets"),
        SOCKETS_CHART,
        &bars,
    ));
    let socket_failures = socket_failures + open_failures;
    let _ = std::fs::create_dir_all(&results);
    publish(&results, &result_stem(&results, ""), &report);
    // A run in which handshakes, requests or sockets failed compares something other than
    // what it says: fail, so neither a person nor CI takes its numbers at face value.
    let handshake_failures: usize = samples.iter().map(|sample| sample.failures).sum();
    let failures = handshake_failures + request_failures + socket_failures;
    if failures > 0 {
        eprintln!("bench: {handshake_failures} handshake(s), {request_failures} request(s) and {socket_failures} socket(s) failed; the results are not a valid comparison");
        std::process::exit(1);
    }
}

/// `--sockets-only`: part four alone, written as `DATE-sockets.md` with its chart.
fn sockets_only(
    binary: &EnvoyBinary,
    module: &std::path::Path,
    sockets: usize,
    results: &std::path::Path,
    seconds: u64,
    concurrency: usize,
    rounds: usize,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let settings = Settings {
        seconds,
        concurrency,
        rounds,
        warm_only: false,
        ab_only: false,
        together: false,
    };
    let (section, failures, bars) = sockets::run(&runtime, module, sockets, &settings);
    let _ = std::fs::create_dir_all(results);
    let stem = result_stem(results, "sockets");
    let report = format!(
        "# wsgate benchmark, part four only, {}\n\n- machine: {} cores, {}\n- Envoy: {} ({}), log level {}\n- module: {} bytes\n- commit: {}\n{section}{}",
        testbed::today(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        envoy_version(binary),
        binary.source,
        envoy::log_level(),
        std::fs::metadata(module).map_or(0, |m| m.len()),
        commit(),
        chart_link(results, &stem, SOCKETS_CHART, &bars),
    );
    publish(results, &stem, &report);
    if failures > 0 {
        eprintln!("bench: {failures} socket(s) or request(s) failed; the results are not a valid comparison");
        std::process::exit(1);
    }
}

/// Prints `report` and writes it as `STEM.md` in `dir` (saying so, or why it could not).
fn publish(dir: &std::path::Path, stem: &str, report: &str) {
    println!("{report}");
    let file = dir.join(format!("{stem}.md"));
    match std::fs::write(&file, report) {
        Ok(()) => eprintln!("bench: wrote {}", file.display()),
        Err(error) => eprintln!("bench: could not write {}: {error}", file.display()),
    }
}

/// The commit the bench runs at (with `+changes` when the tree differs), for the result.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(envoy::workspace_root())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head}+changes"),
        _ => head,
    }
}

fn bootstrap(auth: Auth, upstream: SocketAddr, module: &std::path::Path, jwks_text: &str) -> Value {
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

/// `count` handshakes by `concurrency` tasks; returns each one's latency and the failures.
async fn load(
    addr: SocketAddr,
    tokens: Arc<Vec<String>>,
    count: usize,
    concurrency: usize,
    with_token: bool,
) -> (Vec<Duration>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, failures, tokens) = (next.clone(), failures.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return latencies;
                }
                let token = with_token.then(|| tokens[i % tokens.len()].as_str());
                match handshake(addr, token).await {
                    Ok(latency) => latencies.push(latency),
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    (all, failures.load(Ordering::Relaxed))
}

/// One WebSocket: upgrade, 101, a masked "ping" echoed back, close.
async fn handshake(addr: SocketAddr, token: Option<&str>) -> Result<Duration, String> {
    let started = Instant::now();
    let mut stream = upgrade(addr, token).await?;
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x84];
    frame.extend_from_slice(&mask);
    frame.extend(b"ping".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    let mut reply = [0u8; 6];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|e| e.to_string())?;
    if &reply[2..] != b"ping" {
        return Err("no echo".to_owned());
    }
    let _ = stream.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await;
    Ok(started.elapsed())
}

/// A GET to `/ws` asking for a WebSocket, with `token` as a bearer credential when given.
fn upgrade_request(token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /ws HTTP/1.1\r\nhost: bench\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n{auth}\r\n"
    )
}

/// A new connection to `addr` that sent [`upgrade_request`] and got its 101.
async fn upgrade(addr: SocketAddr, token: Option<&str>) -> Result<BufReader<TcpStream>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut stream = BufReader::new(stream);
    stream
        .write_all(upgrade_request(token).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let head = read_head(&mut stream).await?;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(head.lines().next().unwrap_or_default().to_owned());
    }
    Ok(stream)
}

async fn read_head(stream: &mut (impl AsyncBufRead + Unpin)) -> Result<String, String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if stream
            .read_until(b'\n', &mut head)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err("closed".to_owned());
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

async fn start_echo() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let addr = listener.local_addr().expect("echo address");
    (listener, addr)
}

/// An async WebSocket echo: 101, each frame back unmasked, close.
async fn serve_echo(listener: std::net::TcpListener) {
    listener.set_nonblocking(true).expect("non-blocking");
    let listener = TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut stream = BufReader::new(stream);
            let Ok(head) = read_head(&mut stream).await else {
                return;
            };
            let key = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .starts_with("sec-websocket-key:")
                        .then(|| line[18..].trim().to_owned())
                })
                .unwrap_or_default();
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            let response = format!("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n");
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            let mut header = [0u8; 2];
            while stream.read_exact(&mut header).await.is_ok() {
                // Lengths up to 125 inline, up to 65535 in a 16-bit extension (126).
                let mut length = usize::from(header[1] & 0x7f);
                let mut out = vec![header[0], header[1] & 0x7f];
                if length == 126 {
                    let mut extended = [0u8; 2];
                    if stream.read_exact(&mut extended).await.is_err() {
                        return;
                    }
                    length = usize::from(u16::from_be_bytes(extended));
                    out.extend_from_slice(&extended);
                }
                let mut mask = [0u8; 4];
                let mut payload = vec![0u8; length];
                if stream.read_exact(&mut mask).await.is_err()
                    || stream.read_exact(&mut payload).await.is_err()
                {
                    return;
                }
                for (i, byte) in payload.iter_mut().enumerate() {
                    *byte ^= mask[i % 4];
                }
                out.extend_from_slice(&payload);
                if stream.write_all(&out).await.is_err() || header[0] == 0x88 {
                    return;
                }
            }
        });
    }
}

fn allocated(envoy: &Envoy) -> Option<u64> {
    let memory: Value = serde_json::from_str(&envoy.admin_get("/memory")?).ok()?;
    memory["allocated"].as_str()?.parse().ok()
}

fn report(
    samples: &[Sample],
    memory: &Memory,
    binary: &EnvoyBinary,
    module: &std::path::Path,
    count: usize,
    concurrency: usize,
    rounds: usize,
) -> String {
    let mean = |auth: Auth, distinct: bool| {
        let rates: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.auth == auth && s.distinct == distinct)
            .collect();
        (!rates.is_empty()).then(|| rates.iter().map(|s| s.rate).sum::<f64>() / rates.len() as f64)
    };
    let mut out = String::new();
    let _ = writeln!(out, "# wsgate benchmark, {}\n", testbed::today());
    let _ = writeln!(
        out,
        "- machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    let _ = writeln!(
        out,
        "- Envoy: {} ({}), log level {}",
        envoy_version(binary),
        binary.source,
        envoy::log_level()
    );
    let _ = writeln!(
        out,
        "- module: {} bytes",
        std::fs::metadata(module).map_or(0, |m| m.len())
    );
    let _ = writeln!(out, "- load: {count} WebSocket handshakes (upgrade, 101, one echo, close) per run after a warm-up, {concurrency} at a time, {rounds} rounds in alternating order (the table shows their mean), 1 Envoy worker, client and upstream on one tokio thread each, RS256 2048-bit\n");
    let _ = writeln!(
        out,
        "| configuration | tokens | handshakes/s | p50 ms | p99 ms | vs jwt_authn | failures |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for auth in Auth::ALL {
        for distinct in [false, true] {
            let runs: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.auth == auth && s.distinct == distinct)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let rate = runs.iter().map(|s| s.rate).sum::<f64>() / runs.len() as f64;
            let p50 =
                runs.iter().map(|s| s.p50.as_secs_f64()).sum::<f64>() / runs.len() as f64 * 1e3;
            let p99 =
                runs.iter().map(|s| s.p99.as_secs_f64()).sum::<f64>() / runs.len() as f64 * 1e3;
            let failures: usize = runs.iter().map(|s| s.failures).sum();
            let baseline = if distinct {
                mean(Auth::JwtAuthn, true)
            } else {
                mean(Auth::JwtAuthnCached, false)
            };
            let ratio = baseline.map_or("-".to_owned(), |b| format!("{:.2}x", rate / b));
            let _ = writeln!(
                out,
                "| {} | {} | {rate:.0} | {p50:.2} | {p99:.2} | {ratio} | {failures} |",
                auth.name(),
                if distinct { "distinct" } else { "reused" },
            );
        }
    }
    let _ = writeln!(out, "\nRatios: distinct-token runs against `jwt_authn` without cache, reused-token runs against `jwt_authn` with its cache.\n");
    if let Some((_, base)) = memory
        .allocated
        .iter()
        .find(|(auth, _)| *auth == Auth::None)
    {
        for (auth, allocated) in &memory.allocated {
            if matches!(auth, Auth::Wsgate | Auth::WasmFloor) {
                let _ = writeln!(out, "- memory Envoy reports allocated with {}: {} KiB more than with no filter (one worker VM plus the main thread's)", auth.name(), allocated.saturating_sub(*base) / 1024);
            }
        }
    }
    let resident = |auth: Auth| {
        memory
            .resident_after_distinct
            .iter()
            .find(|(a, _)| *a == auth)
            .map(|(_, bytes)| *bytes)
    };
    if let (Some(on), Some(off)) = (resident(Auth::WsgateCached), resident(Auth::Wsgate)) {
        let _ = writeln!(out, "- the token cache, full (`jwt_cache_size` 1024, after {count} distinct tokens): Envoy's resident memory {:+} KiB against cache off after the same tokens", (on as i64 - off as i64) / 1024);
    }
    // Each target round by round, judged by part two's rule: met or missed only when every
    // round agrees (one mean can land on either side of a target within this machine's noise).
    let ratios = |auth: Auth, base: Auth, distinct: bool| -> Vec<f64> {
        let rate = |auth: Auth, round: usize| {
            samples
                .iter()
                .find(|s| s.auth == auth && s.distinct == distinct && s.round == round)
                .map(|s| s.rate)
        };
        (0..rounds)
            .filter_map(|round| Some(rate(auth, round)? / rate(base, round)?))
            .collect()
    };
    let judged = |rounds: Vec<f64>, target: Option<f64>| -> String {
        let Some(median) = per_request::median_of(rounds.clone()) else {
            return "-".into();
        };
        let low = rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let high = rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match target {
            Some(target) => format!(
                "{median:.2}x (rounds {low:.2}x to {high:.2}x) {}",
                per_request::outcome(&rounds, target)
            ),
            None => format!("{median:.2}x (rounds {low:.2}x to {high:.2}x)"),
        }
    };
    let size = std::fs::metadata(module).map_or(0, |m| m.len());
    let _ = writeln!(out, "\nTargets (median of the rounds' ratios; met or missed only when every round agrees): cold (distinct tokens) with Envoy's crypto >= 0.9x jwt_authn uncached: {} (wasm crypto: {}); warm (reused token) >= 1.0x jwt_authn cached: {}; module <= 512 KiB: {} KiB {}.",
        judged(ratios(Auth::WsgateHost, Auth::JwtAuthn, true), Some(0.9)),
        judged(ratios(Auth::Wsgate, Auth::JwtAuthn, true), None),
        judged(ratios(Auth::WsgateCached, Auth::JwtAuthnCached, false), Some(1.0)),
        size / 1024,
        if size <= 512 * 1024 { "met" } else { "missed" });
    out
}

fn envoy_version(binary: &EnvoyBinary) -> String {
    binary
        .command(&["--version"])
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let after = text
                .split("version: ")
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            after
                .split('/')
                .take(4)
                .skip(1)
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_else(|| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// `DATE-NAME` (`DATE` when `name` is empty), or `DATE-NAME-2`, `-3`, … when a result file
/// of that name (`.md` or `.svg`) is already in `dir`: a second run on one day must not
/// overwrite a result that may be committed.
fn result_stem(dir: &std::path::Path, name: &str) -> String {
    let base = match name {
        "" => testbed::today(),
        name => format!("{}-{name}", testbed::today()),
    };
    (1..)
        .map(|n| match n {
            1 => base.clone(),
            n => format!("{base}-{n}"),
        })
        .find(|stem| {
            !dir.join(format!("{stem}.md")).exists() && !dir.join(format!("{stem}.svg")).exists()
        })
        .unwrap_or(base)
}

/// Draws a table's bars as `STEM.svg` in `dir` (`title`, the value axis described by `axis`,
/// values with `decimals` decimals); returns the Markdown that shows it (or says why there
/// is none).
fn chart_link(
    dir: &std::path::Path,
    stem: &str,
    (title, axis, decimals): (&str, &str, usize),
    bars: &[chart::Bar],
) -> String {
    let file = format!("{stem}.svg");
    match chart::write(title, axis, decimals, bars, &dir.join(&file)) {
        Ok(()) => {
            eprintln!("bench: wrote {}", dir.join(&file).display());
            format!("\n![{title}]({file})\n")
        }
        Err(error) => {
            eprintln!("bench: no chart: {error}");
            format!("\n(No chart: {error}.)\n")
        }
    }
}

/// Part two's chart.
const PER_REQUEST_CHART: (&str, &str, usize) = (
    "Envoy CPU per request, part two (lower is better)",
    "Envoy CPU µs per request (median of the rounds)",
    1,
);

/// Part four's chart.
const SOCKETS_CHART: (&str, &str, usize) = (
    "Envoy's capacity for unrelated requests with the sockets open, against none open",
    "CPU per request none open / with them open, median of the rounds (1.0: they cost nothing)",
    3,
);
