//! What `make dist` made, unpacked and checked against the module `make build` left, with
//! tools that share no code with the one that wrote it: `sha256sum` for the checksum file,
//! `gzip` and `tar` for the Docker-compatible layer, and skopeo (the registry client
//! `make push-image` uses) for the OCI image layout.
//!
//! Run `make dist` first (`make test` does); a missing or stale `dist/` fails loudly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use testbed::envoy::{module_path, workspace_root};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

fn dist() -> PathBuf {
    let dir = workspace_root().join("dist");
    assert!(
        dir.join("oci/index.json").is_file(),
        "{} has no OCI layout: run `make dist`",
        dir.display()
    );
    dir
}

fn module() -> Vec<u8> {
    std::fs::read(module_path()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The blob a descriptor names, checked against the descriptor's digest and size.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex_digest = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex_digest)).unwrap();
    assert_eq!(hex(&bytes), hex_digest, "blob {digest}: content");
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "blob {digest}: size"
    );
    bytes
}

/// The manifest of the image named `reference` in the layout's index.
fn manifest(layout: &Path, reference: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let descriptor = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .unwrap_or_else(|| panic!("no image {reference} in {index}"));
    assert_eq!(
        descriptor["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let manifest: Value = serde_json::from_slice(&blob(layout, descriptor)).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        VERSION
    );
    manifest
}

#[test]
fn the_module_and_its_checksum() {
    let dir = dist();
    assert!(
        std::fs::read(dir.join("wsgate.wasm")).unwrap() == module(),
        "dist/wsgate.wasm is not the module `make build` left: run `make dist`"
    );
    // The checksum file is in sha256sum's own format: it checks itself.
    let out = run(Command::new("sha256sum")
        .args(["--check", "--strict", "wsgate.wasm.sha256"])
        .current_dir(&dir));
    assert_eq!(String::from_utf8_lossy(&out), "wsgate.wasm: OK\n");
}

#[test]
fn the_wasm_image_is_two_layered_as_istio_requires() {
    let layout = dist().join("oci");
    assert_eq!(
        std::fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let manifest = manifest(&layout, VERSION);
    assert_eq!(manifest["config"]["mediaType"], WASM_CONFIG);
    let runtime: Value = serde_json::from_slice(&blob(&layout, &manifest["config"])).unwrap();
    assert_eq!(runtime["type"], "envoy_proxy");
    assert_eq!(runtime["config"]["rootIds"], serde_json::json!(["wsgate"]));
    // Istio's fetcher refuses a Wasm image that is not "two-layered": the runtime
    // configuration again, then the module, raw.
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{manifest}");
    assert_eq!(
        (&layers[0]["mediaType"], &layers[0]["digest"]),
        (
            &manifest["config"]["mediaType"],
            &manifest["config"]["digest"]
        )
    );
    assert_eq!(layers[1]["mediaType"], WASM_LAYER);
    assert!(
        blob(&layout, &layers[1]) == module(),
        "the layer is the module"
    );
}

#[test]
fn the_compat_image_holds_plugin_wasm_in_a_gzipped_tar() {
    let layout = dist().join("oci");
    let manifest = manifest(&layout, &format!("{VERSION}-compat"));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    blob(&layout, &layers[0]);
    let path = layout
        .join("blobs/sha256")
        .join(&layers[0]["digest"].as_str().unwrap()["sha256:".len()..]);
    let listing = run(Command::new("tar").arg("-tzf").arg(&path));
    assert_eq!(String::from_utf8_lossy(&listing), "plugin.wasm\n");
    let plugin = run(Command::new("tar")
        .arg("-xzOf")
        .arg(&path)
        .arg("plugin.wasm"));
    assert!(plugin == module(), "plugin.wasm is the module");
    // The config names the uncompressed layer, as the image spec asks.
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config: Value = serde_json::from_slice(&blob(&layout, &manifest["config"])).unwrap();
    let tar = run(Command::new("gzip").arg("-dc").arg(&path));
    assert_eq!(
        config["rootfs"],
        serde_json::json!({"type": "layers", "diff_ids": [format!("sha256:{}", hex(&tar))]})
    );
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("wasip1"), Some("wasm"))
    );
}

/// skopeo reads both images and checks every digest as it copies them, as `make
/// push-image` does towards a registry; a layout with one byte changed is refused.
#[test]
fn skopeo_copies_both_images_and_refuses_a_changed_byte() {
    let layout = dist().join("oci");
    let scratch = std::env::temp_dir().join(format!("wsgate-dist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    // Each copy to a destination of its own: skopeo does not read a blob the destination
    // already holds.
    let copy = |from: &Path, tag: &str, to: &str| {
        let to = scratch.join(to);
        std::fs::create_dir_all(&to).unwrap();
        Command::new("skopeo")
            .arg("copy")
            .arg("--quiet")
            .arg(format!("oci:{}:{tag}", from.display()))
            .arg(format!("oci:{}:{tag}", to.display()))
            .output()
            .unwrap_or_else(|e| panic!("skopeo: {e} (run `make release-setup`)"))
    };
    for tag in [VERSION.to_owned(), format!("{VERSION}-compat")] {
        let out = copy(&layout, &tag, &tag);
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The same layout with one byte of the module's layer changed.
    let changed = scratch.join("changed");
    run(Command::new("cp").arg("-r").arg(&layout).arg(&changed));
    let layer = changed.join("blobs/sha256").join(hex(&module()));
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&layer, bytes).unwrap();
    let out = copy(&changed, VERSION, "changed-copy");
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(!out.status.success(), "skopeo copied a changed layer");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Digest did not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
