//! Signatures verified by the host (Envoy's `verify_signature` foreign function, BoringSSL)
//! where it has proven it can, by the module elsewhere.
//!
//! At start-up the host is given the known answers of
//! [`self_test`](crate::signature::self_test) for every algorithm it may take (RS256, RS384,
//! RS512, ES256, ES384, ES512); an algorithm is handed to it only if it answered all of them
//! right. ES384 and ES512 have no module backend: where the host fails their self-test,
//! their keys are left out of every key set ([`HostVerifier::key_limits`]). Any
//! later host error (a status, an answer that does not parse) falls back to the module's
//! verifier for that signature. A well-formed "invalid" is believed, whatever the reason
//! Envoy gives (a bad signature, or a key it could not import): the host can make a
//! decision slower, or refuse a key the module would take, but never accept a signature
//! the module would refuse.

use std::fmt::Write as _;

use log::debug;

use crate::bench_repeat;
use crate::host::Host;
use crate::keys::jwks::KeyLimits;
use crate::signature::envoy_verify::{self, Undecided, VERIFY_SIGNATURE};
use crate::signature::{self_test, Crypto, InModule, JwsAlgorithm, Verifier, VerifyingKey};

pub(super) struct HostVerifier<H: Host> {
    host: H,
    /// The algorithms the host verifies (it passed their self-test).
    algorithms: Vec<JwsAlgorithm>,
    /// What the host said when it failed the self-test, for the log line.
    refusal: Option<String>,
}

impl<H: Host> HostVerifier<H> {
    /// The verifier `crypto` asks for; with `host`, an error unless the host passes the
    /// self-test for every algorithm it may take.
    pub fn start(host: H, crypto: Crypto) -> Result<Self, String> {
        let mut verifier = HostVerifier {
            host,
            algorithms: Vec::new(),
            refusal: None,
        };
        if crypto == Crypto::Wasm {
            return Ok(verifier);
        }
        let mut refusal = None;
        verifier.algorithms = self_test::passed(|key, alg, message, signature| {
            let answer = verifier.ask(key, alg, message, signature);
            if let Err(error) = &answer {
                refusal.get_or_insert_with(|| error.to_string());
            }
            answer.ok()
        });
        verifier.refusal = refusal;
        let all = JwsAlgorithm::ALL
            .into_iter()
            .filter(|alg| envoy_verify::hash_function(*alg).is_some())
            .count();
        if crypto == Crypto::Host && verifier.algorithms.len() < all {
            return Err(format!(
                "field \"crypto\": \"host\", but the host's {VERIFY_SIGNATURE} failed its \
                 self-test ({})",
                verifier.describe()
            ));
        }
        Ok(verifier)
    }

    /// Whether the host verifies `alg` (it passed its self-test).
    pub fn verifies(&self, alg: JwsAlgorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// `limits` keeping P-384 and P-521 keys only where the host verifies their algorithm.
    pub fn key_limits(&self, limits: KeyLimits) -> KeyLimits {
        KeyLimits {
            p384: limits.p384 && self.verifies(JwsAlgorithm::Es384),
            p521: limits.p521 && self.verifies(JwsAlgorithm::Es512),
            ..limits
        }
    }

    /// Asks the host: whether the signature is valid, or why it could not tell.
    fn ask(
        &self,
        key: &VerifyingKey,
        alg: JwsAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, Undecided> {
        envoy_verify::ask(key, alg, message, signature, |arguments| {
            bench_repeat::priced(cfg!(feature = "bench-repeat-call"), || {
                self.host.call_foreign(VERIFY_SIGNATURE, arguments)
            })
            .map_err(|error| error.to_string())
        })
    }

    /// Which code verifies what, for the start-up log line: the host, the module, or
    /// nothing (ES384 and ES512 without the host: their keys are left out).
    pub fn describe(&self) -> String {
        let names = |which: &dyn Fn(&JwsAlgorithm) -> bool| {
            JwsAlgorithm::ALL
                .into_iter()
                .filter(which)
                .map(JwsAlgorithm::name)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let host = |alg: &JwsAlgorithm| self.algorithms.contains(alg);
        let mut line = String::new();
        if !self.algorithms.is_empty() {
            let _ = write!(line, "host for {}; ", names(&host));
        }
        let _ = write!(
            line,
            "wasm for {}",
            names(&|alg| !host(alg) && alg.module_verifies())
        );
        let unverified = names(&|alg| !host(alg) && !alg.module_verifies());
        if !unverified.is_empty() {
            let _ = write!(line, "; none for {unverified} (their keys are ignored)");
        }
        if let Some(refusal) = &self.refusal {
            let _ = write!(line, " (the host's {VERIFY_SIGNATURE}: {refusal})");
        }
        line
    }
}

impl<H: Host> Verifier for HostVerifier<H> {
    fn verify(
        &self,
        key: &VerifyingKey,
        alg: JwsAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        // Envoy verifies ECDSA on any curve with any hash: the key's family must be the
        // algorithm's before it is asked (the key set's matching already ensures it; this
        // keeps the seam safe for any caller).
        if self.algorithms.contains(&alg) && key.family() == alg.family() {
            // Bench-only (`bench-omit-call`, fails open): the host is not asked at all.
            if cfg!(feature = "bench-omit-call") {
                return true;
            }
            match self.ask(key, alg, message, signature) {
                Ok(valid) => return valid,
                Err(error) => debug!("{VERIFY_SIGNATURE}: {error}; verifying in the module"),
            }
        }
        InModule.verify(key, alg, message, signature)
    }
}
