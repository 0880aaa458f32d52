//! The folders of `src/` are held to a declared layering: each may use only folders of a lower
//! layer, so no import cycle can form between them. The test reads every `crate::` path in
//! production code (comments and test code left out) and names each one that breaks the
//! order; a folder the list does not place fails too, so a new one is placed on purpose.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};

use testbed::envoy::workspace_root;

/// Lowest first. A folder (or top-level file) may use those of lower layers only.
const LAYERS: &[&[&str]] = &[
    // Leaves: they use nothing of the crate.
    &[
        "encoding",
        "deny",
        "provider",
        "host",
        "sockets",
        "shared",
        "bench_repeat",
    ],
    // The request as the core sees it; the signature backends; the shared socket counts.
    &["request", "signature", "quota"],
    // Key sets, their fetching and sharing.
    &["keys"],
    // The token: where it is, its form, its claims, its verification, the cache.
    &["token"],
    // The gate and its one outcome: rules, upstream edits, the record, the stats.
    &["decision"],
    // The configuration, which builds every type above from the document.
    &["config"],
    // The proxy-wasm glue.
    &["filter"],
];

fn layer_of(folder: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&folder))
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push(path);
        }
    }
}

/// Whether `relative` (under `src/`) holds only tests: a `tests.rs`, or a file in a `tests`
/// folder (the one convention for tests too long to sit at the end of their file).
fn is_test_file(relative: &Path) -> bool {
    let name = relative.file_stem().unwrap().to_string_lossy();
    name == "tests"
        || relative
            .components()
            .any(|part| part.as_os_str() == "tests")
}

/// The production code of a file: without its inline `mod tests { ... }` (always last) and
/// without comments.
fn production_code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every folder named by a `crate::<folder>` path in `code`.
fn used_folders(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .filter(|(at, _)| {
            // `crate::`, not part of a longer name such as `testbed_crate::`.
            !code[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .collect()
}

#[test]
fn src_folders_use_only_lower_layers() {
    let src = workspace_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    let mut unplaced = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative == Path::new("lib.rs") || is_test_file(relative) {
            continue;
        }
        let first = relative.components().next().unwrap().as_os_str();
        let folder = first.to_string_lossy().trim_end_matches(".rs").to_owned();
        let Some(own) = layer_of(&folder) else {
            unplaced.push(folder);
            continue;
        };
        let code = production_code(&fs::read_to_string(file).unwrap());
        assert!(
            !code.contains("crate::{"),
            "{}: a grouped `crate::{{...}}` import hides what it uses; name each path",
            relative.display()
        );
        for used in used_folders(&code) {
            checked += 1;
            if used == folder {
                continue;
            }
            match layer_of(&used) {
                Some(layer) if layer < own => {}
                Some(_) => broken.push(format!("{} uses crate::{used}", relative.display())),
                None => unplaced.push(used),
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "folders of src/ that LAYERS does not place: {unplaced:?}"
    );
    assert!(
        broken.is_empty(),
        "uses against the layering (a folder may use only lower layers):\n{}",
        broken.join("\n")
    );
    // The scan saw the code it guards: every layer above the leaves uses a lower one.
    assert!(checked > 100, "only {checked} crate:: paths read");
}

/// The scan itself: it finds a path, and skips comments and test modules.
#[test]
fn the_scan_reads_code_and_skips_comments_and_tests() {
    let code = production_code(
        "use crate::token::jws;\n// crate::filter in a comment\nfn f() { crate::keys::x(); }\n\
         #[cfg(test)]\nmod tests {\n    use crate::config::Config;\n}\n",
    );
    assert_eq!(used_folders(&code), ["token", "keys"]);
    assert!(is_test_file(Path::new("decision/gate/tests/providers.rs")));
    assert!(is_test_file(Path::new("config/tests/mod.rs")));
    assert!(!is_test_file(Path::new("decision/gate.rs")));
}
