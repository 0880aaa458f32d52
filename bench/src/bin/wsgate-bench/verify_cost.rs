//! What one signature verification costs each verifier, measured side by side.
//!
//! Part two's table gives each configuration's CPU per request from its own seconds, so a
//! verification's cost read from it (an uncached row minus a cached one) carries two runs'
//! drift: over six runs, Envoy's `verify_signature` read 0.8x to 3.4x `jwt_authn`'s. Here
//! each round loads an uncached configuration and the same filter with its cache, on the
//! same token, in two Envoys at once on the same CPU, so the difference of the two is one
//! verification and the token's parsing, taken over the same seconds: wsgate with Envoy's
//! crypto against wsgate cached, and `jwt_authn` against `jwt_authn` cached. Each pair is
//! one filter, WebAssembly or native, never one of each (sharing a CPU does not treat V8
//! and no V8 alike).
//!
//! Pairing unequal work has a bias of its own: an Envoy's CPU per request can read
//! differently beside a heavier partner than alone, and the two pairs' partners differ, so
//! the ratio of their differences is not free of it. Which way it leans is not known; the
//! report prints every round's readings so that it can be judged.

use std::fmt::Write as _;

use crate::cases::Alg;
use crate::cases::Auth;
use crate::measure::Measure;
use crate::measure::Run;
use crate::numbers::median_of;

/// Uncached, then the same filter cached, on the same algorithm's token.
const PAIRS: [(Auth, Auth, Alg); 4] = [
    (Auth::WsgateHost, Auth::WsgateCached, Alg::Rs256),
    (Auth::JwtAuthn, Auth::JwtAuthnCached, Alg::Rs256),
    (Auth::WsgateHost, Auth::WsgateCached, Alg::Es256),
    (Auth::JwtAuthn, Auth::JwtAuthnCached, Alg::Es256),
];

/// One round of one pair: the uncached run and the cached one, loaded at once.
pub struct Paired {
    round: usize,
    uncached: Run,
    cached: Run,
}

impl Paired {
    /// Envoy CPU per request, uncached minus cached: one verification and its parsing.
    fn cost_us(&self) -> f64 {
        self.uncached.cpu_us - self.cached.cpu_us
    }

    pub fn failures(&self) -> usize {
        self.uncached.failures + self.cached.failures
    }
}

/// Every pair, once, in round `round` (pairs and each pair's order reversed on odd rounds).
pub fn round(measure: &Measure<'_>, round: usize, pinned: &mut bool) -> Vec<Paired> {
    let reversed = round % 2 == 1;
    let mut pairs = PAIRS.to_vec();
    if reversed {
        pairs.reverse();
    }
    let mut measured = Vec::new();
    for (uncached, cached, alg) in pairs {
        let mut group = [(uncached, alg), (cached, alg)];
        if reversed {
            group.reverse();
        }
        let mut runs = measure.group(&group, round, false, pinned);
        let mut take = |auth: Auth| {
            let at = runs.iter().position(|run| run.auth == auth)?;
            Some(runs.swap_remove(at))
        };
        if let (Some(uncached), Some(cached)) = (take(uncached), take(cached)) {
            measured.push(Paired {
                round,
                uncached,
                cached,
            });
        }
    }
    measured
}

/// The report's section: per algorithm, one verification through wsgate with Envoy's
/// crypto and through `jwt_authn` (each the median over rounds of its pair's difference),
/// the ratio of the two round by round, and every round's readings.
pub fn report(paired: &[Paired], rounds: usize) -> String {
    let cost = |auth: Auth, alg: Alg, round: usize| {
        paired
            .iter()
            .find(|p| p.uncached.auth == auth && p.uncached.alg == alg && p.round == round)
            .map(Paired::cost_us)
            .filter(|cost| cost.is_finite())
    };
    let mut out = String::new();
    let _ = writeln!(out, "\nOne signature verification side by side (each round an uncached configuration and the same filter with its cache, on the same token, in two Envoys loaded at once on the same CPU; the difference in Envoy CPU per request is one verification and the token's parsing; medians over rounds, with the lowest and highest; a ratio only from rounds where both differences are positive):\n");
    let _ = writeln!(
        out,
        "| alg | wsgate, Envoy's crypto µs | jwt_authn µs | ratio, round by round |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    for alg in [Alg::Rs256, Alg::Es256] {
        let host: Vec<f64> = (0..rounds)
            .filter_map(|r| cost(Auth::WsgateHost, alg, r))
            .collect();
        let native: Vec<f64> = (0..rounds)
            .filter_map(|r| cost(Auth::JwtAuthn, alg, r))
            .collect();
        let ratios: Vec<f64> = (0..rounds)
            .filter_map(|r| cost(Auth::WsgateHost, alg, r).zip(cost(Auth::JwtAuthn, alg, r)))
            .filter(|(host, native)| *host > 0.0 && *native > 0.0)
            .map(|(host, native)| host / native)
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            alg.name(),
            spread(host, ""),
            spread(native, ""),
            spread(ratios, "x"),
        );
    }
    let _ = writeln!(
        out,
        "\n| round | uncached | cached | alg | uncached µs | cached µs | difference µs |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for p in paired {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            p.round,
            p.uncached.auth.name(),
            p.cached.auth.name(),
            p.uncached.alg.name(),
            p.uncached.cpu_us,
            p.cached.cpu_us,
            p.cost_us()
        );
    }
    out
}

/// `median (low to high)` of `values`, each with `unit`; `-` when there are none.
fn spread(mut values: Vec<f64>, unit: &str) -> String {
    values.sort_by(f64::total_cmp);
    let precision = if unit.is_empty() { 1 } else { 2 };
    match (median_of(values.clone()), values.first(), values.last()) {
        (Some(median), Some(low), Some(high)) if values.len() > 1 => format!(
            "{median:.precision$}{unit} ({low:.precision$}{unit} to {high:.precision$}{unit})"
        ),
        (Some(median), _, _) => format!("{median:.precision$}{unit}"),
        _ => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{report, Paired};
    use crate::cases::Alg;
    use crate::cases::Auth;
    use crate::measure::Run;

    fn pair(round: usize, auth: Auth, uncached: f64, cached: f64) -> Paired {
        let run = |auth, cpu_us| Run {
            round,
            auth,
            alg: Alg::Rs256,
            rate: 1e6 / cpu_us,
            cpu_us,
            failures: 0,
            split: None,
        };
        let cached_auth = if auth == Auth::JwtAuthn {
            Auth::JwtAuthnCached
        } else {
            Auth::WsgateCached
        };
        Paired {
            round,
            uncached: run(auth, uncached),
            cached: run(cached_auth, cached),
        }
    }

    #[test]
    fn each_verifier_costs_its_pairs_difference_and_the_ratio_is_per_round() {
        let paired = [
            pair(0, Auth::WsgateHost, 200.0, 120.0),
            pair(0, Auth::JwtAuthn, 120.0, 100.0),
            pair(1, Auth::WsgateHost, 210.0, 120.0),
            pair(1, Auth::JwtAuthn, 130.0, 100.0),
            // A round whose native difference came out negative gives no ratio.
            pair(2, Auth::WsgateHost, 200.0, 120.0),
            pair(2, Auth::JwtAuthn, 95.0, 100.0),
        ];
        let text = report(&paired, 3);
        assert!(
            text.contains(
                "| RS256 | 80.0 (80.0 to 90.0) | 20.0 (-5.0 to 30.0) | 3.50x (3.00x to 4.00x) |"
            ),
            "{text}"
        );
        assert!(text.contains("| ES256 | - | - | - |"), "{text}");
        assert!(
            text.contains("| 1 | wsgate, cache off, Envoy's crypto | wsgate, cache on | RS256 | 210.0 | 120.0 | 90.0 |"),
            "{text}"
        );
    }
}
