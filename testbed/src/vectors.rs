//! The Wycheproof test vectors in `../shared/vectors/wycheproof` (or `WSGATE_VECTORS`), for
//! the tests that decide them natively and through Envoy. A missing directory fails loudly.

use std::path::PathBuf;

use serde_json::Value;

/// The vector directory; panics when it is missing.
pub fn dir() -> PathBuf {
    let dir = std::env::var_os("WSGATE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::envoy::workspace_root().join("../shared/vectors/wycheproof"));
    assert!(
        dir.join("json_web_signature_test.json").is_file(),
        "Wycheproof vectors not found at {} (set WSGATE_VECTORS)",
        dir.display()
    );
    dir
}

/// One vector file, parsed (`name` relative to [`dir`]).
pub fn load(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Bytes from lower-case hex, as the vectors write them.
pub fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .unwrap_or_else(|| panic!("not hex: {text}"))
        })
        .collect()
}

/// A big-endian unsigned number as exactly 32 bytes; `None` when it needs more.
pub fn left_pad(bytes: &[u8]) -> Option<Vec<u8>> {
    left_pad_to(bytes, 32)
}

/// A big-endian unsigned number as exactly `width` bytes (a P-384 coordinate: 48, P-521:
/// 66); `None` when it needs more.
pub fn left_pad_to(bytes: &[u8], width: usize) -> Option<Vec<u8>> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let magnitude = bytes.get(first..)?;
    (magnitude.len() <= width).then(|| {
        let mut out = vec![0; width - magnitude.len()];
        out.extend_from_slice(magnitude);
        out
    })
}
