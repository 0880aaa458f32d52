//! The docs cannot drift from the code or from each other: the configuration table lists
//! exactly the fields the parser accepts, every deny reason and stat is documented, the README
//! stays a short map (at most 200 lines, opening with the two commands), and every relative
//! link of the docs reaches a file, and a heading where it names one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wsgate::deny::DenyReason;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the repository, by its path from the root.
fn doc(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
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
    let documented = table_names(&doc("docs/configuration.md"), "Configuration");
    let accepted: BTreeSet<String> = wsgate::config::fields()
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(
        documented, accepted,
        "docs/configuration.md's Configuration table vs config::fields()"
    );
}

#[test]
fn every_deny_reason_and_stat_is_documented() {
    let text = doc("docs/observability.md");
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
        assert!(covered, "stat {stat} missing from docs/observability.md");
    }
}

#[test]
fn the_readme_is_a_short_map_that_opens_with_the_two_commands() {
    let readme = doc("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines: the rest belongs in docs/"
    );
    let first_block = readme.split("```").nth(1).expect("a code block at the top");
    assert!(
        first_block.contains("make demo") && first_block.contains("make test"),
        "the README opens with `make demo` and `make test`:\n{first_block}"
    );
    for target in [
        "docs/configuration.md",
        "docs/deploying.md",
        "docs/observability.md",
        "docs/performance.md",
        "docs/migrating.md",
        "docs/architecture.md",
        "CONTRIBUTING.md",
        "SECURITY.md",
    ] {
        assert!(
            readme.contains(&format!("]({target})")),
            "the README's map lacks {target}"
        );
    }
}

/// GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces as
/// `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// Every `](target)` of a Markdown text that is not a web address.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.starts_with("http://") && !target.starts_with("https://"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_relative_link_of_the_docs_reaches_its_file_and_heading() {
    let mut files: Vec<PathBuf> = ["README.md", "SECURITY.md", "CONTRIBUTING.md"]
        .iter()
        .map(|name| root().join(name))
        .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 6, "docs/ holds {docs:?}");
    files.extend(docs);
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let dir = file.parent().unwrap();
        for link in relative_links(&text) {
            checked += 1;
            let (path, fragment) = link.split_once('#').unwrap_or((link.as_str(), ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", file.display()));
                continue;
            }
            if !fragment.is_empty() {
                let text = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&text).contains(fragment) {
                    broken.push(format!("{}: {link} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 50, "only {checked} links read");
}

/// Every repository path a doc names in backticks (`src/filter/stream.rs`) exists, so that a
/// walk through the code cannot name a file that moved.
#[test]
fn every_file_the_docs_name_exists() {
    let mut names = Vec::new();
    let mut files = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    files.extend(
        std::fs::read_dir(root().join("docs"))
            .expect("docs/")
            .flatten()
            .map(|entry| entry.path()),
    );
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (index, piece) in text.split('`').enumerate() {
            let named = index % 2 == 1
                && [
                    "src/",
                    "tests/",
                    "testbed/",
                    "envoy/",
                    "scripts/",
                    "fuzz/",
                    "examples/",
                ]
                .iter()
                .any(|top| piece.starts_with(top))
                && !piece.contains([' ', '*', '<', '{']);
            if named {
                // `file.rs::test_name` and `file.rs:12` name the file.
                let path = piece.split("::").next().unwrap_or(piece);
                let path = path.split(':').next().unwrap_or(path);
                names.push((file.clone(), path.trim_end_matches('/').to_owned()));
            }
        }
    }
    let missing: Vec<String> = names
        .iter()
        .filter(|(_, path)| !root().join(path).exists())
        .map(|(file, path)| format!("{}: {path}", file.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "named but missing:\n{}",
        missing.join("\n")
    );
    assert!(names.len() > 30, "only {} paths read", names.len());
}
