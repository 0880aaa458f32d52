//! Part two of `make bench`: the filter's cost per request, without WebSocket handshakes.
//!
//! Handshakes through Envoy cost the load generator and the upstream as much as Envoy, so on
//! a small machine part one's ratios are compressed by the harness. Here each request carries
//! the upgrade headers and a token to a direct-response route: the filter runs in full, and
//! there is no upstream, no upgrade and no WebSocket traffic. (Envoy closes each such
//! connection after its response, so every request still opens a TCP connection, as wrk
//! does in the measurements the performance issue quotes.) What is measured is Envoy's own
//! CPU per request (from `/proc`), and, with `perf`, where it goes.
//!
//! Each configuration runs in an Envoy of its own, one after the other. Some comparisons also
//! run side by side, two Envoys loaded at once on one CPU so that both readings share the
//! machine's drift: each round, wsgate's warm request against the floor (the same module,
//! guarded and unguarded path) and each verifier's cost for one signature
//! ([`verify_cost`]); with `--together`, the A/B of two modules. A configuration without
//! Wasm (no auth, `jwt_authn`) is only ever paired with another without it: sharing a
//! CPU's caches does not treat a configuration with V8 and one without alike.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use testbed::keys::{jwks, TestKey};

use crate::cases::{Alg, Auth, Settings, AUDIENCE, ISSUER};
use crate::chart::{Bar, Kind};
use crate::measure::Run;
use crate::measure::{pin, Measure};
use crate::numbers::{at_most, median_of, outcome};
use crate::profile;
use crate::traffic::upgrade_request;
use crate::verify_cost;

/// Configurations, in table order: baselines, then each verifier uncached per algorithm, then
/// cached.
const CASES: [(Auth, Alg); 16] = [
    (Auth::None, Alg::Rs256),
    (Auth::WasmFloor, Alg::Rs256),
    (Auth::JwtAuthn, Alg::Rs256),
    (Auth::JwtAuthn, Alg::Es256),
    (Auth::JwtAuthn, Alg::Es384),
    (Auth::JwtAuthn, Alg::Es512),
    (Auth::JwtAuthn, Alg::EdDsa),
    (Auth::JwtAuthnCached, Alg::Rs256),
    (Auth::Wsgate, Alg::Rs256),
    (Auth::Wsgate, Alg::Es256),
    (Auth::Wsgate, Alg::EdDsa),
    (Auth::WsgateHost, Alg::Rs256),
    (Auth::WsgateHost, Alg::Es256),
    (Auth::WsgateHost, Alg::Es384),
    (Auth::WsgateHost, Alg::Es512),
    (Auth::WsgateCached, Alg::Rs256),
];

/// Runs every configuration `settings.rounds` times in alternating order (and, each
/// round, the warm request beside the floor when both are measured, and the verification
/// pairs of [`verify_cost`] when every configuration is) and returns the report section,
/// the number of failed requests, and the main table's bars for the chart.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    module: &Path,
    baseline: Option<&Path>,
    settings: &Settings,
) -> (String, usize, Vec<Bar>) {
    let mut cases = CASES.to_vec();
    if settings.ab_only {
        cases.retain(|case| matches!(case, (Auth::WsgateCached | Auth::WsgateHost, Alg::Rs256)));
    } else if settings.warm_only {
        cases.retain(|(auth, _)| {
            matches!(
                auth,
                Auth::None | Auth::WasmFloor | Auth::JwtAuthnCached | Auth::WsgateCached
            )
        });
    }
    if baseline.is_some() {
        cases.push((Auth::WsgateCachedBaseline, Alg::Rs256));
        if !settings.warm_only {
            cases.push((Auth::WsgateHostBaseline, Alg::Rs256));
        }
    }
    let keys: Vec<(&TestKey, &str)> = Alg::ALL.iter().map(|alg| alg.key()).collect();
    let jwks_text = jwks(&keys).to_string();
    let exp = testbed::now() + 3600;
    let request = |alg: Alg| {
        let (key, kid) = alg.key();
        let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": exp});
        let token = key.sign(json!({"kid": kid}), &claims);
        Arc::new(upgrade_request(Some(&token)).into_bytes())
    };
    let requests = Alg::ALL.map(|alg| (alg, request(alg)));
    let perf = profile::available();
    if !perf {
        eprintln!("bench: perf not found: per-request CPU is measured, but not split by where it goes (Debian: apt install linux-perf)");
    }

    // Envoy on one core, this load generator (one thread) on the other: on a 2-core machine
    // that keeps them from trading places, the largest source of noise between runs.
    // Counted before pinning: once this process is pinned, it sees one CPU.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut pinned = cpus >= 2 && pin(std::process::id(), "0");

    // `--together` (with `--ab-only`): each row beside its baseline module's.
    let groups: Vec<Vec<(Auth, Alg)>> = if settings.together {
        [
            (Auth::WsgateCached, Auth::WsgateCachedBaseline),
            (Auth::WsgateHost, Auth::WsgateHostBaseline),
        ]
        .into_iter()
        .map(|(this, base)| vec![(this, Alg::Rs256), (base, Alg::Rs256)])
        .filter(|pair| pair.iter().all(|case| cases.contains(case)))
        .collect()
    } else {
        cases.iter().map(|&case| vec![case]).collect()
    };
    // The warm target, also side by side: wsgate's warm request and the floor, the same
    // module on a guarded and an unguarded path, at once on one CPU.
    let warm = (Auth::WsgateCached, Alg::Rs256);
    let floor = (Auth::WasmFloor, Alg::Rs256);
    let side_by_side = !settings.together && cases.contains(&warm) && cases.contains(&floor);
    // One verification's cost, side by side, when every configuration runs.
    let verification = !settings.ab_only && !settings.warm_only;
    let measure = Measure {
        runtime,
        module,
        baseline,
        jwks_text: &jwks_text,
        requests: &requests,
        settings,
    };
    let mut runs = Vec::new();
    let mut side_runs = Vec::new();
    let mut paired = Vec::new();
    for round in 0..settings.rounds {
        let mut order = groups.clone();
        let mut pair = vec![warm, floor];
        if round % 2 == 1 {
            order.reverse();
            order.iter_mut().for_each(|group| group.reverse());
            pair.reverse();
        }
        for group in order {
            runs.extend(measure.group(&group, round, perf && round == 0, &mut pinned));
        }
        if side_by_side {
            side_runs.extend(measure.group(&pair, round, false, &mut pinned));
        }
        if verification {
            paired.extend(verify_cost::round(&measure, round, &mut pinned));
        }
    }
    // Every CPU again for what runs next (part three starts its own Envoy from here).
    if cpus >= 2 {
        pin(std::process::id(), &format!("0-{}", cpus - 1));
    }
    let failures = runs
        .iter()
        .chain(&side_runs)
        .map(|run| run.failures)
        .sum::<usize>()
        + paired
            .iter()
            .map(verify_cost::Paired::failures)
            .sum::<usize>();
    let (mut section, bars) = report(&runs, &cases, settings, perf, pinned);
    if side_by_side {
        section.push_str(&side_by_side_verdict(&side_runs, settings.rounds));
    }
    if verification {
        section.push_str(&verify_cost::report(&paired, settings.rounds));
    }
    (section, failures, bars)
}

/// The warm target from the side-by-side pairs: wsgate's warm requests/s over the floor's,
/// round by round (each round's two readings taken over the same seconds), met or missed
/// only when every round agrees.
fn side_by_side_verdict(runs: &[Run], rounds: usize) -> String {
    let of = |round: usize, auth: Auth| {
        runs.iter()
            .find(|run| run.round == round && run.auth == auth)
            .map(|run| (run.rate, run.cpu_us))
    };
    let pairs: Vec<((f64, f64), (f64, f64))> = (0..rounds)
        .filter_map(|round| of(round, Auth::WsgateCached).zip(of(round, Auth::WasmFloor)))
        .collect();
    let mut rates: Vec<f64> = pairs
        .iter()
        .map(|((warm, _), (floor, _))| warm / floor)
        .filter(|ratio| ratio.is_finite())
        .collect();
    rates.sort_by(f64::total_cmp);
    let cpu = median_of(
        pairs
            .iter()
            .map(|((_, warm), (_, floor))| warm / floor)
            .filter(|ratio| ratio.is_finite())
            .collect(),
    );
    let (Some(median), Some(low), Some(high)) =
        (median_of(rates.clone()), rates.first(), rates.last())
    else {
        return "\nSide by side: no round measured both the warm request and the floor.\n"
            .to_owned();
    };
    let outcome = outcome(&rates, 0.95);
    let cpu_target = at_most(
        pairs
            .iter()
            .map(|((_, warm), (_, floor))| warm / floor)
            .collect(),
        1.25,
    );
    format!(
        "\nThe warm target side by side (wsgate's warm request and the wasm floor, the same module on a guarded and an unguarded path, in two Envoys loaded at once on the same CPU, so that each round's ratio is taken over the same seconds; a row is only paired with one of its kind, Wasm with Wasm and native with native, as sharing a CPU's caches does not treat rows without Wasm alike): warm >= 0.95x the wasm floor: {median:.2}x (median of {} round{}, {low:.2}x to {high:.2}x), {outcome}; Envoy CPU per request {:.2}x the floor's. #31's warm target, Envoy CPU per request at most 1.25x the floor's, side by side: {cpu_target}.\n",
        rates.len(),
        if rates.len() == 1 { "" } else { "s" },
        cpu.unwrap_or(f64::NAN),
    )
}

fn report(
    runs: &[Run],
    cases: &[(Auth, Alg)],
    settings: &Settings,
    perf: bool,
    pinned: bool,
) -> (String, Vec<Bar>) {
    // Medians, not means: on a shared 2-core VM one run in four or five comes out 30-60%
    // slower for no reason of its own (an A/A run of one module gave 83-140 µs).
    let median = |auth: Auth, alg: Alg, of: fn(&Run) -> f64| {
        median_of(
            runs.iter()
                .filter(|r| r.auth == auth && r.alg == alg)
                .map(of)
                .collect(),
        )
    };
    let rate = |auth, alg| median(auth, alg, |r| r.rate);
    let cpu = |auth, alg| median(auth, alg, |r| r.cpu_us);
    let split = |auth: Auth, alg: Alg| {
        runs.iter()
            .find(|r| r.auth == auth && r.alg == alg)
            .and_then(|r| r.split)
    };

    let mut out = String::new();
    let mut bars = Vec::new();
    let _ = writeln!(out, "\n## Per request, without handshakes\n");
    let _ = writeln!(out, "- load: HTTP/1.1 requests with the upgrade headers and one reused token, to a direct-response route (the filter runs in full; no upstream, no upgrade; one TCP connection per request, as Envoy closes it after the response), {} at a time, {} s per run after a 1 s warm-up, {} rounds in alternating order (medians), 1 Envoy worker{}", settings.concurrency, settings.seconds, settings.rounds,
        if settings.together {
            "; `--together`: both modules' Envoys run at once, each with its own connections, on the same CPU, so that each round's ratio is taken under the same machine conditions"
        } else {
            ""
        });
    let _ = writeln!(
        out,
        "- Envoy CPU per request: all of Envoy's threads, from `/proc/<pid>/task/*/schedstat`"
    );
    let _ = writeln!(
        out,
        "- {}",
        if pinned {
            "pinned: Envoy's threads on CPU 1, the load generator on CPU 0 (`taskset`), in every run"
        } else {
            "not pinned in every run (`taskset` or a second CPU missing, or a pin failed): Envoy and the load generator shared the CPUs"
        }
    );
    if perf {
        let _ = writeln!(out, "- split: `perf record -F 999` on Envoy during the first round, by where the code lives: WebAssembly (V8-compiled code), the Envoy binary (Envoy, V8's runtime and the host side of each proxy-wasm call), the kernel, the rest");
    } else {
        let _ = writeln!(out, "- split: not measured, `perf` was not found");
    }
    let _ = writeln!(out, "\n| configuration | alg | requests/s | Envoy CPU µs/request | vs jwt_authn | in Wasm µs | in Envoy µs | in kernel µs | other µs | failures |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for &(auth, alg) in cases {
        let (Some(r), Some(c)) = (rate(auth, alg), cpu(auth, alg)) else {
            continue;
        };
        // Uncached verifiers against uncached jwt_authn for the same algorithm; the rest
        // against jwt_authn with its cache.
        let baseline = match auth {
            Auth::JwtAuthn | Auth::Wsgate | Auth::WsgateHost | Auth::WsgateHostBaseline => {
                rate(Auth::JwtAuthn, alg)
            }
            _ => rate(Auth::JwtAuthnCached, Alg::Rs256),
        };
        let ratio = baseline.map_or("-".to_owned(), |b| format!("{:.2}x", r / b));
        let parts = split(auth, alg).map_or("- | - | - | -".to_owned(), |s| {
            format!(
                "{:.1} | {:.1} | {:.1} | {:.1}",
                s.wasm * c,
                s.envoy * c,
                s.kernel * c,
                s.other * c
            )
        });
        let failures: usize = runs
            .iter()
            .filter(|x| x.auth == auth && x.alg == alg)
            .map(|x| x.failures)
            .sum();
        let _ = writeln!(
            out,
            "| {} | {} | {r:.0} | {c:.1} | {ratio} | {parts} | {failures} |",
            auth.name(),
            alg.name()
        );
        bars.push(Bar {
            label: format!("{}, {}", auth.name(), alg.name()),
            value: c,
            kind: match auth {
                Auth::None | Auth::WasmFloor => Kind::Baseline,
                Auth::JwtAuthn | Auth::JwtAuthnCached => Kind::JwtAuthn,
                _ => Kind::Wsgate,
            },
        });
    }
    let _ = writeln!(out, "\nRatios: uncached verifiers against `jwt_authn` uncached with the same algorithm; the others against `jwt_authn` with its cache.\n");

    // Derived: one verification's cost, and what bounds the warm path.
    let _ = writeln!(out, "Signature verification, Envoy CPU per request uncached minus cached, each row from its own seconds, so with two runs' drift (side by side below, for Envoy's crypto and `jwt_authn`; RS256 cached stands in for every algorithm's non-verification work):\n");
    let _ = writeln!(
        out,
        "| alg | wsgate (WebAssembly) µs | wsgate (Envoy's crypto) µs | jwt_authn (BoringSSL) µs | ratio, WebAssembly | ratio, Envoy's crypto |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for alg in Alg::ALL {
        let wsgate = cpu(Auth::Wsgate, alg)
            .zip(cpu(Auth::WsgateCached, Alg::Rs256))
            .map(|(a, b)| a - b);
        let native = cpu(Auth::JwtAuthn, alg)
            .zip(cpu(Auth::JwtAuthnCached, Alg::Rs256))
            .map(|(a, b)| a - b);
        let host = cpu(Auth::WsgateHost, alg)
            .zip(cpu(Auth::WsgateCached, Alg::Rs256))
            .map(|(a, b)| a - b);
        if let Some(n) = native {
            let of = |value: Option<f64>| {
                value.map_or(("-".to_owned(), "-".to_owned()), |v| {
                    (format!("{v:.1}"), format!("{:.1}x", v / n.max(0.1)))
                })
            };
            let ((w, w_ratio), (host, host_ratio)) = (of(wsgate), of(host));
            let _ = writeln!(
                out,
                "| {} | {w} | {host} | {n:.1} | {w_ratio} | {host_ratio} |",
                alg.name(),
            );
        }
    }
    if let (Some(none), Some(floor), Some(authn), Some(warm)) = (
        cpu(Auth::None, Alg::Rs256),
        cpu(Auth::WasmFloor, Alg::Rs256),
        cpu(Auth::JwtAuthnCached, Alg::Rs256),
        cpu(Auth::WsgateCached, Alg::Rs256),
    ) {
        let _ = writeln!(out, "\nWarm path, Envoy CPU per request over no auth: `jwt_authn` with its cache {:+.1} µs; the wasm floor (a request through the Wasm filter that does nothing) {:+.1} µs; wsgate with its cache {:+.1} µs.", authn - none, floor - none, warm - none);
        if let (Some(f), Some(w), Some(n)) = (
            split(Auth::WasmFloor, Alg::Rs256),
            split(Auth::WsgateCached, Alg::Rs256),
            split(Auth::None, Alg::Rs256),
        ) {
            let _ = writeln!(out, "Of wsgate's warm request: {:.1} µs in WebAssembly, {:+.1} µs in the Envoy binary over no auth (the floor: {:.1} µs and {:+.1} µs).",
                w.wasm * warm, w.envoy * warm - n.envoy * none, f.wasm * floor, f.envoy * floor - n.envoy * none);
        }
    }
    // Each round ran every configuration: two rows' ratio round by round cancels what
    // drifts between rounds. Ratios that are not finite (a row with no CPU reading, or no
    // request served) are left out; the rest come lowest first.
    let by_round = |auth: Auth, baseline: Auth, alg: Alg, value: fn(&Run) -> f64| {
        let in_round = |round: usize, auth: Auth| {
            runs.iter()
                .find(|run| run.round == round && run.auth == auth && run.alg == alg)
                .map(value)
        };
        let mut ratios = (0..settings.rounds)
            .filter_map(|round| in_round(round, auth).zip(in_round(round, baseline)))
            .map(|(a, b)| a / b)
            .filter(|ratio| ratio.is_finite())
            .collect::<Vec<f64>>();
        ratios.sort_by(f64::total_cmp);
        ratios
    };
    for (this, base, path) in [
        (
            Auth::WsgateCached,
            Auth::WsgateCachedBaseline,
            "Warm path (cache on)",
        ),
        (
            Auth::WsgateHost,
            Auth::WsgateHostBaseline,
            "Cold path (cache off, Envoy's crypto: every request verifies)",
        ),
    ] {
        let (Some(now), Some(before)) = (cpu(this, Alg::Rs256), cpu(base, Alg::Rs256)) else {
            continue;
        };
        let over_none = cpu(Auth::None, Alg::Rs256).map_or(String::new(), |none| {
            format!(
                " ({:+.1} and {:+.1} µs over no auth)",
                now - none,
                before - none
            )
        });
        let paired = by_round(this, base, Alg::Rs256, |run| run.cpu_us);
        let paired_text = match (median_of(paired.clone()), paired.first(), paired.last()) {
            (Some(median), Some(low), Some(high)) => {
                format!("; round by round {median:.2}x (median), {low:.2}x to {high:.2}x")
            }
            _ => String::new(),
        };
        let _ = writeln!(out, "\n{path} against the baseline module, same rounds: Envoy CPU per request {now:.1} µs with this module, {before:.1} µs with the baseline{over_none}: {:.2}x the baseline's{paired_text}; requests/s {:.2}x the baseline's.",
            now / before,
            rate(this, Alg::Rs256).zip(rate(base, Alg::Rs256)).map_or(f64::NAN, |(a, b)| a / b));
    }
    let ratio = |auth: Auth, baseline: Auth, alg: Alg| {
        rate(auth, alg)
            .zip(rate(baseline, alg))
            .map(|(a, b)| a / b)
            .filter(|r| r.is_finite())
    };
    let verdict = |auth: Auth, baseline: Auth, alg: Alg, target: f64| {
        let Some(r) = ratio(auth, baseline, alg) else {
            return "-".to_owned();
        };
        let rounds = by_round(auth, baseline, alg, |run| run.rate);
        if rounds.is_empty() {
            return format!("{r:.2}x, unsettled: no round measured both");
        }
        let outcome = outcome(&rounds, target);
        match (rounds.first(), rounds.last()) {
            (Some(low), Some(high)) if rounds.len() > 1 => {
                format!("{r:.2}x (rounds {low:.2}x to {high:.2}x), {outcome}")
            }
            _ => format!("{r:.2}x, {outcome}"),
        }
    };
    let _ = writeln!(
        out,
        "\n#31's cold targets, Envoy CPU per request at most 1.15x `jwt_authn`'s (uncached, the same algorithm; each round's two runs one after the other): RS256 with Envoy's crypto {}; ES256 with Envoy's crypto {}.",
        at_most(by_round(Auth::WsgateHost, Auth::JwtAuthn, Alg::Rs256, |run| run.cpu_us), 1.15),
        at_most(by_round(Auth::WsgateHost, Auth::JwtAuthn, Alg::Es256, |run| run.cpu_us), 1.15),
    );
    let floor = ratio(Auth::WasmFloor, Auth::JwtAuthnCached, Alg::Rs256);
    let _ = writeln!(
        out,
        "\nThe targets measured this way (requests/s: the ratio of the medians, with the lowest and highest round's; met or missed only when every round agrees): cold RS256 with Envoy's crypto >= 0.9x `jwt_authn` uncached: {} (wasm crypto >= 0.5x: {}); cold ES256 with Envoy's crypto >= 0.8x: {} (ES384: {}; ES512: {}); warm >= 0.95x the wasm floor: {}; warm against `jwt_authn` cached: {}. The wasm floor reaches {} of `jwt_authn` cached{}.",
        verdict(Auth::WsgateHost, Auth::JwtAuthn, Alg::Rs256, 0.9),
        verdict(Auth::Wsgate, Auth::JwtAuthn, Alg::Rs256, 0.5),
        verdict(Auth::WsgateHost, Auth::JwtAuthn, Alg::Es256, 0.8),
        verdict(Auth::WsgateHost, Auth::JwtAuthn, Alg::Es384, 0.8),
        verdict(Auth::WsgateHost, Auth::JwtAuthn, Alg::Es512, 0.8),
        verdict(Auth::WsgateCached, Auth::WasmFloor, Alg::Rs256, 0.95),
        verdict(Auth::WsgateCached, Auth::JwtAuthnCached, Alg::Rs256, 1.0),
        floor.map_or("-".to_owned(), |r| format!("{r:.2}x")),
        match floor {
            Some(r) if r < 1.0 => ": no Wasm filter can reach 1.0x here",
            Some(_) => ": crossing into Wasm is not what bounds the warm path; wsgate's own work per request is",
            None => "",
        },
    );
    (out, bars)
}

#[cfg(test)]
mod tests {
    use super::{at_most, median_of, side_by_side_verdict, Alg, Auth, Run};

    fn run(round: usize, auth: Auth, rate: f64) -> Run {
        Run {
            round,
            auth,
            alg: Alg::Rs256,
            rate,
            cpu_us: 1e6 / rate,
            failures: 0,
            split: None,
        }
    }

    #[test]
    fn the_side_by_side_verdict_needs_every_round() {
        let pairs = |warm: [f64; 3]| {
            let mut runs = Vec::new();
            for (round, rate) in warm.into_iter().enumerate() {
                runs.push(run(round, Auth::WsgateCached, rate));
                runs.push(run(round, Auth::WasmFloor, 100.0));
            }
            side_by_side_verdict(&runs, 3)
        };
        let missed = pairs([69.0, 68.0, 72.0]);
        assert!(
            missed.contains("0.69x (median of 3 rounds, 0.68x to 0.72x), missed"),
            "{missed}"
        );
        assert!(missed.contains("Envoy CPU per request 1.45x"), "{missed}");
        assert!(pairs([96.0, 99.0, 95.0]).contains(", met;"));
        assert!(pairs([96.0, 90.0, 95.0]).contains(", unsettled: 2 of 3 rounds reach it;"));
        assert!(side_by_side_verdict(&[], 3).contains("no round measured both"));
    }

    #[test]
    fn a_cost_target_holds_only_when_every_round_is_within_it() {
        assert_eq!(
            at_most(vec![1.3, 1.1, 1.2], 1.25),
            "1.20x (rounds 1.10x to 1.30x), unsettled: 2 of 3 rounds within it"
        );
        assert!(at_most(vec![1.2, 1.1], 1.25).ends_with(", met"));
        assert!(at_most(vec![1.3, f64::NAN], 1.25).ends_with(", missed"));
        assert_eq!(at_most(vec![], 1.25), "-");
    }

    #[test]
    fn medians_of_odd_even_and_no_values() {
        assert_eq!(median_of(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median_of(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median_of(vec![]), None);
    }
}
