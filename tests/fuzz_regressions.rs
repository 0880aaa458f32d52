//! Every fuzz seed (`fuzz/seeds/<target>/`) and every saved fuzz failure
//! (`fuzz/regressions/<target>/`) through its target's property (`fuzz/properties.rs`), so
//! that `make test` replays what `make fuzz` once found, without cargo-fuzz.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../fuzz/properties.rs"]
mod properties;

use std::path::Path;

#[test]
fn every_seed_and_saved_failure_holds_its_property() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (target, property) in properties::TARGETS {
        let mut seeds = 0;
        for dir in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                assert_eq!(dir, "regressions", "{target} has no seeds");
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let input = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| property(&input));
                assert!(
                    outcome.is_ok(),
                    "{}: the property of {target} fails",
                    path.display()
                );
                replayed += 1;
                seeds += usize::from(dir == "seeds");
            }
        }
        assert!(seeds > 0, "{target} has no seeds");
    }
    eprintln!("{replayed} fuzz inputs replayed");
}

/// The cases each property is built around hold: the seed token is accepted as itself,
/// every base RSA signature verifies in both implementations, a status other than 200 is
/// refused.
#[test]
fn the_base_cases_hold() {
    let seed =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/token/valid.txt"))
            .unwrap();
    assert!(
        properties::token_accepted(&seed),
        "the seed token is accepted"
    );
    // rsa_differential: the unedited base signature of each key verifies.
    for selector in 0..18u8 {
        properties::rsa_differential(&[selector]);
    }
    // discovery: the status is fuzzed, and only a 200 passes.
    properties::discovery(b"\x00{}");
    properties::discovery(b"\x04{}");
}
