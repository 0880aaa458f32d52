//! Any bytes as a JWKS document (what an issuer or a configuration hands over).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((keys, _skipped)) = wsgate::keys::jwks::KeySet::parse(data, Default::default()) {
        assert!(!keys.is_empty());
    }
});
