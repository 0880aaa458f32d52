//! Writing a result: the file name of the day, the machine and Envoy it ran on, the commit,
//! the charts, and the Markdown file itself.

use std::path::Path;

use testbed::envoy::{self, EnvoyBinary};

use crate::chart;

/// What every result file opens with: the machine, Envoy, the modules and the commit.
pub struct Header<'a> {
    pub binary: &'a EnvoyBinary,
    pub module: &'a Path,
    pub baseline: Option<&'a Path>,
}

impl Header<'_> {
    /// The title (`part` names a part run alone; empty for a whole run) and the facts.
    pub fn text(&self, part: &str) -> String {
        let title = match part {
            "" => format!("# wsgate benchmark, {}", testbed::today()),
            part => format!("# wsgate benchmark, {part}, {}", testbed::today()),
        };
        let bytes = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let baseline = self.baseline.map_or(String::new(), |path| {
            format!(
                "; baseline module: {} ({} bytes)",
                path.display(),
                bytes(path)
            )
        });
        format!(
            "{title}\n\n- machine: {} cores, {}\n- Envoy: {} ({}), log level {}\n- module: {} bytes{baseline}\n- commit: {}\n",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model(),
            envoy_version(self.binary),
            self.binary.source,
            envoy::log_level(),
            bytes(self.module),
            commit(),
        )
    }
}

/// Prints `report` and writes it as `STEM.md` in `dir` (saying so, or why it could not).
pub fn publish(dir: &Path, stem: &str, report: &str) {
    println!("{report}");
    let file = dir.join(format!("{stem}.md"));
    match std::fs::write(&file, report) {
        Ok(()) => eprintln!("bench: wrote {}", file.display()),
        Err(error) => eprintln!("bench: could not write {}: {error}", file.display()),
    }
}

/// The commit the bench runs at (with `+changes` when the tree differs), for the result.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(envoy::workspace_root())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head}+changes"),
        _ => head,
    }
}

fn envoy_version(binary: &EnvoyBinary) -> String {
    binary
        .command(&["--version"])
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let after = text
                .split("version: ")
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            after
                .split('/')
                .take(4)
                .skip(1)
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_else(|| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// `DATE-NAME` (`DATE` when `name` is empty), or `DATE-NAME-2`, `-3`, … when a result file
/// of that name (`.md` or `.svg`) is already in `dir`: a second run on one day must not
/// overwrite a result that may be committed.
pub fn result_stem(dir: &Path, name: &str) -> String {
    let base = match name {
        "" => testbed::today(),
        name => format!("{}-{name}", testbed::today()),
    };
    (1..)
        .map(|n| match n {
            1 => base.clone(),
            n => format!("{base}-{n}"),
        })
        .find(|stem| {
            !dir.join(format!("{stem}.md")).exists() && !dir.join(format!("{stem}.svg")).exists()
        })
        .unwrap_or(base)
}

/// Draws a table's bars as `STEM.svg` in `dir` (`title`, the value axis described by `axis`,
/// values with `decimals` decimals); returns the Markdown that shows it (or says why there
/// is none).
pub fn chart_link(
    dir: &Path,
    stem: &str,
    (title, axis, decimals): (&str, &str, usize),
    bars: &[chart::Bar],
) -> String {
    let file = format!("{stem}.svg");
    match chart::write(title, axis, decimals, bars, &dir.join(&file)) {
        Ok(()) => {
            eprintln!("bench: wrote {}", dir.join(&file).display());
            format!("\n![{title}]({file})\n")
        }
        Err(error) => {
            eprintln!("bench: no chart: {error}");
            format!("\n(No chart: {error}.)\n")
        }
    }
}

/// Part two's chart.
pub const PER_REQUEST_CHART: (&str, &str, usize) = (
    "Envoy CPU per request, part two (lower is better)",
    "Envoy CPU µs per request (median of the rounds)",
    1,
);

/// Part four's chart.
pub const SOCKETS_CHART: (&str, &str, usize) = (
    "Envoy's capacity for unrelated requests with the sockets open, against none open",
    "CPU per request none open / with them open, median of the rounds (1.0: they cost nothing)",
    3,
);
