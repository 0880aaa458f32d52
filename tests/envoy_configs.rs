//! Every Envoy configuration shipped under `envoy/` is accepted by a real Envoy in
//! `--mode validate`, which also loads the built module and runs its configuration parser,
//! so a plugin configuration in these files cannot drift from what the parser accepts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use testbed::envoy::{self, workspace_root, EnvoyBinary};

#[test]
fn every_shipped_envoy_config_validates() {
    let binary = EnvoyBinary::locate().unwrap_or_else(|why| panic!("{why}"));
    envoy::module_path(); // fails loudly when the module is not built
    let root = workspace_root();
    let mut configs: Vec<_> = std::fs::read_dir(root.join("envoy"))
        .expect("envoy/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "yaml")
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("envoy"))
        })
        .collect();
    configs.sort();
    assert!(!configs.is_empty(), "no envoy*.yaml under envoy/");
    for config in &configs {
        let output = binary
            .command(&[
                "--mode",
                "validate",
                "-c",
                &config.display().to_string(),
                "--use-dynamic-base-id",
            ])
            .current_dir(&root)
            .output()
            .expect("run envoy --mode validate");
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{} does not validate ({}):\n{log}",
            config.display(),
            binary.source
        );
        assert!(
            log.contains("configured: paths="),
            "{}: the plugin did not configure:\n{log}",
            config.display()
        );
        eprintln!("validated {} with {}", config.display(), binary.source);
    }
}
