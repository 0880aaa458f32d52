//! Any bytes as an OpenID Connect discovery document, and whatever `jwks_uri` it yields as a
//! URL to fetch.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(uri) = wsgate::keys::fetch::jwks_uri_from_discovery(data, "https://issuer.example") {
        let _ = wsgate::keys::fetch::Endpoint::parse(&uri, "issuer");
    }
    let _ = wsgate::keys::fetch::judge(Some("200"), data.len(), data, 1024);
});
