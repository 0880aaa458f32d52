//! `make dist`: what a deployment pulls, made from the module `make build` left, without a
//! container engine.
//!
//! Under `--out` (`dist/` from the Makefile):
//! - `wsgate.wasm`, the module, and `wsgate.wasm.sha256` (in `sha256sum`'s format): the
//!   checksum Envoy's `vm_config.code.remote.sha256`, Istio's WasmPlugin `sha256` (HTTPS
//!   form) and Envoy Gateway's `code.http.sha256` pin;
//! - `oci/`, an OCI image layout holding the module twice: `VERSION`, the Wasm artifact form
//!   (two layers, as Istio's fetcher requires: the runtime configuration, then the module's
//!   bytes as `application/vnd.module.wasm.content.layer.v1+wasm`), and `VERSION-compat`,
//!   the Docker-compatible form (`FROM scratch` with `/plugin.wasm`, gzip-compressed, as
//!   Istio also requires), which Istio also accepts. `make push-image` copies both to a
//!   registry with skopeo.
//!
//! `--tag` (a release's git tag) must be `v` and the version: a tag never publishes a module
//! that says it is another version. `--source` sets `org.opencontainers.image.source`, which
//! links a GHCR package to its repository.

mod image;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use oci_spec::image::{
    ANNOTATION_DESCRIPTION, ANNOTATION_LICENSES, ANNOTATION_SOURCE, ANNOTATION_TITLE,
    ANNOTATION_VERSION,
};

use crate::image::{sha256_hex, Error, Layout};

/// The root id wsgate registers its root context under (every shipped configuration's
/// `root_id`), named in the Wasm image's runtime configuration.
const ROOT_ID: &str = "wsgate";

/// What one run writes, from where.
struct Options {
    module: PathBuf,
    out: PathBuf,
    version: String,
    tag: Option<String>,
    source: Option<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match Options::parse(&args).and_then(|options| run(&options)) {
        Ok(summary) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("wsgate-dist: {why}");
            ExitCode::FAILURE
        }
    }
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, Error> {
        let value = |flag: &str| {
            args.iter()
                .position(|arg| arg == flag)
                .and_then(|at| args.get(at + 1))
                .filter(|value| !value.is_empty())
                .cloned()
        };
        let required = |flag: &str| value(flag).ok_or_else(|| format!("{flag} is required"));
        let options = Options {
            module: required("--module")?.into(),
            out: required("--out")?.into(),
            version: required("--version")?,
            tag: value("--tag"),
            source: value("--source"),
        };
        if let Some(tag) = &options.tag {
            if *tag != format!("v{}", options.version) {
                return Err(format!(
                    "--tag {tag} does not name version {} (Cargo.toml): expected v{}",
                    options.version, options.version
                )
                .into());
            }
        }
        Ok(options)
    }
}

/// Writes everything; returns what to print.
fn run(options: &Options) -> Result<String, Error> {
    let module = fs::read(&options.module)
        .map_err(|e| format!("{}: {e} (run `make build`)", options.module.display()))?;
    if !module.starts_with(b"\0asm\x01\0\0\0") {
        return Err(format!("{}: not a WebAssembly module", options.module.display()).into());
    }
    // A test or bench build (Cargo.toml's canaries and bench-only features) may fail open:
    // never released.
    for marker in [&b"canary"[..], b"wsgate-bench-only"] {
        if module.windows(marker.len()).any(|window| window == marker) {
            return Err(format!(
                "{}: a test or bench build ({}), never a release",
                options.module.display(),
                String::from_utf8_lossy(marker)
            )
            .into());
        }
    }
    fs::create_dir_all(&options.out)?;
    let hex = sha256_hex(&module);
    write(&options.out.join("wsgate.wasm"), &module)?;
    write(
        &options.out.join("wsgate.wasm.sha256"),
        format!("{hex}  wsgate.wasm\n").as_bytes(),
    )?;

    let mut annotations = HashMap::from([
        (ANNOTATION_TITLE, "wsgate"),
        (
            ANNOTATION_DESCRIPTION,
            "wsgate: a proxy-wasm filter that guards WebSocket endpoints with bearer JWTs",
        ),
        (ANNOTATION_LICENSES, "Apache-2.0"),
        (ANNOTATION_VERSION, options.version.as_str()),
    ]);
    if let Some(source) = &options.source {
        annotations.insert(ANNOTATION_SOURCE, source);
    }
    let annotations: HashMap<String, String> = annotations
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let mut layout = Layout::create(&options.out.join("oci"))?;
    let wasm = layout.wasm_image(&options.version, &module, ROOT_ID, &annotations)?;
    let compat_name = format!("{}-compat", options.version);
    let compat = layout.compat_image(&compat_name, &module, &annotations)?;
    layout.finish()?;

    let out = options.out.display();
    Ok(format!(
        "dist: {out}/wsgate.wasm ({} bytes, sha256 {hex})\n\
         dist: {out}/oci:{} (Wasm artifact, {})\n\
         dist: {out}/oci:{compat_name} (Docker-compatible, {})\n",
        module.len(),
        options.version,
        wasm.digest(),
        compat.digest(),
    ))
}

/// Writes `bytes` to `path`, naming the path on failure.
fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn a_tag_must_name_the_version() {
        let with_tag = |tag: &str| {
            Options::parse(&args(&[
                "--module",
                "m.wasm",
                "--out",
                "dist",
                "--version",
                "0.1.0",
                "--tag",
                tag,
            ]))
        };
        assert!(with_tag("v0.1.0").is_ok());
        let refused = with_tag("v0.2.0").err().map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some("--tag v0.2.0 does not name version 0.1.0 (Cargo.toml): expected v0.1.0")
        );
        // An empty tag (make dist outside a release) is no tag.
        assert!(with_tag("").is_ok());
    }

    #[test]
    fn a_test_or_bench_build_is_never_released() {
        let dir = std::env::temp_dir().join(format!("wsgate-release-main-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_default();
        for (name, marker) in [("canary", "canary"), ("bench", "wsgate-bench-only build")] {
            let module = dir.join(format!("{name}.wasm"));
            let mut bytes = b"\0asm\x01\0\0\0".to_vec();
            bytes.extend_from_slice(marker.as_bytes());
            fs::write(&module, bytes).unwrap_or_default();
            let options = Options {
                module,
                out: dir.join("out"),
                version: "0.1.0".to_owned(),
                tag: None,
                source: None,
            };
            let refused = run(&options)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(refused.contains("never a release"), "{name}: {refused}");
        }
        assert!(!dir.join("out").exists(), "nothing written");
        let _ = fs::remove_dir_all(&dir);
    }
}
