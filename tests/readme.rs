//! The README's references cannot drift from the code: the configuration table lists exactly
//! the fields the parser accepts, and every deny reason and stat is documented.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use wsgate::deny::DenyReason;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The first backticked word of each table row in the section headed `heading`.
fn table_names(text: &str, heading: &str) -> BTreeSet<String> {
    let section = text
        .split("\n## ")
        .find(|section| section.starts_with(heading))
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_configuration_table_lists_exactly_the_accepted_fields() {
    let documented = table_names(&readme(), "Configuration");
    let accepted: BTreeSet<String> = wsgate::config::fields()
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(
        documented, accepted,
        "README's Configuration table vs config::fields()"
    );
}

#[test]
fn every_deny_reason_and_stat_is_documented() {
    let text = readme();
    let documented = table_names(&text, "Logs, access logs and stats");
    for reason in DenyReason::ALL {
        assert!(
            documented.contains(reason.name()),
            "deny reason {} missing",
            reason.name()
        );
    }
    for stat in wsgate::decision::stats::counters()
        .into_iter()
        .chain([wsgate::decision::stats::JWKS_KEYS.to_owned()])
    {
        let covered = documented.contains(&format!("wasmcustom.{stat}"))
            || (stat.starts_with("wsgate.denied.")
                && documented.contains("wasmcustom.wsgate.denied.<reason>"));
        assert!(covered, "stat {stat} missing from the README");
    }
}
