//! Part one of `make bench`: real WebSocket handshakes (upgrade, 101, one echoed message,
//! close) through Envoy in each configuration, with reused and distinct tokens.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testbed::envoy::Envoy;
use testbed::keys::{jwks, RSA_2048};

use crate::cases::{bootstrap, Auth, AUDIENCE, ISSUER};
use crate::numbers::{median_of, outcome};
use crate::options::Options;
use crate::publish::Header;
use crate::traffic::load;

/// Part one through the echo `upstream`: its report (the result file's first section, with
/// the header) and how many handshakes failed.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    header: &Header,
    upstream: SocketAddr,
    options: &Options,
) -> (String, usize) {
    let Options {
        count,
        rounds,
        warmup,
        concurrency,
        ..
    } = *options;
    let module = header.module;
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
            let bootstrap = bootstrap(auth, upstream, module, &jwks_text);
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
    let failures = samples.iter().map(|sample| sample.failures).sum();
    let report = report(&samples, &memory, header, count, concurrency, rounds);
    (report, failures)
}

/// Memory readings from the first round.
#[derive(Default)]
pub struct Memory {
    /// What Envoy's allocator reports after each reused-token run.
    allocated: Vec<(Auth, u64)>,
    /// Envoy's resident memory after the distinct-token runs of wsgate; with the cache on,
    /// the cache is full by then.
    resident_after_distinct: Vec<(Auth, u64)>,
}

pub struct Sample {
    /// The round it ran in, so that targets are judged round by round.
    round: usize,
    auth: Auth,
    distinct: bool,
    rate: f64,
    p50: Duration,
    p99: Duration,
    failures: usize,
}

pub fn allocated(envoy: &Envoy) -> Option<u64> {
    let memory: Value = serde_json::from_str(&envoy.admin_get("/memory")?).ok()?;
    memory["allocated"].as_str()?.parse().ok()
}

pub fn report(
    samples: &[Sample],
    memory: &Memory,
    header: &Header,
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
    let mut out = header.text("");
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
        let Some(median) = median_of(rounds.clone()) else {
            return "-".into();
        };
        let low = rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let high = rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match target {
            Some(target) => format!(
                "{median:.2}x (rounds {low:.2}x to {high:.2}x) {}",
                outcome(&rounds, target)
            ),
            None => format!("{median:.2}x (rounds {low:.2}x to {high:.2}x)"),
        }
    };
    let size = std::fs::metadata(header.module).map_or(0, |m| m.len());
    let _ = writeln!(out, "\nTargets (median of the rounds' ratios; met or missed only when every round agrees): cold (distinct tokens) with Envoy's crypto >= 0.9x jwt_authn uncached: {} (wasm crypto: {}); warm (reused token) >= 1.0x jwt_authn cached: {}; module <= 512 KiB: {} KiB {}.",
        judged(ratios(Auth::WsgateHost, Auth::JwtAuthn, true), Some(0.9)),
        judged(ratios(Auth::Wsgate, Auth::JwtAuthn, true), None),
        judged(ratios(Auth::WsgateCached, Auth::JwtAuthnCached, false), Some(1.0)),
        size / 1024,
        if size <= 512 * 1024 { "met" } else { "missed" });
    out
}
