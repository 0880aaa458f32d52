//! Where Envoy's CPU goes during a run: `perf record` on Envoy's process, summed by where the
//! sampled code lives. V8 compiles the module into anonymous executable memory, which perf
//! shows as `[JIT] tid N`: that is wsgate's (or the floor's) WebAssembly. The `envoy` binary
//! holds Envoy's own work, including the host side of every proxy-wasm call and V8's runtime.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Shares of sampled CPU, each in 0..=1.
#[derive(Clone, Copy, Default)]
pub struct Split {
    /// WebAssembly compiled by V8.
    pub wasm: f64,
    /// The Envoy binary: Envoy, V8's runtime, the host side of proxy-wasm calls.
    pub envoy: f64,
    /// The kernel: sockets, scheduling.
    pub kernel: f64,
    /// Everything else (libc, the vDSO).
    pub other: f64,
}

/// A `perf record` running on one process.
pub struct Recording {
    child: Child,
    file: PathBuf,
}

/// Whether `perf` can be run here.
pub fn available() -> bool {
    Command::new("perf")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts sampling process `pid` for `seconds`, into a file in `dir`.
pub fn record(pid: u32, seconds: u64, dir: &Path) -> Option<Recording> {
    let file = dir.join(format!("perf-{pid}.data"));
    let child = Command::new("perf")
        .args(["record", "-q", "-F", "999", "-p", &pid.to_string(), "-o"])
        .arg(&file)
        .args(["--", "sleep", &seconds.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(Recording { child, file })
}

impl Recording {
    /// Waits for the recording to end and sums its samples by where the code lives.
    pub fn finish(mut self) -> Option<Split> {
        self.child.wait().ok()?;
        let report = Command::new("perf")
            .args(["report", "--stdio", "--sort", "dso", "-i"])
            .arg(&self.file)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let _ = std::fs::remove_file(&self.file);
        parse(&String::from_utf8_lossy(&report.stdout))
    }
}

/// Sums `perf report --sort dso` lines (`  54.25%  envoy`) into a [`Split`].
fn parse(report: &str) -> Option<Split> {
    let mut split = Split::default();
    let mut total = 0.0;
    for line in report.lines().filter(|line| !line.starts_with('#')) {
        let Some((percent, dso)) = line.trim().split_once("%") else {
            continue;
        };
        let Ok(percent) = percent.trim().parse::<f64>() else {
            continue;
        };
        let share = percent / 100.0;
        let dso = dso.trim();
        if dso.starts_with("[JIT]") || dso.starts_with("[unknown]") || dso.starts_with("//anon") {
            split.wasm += share;
        } else if dso == "envoy" {
            split.envoy += share;
        } else if dso.starts_with("[kernel") {
            split.kernel += share;
        } else {
            split.other += share;
        }
        total += share;
    }
    (total > 0.5).then_some(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_by_where_the_code_lives() {
        let report = "# Samples: 11K\n\n    52.13%  envoy\n    27.21%  [kernel.kallsyms]\n    16.52%  [JIT] tid 25339\n     3.39%  libc.so.6\n     0.74%  [vdso]\n";
        let split = parse(report).unwrap();
        assert!((split.wasm - 0.1652).abs() < 1e-9);
        assert!((split.envoy - 0.5213).abs() < 1e-9);
        assert!((split.kernel - 0.2721).abs() < 1e-9);
        assert!((split.other - 0.0413).abs() < 1e-9);
        assert!(parse("# nothing\n").is_none());
    }
}
