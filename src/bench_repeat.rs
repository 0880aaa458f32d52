//! Bench-only builds that price one step of a request by doing it again.
//!
//! Each `bench-repeat-*` feature of `Cargo.toml` (never shipped) makes one step of the
//! request path (a host call, a parse, a lookup) run [`REPEATS`] more times, its result
//! thrown away. `scripts/price-host-calls.sh` runs such a build against the whole module in
//! the same `make bench` run: the extra Envoy CPU per request over [`REPEATS`] is what the
//! step costs (with warm caches, so at the low end of what it costs once). In every other
//! build the feature is off and the compiler drops the repeat.

use std::hint::black_box;

/// How many more times a priced step runs.
pub const REPEATS: usize = 10;

/// The shared-data entry (8 bytes, as a key set's version) `bench-repeat-shared-read` reads.
pub const SHARED_ENTRY: &str = "wsgate-bench/version";

/// `step`'s result, `step` having run [`REPEATS`] more times before when `priced` (a
/// `cfg!(feature = "bench-repeat-…")`): the step priced is the step shipped.
#[inline(always)]
pub fn priced<T>(priced: bool, mut step: impl FnMut() -> T) -> T {
    again(priced, &mut step);
    step()
}

/// Runs `step` [`REPEATS`] more times when `priced`, keeping the compiler from dropping its
/// work; for work the module does not otherwise do (a bench-only read, or an insert priced
/// where the bench has a cache).
#[inline(always)]
pub fn again<T>(priced: bool, mut step: impl FnMut() -> T) {
    if priced {
        for _ in 0..REPEATS {
            black_box(step());
        }
    }
}
