//! Every measured figure the docs publish names the committed file it comes from, and that
//! file holds it: a paragraph (or table row) of README.md, SECURITY.md or `docs/` with a
//! figure in µs or as a ratio (`1.2×`, `0.69x`) must cite a result file under
//! `bench/results/` or a test under `tests/` (or `examples/`), each cited file must exist,
//! and each figure's numbers must appear in one of them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The docs whose figures are checked.
fn docs() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md"), root().join("SECURITY.md")];
    if let Ok(entries) = std::fs::read_dir(root().join("docs")) {
        docs.extend(entries.flatten().map(|entry| entry.path()));
    }
    docs
}

/// Paragraphs (blank-line separated) and table rows, each with its first line's number.
fn units(text: &str) -> Vec<(usize, String)> {
    let mut units = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('|') {
            if !current.is_empty() {
                units.push((start, std::mem::take(&mut current)));
            }
            units.push((index + 1, line.to_owned()));
        } else if line.trim().is_empty() {
            if !current.is_empty() {
                units.push((start, std::mem::take(&mut current)));
            }
        } else {
            if current.is_empty() {
                start = index + 1;
            }
            current.push_str(line);
            current.push('\n');
        }
    }
    if !current.is_empty() {
        units.push((start, current));
    }
    units
}

/// The measured figures of `text`: each number (or range of numbers) directly before `µs`,
/// `×` or `x`, as the numbers it holds.
fn figures(text: &str) -> Vec<(String, Vec<String>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let times = matches!(chars[index], '×' | 'x')
            && index > 0
            && (chars[index - 1].is_ascii_digit() || chars[index - 1] == ' ')
            && chars
                .get(index + 1)
                .map_or(true, |c| !c.is_alphanumeric() && *c != '`');
        let micro = chars[index] == 'µ' && chars.get(index + 1) == Some(&'s');
        // `×1.07`: a factor written before its number.
        if chars[index] == '×' && chars.get(index + 1).is_some_and(char::is_ascii_digit) {
            let number: String = chars[index + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == '.')
                .collect();
            let number = number.trim_end_matches('.').to_owned();
            found.push((format!("×{number}"), vec![number]));
            index += 1;
            continue;
        }
        if times || micro {
            // The number, or range, before the unit: one space allowed before it.
            let mut start = index;
            if start > 0 && chars[start - 1] == ' ' {
                start -= 1;
            }
            let end = start;
            while start > 0
                && (chars[start - 1].is_ascii_digit()
                    || matches!(chars[start - 1], '.' | '–' | '−' | '+'))
            {
                start -= 1;
            }
            let figure: String = chars[start..end].iter().collect();
            let numbers: Vec<String> = figure
                .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .map(|number| number.trim_matches('.'))
                .filter(|number| number.chars().any(|c| c.is_ascii_digit()))
                .map(str::to_owned)
                .collect();
            // A count (`2×` a setting) is no measurement: figures have a decimal point or
            // two digits.
            if numbers.iter().any(|number| number.len() >= 2) {
                let unit = if micro { " µs" } else { "×" };
                found.push((format!("{figure}{unit}"), numbers));
            }
        }
        index += 1;
    }
    found
}

/// The files a unit cites: `bench/results/…`, `tests/…` and `examples/…` paths, or a bare
/// result-file name (`2026-11-29-3.md`), which is under `bench/results/`.
fn cited(text: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || "()[]`,;:".contains(c)) {
        let word = word.trim_end_matches('.');
        let path = if word.starts_with("bench/results/")
            || word.starts_with("tests/")
            || word.starts_with("examples/")
        {
            root().join(word)
        } else if word.len() > 10 && word.starts_with("20") && word.ends_with(".md") {
            root().join("bench/results").join(word)
        } else {
            continue;
        };
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files
}

/// Whether `text` holds `number` as a whole number: not inside a longer one (`1.2` is not
/// in `11.25`, `29` not in `2026-11-29`).
fn holds_number(text: &str, number: &str) -> bool {
    let digitish = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == '.');
    text.match_indices(number).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let mut after = text[at + number.len()..].chars();
        let (next, then) = (after.next(), after.next());
        let continues = next.is_some_and(|c| c.is_ascii_digit())
            || (next == Some('.') && then.is_some_and(|c| c.is_ascii_digit()));
        !digitish(before) && before != Some('-') && !continues
    })
}

#[test]
fn every_published_figure_names_a_file_that_holds_it() {
    let mut problems = Vec::new();
    for doc in docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for (line, unit) in units(&text) {
            let figures = figures(&unit);
            if figures.is_empty() {
                continue;
            }
            let files = cited(&unit);
            if files.is_empty() {
                problems.push(format!(
                    "{name}:{line}: {:?} cite no result file or test",
                    figures.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>()
                ));
                continue;
            }
            let mut contents = String::new();
            for file in &files {
                match std::fs::read_to_string(file) {
                    Ok(text) => contents.push_str(&text),
                    Err(_) => {
                        problems.push(format!("{name}:{line}: {} is missing", file.display()))
                    }
                }
            }
            for (figure, numbers) in &figures {
                for number in numbers {
                    if !holds_number(&contents, number) {
                        problems.push(format!(
                            "{name}:{line}: {figure}: {number} is in none of {:?}",
                            files
                                .iter()
                                .map(|file| file.strip_prefix(root()).unwrap_or(file).display())
                                .collect::<Vec<_>>()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} figure problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_figure_finder_finds_figures() {
    let found = figures("costs 1.13–1.36× and 145 µs, 0.69x, ×1.07; 2×`refresh`; 4 KiB");
    let shown: Vec<&str> = found.iter().map(|(figure, _)| figure.as_str()).collect();
    assert_eq!(shown, ["1.13–1.36×", "145 µs", "0.69×", "×1.07"]);
    assert_eq!(found[0].1, ["1.13", "1.36"]);
    assert!(holds_number("a 1.2x b", "1.2") && holds_number("(1.2)", "1.2"));
    assert!(!holds_number("11.25 and 1.25", "1.2") && !holds_number("2026-11-29", "29"));
}
