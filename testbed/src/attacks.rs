//! The attack catalogue: classic JOSE/JWT mistakes (RFC 8725, Wycheproof, Envoy's own JWT
//! CVEs), each as a named request that wsgate must refuse with a named deny reason.
//!
//! [`catalogue`] returns the key set the gate must be configured with (good keys next to
//! deliberately unusable ones) and the cases. Shared by the native test of the core and the
//! Envoy test of a representative subset.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde_json::{json, Value};

use crate::keys::{TestKey, P256, P384, P521, RSA_2048, RSA_2048_OTHER};

/// One hostile request.
#[derive(Debug, Clone)]
pub struct Attack {
    /// Short name, unique.
    pub name: &'static str,
    /// The `Authorization` values the client sends (usually one).
    pub authorization: Vec<String>,
    /// The deny reason wsgate must answer with (`DenyReason::name`).
    pub reason: &'static str,
    /// Whether the case survives an HTTP/1.1 codec unchanged, so it can also run through
    /// Envoy (control bytes, for one, are refused by Envoy's codec before any filter).
    pub over_http: bool,
    /// Whether the case names a P-384 or P-521 key. Only a host verifier checks ES384 and
    /// ES512; a module without one (`crypto: wasm`) drops those keys, so there the case is
    /// refused as `unknown_key` (see [`Attack::reason_without_host_curves`]).
    pub host_curve: bool,
}

impl Attack {
    /// The deny reason where P-384 and P-521 keys are dropped for want of a host verifier.
    pub fn reason_without_host_curves(&self) -> &'static str {
        if self.host_curve {
            "unknown_key"
        } else {
            self.reason
        }
    }

    /// Sends this attack as a WebSocket upgrade to `path` on `addr` and returns the refusal
    /// (panicking, with the attack's name, if the upgrade succeeds). Values that are not
    /// ASCII are written byte for byte, since tungstenite sends only ASCII header values.
    pub fn send(&self, addr: std::net::SocketAddr, path: &str) -> crate::client::Response {
        if self.authorization.iter().all(|value| value.is_ascii()) {
            let headers: Vec<(&str, &str)> = self
                .authorization
                .iter()
                .map(|value| ("authorization", value.as_str()))
                .collect();
            match crate::client::websocket(addr, path, &headers) {
                Ok(_) => panic!("{}: the upgrade succeeded", self.name),
                Err(refused) => refused,
            }
        } else {
            let headers: Vec<(&str, &[u8])> = self
                .authorization
                .iter()
                .map(|value| ("authorization", value.as_bytes()))
                .collect();
            crate::client::raw_handshake(addr, path, &headers)
        }
    }
}

/// The catalogue for a gate whose issuer is `issuer` and audience `audience`, at `now`.
/// Returns the JWKS to configure and the cases.
pub fn catalogue(issuer: &str, audience: &str, now: u64) -> (Value, Vec<Attack>) {
    let good_claims = json!({"iss": issuer, "aud": audience, "sub": "victim", "exp": now + 600});
    let rsa_public = RSA_2048.public_jwk("good");
    let mut weak = rsa_public.clone();
    weak["kid"] = "weak".into();
    weak["n"] = URL_SAFE_NO_PAD.encode([0xc3u8; 128]).into(); // 1024 bits
    let mut exponent_one = rsa_public.clone();
    exponent_one["kid"] = "exponent-one".into();
    exponent_one["e"] = "AQ".into();
    let mut encryption = RSA_2048.public_jwk("enc");
    encryption["use"] = "enc".into();
    let mut pinned = RSA_2048.public_jwk("pinned");
    pinned["alg"] = "PS256".into();
    let jwks = json!({ "keys": [
        rsa_public,
        P256.public_jwk("ec"),
        P384.public_jwk("p384"),
        P521.public_jwk("p521"),
        weak,
        exponent_one,
        encryption,
        pinned,
        RSA_2048.public_jwk("twice"),
        RSA_2048.public_jwk("twice"),
    ]});

    let good = RSA_2048.sign(json!({"kid": "good"}), &good_claims);
    let with_claim = |name: &str, value: Value| {
        let mut claims = good_claims.clone();
        if value.is_null() {
            claims.as_object_mut().map(|c| c.remove(name));
        } else {
            claims[name] = value;
        }
        RSA_2048.sign(json!({"kid": "good"}), &claims)
    };
    let segments: Vec<String> = good.split('.').map(str::to_owned).collect();
    let (header, payload, signature) = (&segments[0], &segments[1], &segments[2]);
    let raw_payload = URL_SAFE_NO_PAD.decode(payload).unwrap_or_default();
    let raw_signature = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    let none = |alg: &str| {
        format!(
            "{}.{payload}.",
            b64(&format!(r#"{{"alg":"{alg}","kid":"good"}}"#))
        )
    };
    let hs256_with_public_key = {
        let secret = serde_json::to_vec(&RSA_2048.public_jwk("good")).unwrap_or_default();
        let input = format!("{}.{payload}", b64(r#"{"alg":"HS256","kid":"good"}"#));
        let mac = Hs256.sign(&Hs256Key::new(secret), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_bytes()))
    };
    let hs256_with_modulus = {
        let modulus = URL_SAFE_NO_PAD
            .decode(
                RSA_2048.public_jwk("good")["n"]
                    .as_str()
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
        let input = format!("{}.{payload}", b64(r#"{"alg":"HS256"}"#));
        let mac = Hs256.sign(&Hs256Key::new(modulus), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_bytes()))
    };
    let raw = |header: &str, payload: &str| {
        RSA_2048.sign_raw("RS256", header.as_bytes(), payload.as_bytes())
    };
    let claims_text = good_claims.to_string();
    let trailing_bits = {
        // 256 signature bytes leave 4 unused bits in the last character; set one.
        let mut chars: Vec<char> = signature.chars().collect();
        if let Some(last) = chars.last_mut() {
            let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let index = alphabet.find(*last).unwrap_or(0);
            *last = alphabet.chars().nth(index | 1).unwrap_or('B');
        }
        format!(
            "{header}.{payload}.{}",
            chars.into_iter().collect::<String>()
        )
    };
    let standard_alphabet = format!(
        "{header}.{payload}.{}",
        STANDARD_NO_PAD.encode(&raw_signature)
    );
    let curve = |key: &TestKey, kid: &str, alg: &str| {
        key.sign(json!({"kid": kid, "alg": alg}), &good_claims)
    };
    // A token of `key`, in its own algorithm, with `signature` in place of its own (r = s = 0,
    // or bytes of another width).
    let with_signature = |key: &TestKey, kid: &str, signature: &[u8]| {
        let token = curve(key, kid, key.default_alg());
        let input = token
            .rsplit_once('.')
            .map(|(input, _)| input.to_owned())
            .unwrap_or_default();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    };
    let zero_ecdsa = with_signature(&P256, "ec", &[0; 64]);
    let short_eddsa = format!(
        "{}.{payload}.{}",
        b64(r#"{"alg":"EdDSA"}"#),
        URL_SAFE_NO_PAD.encode([1u8; 10])
    );
    let stranger_jwk = RSA_2048_OTHER.public_jwk("good");

    let mut cases = vec![
        attack("alg none", none("none"), "unsupported_algorithm"),
        attack("alg None", none("None"), "unsupported_algorithm"),
        attack("alg NONE", none("NONE"), "unsupported_algorithm"),
        attack("alg nOnE", none("nOnE"), "unsupported_algorithm"),
        attack(
            "alg none with the real signature",
            format!(
                "{}.{payload}.{signature}",
                b64(r#"{"alg":"none","kid":"good"}"#)
            ),
            "unsupported_algorithm",
        ),
        attack(
            "HS256 keyed with the RSA public JWK",
            hs256_with_public_key,
            "unsupported_algorithm",
        ),
        attack(
            "HS256 keyed with the RSA modulus",
            hs256_with_modulus,
            "unsupported_algorithm",
        ),
        attack(
            "jwk in the header",
            RSA_2048_OTHER.sign(json!({"kid": "good", "jwk": stranger_jwk}), &good_claims),
            "bad_signature",
        ),
        attack(
            "jwk in the header, no kid",
            RSA_2048_OTHER.sign(json!({"jwk": RSA_2048_OTHER.public_jwk("x")}), &good_claims),
            "bad_signature",
        ),
        attack(
            "jku in the header",
            RSA_2048_OTHER.sign(
                json!({"kid": "good", "jku": "https://evil.example/jwks.json"}),
                &good_claims,
            ),
            "bad_signature",
        ),
        attack(
            "x5u in the header",
            RSA_2048_OTHER.sign(
                json!({"kid": "good", "x5u": "https://evil.example/cert.pem"}),
                &good_claims,
            ),
            "bad_signature",
        ),
        attack(
            "x5c in the header",
            RSA_2048_OTHER.sign(
                json!({"kid": "good", "x5c": ["MIIBszCCAVmgAwIBAgIJAK"]}),
                &good_claims,
            ),
            "bad_signature",
        ),
        attack(
            "kid path traversal",
            RSA_2048.sign(json!({"kid": "../../../../etc/passwd"}), &good_claims),
            "unknown_key",
        ),
        attack(
            "kid SQL text",
            RSA_2048.sign(json!({"kid": "x' OR '1'='1"}), &good_claims),
            "unknown_key",
        ),
        attack(
            "kid as a number",
            RSA_2048.sign(json!({"kid": 1}), &good_claims),
            "malformed",
        ),
        attack(
            "crit with an unknown extension",
            RSA_2048.sign(
                json!({"kid": "good", "crit": ["exp"], "exp": 1}),
                &good_claims,
            ),
            "malformed",
        ),
        attack(
            "crit empty",
            RSA_2048.sign(json!({"kid": "good", "crit": []}), &good_claims),
            "malformed",
        ),
        attack("expired", with_claim("exp", json!(now - 3600)), "expired"),
        attack(
            "not yet valid",
            with_claim("nbf", json!(now + 3600)),
            "not_yet_valid",
        ),
        attack(
            "missing exp",
            with_claim("exp", Value::Null),
            "missing_expiry",
        ),
        attack(
            "exp as a string",
            with_claim("exp", json!((now + 600).to_string())),
            "malformed",
        ),
        attack(
            "aud wrong",
            with_claim("aud", json!("someone-else")),
            "wrong_audience",
        ),
        attack(
            "aud a number",
            with_claim("aud", json!(42)),
            "wrong_audience",
        ),
        attack(
            "aud an object",
            with_claim("aud", json!({"aud": audience})),
            "wrong_audience",
        ),
        attack(
            "aud array with a non-string",
            with_claim("aud", json!([audience, 1])),
            "wrong_audience",
        ),
        attack(
            "iss wrong",
            with_claim("iss", json!("https://evil.example")),
            "wrong_issuer",
        ),
        attack(
            "iss differing in case",
            with_claim("iss", json!(issuer.to_uppercase())),
            "wrong_issuer",
        ),
        attack(
            "iss with a trailing slash",
            with_claim("iss", json!(format!("{issuer}/"))),
            "wrong_issuer",
        ),
        attack(
            "duplicate alg in the header",
            raw(r#"{"alg":"RS256","kid":"good","alg":"none"}"#, &claims_text),
            "malformed",
        ),
        attack(
            "duplicate sub in the payload",
            raw(
                r#"{"alg":"RS256","kid":"good"}"#,
                &claims_text.replacen('{', r#"{"sub":"admin","#, 1),
            ),
            "malformed",
        ),
        attack(
            "padding in the header",
            format!("{header}==.{payload}.{signature}"),
            "malformed",
        ),
        attack(
            "padding in the signature",
            format!("{header}.{payload}.{signature}="),
            "malformed",
        ),
        attack(
            "standard alphabet signature",
            standard_alphabet,
            "malformed",
        ),
        attack("non-zero trailing bits", trailing_bits, "malformed"),
        attack(
            "JSON serialisation",
            json!({"protected": header, "payload": payload, "signature": signature}).to_string(),
            "malformed",
        ),
        attack("four segments", format!("{good}.{signature}"), "malformed"),
        attack(
            "five segments (JWE shape)",
            format!("{header}.{payload}.{signature}.{payload}.{signature}"),
            "malformed",
        ),
        attack(
            "empty header",
            format!(".{payload}.{signature}"),
            "malformed",
        ),
        attack(
            "empty payload",
            format!("{header}..{signature}"),
            "malformed",
        ),
        attack(
            "stripped signature",
            format!("{header}.{payload}."),
            "malformed",
        ),
        attack("two segments", format!("{header}.{payload}"), "malformed"),
        attack("ECDSA r = s = 0", zero_ecdsa, "bad_signature"),
        attack(
            "EdDSA signature of the wrong length",
            short_eddsa,
            "unknown_key",
        ),
        attack(
            "kid of a 1024-bit RSA key",
            RSA_2048.sign(json!({"kid": "weak"}), &good_claims),
            "unknown_key",
        ),
        attack(
            "kid of an RSA key with exponent 1",
            RSA_2048.sign(json!({"kid": "exponent-one"}), &good_claims),
            "unknown_key",
        ),
        attack(
            "kid of a use:enc key",
            RSA_2048.sign(json!({"kid": "enc"}), &good_claims),
            "unknown_key",
        ),
        attack(
            "JWK alg disagreeing with the token",
            RSA_2048.sign(json!({"kid": "pinned", "alg": "RS256"}), &good_claims),
            "unknown_key",
        ),
        attack(
            "kid shared by two keys",
            RSA_2048.sign(json!({"kid": "twice"}), &good_claims),
            "unknown_key",
        ),
        attack(
            "ES256 token naming an RSA kid",
            P256.sign(json!({"kid": "good"}), &good_claims),
            "unknown_key",
        ),
        attack(
            "oversized token",
            format!("{good}{}", "A".repeat(9000)),
            "token_too_large",
        ),
        attack(
            "signature over other claims",
            format!(
                "{header}.{}.{signature}",
                b64(&claims_text.replace("victim", "admin"))
            ),
            "bad_signature",
        ),
        attack(
            "payload not JSON",
            format!(
                "{header}.{}.{signature}",
                URL_SAFE_NO_PAD.encode(raw_payload.get(1..).unwrap_or_default())
            ),
            "malformed",
        ),
    ];
    // ES384 and ES512 (RFC 7518 §3.4 binds each to one curve; `jwt_authn` does not check).
    cases.extend([
        host_curve(
            "ES256 by the P-384 key (SHA-256 on P-384)",
            curve(&P384, "p384", "ES256"),
            "unknown_key",
        ),
        host_curve(
            "ES512 by the P-384 key (SHA-512 on P-384)",
            curve(&P384, "p384", "ES512"),
            "unknown_key",
        ),
        host_curve(
            "ES384 by the P-521 key",
            curve(&P521, "p521", "ES384"),
            "unknown_key",
        ),
        attack(
            "ES384 naming the P-256 key",
            curve(&P384, "ec", "ES384"),
            "unknown_key",
        ),
        host_curve(
            "ES384 with r = s = 0",
            with_signature(&P384, "p384", &[0; 96]),
            "bad_signature",
        ),
        host_curve(
            "ES512 with r = s = 0",
            with_signature(&P521, "p521", &[0; 132]),
            "bad_signature",
        ),
        host_curve(
            "ES384 signature at ES512's width",
            with_signature(&P384, "p384", &[1; 132]),
            "bad_signature",
        ),
    ]);
    cases.push(Attack {
        name: "a valid and an invalid token together",
        authorization: vec![format!("Bearer {good}"), "Bearer x.y.z".to_owned()],
        reason: "multiple_tokens",
        over_http: true,
        host_curve: false,
    });
    cases.push(Attack {
        name: "two tokens in one header",
        authorization: vec![format!("Bearer {good}, Bearer {good}")],
        reason: "multiple_tokens",
        over_http: true,
        host_curve: false,
    });
    cases.push(Attack {
        name: "non-ASCII bytes in the token",
        authorization: vec![format!("Bearer {header}.{payload}é.{signature}")],
        reason: "malformed",
        over_http: true,
        host_curve: false,
    });
    cases.push(Attack {
        name: "control byte in the token",
        authorization: vec![format!("Bearer {header}.{payload}\u{1}.{signature}")],
        reason: "malformed",
        over_http: false,
        host_curve: false,
    });
    cases.push(Attack {
        name: "whitespace inside the token",
        authorization: vec![format!("Bearer {header}.{payload} .{signature}")],
        reason: "malformed",
        over_http: true,
        host_curve: false,
    });
    (jwks, cases)
}

fn attack(name: &'static str, token: String, reason: &'static str) -> Attack {
    Attack {
        name,
        authorization: vec![format!("Bearer {token}")],
        reason,
        over_http: true,
        host_curve: false,
    }
}

fn host_curve(name: &'static str, token: String, reason: &'static str) -> Attack {
    Attack {
        host_curve: true,
        ..attack(name, token, reason)
    }
}

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text.as_bytes())
}
