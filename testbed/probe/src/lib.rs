//! A test-only proxy-wasm module (never shipped): decides signature test vectors twice,
//! with Envoy's `verify_signature` foreign function and with wsgate's own verifiers, inside a
//! real Envoy, and logs both verdicts. `tests/envoy_signature_vectors.rs` feeds it the
//! Wycheproof RS256/384/512 and ES256/384/512 vectors and compares.
//!
//! Everything wsgate does to hand a signature to Envoy runs here as in the filter, through
//! the same function, `envoy_verify::ask`: the key's DER, the ES256 signature's DER, the
//! protobuf arguments and the strict reading of Envoy's answer. Only the call itself is the
//! SDK's here, not wsgate's `Host` seam.
//!
//! Configuration: `{"groups": [{"alg": "RS256", "n": b64, "e": b64, "cases": [[msg, sig]]},
//! {"alg": "ES256", "x": b64, "y": b64, "cases": [...]}]}` (standard base64). On start it
//! logs `probe: host=<verdicts> wasm=<verdicts>`, one character a case, in order:
//! `1` valid, `0` invalid, `k` no key could be built from the group, `n` (host only) the
//! signature has no form Envoy takes, so it is not asked, `e` (host only) Envoy answered
//! with an error status or an answer that does not parse, `-` (wasm only) the module has no
//! arithmetic for the algorithm (ES384, ES512).

use base64::Engine as _;
use serde::Deserialize;
use wsgate::signature::envoy_verify::{self, Undecided};
use wsgate::signature::{JwsAlgorithm, VerifyingKey};

/// One group of cases under one key.
#[derive(Deserialize)]
pub struct Group {
    pub alg: String,
    #[serde(default)]
    pub n: String,
    #[serde(default)]
    pub e: String,
    #[serde(default)]
    pub x: String,
    #[serde(default)]
    pub y: String,
    /// `[message, signature]`, base64.
    pub cases: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Vectors {
    groups: Vec<Group>,
}

fn bytes(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

fn key(group: &Group, alg: JwsAlgorithm) -> Option<VerifyingKey> {
    match alg {
        JwsAlgorithm::Es256 => VerifyingKey::p256(&bytes(&group.x), &bytes(&group.y)).ok(),
        JwsAlgorithm::Es384 | JwsAlgorithm::Es512 => {
            VerifyingKey::host_ec(alg.family(), &bytes(&group.x), &bytes(&group.y)).ok()
        }
        _ => VerifyingKey::rsa(&bytes(&group.n), &bytes(&group.e)).ok(),
    }
}

/// Both verdict strings for `configuration`, asking the host through `ask` (the encoded
/// arguments in, Envoy's answer or `None` for an error status out).
pub fn decide(configuration: &[u8], ask: impl Fn(&[u8]) -> Option<Vec<u8>>) -> (String, String) {
    let Ok(vectors) = serde_json::from_slice::<Vectors>(configuration) else {
        return ("configuration?".to_owned(), "configuration?".to_owned());
    };
    let (mut host, mut wasm) = (String::new(), String::new());
    for group in &vectors.groups {
        let alg = JwsAlgorithm::from_name(&group.alg);
        let key = alg.and_then(|alg| key(group, alg));
        for (message, signature) in &group.cases {
            let (Some(alg), Some(key)) = (alg, &key) else {
                host.push('k');
                wasm.push('k');
                continue;
            };
            let (message, signature) = (bytes(message), bytes(signature));
            let verdict = |valid: bool| if valid { '1' } else { '0' };
            wasm.push(if alg.module_verifies() {
                verdict(key.verify(alg, &message, &signature))
            } else {
                '-'
            });
            host.push(
                match envoy_verify::ask(key, alg, &message, &signature, |arguments| {
                    ask(arguments).ok_or_else(|| "an error status".to_owned())
                }) {
                    Ok(valid) => verdict(valid),
                    Err(Undecided::NoSignatureForm) => 'n',
                    Err(_) => 'e',
                },
            );
        }
    }
    (host, wasm)
}

#[cfg(target_arch = "wasm32")]
mod module {
    use proxy_wasm::traits::{Context, RootContext};
    use proxy_wasm::types::LogLevel;

    struct Probe;

    impl Context for Probe {}

    impl RootContext for Probe {
        fn on_configure(&mut self, _size: usize) -> bool {
            let configuration = self.get_plugin_configuration().unwrap_or_default();
            let (host, wasm) = super::decide(&configuration, |arguments| {
                proxy_wasm::hostcalls::call_foreign_function(
                    wsgate::signature::envoy_verify::VERIFY_SIGNATURE,
                    Some(arguments),
                )
                .ok()
                .flatten()
            });
            log::info!("probe: host={host} wasm={wasm}");
            true
        }
    }

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Info);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Probe) });
    }}
}
