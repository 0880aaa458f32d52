//! Tokens for the differential test against Envoy's `jwt_authn` (tests/envoy_differential.rs):
//! a seeded generator of valid tokens and of every kind of damage, each case labelled with
//! the class it belongs to, so that a disagreement between the two filters can be looked up
//! in the test's table of known, reasoned differences.
//!
//! The same seed gives the same cases (signatures of the randomised algorithms aside, which
//! do not change what a case is).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::keys::{jwks, TestKey, ED25519, P256, P384, P521, RSA_2048};

/// The issuer and audience both filters are configured with.
pub const ISSUER: &str = "https://issuer.differential";
/// The audience both filters accept.
pub const AUDIENCE: &str = "differential-api";

/// One request to send to both filters.
#[derive(Debug, Clone)]
pub struct Case {
    /// The class of the case (`claims:iat-string`, `mutate:payload-char`, ...): what a
    /// disagreement is classified by.
    pub class: &'static str,
    /// What exactly this case is, for the failure message.
    pub detail: String,
    /// The whole `Authorization` value.
    pub authorization: String,
}

/// The JWKS both filters verify with: RSA (`rsa`), P-256 (`ec`) and Ed25519 (`ed`).
pub fn keys() -> Value {
    jwks(&[
        (&RSA_2048, "rsa"),
        (&P256, "ec"),
        (&ED25519, "ed"),
        (&P384, "p384"),
        (&P521, "p521"),
    ])
}

/// A small deterministic generator (SplitMix64): no dependency, the same cases per seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// The valid claims at `now`.
pub fn claims(now: u64) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "differential", "iat": now, "exp": now + 600})
}

/// Every algorithm both filters verify, with the key that signs it and its `kid`.
pub fn algorithms() -> [(&'static str, &'static TestKey, &'static str); 10] {
    [
        ("RS256", &RSA_2048, "rsa"),
        ("RS384", &RSA_2048, "rsa"),
        ("RS512", &RSA_2048, "rsa"),
        ("PS256", &RSA_2048, "rsa"),
        ("PS384", &RSA_2048, "rsa"),
        ("PS512", &RSA_2048, "rsa"),
        ("ES256", &P256, "ec"),
        ("EdDSA", &ED25519, "ed"),
        ("ES384", &P384, "p384"),
        ("ES512", &P521, "p521"),
    ]
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn signed(key: &TestKey, alg: &str, header: &Value, claims: &Value) -> String {
    key.sign_raw(
        alg,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    )
}

/// Every case for `seed` at `now`, several hundred of them.
pub fn cases(seed: u64, now: u64) -> Vec<Case> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut push = |class: &'static str, detail: String, authorization: String| {
        out.push(Case {
            class,
            detail,
            authorization,
        })
    };
    let good = claims(now);

    // Every algorithm's valid token, with and without `kid`.
    for (alg, key, kid) in algorithms() {
        let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
        push(
            "valid",
            alg.to_string(),
            bearer(&signed(key, alg, &header, &good)),
        );
        let header = json!({"alg": alg});
        // ES384 and ES512 without `kid` have a class of their own: `jwt_authn` refuses them
        // in this key set (see SECURITY.md), and that must not hide another algorithm's.
        let no_kid = if matches!(alg, "ES384" | "ES512") {
            "valid:no-kid-p384-p521"
        } else {
            "valid:no-kid"
        };
        push(
            no_kid,
            alg.to_string(),
            bearer(&signed(key, alg, &header, &good)),
        );
    }

    // Curve confusions (RFC 7518 §3.4 binds each ES* to one curve; none of these keys has an
    // `alg`): a key signing with another ES*'s hash under that algorithm's name.
    for (alg, key, kid) in [
        ("ES256", &*P384, "p384"),
        ("ES512", &*P384, "p384"),
        ("ES384", &*P521, "p521"),
        ("ES384", &*P256, "ec"),
    ] {
        let header = json!({"alg": alg, "kid": kid});
        push(
            "alg:curve-confusion",
            format!("{alg} signed by the {kid} key"),
            bearer(&signed(key, alg, &header, &good)),
        );
    }

    // Characters and bits changed in each segment, signatures lengthened, shortened and
    // with their last character changed: of an RSA, an EC and an Ed25519 token.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (alg, key, kid) in [algorithms()[0], algorithms()[6], algorithms()[7]] {
        let token = signed(key, alg, &json!({"alg": alg, "kid": kid}), &good);
        let parts: Vec<&str> = token.split('.').collect();
        for (segment, name) in ["header", "payload", "signature"].iter().enumerate() {
            let class_char: &'static str = match segment {
                0 => "mutate:header-char",
                1 => "mutate:payload-char",
                _ => "mutate:signature-char",
            };
            let class_bit: &'static str = match segment {
                0 => "mutate:header-bit",
                1 => "mutate:payload-bit",
                _ => "mutate:signature-bit",
            };
            for _ in 0..6 {
                let mut bytes = parts[segment].as_bytes().to_vec();
                // Not the last character: part of it may be bits base64url leaves unused,
                // which `signature:last-char` covers on its own.
                let at = rng.below(bytes.len() - 1);
                let mut with = ALPHABET[rng.below(ALPHABET.len())];
                if with == bytes[at] {
                    with = if with == b'A' { b'B' } else { b'A' };
                }
                bytes[at] = with;
                let mut changed = parts.clone();
                let text = String::from_utf8(bytes).unwrap_or_default();
                changed[segment] = &text;
                push(
                    class_char,
                    format!("{alg} {name} char {at} -> {}", with as char),
                    bearer(&changed.join(".")),
                );
            }
            for _ in 0..6 {
                let mut bytes = URL_SAFE_NO_PAD.decode(parts[segment]).unwrap_or_default();
                if bytes.is_empty() {
                    continue;
                }
                let at = rng.below(bytes.len());
                let bit = rng.below(8);
                bytes[at] ^= 1 << bit;
                let encoded = URL_SAFE_NO_PAD.encode(&bytes);
                let mut changed = parts.clone();
                changed[segment] = &encoded;
                push(
                    class_bit,
                    format!("{alg} {name} byte {at} bit {bit}"),
                    bearer(&changed.join(".")),
                );
            }
        }
    }
    for (alg, key, kid) in algorithms() {
        let token = signed(key, alg, &json!({"alg": alg, "kid": kid}), &good);
        let (input, signature) = token.rsplit_once('.').unwrap_or_default();
        for extra in ["A", "AA", "AAAA", "AAAAAAAAAAA"] {
            push(
                "signature:lengthened",
                format!("{alg} +{extra}"),
                bearer(&format!("{input}.{signature}{extra}")),
            );
        }
        for cut in [1, 2, 4] {
            let shorter = signature.get(..signature.len() - cut).unwrap_or_default();
            push(
                "signature:shortened",
                format!("{alg} -{cut}"),
                bearer(&format!("{input}.{shorter}")),
            );
        }
        let last = signature.as_bytes().last().copied().unwrap_or(b'A');
        for with in [b'A', b'B', b'Q', b'g', b'w', b'_'] {
            if with != last {
                let changed = format!("{}{}", &signature[..signature.len() - 1], with as char);
                push(
                    "signature:last-char",
                    format!("{alg} last {} -> {}", last as char, with as char),
                    bearer(&format!("{input}.{changed}")),
                );
            }
        }
        push(
            "signature:empty",
            alg.to_string(),
            bearer(&format!("{input}.")),
        );
    }

    // Re-signed claim edits: types, ranges, arrays, missing claims.
    let rs = |claims: &Value| {
        signed(
            &RSA_2048,
            "RS256",
            &json!({"alg": "RS256", "kid": "rsa"}),
            claims,
        )
    };
    let n = now as f64;
    let edits: Vec<(&'static str, &str, Option<Value>)> = vec![
        ("claims:iss-type", "iss", Some(json!(7))),
        ("claims:iss-type", "iss", Some(json!([ISSUER]))),
        ("claims:iss-type", "iss", Some(Value::Null)),
        (
            "claims:iss-other",
            "iss",
            Some(json!("https://other.example")),
        ),
        ("claims:iss-other", "iss", Some(json!(format!("{ISSUER}/")))),
        ("claims:missing-iss", "iss", None),
        ("claims:sub-type", "sub", Some(json!(7))),
        ("claims:sub-type", "sub", Some(json!(["a"]))),
        ("claims:sub-type", "sub", Some(json!({"id": 1}))),
        ("claims:missing-sub", "sub", None),
        ("claims:jti-type", "jti", Some(json!(7))),
        ("claims:jti-ok", "jti", Some(json!("id-1"))),
        ("claims:iat-type", "iat", Some(json!(format!("{now}")))),
        ("claims:iat-type", "iat", Some(json!(true))),
        ("claims:iat-range", "iat", Some(json!(-1))),
        ("claims:iat-range", "iat", Some(json!(1e20))),
        ("claims:iat-future", "iat", Some(json!(now + 3600))),
        ("claims:iat-fraction", "iat", Some(json!(n + 0.5))),
        ("claims:missing-iat", "iat", None),
        (
            "claims:exp-type",
            "exp",
            Some(json!(format!("{}", now + 600))),
        ),
        ("claims:exp-type", "exp", Some(Value::Null)),
        ("claims:exp-range", "exp", Some(json!(1e20))),
        ("claims:exp-range", "exp", Some(json!(253_402_300_800u64))),
        ("claims:exp-far", "exp", Some(json!(253_402_300_799u64))),
        ("claims:exp-fraction", "exp", Some(json!(n + 600.5))),
        ("claims:exp-past", "exp", Some(json!(now - 3600))),
        ("claims:exp-within-skew", "exp", Some(json!(now - 30))),
        ("claims:missing-exp", "exp", None),
        ("claims:nbf-type", "nbf", Some(json!("0"))),
        ("claims:nbf-future", "nbf", Some(json!(now + 3600))),
        ("claims:nbf-within-skew", "nbf", Some(json!(now + 30))),
        ("claims:nbf-ok", "nbf", Some(json!(now - 10))),
        ("claims:nbf-fraction", "nbf", Some(json!(n - 0.5))),
        ("claims:aud-type", "aud", Some(json!(7))),
        ("claims:aud-type", "aud", Some(json!([AUDIENCE, 7]))),
        ("claims:aud-other", "aud", Some(json!("other"))),
        ("claims:aud-other", "aud", Some(json!([]))),
        ("claims:aud-array", "aud", Some(json!(["other", AUDIENCE]))),
        ("claims:missing-aud", "aud", None),
        (
            "claims:extra",
            "roles",
            Some(json!(["a", {"b": [1, 2.5, null]}])),
        ),
    ];
    for (class, name, value) in edits {
        let mut claims = good.clone();
        match &value {
            Some(value) => claims[name] = value.clone(),
            None => {
                claims.as_object_mut().map(|map| map.remove(name));
            }
        }
        push(class, format!("{name} = {value:?}"), bearer(&rs(&claims)));
    }
    push(
        "claims:not-object",
        "[]".into(),
        bearer(&rs(&json!([good.clone()]))),
    );

    // Re-signed header edits.
    let header_edits: Vec<(&'static str, Value)> = vec![
        ("header:typ", json!({"typ": "JWT"})),
        ("header:typ", json!({"typ": "jwt"})),
        ("header:typ", json!({"typ": "at+jwt"})),
        ("header:typ-other", json!({"typ": "JWE"})),
        ("header:typ-type", json!({"typ": 7})),
        ("header:crit", json!({"crit": ["exp"]})),
        ("header:crit", json!({"crit": []})),
        ("header:b64", json!({"b64": false, "crit": ["b64"]})),
        ("header:b64", json!({"b64": false})),
        ("header:zip", json!({"zip": "DEF"})),
        ("header:kid-type", json!({"kid": 7})),
        ("header:kid-type", json!({"kid": null})),
        ("header:kid-type", json!({"kid": ["rsa"]})),
        ("header:kid-empty", json!({"kid": ""})),
        ("header:kid-unknown", json!({"kid": "nope"})),
        ("header:kid-other-family", json!({"kid": "ec"})),
        ("header:no-kid", json!({"kid": "__remove__"})),
        ("header:jku", json!({"jku": "https://evil.example/jwks"})),
        ("header:jwk", json!({"jwk": {"kty": "oct", "k": "AAAA"}})),
        ("header:x5u", json!({"x5u": "https://evil.example/cert"})),
        ("header:extra", json!({"cty": "JWT", "x-extra": [1, 2]})),
        ("header:alg-case", json!({"alg": "rs256"})),
        ("header:alg-none", json!({"alg": "none"})),
        ("header:alg-hs", json!({"alg": "HS256"})),
        ("header:alg-type", json!({"alg": 256})),
        ("header:alg-missing", json!({"alg": "__remove__"})),
        ("header:alg-family", json!({"alg": "ES256"})),
    ];
    for (class, edit) in header_edits {
        let mut header = json!({"alg": "RS256", "kid": "rsa"});
        for (name, value) in edit.as_object().into_iter().flatten() {
            if value == "__remove__" {
                header.as_object_mut().map(|map| map.remove(name));
            } else {
                header[name] = value.clone();
            }
        }
        // The RSA key signs whatever `alg` says (RS256 for one it does not know).
        let alg = header["alg"].as_str().unwrap_or("RS256").to_owned();
        let token = RSA_2048.sign_raw(
            &alg,
            header.to_string().as_bytes(),
            good.to_string().as_bytes(),
        );
        push(class, edit.to_string(), bearer(&token));
    }

    // Raw JSON shapes, re-signed.
    let header = r#"{"alg":"RS256","kid":"rsa"}"#;
    let payload = good.to_string();
    let inner = payload
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_owned();
    let exp_past = now - 3600;
    let raw: Vec<(&'static str, String, Vec<u8>)> = vec![
        (
            "json:whitespace",
            header.into(),
            format!(" \n{{ {inner} }}\t").into_bytes(),
        ),
        (
            "json:bom",
            header.into(),
            [b"\xef\xbb\xbf".as_slice(), payload.as_bytes()].concat(),
        ),
        (
            "json:bom",
            format!("\u{feff}{header}"),
            payload.clone().into_bytes(),
        ),
        (
            "json:duplicate-claim",
            header.into(),
            format!("{{{inner},\"exp\":{exp_past}}}").into_bytes(),
        ),
        (
            "json:duplicate-claim",
            header.into(),
            format!("{{\"exp\":{exp_past},{inner}}}").into_bytes(),
        ),
        (
            "json:duplicate-header",
            r#"{"alg":"RS256","kid":"rsa","kid":"ec"}"#.into(),
            payload.clone().into_bytes(),
        ),
        (
            "json:escapes",
            header.into(),
            format!(
                "{{{},\"x\":\"\\u00e9\\n\\\"\"}}",
                inner.replace("\"iss\"", "\"\\u0069ss\"")
            )
            .into_bytes(),
        ),
        (
            "json:escapes",
            r#"{"\u0061lg":"RS256","kid":"\u0072sa"}"#.into(),
            payload.clone().into_bytes(),
        ),
        (
            "json:trailing-comma",
            header.into(),
            format!("{{{inner},}}").into_bytes(),
        ),
        (
            "json:trailing-comma",
            r#"{"alg":"RS256","kid":"rsa",}"#.into(),
            payload.clone().into_bytes(),
        ),
        (
            "json:deep-nesting",
            header.into(),
            format!("{{{inner},\"deep\":{}{}}}", "[".repeat(64), "]".repeat(64)).into_bytes(),
        ),
        (
            "json:very-deep-nesting",
            header.into(),
            format!(
                "{{{inner},\"deep\":{}{}}}",
                "[".repeat(2000),
                "]".repeat(2000)
            )
            .into_bytes(),
        ),
        (
            "json:invalid-utf8",
            header.into(),
            [
                format!("{{{inner},\"x\":\"").as_bytes(),
                b"\xff\xfe",
                b"\"}",
            ]
            .concat(),
        ),
        ("json:not-json", header.into(), b"not json".to_vec()),
        ("json:payload-scalar", header.into(), b"null".to_vec()),
        ("json:payload-empty", header.into(), Vec::new()),
        (
            "json:header-not-object",
            r#"["RS256"]"#.into(),
            payload.clone().into_bytes(),
        ),
        (
            "json:comments",
            header.into(),
            format!("{{/*c*/{inner}}}").into_bytes(),
        ),
        (
            "json:numbers",
            header.into(),
            payload
                .replace(
                    &format!("\"exp\":{}", now + 600),
                    &format!("\"exp\":{}e0", now + 600),
                )
                .into_bytes(),
        ),
        (
            "json:numbers",
            header.into(),
            payload
                .replace(
                    &format!("\"exp\":{}", now + 600),
                    &format!("\"exp\":0{}", now + 600),
                )
                .into_bytes(),
        ),
    ];
    for (class, header, payload) in raw {
        let token = RSA_2048.sign_raw("RS256", header.as_bytes(), &payload);
        let shown = String::from_utf8_lossy(&payload);
        push(class, format!("{header} {:.60}", shown), bearer(&token));
    }

    // Token shapes: dots, padding, alphabet.
    let token = rs(&good);
    let parts: Vec<&str> = token.split('.').collect();
    let shapes: Vec<(&'static str, String)> = vec![
        ("shape:two-parts", format!("{}.{}", parts[0], parts[1])),
        ("shape:four-parts", format!("{token}.{}", parts[2])),
        (
            "shape:jwe-like",
            format!(
                "{}.{}.{}.{}.{}",
                parts[0], parts[1], parts[2], parts[1], parts[2]
            ),
        ),
        ("shape:leading-dot", format!(".{token}")),
        ("shape:trailing-dot", format!("{token}.")),
        ("shape:empty-header", format!(".{}.{}", parts[1], parts[2])),
        ("shape:empty-payload", format!("{}..{}", parts[0], parts[2])),
        ("shape:padding", pad_all(&parts)),
        (
            "shape:padding",
            format!("{}.{}.{}==", parts[0], parts[1], parts[2]),
        ),
        ("shape:standard-alphabet", to_standard(&token)),
        ("shape:standard-encoding", standard_encoding(&good)),
        (
            "shape:whitespace-inside",
            format!("{}. {}.{}", parts[0], parts[1], parts[2]),
        ),
        (
            "shape:percent-encoded",
            token.replace('-', "%2D").replace('_', "%5F"),
        ),
        ("shape:quoted", format!("\"{token}\"")),
        ("shape:empty", String::new()),
    ];
    for (class, token) in shapes {
        push(class, token.chars().take(40).collect(), bearer(&token));
    }

    // Scheme spellings.
    let schemes: Vec<(&'static str, String)> = vec![
        ("scheme:case", format!("bearer {token}")),
        ("scheme:case", format!("BEARER {token}")),
        ("scheme:two-spaces", format!("Bearer  {token}")),
        ("scheme:tab", format!("Bearer\t{token}")),
        ("scheme:trailing-space", format!("Bearer {token} ")),
        ("scheme:colon", format!("Bearer:{token}")),
        ("scheme:none", token.clone()),
        ("scheme:other", format!("Token {token}")),
        (
            "scheme:basic",
            format!("Basic {}", STANDARD.encode("user:pass")),
        ),
        (
            "scheme:two-tokens",
            format!("Bearer {token}, Bearer {token}"),
        ),
        ("scheme:after-another", format!("Basic x, Bearer {token}")),
    ];
    for (class, authorization) in schemes {
        push(
            class,
            authorization.chars().take(24).collect(),
            authorization,
        );
    }
    out
}

/// Each segment padded with `=` to a multiple of four.
fn pad_all(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|part| format!("{part}{}", "=".repeat((4 - part.len() % 4) % 4)))
        .collect::<Vec<_>>()
        .join(".")
}

/// The token with `-` and `_` as `+` and `/` (when it has any).
fn to_standard(token: &str) -> String {
    token.replace('-', "+").replace('_', "/")
}

/// A token whose signing input uses standard base64 with padding, signed as such.
fn standard_encoding(claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        STANDARD.encode(r#"{"alg":"RS256","kid":"rsa"}"#),
        STANDARD.encode(claims.to_string())
    );
    let signature = RSA_2048.signature("RS256", input.as_bytes());
    format!("{input}.{}", STANDARD.encode(signature))
}
