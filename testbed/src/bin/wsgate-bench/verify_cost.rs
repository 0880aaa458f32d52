//! What one signature verification costs each verifier, measured side by side.
//!
//! Part two's table gives each configuration's CPU per request from its own seconds, so a
//! verification's cost read from it (an uncached row minus a cached one) carries two runs'
//! drift: over six runs, Envoy's `verify_signature` read 0.8x to 3.4x `jwt_authn`'s. Here
//! each round loads an uncached configuration and the same filter with its cache in two
//! Envoys at once on the same CPU, so the difference of the two is one verification (and the
//! token's parsing) taken over the same seconds: wsgate with Envoy's crypto against wsgate
//! cached, and `jwt_authn` against `jwt_authn` cached. Each pair is one filter, WebAssembly
//! or native, never one of each (sharing a CPU does not treat V8 and no V8 alike).
//!
//! Pairing unequal work has its own bias: the lighter Envoy of a pair reads heavier the
//! heavier its partner (in the first run, `jwt_authn` cached read 53–61 µs per request
//! beside `jwt_authn` RS256, 65–106 µs beside ES256), so each difference reads low. The
//! figure to read is the ratio of two differences taken alike, round by round.

use std::fmt::Write as _;

use crate::measure::Measure;
use crate::per_request::{median_of, Alg, Run};
use crate::Auth;

/// Uncached, then the same filter cached (the cached request's token is RS256: a cache hit
/// does not look at the algorithm).
const PAIRS: [((Auth, Alg), (Auth, Alg)); 4] = [
    (
        (Auth::WsgateHost, Alg::Rs256),
        (Auth::WsgateCached, Alg::Rs256),
    ),
    (
        (Auth::JwtAuthn, Alg::Rs256),
        (Auth::JwtAuthnCached, Alg::Rs256),
    ),
    (
        (Auth::WsgateHost, Alg::Es256),
        (Auth::WsgateCached, Alg::Rs256),
    ),
    (
        (Auth::JwtAuthn, Alg::Es256),
        (Auth::JwtAuthnCached, Alg::Rs256),
    ),
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

/// Every pair, once, in round `round` (in reverse order on odd rounds).
pub fn round(measure: &Measure<'_>, round: usize, pinned: &mut bool) -> Vec<Paired> {
    let mut pairs = PAIRS.to_vec();
    if round % 2 == 1 {
        pairs.reverse();
    }
    let mut measured = Vec::new();
    for (uncached, cached) in pairs {
        let group = if round % 2 == 1 {
            [cached, uncached]
        } else {
            [uncached, cached]
        };
        let mut runs = measure.group(&group, round, false, pinned).into_iter();
        let (Some(first), Some(second)) = (runs.next(), runs.next()) else {
            continue;
        };
        let (uncached, cached) = if round % 2 == 1 {
            (second, first)
        } else {
            (first, second)
        };
        measured.push(Paired {
            round,
            uncached,
            cached,
        });
    }
    measured
}

/// The report's paragraph: per algorithm, one verification through wsgate with Envoy's
/// crypto and through `jwt_authn`, each the median over rounds of its pair's difference, and
/// the ratio of the two round by round.
pub fn report(paired: &[Paired], rounds: usize) -> String {
    let costs = |auth: Auth, alg: Alg| -> Vec<(usize, f64)> {
        paired
            .iter()
            .filter(|p| p.uncached.auth == auth && p.uncached.alg == alg)
            .map(|p| (p.round, p.cost_us()))
            .filter(|(_, cost)| cost.is_finite())
            .collect()
    };
    let mut out = String::new();
    let _ = writeln!(out, "\nOne signature verification side by side (each round an uncached configuration and the same filter with its cache, in two Envoys loaded at once on the same CPU; the difference in Envoy CPU per request is one verification and the token's parsing, read low as the cached Envoy reads heavier beside a heavier one; medians over rounds, with the lowest and highest):\n");
    let _ = writeln!(
        out,
        "| alg | wsgate, Envoy's crypto µs | jwt_authn µs | ratio, round by round |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    for alg in [Alg::Rs256, Alg::Es256] {
        let host = costs(Auth::WsgateHost, alg);
        let native = costs(Auth::JwtAuthn, alg);
        let ratios: Vec<f64> = (0..rounds)
            .filter_map(|round| {
                let of = |costs: &[(usize, f64)]| {
                    costs
                        .iter()
                        .find(|(r, _)| *r == round)
                        .map(|(_, cost)| *cost)
                };
                of(&host).zip(of(&native))
            })
            .map(|(host, native)| host / native)
            .filter(|ratio| ratio.is_finite() && *ratio > 0.0)
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            alg.name(),
            spread(host.iter().map(|(_, cost)| *cost).collect(), ""),
            spread(native.iter().map(|(_, cost)| *cost).collect(), ""),
            spread(ratios, "x"),
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
    use crate::per_request::{Alg, Run};
    use crate::Auth;

    fn run(round: usize, auth: Auth, alg: Alg, cpu_us: f64) -> Run {
        Run {
            round,
            auth,
            alg,
            rate: 1e6 / cpu_us,
            cpu_us,
            failures: 0,
            split: None,
        }
    }

    fn pair(round: usize, auth: Auth, alg: Alg, uncached: f64, cached: f64) -> Paired {
        let cached_auth = if auth == Auth::JwtAuthn {
            Auth::JwtAuthnCached
        } else {
            Auth::WsgateCached
        };
        Paired {
            round,
            uncached: run(round, auth, alg, uncached),
            cached: run(round, cached_auth, Alg::Rs256, cached),
        }
    }

    #[test]
    fn each_verifier_costs_its_pairs_difference_and_the_ratio_is_per_round() {
        let paired = [
            pair(0, Auth::WsgateHost, Alg::Rs256, 200.0, 120.0),
            pair(0, Auth::JwtAuthn, Alg::Rs256, 120.0, 100.0),
            pair(1, Auth::WsgateHost, Alg::Rs256, 210.0, 120.0),
            pair(1, Auth::JwtAuthn, Alg::Rs256, 130.0, 100.0),
        ];
        let text = report(&paired, 2);
        assert!(
            text.contains(
                "| RS256 | 85.0 (80.0 to 90.0) | 25.0 (20.0 to 30.0) | 3.50x (3.00x to 4.00x) |"
            ),
            "{text}"
        );
        assert!(text.contains("| ES256 | - | - | - |"), "{text}");
    }
}
