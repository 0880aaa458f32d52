// What each fuzz target asserts, one function per target. Included by path in two places:
// the cargo-fuzz targets (fuzz/fuzz_targets/*.rs), and tests/fuzz_regressions.rs, which
// replays every seed and every saved crash (fuzz/regressions/<target>/) in `make test`.
// Each function panics when its property fails; nothing else may panic, since a panic kills
// the Wasm VM.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};
use wsgate::config::{Config, KeySource};
use wsgate::decision::gate::Gate;
use wsgate::keys::jwks::{KeyLimits, KeySet};
use wsgate::request::RequestHead;
use wsgate::signature::{rsa_modulus_bits, JwsAlgorithm, KeyFamily, VerifyingKey};
use wsgate::token::extractor::TokenSources;

/// A target's property: panics when `data` breaks it.
pub type Property = fn(&[u8]);

/// The targets, by name, as `make fuzz` runs them and the replay test finds their inputs.
pub const TARGETS: [(&str, Property); 5] = [
    ("token", token),
    ("jwks", jwks),
    ("discovery", discovery),
    ("config", config),
    ("rsa_differential", rsa_differential),
];

/// The time tokens are decided at (ms since the epoch): the seed token is valid then.
const NOW_MS: u64 = 1_800_000_000_000;

/// Any bytes as a request on a guarded path: the `Authorization` value and, after a newline,
/// more `name: value` header lines. The fuzzer cannot forge a signature, so whatever is
/// accepted is the seed token (fuzz/seeds/token/valid.txt) byte for byte, as the request's
/// one token: its payload and its `sub`, and no second token beside it.
pub fn token(data: &[u8]) {
    token_accepted(data);
}

/// [`token`], saying whether the request was accepted.
pub fn token_accepted(data: &[u8]) -> bool {
    static SETUP: OnceLock<(Gate, KeySet, String, String, String)> = OnceLock::new();
    let (gate, keys, seed, payload, sub) = SETUP.get_or_init(|| {
        let config = format!(
            r#"{{"issuer":"https://issuer.example","audiences":["my-resource-id"],"jwks":{}}}"#,
            include_str!("keys.json")
        );
        let config = Config::parse(config.as_bytes()).expect("fuzz configuration");
        let KeySource::Inline(keys) = config.providers[0].keys.clone() else {
            panic!("inline keys")
        };
        let seed = include_str!("seeds/token/valid.txt");
        let token = seed
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("Bearer ");
        let payload = token.split('.').nth(1).expect("a payload").to_owned();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload).expect("base64url"))
                .expect("claims");
        let sub = claims["sub"].as_str().expect("a sub").to_owned();
        (config.gate(), keys, token.to_owned(), payload, sub)
    });
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut headers = vec![
        (":method".to_owned(), "GET".to_owned()),
        (":path".to_owned(), "/ws".to_owned()),
        ("connection".to_owned(), "Upgrade".to_owned()),
        ("upgrade".to_owned(), "websocket".to_owned()),
    ];
    if let Some(authorization) = lines.next() {
        headers.push(("authorization".to_owned(), authorization.to_owned()));
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    let head = RequestHead::new(headers);
    let Some(outcome) = gate.decide(&head, Some(keys), NOW_MS) else {
        return false;
    };
    let Some(identity) = outcome.identity() else {
        return false;
    };
    assert_eq!(
        &*identity.payload,
        payload.as_str(),
        "accepted another payload"
    );
    assert_eq!(
        identity.claim_str("sub"),
        Some(sub.as_str()),
        "accepted another sub"
    );
    match TokenSources::default().extract(&head) {
        Ok(Some(found)) => assert_eq!(&found.token, seed, "accepted another token"),
        other => panic!("accepted a request whose one token is {other:?}"),
    }
    true
}

/// Any bytes as the plugin configuration: one that parses builds a gate; one that does not
/// fails naming a field and saying why.
pub fn config(data: &[u8]) {
    match Config::parse(data) {
        Ok(config) => {
            let gate = config.gate();
            let _ = gate.rule_for("/ws");
        }
        Err(error) => {
            assert!(
                !error.field.is_empty(),
                "an error without a field: {error:?}"
            );
            assert!(
                !error.problem.is_empty(),
                "an error without a reason: {error:?}"
            );
        }
    }
}

/// Any bytes as an issuer's answer: the first byte picks the status line (fuzzed too), the
/// rest is the body, judged as a discovery document and as a fetch. Only a 200 within the
/// limit passes the judge, and a `jwks_uri` only comes from a document naming the issuer.
pub fn discovery(data: &[u8]) {
    const STATUSES: [&str; 8] = ["200", "201", "204", "301", "404", "500", " 200 ", "x"];
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(selector) % STATUSES.len()];
    let judged = wsgate::keys::remote::judge(Some(status), body.len(), body, 1024).is_ok();
    assert_eq!(
        judged,
        status.trim() == "200" && body.len() <= 1024,
        "status {status:?}, {} bytes",
        body.len()
    );
    if let Ok(uri) = wsgate::keys::remote::jwks_uri_from_discovery(body, "https://issuer.example") {
        let document: Value = serde_json::from_slice(body).expect("a document that gave a URI");
        assert_eq!(document["issuer"], "https://issuer.example");
        let _ = wsgate::keys::remote::Endpoint::parse(&uri, "issuer");
    }
}

/// Any bytes as a JWKS: what is kept is within the bounds and passed every check an
/// independent reading of the document can make: at most 100 keys, no two kept keys with
/// one `kid`, and for a kept key its entry names alone: RSA moduli from 2048 to 4096 bits,
/// no `use` but `sig`, no symmetric key. (The fuzzer's first find, kept in
/// fuzz/regressions/jwks/, was this property's own mistake: two entries named one `kid`,
/// one of them malformed, and the other was rightly kept.)
pub fn jwks(data: &[u8]) {
    let Ok((keys, _)) = KeySet::parse(data, KeyLimits::default()) else {
        return;
    };
    assert!(!keys.is_empty() && keys.len() <= 100, "{} keys", keys.len());
    let Ok(document) = serde_json::from_slice::<Value>(data) else {
        panic!("kept keys from a document that is not JSON")
    };
    let entries = document["keys"].as_array().cloned().unwrap_or_default();
    // Every kept key once (a key fits several algorithms), then its kid.
    let mut kept: Vec<*const wsgate::keys::jwks::Jwk> = Vec::new();
    let mut kids: Vec<&str> = Vec::new();
    for family in [KeyFamily::Rsa, KeyFamily::P256, KeyFamily::Ed25519] {
        for alg in JwsAlgorithm::ALL
            .into_iter()
            .filter(|alg| alg.family() == family)
        {
            for key in keys.candidates(alg, None) {
                assert_eq!(key.key().family(), family);
                if kept.contains(&(key as *const _)) {
                    continue;
                }
                kept.push(key);
                if let Some(kid) = key.kid() {
                    assert!(!kids.contains(&kid), "two kept keys share kid {kid:?}");
                    kids.push(kid);
                }
            }
        }
    }
    for kid in kids {
        let named: Vec<&Value> = entries.iter().filter(|entry| entry["kid"] == kid).collect();
        assert!(!named.is_empty(), "kid {kid:?} kept, but no entry names it");
        // Several entries may name it when all but one fail the cheap checks (a shared
        // kid makes keys ambiguous only among entries that pass them); with one, that
        // entry is the kept key, and its bounds are checked here independently.
        let [entry] = named.as_slice() else { continue };
        assert!(
            entry.get("use").map_or(true, |value| value == "sig"),
            "kid {kid:?} kept with use {}",
            entry["use"]
        );
        assert_ne!(entry["kty"], "oct", "a symmetric key kept");
        if entry["kty"] == "RSA" {
            let n = URL_SAFE_NO_PAD
                .decode(entry["n"].as_str().unwrap_or_default())
                .expect("a kept RSA key has a canonical modulus");
            let bits = rsa_modulus_bits(&n);
            assert!(
                (2048..=4096).contains(&bits),
                "kid {kid:?}: {bits} bits kept"
            );
        }
    }
}

const ALGS: [JwsAlgorithm; 6] = [
    JwsAlgorithm::Rs256,
    JwsAlgorithm::Rs384,
    JwsAlgorithm::Rs512,
    JwsAlgorithm::Ps256,
    JwsAlgorithm::Ps384,
    JwsAlgorithm::Ps512,
];

/// A deterministic RNG for PSS salts, so a failing input reproduces.
struct Counter(u64);

impl rand_core::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
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

/// One base key: `n`, `e`, and a valid signature of `header.payload` for each algorithm.
type Base = (Vec<u8>, Vec<u8>, Vec<Vec<u8>>);

/// The base keys: the demo key (2048 bits) and test-only 6144- and 8192-bit keys, whose
/// signatures are real known answers beyond the `rsa` crate's default 4096-bit bound
/// (wsgate accepts up to 8192 with `max_rsa_key_bits`).
fn bases() -> &'static [Base; 3] {
    static BASES: OnceLock<[Base; 3]> = OnceLock::new();
    BASES.get_or_init(|| {
        [
            include_str!("../testbed/demo/demo-signing-key.json"),
            include_str!("rsa-6144.json"),
            include_str!("rsa-8192.json"),
        ]
        .map(|text| {
            let jwk: Value = serde_json::from_str(text).expect("a private JWK");
            let part = |name: &str| {
                URL_SAFE_NO_PAD
                    .decode(jwk[name].as_str().expect(name))
                    .expect(name)
            };
            let number = |name: &str| BigUint::from_bytes_be(&part(name));
            let private = RsaPrivateKey::from_components(
                number("n"),
                number("e"),
                number("d"),
                vec![number("p"), number("q")],
            )
            .expect("a private key");
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
    })
}

/// Why wsgate refuses an RSA key the `rsa` crate (bounded at 8192 bits) takes, if it is one
/// of the rules wsgate documents: a modulus under 2048 bits or even, an exponent that is
/// even, under 3, or 2^32 and above.
fn documented_refusal(n: &[u8], e: &[u8]) -> Option<&'static str> {
    let e: Vec<u8> = e.iter().copied().skip_while(|&byte| byte == 0).collect();
    let small = e
        .iter()
        .fold(0u64, |acc, &byte| acc.saturating_mul(256) | u64::from(byte));
    if rsa_modulus_bits(n) < 2048 {
        Some("modulus under 2048 bits")
    } else if n.last().is_some_and(|low| low & 1 == 0) {
        Some("even modulus")
    } else if e.len() > 4 {
        Some("exponent 2^32 or above")
    } else if small < 3 {
        Some("exponent under 3")
    } else if small & 1 == 0 {
        Some("even exponent")
    } else {
        None
    }
}

/// wsgate's RSA verifier (src/signature/rsa.rs) against the `rsa` crate, on fuzzed keys and
/// signatures. The first byte picks one of the six RS*/PS* algorithms and one of three base
/// keys (2048, 6144, 8192 bits); the rest edit its (key, message, signature) triple: XOR a
/// byte of `n`, `e`, the signature or the message, or add or drop a leading byte. Where both
/// take the key, the verdicts are equal; where they disagree on the key, wsgate is the one
/// refusing, for a rule it documents; valid base signatures verify.
pub fn rsa_differential(data: &[u8]) {
    let Some((&selector, edits)) = data.split_first() else {
        return;
    };
    let index = usize::from(selector) % ALGS.len();
    let (n, e, signatures) = &bases()[usize::from(selector) / ALGS.len() % 3];
    let alg = ALGS[index];
    let (mut n, mut e, mut signature, mut message) = (
        n.clone(),
        e.clone(),
        signatures[index].clone(),
        b"header.payload".to_vec(),
    );
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
            1 if target.len() < 1100 => target.insert(0, value),
            2 if !target.is_empty() => {
                target.remove(0);
            }
            _ => {}
        }
    }
    let ours = VerifyingKey::rsa(&n, &e).ok();
    let theirs = RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(&n),
        BigUint::from_bytes_be(&e),
        8192,
    )
    .ok();
    let (ours, theirs) = match (ours, theirs) {
        (Some(ours), Some(theirs)) => (ours, theirs),
        (None, None) => return,
        // The rsa crate stops at 8192 bits; wsgate's key sets bound the size themselves
        // (`max_rsa_key_bits`, at most 8192), not VerifyingKey.
        (Some(_), None) if rsa_modulus_bits(&n) > 8192 => return,
        (Some(_), None) => panic!(
            "wsgate takes an RSA key the rsa crate refuses (n {} bits, e {e:02x?})",
            rsa_modulus_bits(&n)
        ),
        (None, Some(_)) => {
            let why = documented_refusal(&n, &e);
            assert!(
                why.is_some(),
                "wsgate refuses an RSA key for no documented rule (n {} bits, e {e:02x?})",
                rsa_modulus_bits(&n)
            );
            return;
        }
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
        "{}: wsgate {mine}, rsa crate {reference} (n {} bits, e {e:02x?}, signature {} bytes)",
        alg.name(),
        rsa_modulus_bits(&n),
        signature.len()
    );
    if edits.len() < 4 {
        assert!(mine, "{}: a valid base signature refused", alg.name());
    }
}
