//! How part two measures: Envoys started for a group of configurations, pinned, warmed up
//! and loaded at once, each with its own keep-alive connections from this one-thread load
//! generator, and Envoy's CPU read from `/proc` over the same seconds.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testbed::envoy::Envoy;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::cases::{bootstrap, Alg, Auth, Settings};
use crate::profile::{self, Split};

/// One configuration measured in one round.
pub struct Run {
    pub round: usize,
    pub auth: Auth,
    pub alg: Alg,
    /// Requests per second.
    pub rate: f64,
    pub cpu_us: f64,
    pub failures: usize,
    pub split: Option<Split>,
}

/// What every measurement of part two shares.
pub struct Measure<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    pub module: &'a Path,
    pub baseline: Option<&'a Path>,
    pub jwks_text: &'a str,
    pub requests: &'a [(Alg, Arc<Vec<u8>>)],
    pub settings: &'a Settings,
}

impl Measure<'_> {
    /// Measures the configurations of `group` in round `round`, all at once: each in an
    /// Envoy of its own with its own connections, started, warmed up and loaded side by side
    /// on the same CPU (one configuration: alone). With `profile`, `perf` splits each.
    pub fn group(
        &self,
        group: &[(Auth, Alg)],
        round: usize,
        profile: bool,
        pinned: &mut bool,
    ) -> Vec<Run> {
        let mut envoys = Vec::new();
        for &(auth, alg) in group {
            let Some((_, request)) = self.requests.iter().find(|(a, _)| *a == alg) else {
                continue;
            };
            let module = match (auth, self.baseline) {
                (Auth::WsgateCachedBaseline | Auth::WsgateHostBaseline, Some(baseline)) => baseline,
                _ => self.module,
            };
            // The upstream address is never used: every route answers directly.
            let mut config = bootstrap(
                auth,
                SocketAddr::from(([127, 0, 0, 1], 9)),
                module,
                self.jwks_text,
            );
            answer_directly(&mut config);
            let envoy = Envoy::start_with(&config, 1);
            if *pinned {
                *pinned = pin(envoy.pid(), "1");
            }
            envoys.push((auth, alg, envoy, request.clone()));
        }
        let loads = |seconds: u64| {
            let handles: Vec<_> = envoys
                .iter()
                .map(|(_, _, envoy, request)| {
                    self.runtime.spawn(load(
                        envoy.listener(),
                        request.clone(),
                        self.settings.concurrency,
                        Duration::from_secs(seconds),
                    ))
                })
                .collect();
            self.runtime.block_on(async {
                let mut done = Vec::new();
                for handle in handles {
                    done.push(handle.await.unwrap_or((0, 1)));
                }
                done
            })
        };
        // V8 compiles in tiers: let the optimised tier take over before measuring.
        loads(1);
        let recordings: Vec<_> = envoys
            .iter()
            .map(|(_, _, envoy, _)| {
                profile
                    .then(|| {
                        profile::record(envoy.pid(), self.settings.seconds, &std::env::temp_dir())
                    })
                    .flatten()
            })
            .collect();
        let before: Vec<_> = envoys.iter().map(|(_, _, e, _)| e.cpu_time()).collect();
        let started = Instant::now();
        let counted = loads(self.settings.seconds);
        let elapsed = started.elapsed();
        let mut runs = Vec::new();
        for ((((auth, alg, envoy, _), before), (count, failures)), recording) in
            envoys.iter().zip(before).zip(counted).zip(recordings)
        {
            let cpu = envoy
                .cpu_time()
                .zip(before)
                .map(|(after, before)| after.saturating_sub(before));
            let run = Run {
                round,
                auth: *auth,
                alg: *alg,
                rate: count as f64 / elapsed.as_secs_f64(),
                cpu_us: cpu.map_or(f64::NAN, |cpu| {
                    cpu.as_secs_f64() * 1e6 / count.max(1) as f64
                }),
                failures,
                split: recording.and_then(profile::Recording::finish),
            };
            eprintln!(
                "bench: per request: {:<38} {:<6} {:>8.0}/s {:>7.1} µs of Envoy CPU{}{}",
                auth.name(),
                alg.name(),
                run.rate,
                run.cpu_us,
                if group.len() > 1 {
                    " (side by side)"
                } else {
                    ""
                },
                if failures > 0 {
                    format!("  ({failures} failed)")
                } else {
                    String::new()
                }
            );
            runs.push(run);
        }
        runs
    }
}

/// Pins every thread of process `pid` to the CPU list `cpus` (`taskset -c` syntax) with
/// util-linux's `taskset`. Returns whether it did.
pub fn pin(pid: u32, cpus: &str) -> bool {
    match std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
    {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            eprintln!(
                "bench: taskset -a -p -c {cpus} {pid}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            false
        }
        Err(error) => {
            eprintln!("bench: taskset: {error}");
            false
        }
    }
}

/// Points every route of `config` at a direct 200 response.
fn answer_directly(config: &mut Value) {
    let routes = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"];
    *routes = json!([{ "match": { "prefix": "/" }, "direct_response": { "status": 200, "body": { "inline_string": "ok" } } }]);
}

/// `concurrency` keep-alive connections sending `request` until `duration` has passed.
/// Returns the 200 responses received and the failures (other statuses, broken connections).
pub async fn load(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    concurrency: usize,
    duration: Duration,
) -> (usize, usize) {
    let deadline = Instant::now() + duration;
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (request, ok, failed) = (request.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if connection(addr, &request, deadline, &ok).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}

/// One connection: request, response, again, until `deadline` or until Envoy says
/// `connection: close` (as it does after answering an upgrade request without upgrading).
async fn connection(
    addr: SocketAddr,
    request: &[u8],
    deadline: Instant,
    ok: &AtomicUsize,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    while Instant::now() < deadline {
        stream.write_all(request).await.map_err(|e| e.to_string())?;
        let mut length = 0;
        let mut status = true;
        let mut first = true;
        let mut close = false;
        loop {
            line.clear();
            if stream
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?
                == 0
            {
                return Err("closed".to_owned());
            }
            if first {
                status = line.starts_with("HTTP/1.1 200");
                first = false;
            } else if line == "\r\n" {
                break;
            } else if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("connection") {
                    close = value.trim().eq_ignore_ascii_case("close");
                } else if name.eq_ignore_ascii_case("content-length") {
                    length = value
                        .trim()
                        .parse()
                        .map_err(|_| "bad content-length".to_owned())?;
                }
            }
        }
        let mut body = vec![0u8; length];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        if !status {
            return Err(format!("not a 200: {}", String::from_utf8_lossy(&body)));
        }
        ok.fetch_add(1, Ordering::Relaxed);
        if close {
            break;
        }
    }
    Ok(())
}
