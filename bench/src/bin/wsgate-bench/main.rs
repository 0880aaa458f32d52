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

use std::path::Path;

use testbed::envoy::{self, EnvoyBinary};

mod cases;
mod chart;
mod handshakes;
mod measure;
mod numbers;
mod options;
mod per_frame;
mod per_request;
mod profile;
mod publish;
mod sockets;
mod traffic;
mod verify_cost;

use cases::Settings;
use options::Options;
use publish::{chart_link, publish, result_stem, Header, PER_REQUEST_CHART, SOCKETS_CHART};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|arg| arg == "--crowd-upstream") {
        sockets::serve_upstream();
        return;
    }
    let options = Options::parse(&args);
    if let Some(level) = &options.envoy_log_level {
        envoy::set_log_level(level);
    }
    let binary = EnvoyBinary::locate().unwrap_or_else(|why| panic!("{why}"));
    let module = envoy::module_path();
    let _ = std::fs::create_dir_all(&options.results);
    let header = Header {
        binary: &binary,
        module: &module,
        baseline: options.baseline.as_deref(),
    };
    // A run in which handshakes, requests or sockets failed compares something other than
    // what it says: fail, so neither a person nor CI takes its numbers at face value.
    let failed = if options.sockets_only {
        sockets_only(&options, &header)
    } else if options.per_request_only {
        per_request_only(&options, &header)
    } else {
        every_part(&options, &header)
    };
    if let Some(what) = failed {
        eprintln!("bench: {what} failed; the results are not a valid comparison");
        std::process::exit(1);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// `--sockets-only`: part four alone, written as `DATE-sockets.md` with its chart.
fn sockets_only(options: &Options, header: &Header) -> Option<String> {
    let settings = options.timed(options.rounds);
    let (section, failures, bars) =
        sockets::run(&runtime(), header.module, options.sockets, &settings);
    let dir = &options.results;
    let stem = result_stem(dir, "sockets");
    let report = format!(
        "{}{section}{}",
        header.text("part four only"),
        chart_link(dir, &stem, SOCKETS_CHART, &bars),
    );
    publish(dir, &stem, &report);
    (failures > 0).then(|| format!("{failures} socket(s) or request(s)"))
}

/// `--per-request-only` (and `--ab-only`): part two alone, as `DATE-per-request.md`.
fn per_request_only(options: &Options, header: &Header) -> Option<String> {
    let settings = options.timed(options.rounds);
    let (section, failures, bars) =
        per_request::run(&runtime(), header.module, header.baseline, &settings);
    let dir = &options.results;
    let stem = result_stem(dir, "per-request");
    let report = format!(
        "{}{section}{}",
        header.text("part two only"),
        chart_link(dir, &stem, PER_REQUEST_CHART, &bars)
    );
    publish(dir, &stem, &report);
    (failures > 0).then(|| format!("{failures} request(s)"))
}

/// Every part: handshakes, then per request, per message and held sockets (timed parts at
/// most two rounds each), as `DATE.md`.
fn every_part(options: &Options, header: &Header) -> Option<String> {
    let runtime = runtime();
    let dir: &Path = &options.results;
    let upstream = traffic::spawn_echo(&runtime);
    let (mut report, handshake_failures) = handshakes::run(&runtime, header, upstream, options);
    // A whole run measures every row: the part-two-only flags do not apply.
    let timed = Settings {
        warm_only: false,
        ab_only: false,
        together: false,
        ..options.timed(options.rounds.min(2))
    };
    let (section, request_failures, bars) =
        per_request::run(&runtime, header.module, header.baseline, &timed);
    report.push_str(&section);
    report.push_str(&chart_link(
        dir,
        &result_stem(dir, "per-request"),
        PER_REQUEST_CHART,
        &bars,
    ));
    let (section, frame_failures) = per_frame::run(&runtime, header.module, upstream, &timed);
    report.push_str(&section);
    let (section, open_failures, bars) =
        sockets::run(&runtime, header.module, options.sockets, &timed);
    report.push_str(&section);
    report.push_str(&chart_link(
        dir,
        &result_stem(dir, "sockets"),
        SOCKETS_CHART,
        &bars,
    ));
    publish(dir, &result_stem(dir, ""), &report);
    let socket_failures = frame_failures + open_failures;
    (handshake_failures + request_failures + socket_failures > 0).then(|| {
        format!(
            "{handshake_failures} handshake(s), {request_failures} request(s) and \
             {socket_failures} socket(s)"
        )
    })
}
