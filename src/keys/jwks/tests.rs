//! Key-set parsing: which keys are kept, which are skipped and why, and the bounds.

use super::*;
use testbed::keys::{ED25519, P256, RSA_2048};

fn set_of(keys: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap()
}

#[test]
fn parses_each_supported_family() {
    let doc = set_of(&[
        RSA_2048.public_jwk("r"),
        P256.public_jwk("e"),
        ED25519.public_jwk("o"),
    ]);
    let (set, report) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
    assert_eq!(report, KeyReport::default());
    assert_eq!(set.len(), 3);
    assert_eq!(set.candidates(JwsAlgorithm::Rs256, Some("r")).count(), 1);
    assert_eq!(set.candidates(JwsAlgorithm::Ps512, None).count(), 1);
    assert_eq!(set.candidates(JwsAlgorithm::Es256, Some("r")).count(), 0);
    assert_eq!(set.candidates(JwsAlgorithm::EdDsa, Some("o")).count(), 1);
}

fn skipped_reason(mut jwk: Value, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    if let Some(object) = jwk.as_object_mut() {
        edit(object);
    }
    let doc = set_of(&[jwk, P256.public_jwk("keep")]);
    let (set, report) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    report.skipped[0].why.clone()
}

#[test]
fn unusable_keys_are_skipped_with_a_reason() {
    let rsa = || RSA_2048.public_jwk("k");
    assert!(skipped_reason(rsa(), |k| {
        k.insert("use".into(), "enc".into());
    })
    .contains("not \"sig\""));
    assert!(skipped_reason(rsa(), |k| {
        k.insert("key_ops".into(), serde_json::json!(["encrypt"]));
    })
    .contains("key_ops"));
    assert!(skipped_reason(rsa(), |k| {
        k.insert("alg".into(), "ES256".into());
    })
    .contains("does not fit"));
    assert!(skipped_reason(rsa(), |k| {
        k.insert("alg".into(), "HS256".into());
    })
    .contains("does not fit"));
    assert!(skipped_reason(rsa(), |k| {
        k.insert("e".into(), "AQ".into()); // exponent 1
    })
    .contains("exponent"));
    assert!(skipped_reason(rsa(), |k| {
        k.insert("n".into(), base64url::encode(&[0xab; 128]).into());
    })
    .contains("1024 bits"));
    assert!(skipped_reason(rsa(), |k| {
        let n = k["n"].as_str().unwrap().to_owned();
        k.insert("n".into(), format!("{n}=").into());
    })
    .contains("base64url"));
    assert!(
        skipped_reason(serde_json::json!({"kty":"oct","k":"c2VjcmV0"}), |_| {})
            .contains("symmetric")
    );
    assert!(skipped_reason(
        serde_json::json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA"}),
        |_| {}
    )
    .contains("P-384"));
    assert!(skipped_reason(serde_json::json!("a string"), |_| {}).contains("not a JSON object"));
}

#[test]
fn shared_kid_makes_both_keys_unusable() {
    let doc = set_of(&[
        RSA_2048.public_jwk("same"),
        P256.public_jwk("same"),
        ED25519.public_jwk("other"),
    ]);
    let (set, report) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
    assert_eq!(set.len(), 1);
    let skipped = report.skipped.iter().map(|k| k.index).collect::<Vec<_>>();
    assert_eq!(skipped, [0, 1]);
    assert_eq!(set.candidates(JwsAlgorithm::Rs256, Some("same")).count(), 0);
}

/// Ambiguity is decided before keys are prepared: an entry with a point off its curve
/// still makes its `kid` ambiguous, so a good key sharing it is not trusted either.
#[test]
fn a_broken_key_sharing_a_kid_makes_it_ambiguous_too() {
    let mut broken = P256.public_jwk("same");
    broken["y"] = base64url::encode(&[0x01; 32]).into();
    let doc = set_of(&[
        RSA_2048.public_jwk("same"),
        broken,
        ED25519.public_jwk("other"),
    ]);
    let (set, report) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
    assert_eq!(set.len(), 1);
    let skipped = report.skipped.iter().map(|k| k.index).collect::<Vec<_>>();
    assert_eq!(skipped, [0, 1]);
}

#[test]
fn documents_without_usable_keys_are_errors() {
    assert_eq!(
        KeySet::parse(b"{}", KeyLimits::default()).unwrap_err(),
        JwksError::MissingKeys
    );
    assert_eq!(
        KeySet::parse(br#"{"keys":{}}"#, KeyLimits::default()).unwrap_err(),
        JwksError::MissingKeys
    );
    assert_eq!(
        KeySet::parse(br#"{"keys":[]}"#, KeyLimits::default())
            .unwrap_err()
            .to_string(),
        "\"keys\" is empty"
    );
    assert!(matches!(
        KeySet::parse(b"[]", KeyLimits::default()),
        Err(JwksError::NotJson(_))
    ));
    assert!(matches!(
        KeySet::parse(b"<html>", KeyLimits::default()),
        Err(JwksError::NotJson(_))
    ));
    let dup = br#"{"keys":[],"keys":[]}"#;
    assert!(matches!(
        KeySet::parse(dup, KeyLimits::default()),
        Err(JwksError::NotJson(_))
    ));
    let err = KeySet::parse(
        &set_of(&[serde_json::json!({"kty":"oct","kid":"h","k":"AA"})]),
        KeyLimits::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no usable key: key 0 (kid \"h\"): symmetric keys are never used"
    );
}

#[test]
fn jwk_alg_pins_the_algorithm() {
    let mut jwk = RSA_2048.public_jwk("pinned");
    jwk["alg"] = "PS256".into();
    let (set, _) = KeySet::parse(&set_of(&[jwk]), KeyLimits::default()).unwrap();
    assert_eq!(
        set.candidates(JwsAlgorithm::Ps256, Some("pinned")).count(),
        1
    );
    assert_eq!(
        set.candidates(JwsAlgorithm::Rs256, Some("pinned")).count(),
        0
    );
}

#[test]
fn rsa_moduli_above_max_rsa_key_bits_are_skipped() {
    use testbed::keys::rsa_jwk_of_bits;
    let parse = |bits: usize, max_rsa_key_bits: usize| {
        let doc = set_of(&[rsa_jwk_of_bits(bits, "k"), P256.public_jwk("keep")]);
        let (set, report) = KeySet::parse(
            &doc,
            KeyLimits {
                max_rsa_key_bits,
                ..KeyLimits::default()
            },
        )
        .unwrap();
        (set.len(), report.skipped.first().map(|key| key.why.clone()))
    };
    assert_eq!(parse(4096, DEFAULT_MAX_RSA_KEY_BITS), (2, None));
    assert_eq!(
        parse(4097, DEFAULT_MAX_RSA_KEY_BITS),
        (
            1,
            Some("RSA modulus has 4097 bits; max_rsa_key_bits is 4096".into())
        )
    );
    assert_eq!(
        parse(65_536, DEFAULT_MAX_RSA_KEY_BITS).1,
        Some("RSA modulus has 65536 bits; max_rsa_key_bits is 4096".into())
    );
    assert_eq!(parse(8192, MAX_RSA_KEY_BITS_LIMIT), (2, None));
    assert_eq!(parse(2049, DEFAULT_MAX_RSA_KEY_BITS), (2, None));
}

#[test]
fn at_most_max_keys_are_kept_and_the_rest_counted() {
    let keys: Vec<Value> = (0..MAX_KEYS + 50)
        .map(|i| P256.public_jwk(&format!("k{i}")))
        .collect();
    let (set, report) = KeySet::parse(&set_of(&keys), KeyLimits::default()).unwrap();
    assert_eq!((set.len(), report.beyond_limits), (MAX_KEYS, 50));
    assert_eq!(set.candidates(JwsAlgorithm::Es256, Some("k99")).count(), 1);
    assert_eq!(set.candidates(JwsAlgorithm::Es256, Some("k100")).count(), 0);
    let warning = report.warnings().last().unwrap();
    assert!(
        warning.starts_with("50 more key(s) beyond the limits"),
        "{warning}"
    );
}

#[test]
fn at_most_max_key_entries_are_looked_at() {
    let mut keys = vec![serde_json::json!({"kty": "oct", "k": "AA"}); MAX_KEY_ENTRIES + 7];
    keys.push(P256.public_jwk("late"));
    let error = KeySet::parse(&set_of(&keys), KeyLimits::default()).unwrap_err();
    let JwksError::NoUsableKey(skipped) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(skipped.len(), MAX_KEY_ENTRIES);
    assert!(
        error
            .to_string()
            .ends_with(&format!("; and {} more", MAX_KEY_ENTRIES - 10)),
        "{error}"
    );
}

/// The worst key sets that the largest `max_document_bytes` (16 MiB) admits: the most
/// RSA keys of the largest size each limit allows (every one costs Montgomery
/// constants to prepare), and the most Ed25519 keys whose point fails to decompress
/// (each a field exponentiation, and never counted as usable). Keys are prepared for
/// at most MAX_KEYS usable keys and MAX_KEY_ENTRIES entries, so each costs
/// milliseconds; the bound asserted is loose, to stay clear of a noisy machine, and
/// still far below the seconds to minutes that unbounded preparation took.
#[test]
fn the_worst_document_within_max_document_bytes_costs_milliseconds() {
    const DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
    let fill = |entry: &dyn Fn(usize) -> Value| {
        let mut keys = Vec::new();
        let mut size = 16;
        while size < DOCUMENT_BYTES - 4096 {
            let key = entry(keys.len());
            size += key.to_string().len() + 1;
            keys.push(key);
        }
        set_of(&keys)
    };
    let bad_point = base64url::encode(&[0xff; 32]);
    let cases = [
        (
            "RSA-4096",
            fill(&|i| testbed::keys::rsa_jwk_of_bits(4096, &format!("k{i}"))),
            KeyLimits::default(),
        ),
        (
            "RSA-8192",
            fill(&|i| testbed::keys::rsa_jwk_of_bits(8192, &format!("k{i}"))),
            KeyLimits {
                max_rsa_key_bits: MAX_RSA_KEY_BITS_LIMIT,
                ..KeyLimits::default()
            },
        ),
        (
            "Ed25519 off the curve",
            fill(&|i| {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": format!("k{i}"),
                                   "x": bad_point})
            }),
            KeyLimits::default(),
        ),
    ];
    for (what, document, limits) in cases {
        assert!(document.len() <= DOCUMENT_BYTES);
        let started = std::time::Instant::now();
        let parsed = KeySet::parse(&document, limits);
        let took = started.elapsed();
        eprintln!(
            "worst document, {what}: {} bytes parsed in {} ms",
            document.len(),
            took.as_millis()
        );
        match parsed {
            Ok((set, _)) => assert_eq!(set.len(), MAX_KEYS, "{what}"),
            Err(JwksError::NoUsableKey(skipped)) => {
                assert_eq!(skipped.len(), MAX_KEY_ENTRIES, "{what}")
            }
            Err(other) => panic!("{what}: {other}"),
        }
        assert!(took.as_secs_f64() < 3.0, "{what}: {took:?}");
    }
}

/// ES384 and ES512 (#30): P-384 and P-521 keys of their exact widths, each offered only to
/// the algorithm RFC 7518 §3.4 binds to its curve, and left out where no host verifies them.
#[test]
fn p384_and_p521_keys_are_bound_to_their_algorithm() {
    use testbed::keys::{P384, P521};
    let doc = set_of(&[P384.public_jwk("p384"), P521.public_jwk("p521")]);
    let (set, report) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
    assert_eq!((set.len(), report), (2, KeyReport::default()));
    assert_eq!(set.candidates(JwsAlgorithm::Es384, None).count(), 1);
    assert_eq!(set.candidates(JwsAlgorithm::Es512, None).count(), 1);
    // A curve confusion names the right kid and still finds no key.
    for (alg, kid) in [
        (JwsAlgorithm::Es256, "p384"),
        (JwsAlgorithm::Es512, "p384"),
        (JwsAlgorithm::Es256, "p521"),
        (JwsAlgorithm::Es384, "p521"),
    ] {
        assert_eq!(
            set.candidates(alg, Some(kid)).count(),
            0,
            "{alg:?} on {kid}"
        );
    }
    // `alg` must be the curve's.
    let why = skipped_reason(P384.public_jwk("k"), |jwk| {
        jwk.insert("alg".into(), "ES256".into());
    });
    assert!(why.contains("does not fit"), "{why}");
    let why = skipped_reason(P521.public_jwk("k"), |jwk| {
        jwk.insert("alg".into(), "ES384".into());
    });
    assert!(why.contains("does not fit"), "{why}");
    // Exact coordinate widths: a P-256-sized coordinate on P-384, or a P-521 one cut short.
    let p256 = P256.public_jwk("x");
    let why = skipped_reason(P384.public_jwk("k"), |jwk| {
        jwk.insert("x".into(), p256["x"].clone());
    });
    assert!(why.contains("48 bytes"), "{why}");
    let why = skipped_reason(P521.public_jwk("k"), |jwk| {
        let y = crate::encoding::base64url::decode(jwk["y"].as_str().unwrap()).unwrap();
        let short =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &y[1..]);
        jwk.insert("y".into(), short.into());
    });
    assert!(why.contains("66 bytes"), "{why}");
    // Where no host verifies them, they are left out with the reason.
    let limits = KeyLimits {
        p384: false,
        ..KeyLimits::default()
    };
    let (set, report) = KeySet::parse(&doc, limits).unwrap();
    assert_eq!(set.len(), 1);
    assert!(
        report.skipped[0].why.contains("verify_signature"),
        "{report:?}"
    );
    let (all, _) = KeySet::parse(&doc, KeyLimits::default()).unwrap();
    let (kept, dropped) = all.within(KeyLimits {
        p384: false,
        p521: false,
        ..KeyLimits::default()
    });
    assert_eq!((kept.len(), dropped), (0, 2));
}
