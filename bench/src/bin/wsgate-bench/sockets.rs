//! Part four of `make bench`: thousands of open WebSockets, as users hold them.
//!
//! Each configuration (`jwt_authn`, wsgate, wsgate with `close_on_expiry`, that with the
//! upgrades-only matcher alone, and that with the filter disabled on the unrelated route)
//! runs beside a no-filter Envoy: two Envoys with one worker each, pinned to one CPU, loaded
//! with unrelated keep-alive requests (`/health`, answered by Envoy itself) at the same
//! moments; with no socket open, then with N WebSockets on one token open and held in each,
//! then with none open again. Reported: Envoy's resident memory per open socket, Envoy's
//! CPU per unrelated request and requests/s with N open against none open (and that ratio
//! against the no-filter Envoy's beside it), the none-open CPU per request against no
//! filter's (the tax on traffic the filter does not guard), the time to open N, and, with
//! `close_on_expiry`, how late after the token's `exp` the last of the N sockets, expiring
//! together, is closed.
//!
//! Each Envoy holds about 2N file descriptors; this process holds the clients' 2N (N a
//! side), and the upstream runs in a process of its own with its 2N. `make bench` raises
//! the soft limit to the hard one (`ulimit -n`), and this part refuses to start when the
//! limit is too low for N, saying so.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use testbed::crowd::{self, Crowd};
use testbed::envoy::Envoy;
use testbed::keys::{jwks, RSA_2048};

use crate::cases::{bootstrap, Auth, Settings, AUDIENCE, ISSUER};
use crate::chart;
use crate::measure::{load, pin};

/// The configurations of this part, in table order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    NoFilter,
    JwtAuthn,
    Wsgate,
    WsgateExpiry,
    WsgateUpgradesOnly,
    WsgateRouteDisabled,
}

impl Case {
    const ALL: [Case; 6] = [
        Case::NoFilter,
        Case::JwtAuthn,
        Case::Wsgate,
        Case::WsgateExpiry,
        Case::WsgateUpgradesOnly,
        Case::WsgateRouteDisabled,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::NoFilter => "no filter",
            Case::JwtAuthn => "jwt_authn",
            Case::Wsgate => "wsgate",
            Case::WsgateExpiry => "wsgate, close_on_expiry",
            Case::WsgateUpgradesOnly => "wsgate, close_on_expiry, upgrades-only matcher",
            Case::WsgateRouteDisabled => "wsgate, close_on_expiry, disabled on /health's route",
        }
    }

    fn kind(self) -> chart::Kind {
        match self {
            Case::NoFilter => chart::Kind::Baseline,
            Case::JwtAuthn => chart::Kind::JwtAuthn,
            _ => chart::Kind::Wsgate,
        }
    }

    fn closes_on_expiry(self) -> bool {
        matches!(
            self,
            Case::WsgateExpiry | Case::WsgateUpgradesOnly | Case::WsgateRouteDisabled
        )
    }
}

/// One configuration in one round, measured side by side with a control.
struct Run {
    round: usize,
    case: Case,
    /// The configuration the other side of its pair ran (no filter's runs are the controls
    /// of the others).
    paired_with: Case,
    /// Unrelated requests/s with no socket open, and with N open.
    rate_none: f64,
    rate_open: f64,
    /// Envoy's CPU per unrelated request (µs), with none open and with N open.
    cpu_none: f64,
    cpu_open: f64,
    /// Envoy's resident bytes per open socket.
    rss_per_socket: f64,
    open_seconds: f64,
    /// Seconds from `exp` to the last socket's close, and how many were closed.
    expiry: Option<(f64, usize)>,
    failures: usize,
}

/// The unrelated request: answered by Envoy's own route, never by the upstream.
const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: bench\r\n\r\n";

/// Runs this part with `sockets` sockets; returns the report section, the failures and
/// the chart's bars.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    module: &Path,
    sockets: usize,
    settings: &Settings,
) -> (String, usize, Vec<chart::Bar>) {
    if let Err(why) = descriptors_for(sockets) {
        eprintln!("bench: {why}");
        return (
            format!("\n## Part four: {sockets} open sockets\n\nNot run: {why}\n"),
            1,
            Vec::new(),
        );
    }
    let Some(upstream) = UpstreamProcess::start() else {
        let why = "the upstream process did not start";
        return (
            format!("\n## Part four: {sockets} open sockets\n\nNot run: {why}\n"),
            1,
            Vec::new(),
        );
    };
    let jwks_text = jwks(&[(&RSA_2048, "k")]).to_string();
    let mut runs = Vec::new();
    for round in 0..settings.rounds {
        let mut order = Case::ALL[1..].to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for case in order {
            let pair = Pair {
                runtime,
                module,
                jwks_text: &jwks_text,
                upstream: upstream.addr,
                sockets,
                settings,
                round,
            };
            for run in pair.run(case) {
                eprintln!(
                    "bench: sockets {:<40} none open {:>7.0}/s {:.2} µs, {sockets} open {:>7.0}/s {:.2} µs (rate {:.3}x, capacity {:.3}x), {:.1} KiB/socket, opened in {:.1} s{}{}",
                    run.case.name(),
                    run.rate_none,
                    run.cpu_none,
                    run.rate_open,
                    run.cpu_open,
                    run.rate_open / run.rate_none,
                    run.cpu_none / run.cpu_open,
                    run.rss_per_socket / 1024.0,
                    run.open_seconds,
                    run.expiry.map_or(String::new(), |(late, closed)| format!(
                        ", {closed} closed, the last {late:.2} s after exp"
                    )),
                    if run.failures > 0 { format!(" ({} failed)", run.failures) } else { String::new() },
                );
                runs.push(run);
            }
        }
    }
    let failures = runs.iter().map(|run| run.failures).sum();
    let (section, bars) = report(&runs, sockets, settings);
    (section, failures, bars)
}

/// Whether this process may hold `sockets` sockets a side, plus room for the rest.
fn descriptors_for(sockets: usize) -> Result<(), String> {
    let limits = std::fs::read_to_string("/proc/self/limits").map_err(|e| e.to_string())?;
    let soft: usize = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|value| value.parse().ok())
        .ok_or("no open-file limit in /proc/self/limits")?;
    let needed = 2 * sockets + 512;
    if soft < needed {
        return Err(format!(
            "{sockets} sockets need {needed} open files here and in Envoy, the limit is {soft}: \
             raise it with `ulimit -n {needed}` (make bench raises it to the hard limit; \
             systemd: LimitNOFILE) or pass a smaller --sockets"
        ));
    }
    Ok(())
}

/// The bootstrap of `case`: Envoy answers `/health` itself, every other route goes to
/// `upstream` through a cluster sized for the sockets.
fn config(case: Case, upstream: SocketAddr, module: &Path, jwks_text: &str) -> Value {
    let auth = match case {
        Case::NoFilter => Auth::None,
        Case::JwtAuthn => Auth::JwtAuthn,
        _ => Auth::WsgateCached,
    };
    let mut config = bootstrap(auth, upstream, module, jwks_text);
    let manager = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    manager["route_config"]["virtual_hosts"][0]["routes"] = json!([
        { "match": { "path": "/health" },
          "direct_response": { "status": 200, "body": { "inline_string": "ok" } } },
        { "match": { "prefix": "/" }, "route": { "cluster": "upstream", "idle_timeout": "600s" } }
    ]);
    if case.closes_on_expiry() {
        let filter =
            &mut manager["http_filters"][0]["typed_config"]["config"]["configuration"]["value"];
        let mut plugin: Value = filter
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        plugin["close_on_expiry"] = json!(true);
        // The lateness is measured from `exp` itself.
        plugin["clock_skew_seconds"] = json!(0);
        *filter = json!(plugin.to_string());
    }
    if case == Case::WsgateRouteDisabled {
        let health = &mut manager["route_config"]["virtual_hosts"][0]["routes"][0];
        health["match"]["headers"] =
            json!([{ "name": "upgrade", "present_match": true, "invert_match": true }]);
        health["typed_per_filter_config"] = json!({ "envoy.filters.http.wasm": {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": true } });
    }
    if case == Case::WsgateUpgradesOnly {
        let filters = &mut manager["http_filters"];
        let wasm = filters[0].clone();
        filters[0] = upgrades_only(wasm);
    }
    let cluster = &mut config["static_resources"]["clusters"][0];
    cluster["circuit_breakers"] = json!({ "thresholds": [{
        "max_connections": 100_000, "max_pending_requests": 100_000, "max_requests": 100_000
    }]});
    config
}

/// `wasm` wrapped in the matcher of `envoy/envoy-upgrades-only.yaml`: skipped when the
/// request has no Upgrade header and is not a CONNECT.
fn upgrades_only(wasm: Value) -> Value {
    let absent = |header: &str, value_match: Value| {
        json!({ "not_matcher": { "single_predicate": {
            "input": { "name": header, "typed_config": {
                "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                "header_name": header } },
            "value_match": value_match } } })
    };
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "xds_matcher": { "matcher_list": { "matchers": [{
                "predicate": { "and_matcher": { "predicate": [
                    absent("upgrade", json!({ "safe_regex": { "google_re2": {}, "regex": "(?s).*" } })),
                    absent(":method", json!({ "exact": "CONNECT" }))
                ] } },
                "on_match": { "action": { "name": "skip", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"
                } } }
            }] } },
            "extension_config": wasm
        }
    })
}

/// The upstream, in a process of its own: N sockets a side in each of two Envoys would not
/// fit this process's open files with the upstream's in it too.
struct UpstreamProcess {
    child: std::process::Child,
    addr: SocketAddr,
}

impl UpstreamProcess {
    /// This program again, with `--crowd-upstream` (see [`serve_upstream`]).
    fn start() -> Option<UpstreamProcess> {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(std::env::current_exe().ok()?)
            .arg("--crowd-upstream")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut()?)
            .read_line(&mut line)
            .ok()?;
        let port: u16 = line.trim().parse().ok()?;
        Some(UpstreamProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }
}

impl Drop for UpstreamProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--crowd-upstream`: serves as the upstream, prints its port, and ends when its stdin does
/// (the bench ended).
pub fn serve_upstream() {
    use std::io::{Read as _, Write as _};
    let upstream = crowd::Upstream::start();
    println!("{}", upstream.addr().port());
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// One configuration side by side with no filter: both Envoys pinned to the same CPU, loaded
/// at the same moments, each holding N sockets, so that whatever the machine does to one
/// it does to the other.
struct Pair<'a> {
    runtime: &'a tokio::runtime::Runtime,
    module: &'a Path,
    jwks_text: &'a str,
    upstream: SocketAddr,
    sockets: usize,
    settings: &'a Settings,
    round: usize,
}

/// One side's readings over one load window: requests/s, Envoy CPU µs per request, failures.
type Reading = (f64, f64, usize);

impl Pair<'_> {
    /// Runs `case` beside no filter; returns both runs.
    fn run(&self, case: Case) -> [Run; 2] {
        let cases = [case, Case::NoFilter];
        let envoys = cases.map(|case| {
            Envoy::start_with(&config(case, self.upstream, self.module, self.jwks_text), 1)
        });
        // The previous pair's Envoys are gone; give the kernel a moment with their sockets.
        std::thread::sleep(Duration::from_secs(1));
        for envoy in &envoys {
            if !pin(envoy.pid(), "1") {
                eprintln!("bench: Envoy not pinned to CPU 1: the pairs still share one machine");
            }
        }
        let seconds = self.settings.seconds;
        let mut failures = [0usize; 2];
        let mut window = |seconds: u64| -> [Reading; 2] {
            let readings = self.load_both(&envoys, seconds);
            for (side, reading) in readings.iter().enumerate() {
                failures[side] += reading.2;
            }
            readings
        };
        window(1);
        let none_before = window(seconds);
        let rss_none = envoys
            .each_ref()
            .map(|envoy| envoy.resident_bytes().unwrap_or(0));
        // One token for all: the caches hit, and they all expire together, once the open
        // sockets have been measured (opening 2 × 8000 takes about 5 s here).
        let exp = testbed::now() + 16 + seconds;
        let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": exp});
        let token = RSA_2048.sign(json!({"kid": "k"}), &claims);
        let head = crowd::upgrade_head("/ws", &[("authorization", &format!("Bearer {token}"))]);
        let crowds = envoys
            .each_ref()
            .map(|envoy| Crowd::open(envoy.listener(), vec![head.clone(); self.sockets], 256));
        // Both crowds open at once; each one's time is until its own last answer.
        let opening = std::time::Instant::now();
        let mut open_seconds = [f64::NAN; 2];
        while open_seconds.iter().any(|seconds| seconds.is_nan())
            && opening.elapsed() < Duration::from_secs(300)
        {
            for (seconds, crowd) in open_seconds.iter_mut().zip(&crowds) {
                if seconds.is_nan() && crowd.settled() {
                    *seconds = opening.elapsed().as_secs_f64();
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut lost = [0usize; 2];
        for (side, crowd) in crowds.iter().enumerate() {
            lost[side] += crowd.refused().len() + self.sockets.saturating_sub(crowd.opened());
        }
        window(1);
        let open = window(seconds);
        let rss_open = envoys
            .each_ref()
            .map(|envoy| envoy.resident_bytes().unwrap_or(0));
        for (side, crowd) in crowds.iter().enumerate() {
            lost[side] += self
                .sockets
                .saturating_sub(crowd.echo_all(Duration::from_secs(60)));
            if crowd.still_open() != self.sockets {
                eprintln!(
                    "bench: {} sockets closed before exp: opening took {:.1} s, too long for \
                     this part's timing",
                    self.sockets - crowd.still_open(),
                    open_seconds[side]
                );
                lost[side] += self.sockets - crowd.still_open();
            }
        }
        let expiry = case.closes_on_expiry().then(|| expiry(&crowds[0], exp));
        if let Some((_, closed)) = expiry {
            lost[0] += self.sockets.saturating_sub(closed);
        }
        // None open again, once every socket is gone on both sides: "none open" is the mean
        // of before and after.
        drop(crowds);
        let settled = std::time::Instant::now();
        let active = "cluster.upstream.upstream_cx_active";
        while envoys
            .iter()
            .any(|envoy| envoy.stats(active).get(active).copied().unwrap_or(0) > 0)
            && settled.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(1));
        window(1);
        let none_after = window(seconds);
        [0, 1].map(|side| Run {
            round: self.round,
            case: cases[side],
            paired_with: cases[1 - side],
            rate_none: (none_before[side].0 + none_after[side].0) / 2.0,
            rate_open: open[side].0,
            cpu_none: (none_before[side].1 + none_after[side].1) / 2.0,
            cpu_open: open[side].1,
            rss_per_socket: rss_open[side].saturating_sub(rss_none[side]) as f64
                / self.sockets as f64,
            open_seconds: open_seconds[side],
            expiry: if side == 0 { expiry } else { None },
            failures: failures[side] + lost[side],
        })
    }

    /// Loads both Envoys with unrelated requests for `seconds`, at once.
    fn load_both(&self, envoys: &[Envoy; 2], seconds: u64) -> [Reading; 2] {
        let request = Arc::new(HEALTH.to_vec());
        let before = envoys
            .each_ref()
            .map(|envoy| envoy.cpu_time().unwrap_or_default());
        let duration = Duration::from_secs(seconds);
        let concurrency = self.settings.concurrency;
        let (first, second) = self.runtime.block_on(async {
            tokio::join!(
                load(envoys[0].listener(), request.clone(), concurrency, duration),
                load(envoys[1].listener(), request.clone(), concurrency, duration)
            )
        });
        [first, second]
            .into_iter()
            .zip(envoys.iter().zip(before))
            .map(|((ok, failed), (envoy, before))| {
                let cpu = envoy.cpu_time().unwrap_or_default().saturating_sub(before);
                (
                    ok as f64 / seconds as f64,
                    cpu.as_secs_f64() * 1e6 / ok.max(1) as f64,
                    failed,
                )
            })
            .collect::<Vec<_>>()
            .try_into()
            .unwrap_or([(0.0, 0.0, 1), (0.0, 0.0, 1)])
    }
}

/// Waits for `crowd`'s sockets, on tokens expiring at `exp`, to be closed (up to 10 s
/// after); returns how late after `exp` the last one was closed, and how many were.
fn expiry(crowd: &Crowd, exp: u64) -> (f64, usize) {
    let deadline = UNIX_EPOCH + Duration::from_secs(exp + 10);
    while crowd.closed_at().len() < crowd.opened() && SystemTime::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let closed = crowd.closed_at();
    let last = closed.iter().max().copied().unwrap_or(UNIX_EPOCH);
    let late = last
        .duration_since(UNIX_EPOCH + Duration::from_secs(exp))
        .map_or_else(
            |early| -early.duration().as_secs_f64(),
            |late| late.as_secs_f64(),
        );
    (late, closed.len())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    crate::numbers::median_of(values).unwrap_or(f64::NAN)
}

fn report(runs: &[Run], sockets: usize, settings: &Settings) -> (String, Vec<chart::Bar>) {
    let of = |case: Case| runs.iter().filter(move |run| run.case == case);
    // The no-filter run beside `run`.
    let control = |run: &Run| {
        runs.iter().find(|other| {
            other.case == Case::NoFilter
                && other.paired_with == run.case
                && other.round == run.round
        })
    };
    // Two readings of "what N open sockets cost an unrelated request": the rate itself, and
    // Envoy's capacity (the inverse of its CPU per request), which the load generator sharing
    // the machine does not blur.
    let rate_ratio = |run: &Run| run.rate_open / run.rate_none;
    let capacity_ratio = |run: &Run| run.cpu_none / run.cpu_open;
    let per_pair = |case: Case, reading: &dyn Fn(&Run) -> f64| -> Vec<f64> {
        of(case)
            .filter_map(|run| Some(reading(run) / reading(control(run)?)))
            .collect()
    };
    let med = |case: Case, reading: &dyn Fn(&Run) -> f64| median(of(case).map(reading).collect());
    let list = |values: &[f64]| {
        if values.is_empty() {
            return "-".to_owned();
        }
        values
            .iter()
            .map(|value| format!("{value:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!(
        "\n## Part four: {sockets} open sockets\n\n\
         Each configuration runs side by side with no filter: two Envoys (1 worker each), both \
         pinned to CPU 1, loaded at the same moments, each holding its own {sockets} sockets, \
         so that what the machine does to one it does to the other (one after the other, \
         Envoy's CPU per request moved by up to 25% between 4 s windows here). {} round(s), \
         the configurations in alternating order. Unrelated load per Envoy: {} keep-alive \
         connections from one thread sending `GET /health` (Envoy's own direct response) \
         for {} s after a 1 s warm-up: first with no socket open, then with {sockets} \
         WebSockets on one RS256 token open and held, then with none open again once every \
         socket has closed (\"none open\" is the mean of before and after). Two readings of \
         the cost: requests/s, and Envoy's CPU per request (its capacity). Ratios are N open \
         against none open, above 1 meaning faster with the sockets open; \"against no \
         filter\" divides by the ratio of the no-filter Envoy beside it, and the last \
         ratio column compares the none-open CPU per request with it (the tax on traffic \
         the filter does not guard). Values are medians; lists are per pair, in round \
         order. No filter's row is its runs beside every other configuration.\n\n\
         | configuration | RSS per open socket | req/s none open | with {sockets} open | rate ratio | Envoy µs/request none open | with {sockets} open | capacity ratio | capacity ratio against no filter's | rate ratio against no filter's | µs/request none open against no filter's | time to open {sockets} | last close after `exp` |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        settings.rounds, settings.concurrency, settings.seconds,
    );
    let mut bars = Vec::new();
    for case in Case::ALL {
        let lateness: Vec<f64> = of(case)
            .filter_map(|run| run.expiry.map(|(late, _)| late))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {:.1} KiB | {:.0} | {:.0} | {:.3}x | {:.2} | {:.2} | {:.3}x | {} | {} | {} | {:.1} s | {} |",
            case.name(),
            med(case, &|run| run.rss_per_socket / 1024.0),
            med(case, &|run| run.rate_none),
            med(case, &|run| run.rate_open),
            med(case, &rate_ratio),
            med(case, &|run| run.cpu_none),
            med(case, &|run| run.cpu_open),
            med(case, &capacity_ratio),
            list(&per_pair(case, &capacity_ratio)),
            list(&per_pair(case, &rate_ratio)),
            list(&per_pair(case, &|run| run.cpu_none)),
            med(case, &|run| run.open_seconds),
            if lateness.is_empty() { "(not closed)".to_owned() } else { format!("{} s", list(&lateness)) },
        );
        bars.push(chart::Bar {
            label: case.name().to_owned(),
            value: med(case, &capacity_ratio),
            kind: case.kind(),
        });
    }
    // The targets of #26, on the medians of the run; the expiry on every round.
    let against = |reading: &dyn Fn(&Run) -> f64| median(per_pair(Case::WsgateExpiry, reading));
    let (capacity, rate) = (against(&capacity_ratio), against(&rate_ratio));
    let rss_of = |case: Case| med(case, &|run| run.rss_per_socket / 1024.0);
    let rss_beside = median(
        of(Case::WsgateExpiry)
            .filter_map(|run| Some(control(run)?.rss_per_socket / 1024.0))
            .collect(),
    );
    let worst_late = of(Case::WsgateExpiry)
        .filter_map(|run| run.expiry.map(|(late, _)| late))
        .fold(f64::NEG_INFINITY, f64::max);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let _ = write!(
        out,
        "\nTargets (wsgate with `close_on_expiry`):\n\
         - unrelated requests with {sockets} open at least 0.97x of none open, relative to the \
         no-filter Envoy's ratio beside it (median of the pairs): by Envoy's capacity {} \
         ({capacity:.3}), by the rate {} ({rate:.3});\n\
         - RSS per socket at most no filter's + 2 KiB: {} ({:.1} KiB against {:.1} KiB);\n\
         - all {sockets} closed within 2 s of `exp`, every round: {} (latest {worst_late:.2} s).\n",
        verdict(capacity >= 0.97),
        verdict(rate >= 0.97),
        verdict(rss_of(Case::WsgateExpiry) <= rss_beside + 2.0),
        rss_of(Case::WsgateExpiry),
        rss_beside,
        verdict(worst_late.is_finite() && worst_late <= 2.0),
    );
    (out, bars)
}
