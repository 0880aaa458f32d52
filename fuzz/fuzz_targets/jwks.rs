//! The `jwks` fuzz target: its property is `properties::jwks` (fuzz/properties.rs), which
//! tests/fuzz_regressions.rs also replays on every seed and saved crash.
#![no_main]

#[path = "../properties.rs"]
#[allow(dead_code)]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::jwks(data));
