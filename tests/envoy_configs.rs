//! Every Envoy configuration shipped under `envoy/` (and `envoy/compose/`) is accepted by a
//! real Envoy in `--mode validate`, which also loads the built module and runs its
//! configuration parser, so a plugin configuration in these files cannot drift from what the
//! parser accepts. Each also sets Envoy's path normalisation, the first layer of the path
//! guard. The compose configuration names the module by its path inside the
//! container; it is validated with the built module's path put in its place.

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
    let module = envoy::module_path();
    let root = workspace_root();
    let mut configs: Vec<_> = ["envoy", "envoy/compose"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).expect("envoy/ exists"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "yaml")
                && path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("envoy"))
        })
        .collect();
    configs.sort();
    // envoy.yaml, envoy-inline-keys.yaml, envoy-acs.yaml, envoy-providers.yaml,
    // envoy-upgrades-only.yaml and compose/envoy.yaml: a config added or lost must be seen here.
    assert_eq!(
        configs.len(),
        6,
        "expected the demo, inline-keys, ACS, providers, upgrades-only and compose \
         configurations: {configs:?}"
    );

    let scratch = std::env::temp_dir().join(format!("wsgate-validate-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    for config in &configs {
        let text = std::fs::read_to_string(config).unwrap();
        for layer in [
            "normalize_path: true",
            "merge_slashes: true",
            "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT",
            "headers_with_underscores_action: REJECT_REQUEST",
            // Thousands of long-lived sockets (#26): the cluster's circuit breakers past
            // Envoy's 1024 defaults, idle and lifetime bounds chosen, connections capped.
            "max_connections: 10000",
            "idle_timeout: 600s",
            "stream_idle_timeout: 300s",
            "max_stream_duration: { max_stream_duration: 86400s }",
            "envoy.resource_monitors.global_downstream_max_connections",
            // A VM that traps refuses and is replaced, never opens the gate
            // (tests/envoy_failure_policy.rs runs these values).
            "failure_policy: FAIL_RELOAD",
            "backoff: { base_interval: 1s }",
        ] {
            assert!(
                text.contains(layer),
                "{}: every shipped config normalises paths and refuses underscored header \
                 names in Envoy too ({layer})",
                config.display()
            );
        }
        // A refused host call panics the SDK and kills the VM: the request then fails
        // closed only through failure_policy (SECURITY.md).
        assert!(
            !text.contains("fail_open: true") && !text.contains("FAIL_OPEN"),
            "{}: wsgate must fail closed",
            config.display()
        );
        let checked = if text.contains("/etc/wsgate/wsgate.wasm") {
            let copy = scratch.join(config.file_name().unwrap());
            std::fs::write(
                &copy,
                text.replace("/etc/wsgate/wsgate.wasm", &module.display().to_string()),
            )
            .unwrap();
            copy
        } else {
            config.clone()
        };
        let output = binary
            .command(&[
                "--mode",
                "validate",
                "-c",
                &checked.display().to_string(),
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
        // The single-issuer form logs its paths; named providers, their rules.
        assert!(
            log.contains("configured: paths=") || log.contains("configured: rules ["),
            "{}: the plugin did not configure:\n{log}",
            config.display()
        );
        eprintln!("validated {} with {}", config.display(), binary.source);
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
