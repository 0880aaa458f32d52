//! The command line of `wsgate-bench` (see the crate's documentation for each flag).

use std::path::PathBuf;

use testbed::envoy;

use crate::cases::Settings;

/// What one run measures, and where its result goes.
pub struct Options {
    /// Part one: handshakes per run (each configuration, each token kind).
    pub count: usize,
    /// Part four: sockets held open.
    pub sockets: usize,
    pub concurrency: usize,
    pub rounds: usize,
    /// Part one: handshakes before each measured run.
    pub warmup: usize,
    /// Timed parts: measured seconds per run.
    pub seconds: u64,
    pub results: PathBuf,
    pub baseline: Option<PathBuf>,
    pub envoy_log_level: Option<String>,
    pub warm_only: bool,
    pub ab_only: bool,
    pub per_request_only: bool,
    pub together: bool,
    pub sockets_only: bool,
}

impl Options {
    /// Reads `args`; panics, naming the flag, on a combination that cannot run.
    pub fn parse(args: &[String]) -> Options {
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|at| args.get(at + 1))
        };
        let number = |flag: &str, default: usize| {
            value(flag).and_then(|v| v.parse().ok()).unwrap_or(default)
        };
        let flag = |name: &str| args.iter().any(|a| a == name);
        let baseline = value("--baseline-module").map(PathBuf::from);
        if let Some(path) = &baseline {
            assert!(
                path.is_file(),
                "--baseline-module {}: no such file",
                path.display()
            );
        }
        let ab_only = flag("--ab-only");
        assert!(
            !ab_only || baseline.is_some(),
            "--ab-only compares with --baseline-module, which is missing"
        );
        let together = flag("--together");
        assert!(!together || ab_only, "--together runs with --ab-only alone");
        Options {
            count: number("--count", 6000),
            sockets: number("--sockets", 8000),
            concurrency: number("--concurrency", 16),
            rounds: number("--rounds", 3),
            warmup: number("--warmup", 1000),
            seconds: number("--seconds", 4) as u64,
            results: value("--results").map_or_else(
                || envoy::workspace_root().join("bench/results"),
                PathBuf::from,
            ),
            baseline,
            envoy_log_level: value("--envoy-log-level").cloned(),
            warm_only: flag("--warm-only"),
            ab_only,
            per_request_only: ab_only || flag("--per-request-only"),
            together,
            sockets_only: flag("--sockets-only"),
        }
    }

    /// How a timed part runs, for `rounds` rounds.
    pub fn timed(&self, rounds: usize) -> Settings {
        Settings {
            seconds: self.seconds,
            concurrency: self.concurrency,
            rounds,
            warm_only: self.warm_only,
            ab_only: self.ab_only,
            together: self.together,
        }
    }
}
