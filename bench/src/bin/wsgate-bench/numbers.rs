//! Reading rounds of measurements: medians, and a target's verdict that holds only when
//! every round agrees.

/// A target's verdict from its per-round ratios: met or missed only when every round agrees
/// (one run's median can land on either side of a target within this machine's noise).
pub fn outcome(rounds: &[f64], target: f64) -> String {
    match rounds.iter().filter(|&&round| round >= target).count() {
        0 => "missed".to_owned(),
        all if all == rounds.len() => "met".to_owned(),
        some => format!("unsettled: {some} of {} rounds reach it", rounds.len()),
    }
}

/// A cost target's verdict (#31: Envoy CPU per request at most `target` times a baseline's)
/// from its per-round ratios, met or missed only when every round agrees; with the median
/// and the range, lowest first.
pub fn at_most(mut rounds: Vec<f64>, target: f64) -> String {
    rounds.retain(|ratio| ratio.is_finite());
    rounds.sort_by(f64::total_cmp);
    let (Some(median), Some(low), Some(high)) =
        (median_of(rounds.clone()), rounds.first(), rounds.last())
    else {
        return "-".to_owned();
    };
    let within = rounds.iter().filter(|&&round| round <= target).count();
    let verdict = match within {
        0 => "missed".to_owned(),
        all if all == rounds.len() => "met".to_owned(),
        some => format!("unsettled: {some} of {} rounds within it", rounds.len()),
    };
    format!("{median:.2}x (rounds {low:.2}x to {high:.2}x), {verdict}")
}

/// The median of `values`; `None` when there are none.
pub fn median_of(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values.get(middle).copied()
    } else {
        values
            .get(middle.wrapping_sub(1))
            .zip(values.get(middle))
            .map(|(a, b)| (a + b) / 2.0)
    }
}
