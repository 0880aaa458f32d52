//! wsgate's RSA verifier (src/signature/rsa.rs) against the `rsa` crate, on fuzzed keys and
//! signatures. Each input picks one of the six RS*/PS* algorithms and edits a valid
//! (key, message, signature) triple of the demo key: XOR a byte of `n`, `e`, the signature
//! or the message, or add or drop a leading byte. Where both implementations accept the key,
//! they must give the same verdict; nothing may panic.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use wsgate::signature::{JwsAlgorithm, VerifyingKey};

const ALGS: [JwsAlgorithm; 6] = [
    JwsAlgorithm::Rs256,
    JwsAlgorithm::Rs384,
    JwsAlgorithm::Rs512,
    JwsAlgorithm::Ps256,
    JwsAlgorithm::Ps384,
    JwsAlgorithm::Ps512,
];

/// A deterministic RNG for PSS salts, so a crashing input reproduces.
struct Counter(u64);

impl rand_core::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            *byte = (self.next_u64() >> 56) as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for Counter {}

fn digest(alg: JwsAlgorithm, message: &[u8]) -> Vec<u8> {
    match alg {
        JwsAlgorithm::Rs256 | JwsAlgorithm::Ps256 => Sha256::digest(message).to_vec(),
        JwsAlgorithm::Rs384 | JwsAlgorithm::Ps384 => Sha384::digest(message).to_vec(),
        _ => Sha512::digest(message).to_vec(),
    }
}

fn pkcs1(alg: JwsAlgorithm) -> Option<Pkcs1v15Sign> {
    match alg {
        JwsAlgorithm::Rs256 => Some(Pkcs1v15Sign::new::<Sha256>()),
        JwsAlgorithm::Rs384 => Some(Pkcs1v15Sign::new::<Sha384>()),
        JwsAlgorithm::Rs512 => Some(Pkcs1v15Sign::new::<Sha512>()),
        _ => None,
    }
}

fn pss(alg: JwsAlgorithm) -> Pss {
    match alg {
        JwsAlgorithm::Ps256 => Pss::new_with_salt::<Sha256>(32),
        JwsAlgorithm::Ps384 => Pss::new_with_salt::<Sha384>(48),
        _ => Pss::new_with_salt::<Sha512>(64),
    }
}

/// `n`, `e`, and a valid signature of `header.payload` for each algorithm.
fn base() -> &'static (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    static BASE: OnceLock<(Vec<u8>, Vec<u8>, Vec<Vec<u8>>)> = OnceLock::new();
    BASE.get_or_init(|| {
        let jwk: serde_json::Value =
            serde_json::from_str(include_str!("../../testbed/demo/demo-signing-key.json"))
                .expect("the demo key");
        let part = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().expect(name)).expect(name);
        let number = |name: &str| BigUint::from_bytes_be(&part(name));
        let private = RsaPrivateKey::from_components(
            number("n"),
            number("e"),
            number("d"),
            vec![number("p"), number("q")],
        )
        .expect("the demo key");
        let mut rng = Counter(7);
        let signatures = ALGS
            .iter()
            .map(|&alg| {
                let hashed = digest(alg, b"header.payload");
                match pkcs1(alg) {
                    Some(scheme) => private.sign(scheme, &hashed),
                    None => private.sign_with_rng(&mut rng, pss(alg), &hashed),
                }
                .expect("signing")
            })
            .collect();
        (part("n"), part("e"), signatures)
    })
}

fuzz_target!(|data: &[u8]| {
    let (n, e, signatures) = base();
    let Some((&selector, edits)) = data.split_first() else {
        return;
    };
    let index = usize::from(selector) % ALGS.len();
    let alg = ALGS[index];
    let (mut n, mut e, mut signature, mut message) =
        (n.clone(), e.clone(), signatures[index].clone(), b"header.payload".to_vec());
    for edit in edits.chunks_exact(4) {
        let position = usize::from(u16::from_le_bytes([edit[1], edit[2]]));
        let value = edit[3];
        let target = match edit[0] % 4 {
            0 => &mut n,
            1 => &mut e,
            2 => &mut signature,
            _ => &mut message,
        };
        match edit[0] / 4 % 4 {
            0 if !target.is_empty() => {
                let at = position % target.len();
                target[at] ^= value;
            }
            1 if target.len() < 1024 => target.insert(0, value),
            2 if !target.is_empty() => {
                target.remove(0);
            }
            _ => {}
        }
    }
    let Ok(ours) = VerifyingKey::rsa(&n, &e) else {
        return;
    };
    let Ok(theirs) = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e))
    else {
        return;
    };
    let hashed = digest(alg, &message);
    let reference = match pkcs1(alg) {
        Some(scheme) => theirs.verify(scheme, &hashed, &signature).is_ok(),
        None => theirs.verify(pss(alg), &hashed, &signature).is_ok(),
    };
    let mine = ours.verify(alg, &message, &signature);
    assert_eq!(
        mine,
        reference,
        "{}: wsgate {mine}, rsa crate {reference} (n {} bytes, e {e:02x?}, signature {} bytes)",
        alg.name(),
        n.len(),
        signature.len()
    );
});
