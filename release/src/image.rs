//! An OCI image layout (the image spec's `image-layout.md`) written to a directory:
//! content-addressed blobs under `blobs/sha256/`, one manifest per image, and `index.json`
//! naming each image by its `org.opencontainers.image.ref.name` (what `skopeo copy
//! oci:DIR:NAME` reads). Every JSON document is written with sorted keys and no clock, so
//! the same module always gives the same digests.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    Arch, Descriptor, ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder,
    MediaType, OciLayoutBuilder, Os, RootFsBuilder, Sha256Digest, ANNOTATION_REF_NAME,
    ANNOTATION_TITLE,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The config media type of a Wasm artifact image (Istio's Wasm image specification).
pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";

/// The layer media type of a Wasm artifact image: the layer is the module's bytes.
pub const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// The file a Docker-compatible Wasm image holds the module in, at its root.
pub const COMPAT_FILE: &str = "plugin.wasm";

/// Why the layout could not be written.
pub type Error = Box<dyn std::error::Error>;

/// The lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A layout being written; [`Layout::finish`] writes its index.
pub struct Layout {
    dir: PathBuf,
    images: Vec<Descriptor>,
}

impl Layout {
    /// Starts a layout at `dir`, replacing whatever was there.
    pub fn create(dir: &Path) -> Result<Layout, Error> {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir.join("blobs/sha256"))?;
        let marker = OciLayoutBuilder::default()
            .image_layout_version("1.0.0")
            .build()?;
        fs::write(dir.join("oci-layout"), canonical(&marker)?)?;
        Ok(Layout {
            dir: dir.to_owned(),
            images: Vec::new(),
        })
    }

    /// Stores `bytes` as a blob and returns its descriptor, of `media_type`.
    fn blob(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor, Error> {
        let hex = sha256_hex(bytes);
        fs::write(self.dir.join("blobs/sha256").join(&hex), bytes)?;
        Ok(Descriptor::new(
            media_type,
            u64::try_from(bytes.len())?,
            Sha256Digest::from_str(&hex)?,
        ))
    }

    /// Stores an image of `config` and `layers` named `reference`, with `annotations` on
    /// its manifest; returns the manifest's descriptor (its digest is the image's).
    fn image(
        &mut self,
        reference: &str,
        config: Descriptor,
        layers: Vec<Descriptor>,
        annotations: &HashMap<String, String>,
    ) -> Result<Descriptor, Error> {
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(layers)
            .annotations(annotations.clone())
            .build()?;
        let descriptor = annotated(
            self.blob(MediaType::ImageManifest, &canonical(&manifest)?)?,
            ANNOTATION_REF_NAME,
            reference,
        );
        self.images.push(descriptor.clone());
        Ok(descriptor)
    }

    /// The module as a Wasm artifact image named `reference`, laid out as Istio's fetcher
    /// requires (istio/istio `pkg/wasm/imagefetcher.go`: "The image must be two-layered"):
    /// a [`WASM_CONFIG`] config (the Wasm image specification's runtime configuration, for
    /// Envoy, with wsgate's root id), which is also the first layer, then one [`WASM_LAYER`]
    /// layer, the module itself.
    pub fn wasm_image(
        &mut self,
        reference: &str,
        module: &[u8],
        root_id: &str,
        annotations: &HashMap<String, String>,
    ) -> Result<Descriptor, Error> {
        let runtime = serde_json::json!({
            "type": "envoy_proxy",
            "abiVersions": ["v0.2.1"],
            "config": {"rootIds": [root_id]},
        });
        let config = self.blob(
            MediaType::Other(WASM_CONFIG.to_owned()),
            &canonical(&runtime)?,
        )?;
        let layers = vec![
            annotated(config.clone(), ANNOTATION_TITLE, "runtime-config.json"),
            annotated(
                self.blob(MediaType::Other(WASM_LAYER.to_owned()), module)?,
                ANNOTATION_TITLE,
                COMPAT_FILE,
            ),
        ];
        self.image(reference, config, layers, annotations)
    }

    /// The module as a Docker-compatible image named `reference` (what `FROM scratch` and
    /// `COPY wsgate.wasm /plugin.wasm` would build): one gzip-compressed tar layer holding
    /// [`COMPAT_FILE`], and an image config whose platform is `wasip1`/`wasm`.
    pub fn compat_image(
        &mut self,
        reference: &str,
        module: &[u8],
        annotations: &HashMap<String, String>,
    ) -> Result<Descriptor, Error> {
        let tar = tar_of(COMPAT_FILE, module)?;
        let layer = self.blob(MediaType::ImageLayerGzip, &gzip(&tar)?)?;
        let config = ImageConfigurationBuilder::default()
            .architecture(Arch::Wasm)
            .os(Os::Other("wasip1".to_owned()))
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(vec![format!("sha256:{}", sha256_hex(&tar))])
                    .build()?,
            )
            .build()?;
        let config = self.blob(MediaType::ImageConfig, &canonical(&config)?)?;
        self.image(reference, config, vec![layer], annotations)
    }

    /// Writes `index.json`, listing every image stored.
    pub fn finish(self) -> Result<(), Error> {
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(self.images)
            .build()?;
        fs::write(self.dir.join("index.json"), canonical(&index)?)?;
        Ok(())
    }
}

/// `descriptor` with one annotation, `name` = `value`.
fn annotated(mut descriptor: Descriptor, name: &str, value: &str) -> Descriptor {
    descriptor.set_annotations(Some(HashMap::from([(name.to_owned(), value.to_owned())])));
    descriptor
}

/// `value` as JSON with every object's keys sorted (serde_json's map is ordered by key),
/// whatever order the spec types hold them in.
fn canonical(value: &impl Serialize) -> Result<Vec<u8>, Error> {
    Ok(serde_json::to_vec(&serde_json::to_value(value)?)?)
}

/// A tar archive of one regular file, `name`, holding `bytes`: owned by root, mode 0644,
/// dated the epoch.
fn tar_of(name: &str, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut header = tar::Header::new_ustar();
    header.set_size(u64::try_from(bytes.len())?);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    let mut archive = tar::Builder::new(Vec::new());
    archive.append_data(&mut header, name, bytes)?;
    Ok(archive.into_inner()?)
}

/// `bytes` gzip-compressed, with no name and no time in the gzip header.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut encoder: GzEncoder<Vec<u8>> = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_module_gives_the_same_digests() {
        let module = b"\0asm\x01\0\0\0 a module";
        let write = |dir: &Path| {
            let mut layout = Layout::create(dir).unwrap();
            let annotations = HashMap::from([
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "1".to_owned()),
            ]);
            layout
                .wasm_image("1", module, "root", &annotations)
                .unwrap();
            layout
                .compat_image("1-compat", module, &annotations)
                .unwrap();
            layout.finish().unwrap();
            fs::read(dir.join("index.json")).unwrap()
        };
        let base = std::env::temp_dir().join(format!("wsgate-release-{}", std::process::id()));
        let (first, second) = (write(&base.join("a")), write(&base.join("b")));
        let _ = fs::remove_dir_all(&base);
        assert_eq!(first, second);
        let text = String::from_utf8(first).unwrap();
        assert!(
            text.starts_with(
                r#"{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"1"}"#
            ),
            "{text}"
        );
    }
}
