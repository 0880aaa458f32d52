//! Part four of `make bench`: thousands of open WebSockets, as users hold them.
//!
//! For each configuration (no filter, `jwt_authn`, wsgate, wsgate with `close_on_expiry`, and
//! that behind the upgrades-only matcher of `envoy/envoy-upgrades-only.yaml`), one Envoy with
//! one worker, pinned to one CPU, is loaded with unrelated keep-alive requests (`/health`,
//! answered by Envoy itself) with no socket open; then N WebSockets on one token are opened
//! and held, and the same load runs again. Reported: Envoy's resident memory per open
//! socket, the unrelated rate with N open against none open (each configuration's own ratio,
//! none open measured before opening and again after every socket has closed, and that
//! ratio against no filter's in the same run), the unrelated rate with none open
//! against no filter's (the tax on traffic the filter does not guard), the time to open N,
//! and, with `close_on_expiry`, how late after the token's `exp` the last of the N sockets,
//! expiring together, is closed.
//!
//! N sockets hold about 2N file descriptors in Envoy and 2N in this process (the clients
//! and the upstream): `make bench` raises the soft limit to the hard one (`ulimit -n`), and
//! this part refuses to start when the limit is too low for N, saying so.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use testbed::crowd::{self, Crowd};
use testbed::envoy::Envoy;
use testbed::keys::{jwks, RSA_2048};

use crate::chart;
use crate::measure::{load, pin};
use crate::{bootstrap, Auth, Settings, AUDIENCE, ISSUER};

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

/// One configuration in one round.
struct Run {
    round: usize,
    case: Case,
    /// Unrelated requests/s with no socket open, and with N open.
    rate_none: f64,
    rate_open: f64,
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
    let upstream = crowd::Upstream::start();
    let jwks_text = jwks(&[(&RSA_2048, "k")]).to_string();
    let mut runs = Vec::new();
    for round in 0..settings.rounds {
        let mut order = Case::ALL.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for case in order {
            let run = one(
                runtime, module, &jwks_text, &upstream, case, sockets, settings, round,
            );
            eprintln!(
                "bench: sockets {:<40} none open {:>7.0}/s, {sockets} open {:>7.0}/s ({:.3}x), {:.1} KiB/socket, opened in {:.1} s{}{}",
                case.name(),
                run.rate_none,
                run.rate_open,
                run.rate_open / run.rate_none,
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

#[allow(clippy::too_many_arguments)]
fn one(
    runtime: &tokio::runtime::Runtime,
    module: &Path,
    jwks_text: &str,
    upstream: &crowd::Upstream,
    case: Case,
    sockets: usize,
    settings: &Settings,
    round: usize,
) -> Run {
    let envoy = Envoy::start_with(&config(case, upstream.addr(), module, jwks_text), 1);
    // The previous configuration's Envoy is gone; give the kernel a moment with its sockets.
    std::thread::sleep(Duration::from_secs(1));
    pin(envoy.pid(), "1");
    let listener = envoy.listener();
    let request = Arc::new(HEALTH.to_vec());
    let rate = |seconds: u64| {
        let (ok, failed) = runtime.block_on(load(
            listener,
            request.clone(),
            settings.concurrency,
            Duration::from_secs(seconds),
        ));
        (ok as f64 / seconds as f64, failed)
    };
    let mut failures = 0;
    let (_, failed) = rate(1);
    failures += failed;
    let (none_before, failed) = rate(settings.seconds);
    failures += failed;
    let rss_none = envoy.resident_bytes().unwrap_or(0);
    // One token for all: the caches hit, and they all expire together, once the open
    // sockets have been measured (opening 8000 takes 2 to 3 s here).
    let exp = testbed::now() + 12 + settings.seconds;
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": exp});
    let token = RSA_2048.sign(json!({"kid": "k"}), &claims);
    let head = crowd::upgrade_head("/ws", &[("authorization", &format!("Bearer {token}"))]);
    let crowd = Crowd::open(listener, vec![head; sockets], 256);
    let open_seconds = crowd
        .wait_settled(Duration::from_secs(300))
        .map_or(f64::NAN, |took| took.as_secs_f64());
    failures += crowd.refused().len() + sockets.saturating_sub(crowd.opened());
    let (_, failed) = rate(1);
    failures += failed;
    let (rate_open, failed) = rate(settings.seconds);
    failures += failed;
    let rss_open = envoy.resident_bytes().unwrap_or(0);
    failures += sockets.saturating_sub(crowd.echo_all(Duration::from_secs(60)));
    if crowd.still_open() != sockets {
        eprintln!(
            "bench: {} sockets closed before exp: opening took {open_seconds:.1} s, too long \
             for this part's timing",
            sockets - crowd.still_open()
        );
        failures += sockets - crowd.still_open();
    }
    let expiry = case.closes_on_expiry().then(|| {
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
    });
    if let Some((_, closed)) = expiry {
        failures += sockets.saturating_sub(closed);
    }
    // None open again, once every socket is gone on both sides: the rate with none open is
    // the mean of before and after, so that a drift of the machine over the run does not
    // read as a cost of the open sockets.
    drop(crowd);
    let settled = std::time::Instant::now();
    while upstream.open() > 0 && settled.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (_, failed) = rate(1);
    failures += failed;
    let (none_after, failed) = rate(settings.seconds);
    failures += failed;
    let rate_none = (none_before + none_after) / 2.0;
    Run {
        round,
        case,
        rate_none,
        rate_open,
        rss_per_socket: rss_open.saturating_sub(rss_none) as f64 / sockets as f64,
        open_seconds,
        expiry,
        failures,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    crate::per_request::median_of(values).unwrap_or(f64::NAN)
}

fn report(runs: &[Run], sockets: usize, settings: &Settings) -> (String, Vec<chart::Bar>) {
    let of = |case: Case| runs.iter().filter(move |run| run.case == case);
    let in_round = |case: Case, round: usize| {
        runs.iter()
            .find(|run| run.case == case && run.round == round)
    };
    // Per round: each configuration's ratio (N open / none open) against no filter's, and
    // its none-open rate against no filter's.
    let relative = |case: Case| -> Vec<f64> {
        (0..settings.rounds)
            .filter_map(|round| {
                let own = in_round(case, round)?;
                let base = in_round(Case::NoFilter, round)?;
                Some((own.rate_open / own.rate_none) / (base.rate_open / base.rate_none))
            })
            .collect()
    };
    let tax = |case: Case| -> Vec<f64> {
        (0..settings.rounds)
            .filter_map(|round| {
                Some(in_round(case, round)?.rate_none / in_round(Case::NoFilter, round)?.rate_none)
            })
            .collect()
    };
    let list = |values: &[f64]| {
        values
            .iter()
            .map(|value| format!("{value:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!(
        "\n## Part four: {sockets} open sockets\n\n\
         One Envoy per configuration (1 worker, pinned to CPU 1), {} round(s) in alternating \
         order. Unrelated load: {} keep-alive connections sending `GET /health` (Envoy's own \
         direct response) for {} s after a 1 s warm-up, first with no socket open, then with \
         {sockets} WebSockets on one RS256 token open and held, then with none open again once \
         every socket has closed; the none-open rate is the mean of before and after. \
         Per-round values are listed in round order; the others are medians.\n\n\
         | configuration | RSS per open socket | unrelated req/s, none open | with {sockets} open | ratio | ratio against no filter's (per round) | none-open rate against no filter's (per round) | time to open {sockets} | last close after `exp` |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        settings.rounds, settings.concurrency, settings.seconds,
    );
    let mut bars = Vec::new();
    for case in Case::ALL {
        let rss = median(of(case).map(|run| run.rss_per_socket / 1024.0).collect());
        let none = median(of(case).map(|run| run.rate_none).collect());
        let open = median(of(case).map(|run| run.rate_open).collect());
        let ratio = median(of(case).map(|run| run.rate_open / run.rate_none).collect());
        let opened = median(of(case).map(|run| run.open_seconds).collect());
        let lateness: Vec<f64> = of(case)
            .filter_map(|run| run.expiry.map(|(late, _)| late))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {rss:.1} KiB | {none:.0} | {open:.0} | {ratio:.3}x | {} | {} | {opened:.1} s | {} |",
            case.name(),
            list(&relative(case)),
            list(&tax(case)),
            if lateness.is_empty() { "(not closed)".to_owned() } else { format!("{} s", list(&lateness)) },
        );
        bars.push(chart::Bar {
            label: case.name().to_owned(),
            value: ratio,
            kind: case.kind(),
        });
    }
    // The targets of #26: the ratio on the medians of the run, the expiry on every round.
    let ratio_of = |case: Case| median(of(case).map(|run| run.rate_open / run.rate_none).collect());
    let against_no_filter = ratio_of(Case::WsgateExpiry) / ratio_of(Case::NoFilter);
    let rss_of = |case: Case| median(of(case).map(|run| run.rss_per_socket / 1024.0).collect());
    let worst_late = of(Case::WsgateExpiry)
        .filter_map(|run| run.expiry.map(|(late, _)| late))
        .fold(f64::NEG_INFINITY, f64::max);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let _ = write!(
        out,
        "\nTargets (wsgate with `close_on_expiry`):\n\
         - unrelated req/s with {sockets} open at least 0.97x of none open, relative to no \
         filter's ratio (medians of the run): {} ({against_no_filter:.3}; per round {});\n\
         - RSS per socket at most no filter's + 2 KiB: {} ({:.1} KiB against {:.1} KiB);\n\
         - all {sockets} closed within 2 s of `exp`, every round: {} (latest {worst_late:.2} s).\n",
        verdict(against_no_filter >= 0.97),
        list(&relative(Case::WsgateExpiry)),
        verdict(rss_of(Case::WsgateExpiry) <= rss_of(Case::NoFilter) + 2.0),
        rss_of(Case::WsgateExpiry),
        rss_of(Case::NoFilter),
        verdict(worst_late.is_finite() && worst_late <= 2.0),
    );
    (out, bars)
}
