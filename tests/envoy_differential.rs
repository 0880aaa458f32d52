//! The differential test: wsgate and Envoy's native `jwt_authn` side by side, two real
//! Envoys with the same keys, issuer and audience (`jwt_authn` with `require_expiration`),
//! sent the same several hundred tokens from a seeded generator
//! ([`testbed::differential`]). Where they disagree, the disagreement must be one of
//! [`KNOWN`], with the side that is stricter and why that is right; any other
//! disagreement, and any Wasm panic, fails the test. The table is SECURITY.md's
//! "Differences from `jwt_authn`", which a test below keeps in step.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use serde_json::{json, Value};
use testbed::client;
use testbed::differential::{self, Case, AUDIENCE, ISSUER};
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy, VM_FAILURE_SIGNS};

/// The seed of the cases; change it to explore, keep it to reproduce.
const SEED: u64 = 0x5eed_2025;

/// Which filter accepted a token the other refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stricter {
    /// `jwt_authn` accepts, wsgate refuses.
    Wsgate,
    /// wsgate accepts, `jwt_authn` refuses.
    JwtAuthn,
    /// Either way, depending on the case (said in the reason).
    Either,
}

/// Every known disagreement: the class of case, which side is stricter, and why. Found by
/// running this test with an empty table (seed [`SEED`], Envoy 1.40); each reason says why
/// wsgate's side is the right one.
const KNOWN: &[(&str, Stricter, &str)] = &[
    (
        "signature:last-char",
        Stricter::Wsgate,
        "a last character that differs only in bits base64url leaves unused: `jwt_authn` \
         decodes it to the same signature, wsgate requires the canonical encoding \
         (RFC 7515 §2, RFC 4648 §3.5), so one signature has one spelling and a token cannot \
         be re-spelled past anything keyed by its text",
    ),
    (
        "signature:lengthened",
        Stricter::Wsgate,
        "ES256 with one more character, which decodes to a 65th byte: `jwt_authn` ignores it, \
         wsgate requires exactly 64 octets (RFC 7518 §3.4)",
    ),
    (
        "claims:exp-range",
        Stricter::Wsgate,
        "`exp` past the end of the year 9999: `jwt_authn` takes any integer it can hold, wsgate \
         bounds NumericDates to what date types represent (.NET's DateTime, for one), so no \
         token is valid forever by way of an overflow downstream",
    ),
    (
        "header:crit",
        Stricter::Wsgate,
        "`crit` (even empty): `jwt_authn` ignores it, wsgate refuses every `crit` since it \
         understands no extension and an empty list is forbidden (RFC 7515 §4.1.11)",
    ),
    (
        "header:b64",
        Stricter::Wsgate,
        "`b64: false` marked critical: the signature covers an unencoded payload (RFC 7797); \
         `jwt_authn` ignores both members, wsgate refuses the `crit` (RFC 7515 §4.1.11)",
    ),
    (
        "header:kid-empty",
        Stricter::Wsgate,
        "`kid: \"\"`: `jwt_authn` tries every key as for no `kid`, wsgate takes the `kid` as \
         given (RFC 7515 §4.1.4), and no key is named \"\"",
    ),
    (
        "json:trailing-comma",
        Stricter::Wsgate,
        "a trailing comma in the header or payload: not JSON (RFC 8259 §4); `jwt_authn`'s \
         parser tolerates it, wsgate's strict parser does not (RFC 7515 §2)",
    ),
    (
        "shape:leading-dot",
        Stricter::Wsgate,
        "an empty segment before the header: `jwt_authn` skips it, wsgate requires exactly \
         three segments (RFC 7515 §7.1)",
    ),
    (
        "shape:trailing-dot",
        Stricter::Wsgate,
        "an empty segment after the signature: as `shape:leading-dot`",
    ),
    (
        "shape:padding",
        Stricter::Wsgate,
        "`=` padding: base64url in a JWS has none (RFC 7515 §2); `jwt_authn` decodes it, \
         wsgate requires the canonical form",
    ),
    (
        "alg:curve-confusion",
        Stricter::Wsgate,
        "an ES* token signed by a key of another curve with the hash its `alg` names (the P-384 \
         key as ES256 or ES512, say), the key's JWK without `alg`: `jwt_authn` checks only \
         that the key is EC, wsgate binds ES256 to P-256, ES384 to P-384 and ES512 to P-521 \
         (RFC 7518 §3.4)",
    ),
    (
        "valid:no-kid-p384-p521",
        Stricter::JwtAuthn,
        "a valid ES384 or ES512 token without `kid`, in a set that also holds RSA, P-256 and \
         Ed25519 keys without `alg`: `jwt_authn` refuses it (with its `kid`, it accepts it), \
         wsgate tries every key of the token's curve, as `jwt_authn` does for ES256; observed \
         with Envoy 1.40, cause not traced",
    ),
    (
        "scheme:case",
        Stricter::JwtAuthn,
        "`bearer` or `BEARER`: `jwt_authn` matches its `Bearer ` prefix case-sensitively, wsgate \
         ignores case as RFC 7235 §2.1 says schemes are compared, and as ASP.NET's JwtBearer \
         does; the token is still the one token, counted and cut",
    ),
];

fn start(filter: Value, echo: &Echo) -> Envoy {
    Envoy::start(&envoy::bootstrap(echo.addr(), vec![filter]))
}

fn wsgate() -> Value {
    envoy::wasm_filter(
        &json!({
            "paths": ["/ws"],
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "jwks": differential::keys().to_string(),
        }),
        &envoy::module_path(),
    )
}

fn jwt_authn() -> Value {
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"differential": {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "require_expiration": true,
                "clock_skew_seconds": 60,
                "local_jwks": {"inline_string": differential::keys().to_string()}
            }},
            "rules": [{"match": {"prefix": "/ws"}, "requires": {"provider_name": "differential"}}]
        }
    })
}

/// Whether `envoy` opened the WebSocket for `case`.
fn accepted(envoy: &Envoy, case: &Case) -> bool {
    let response = client::raw_handshake(
        envoy.listener(),
        "/ws",
        &[("authorization", case.authorization.as_bytes())],
    );
    match response.status {
        101 => true,
        400 | 401 | 403 => false,
        other => panic!("{}: {} answered {other}", case.class, case.detail),
    }
}

#[test]
fn wsgate_and_jwt_authn_disagree_only_where_the_table_says_why() {
    let echo = Echo::start();
    let (ours, native) = (start(wsgate(), &echo), start(jwt_authn(), &echo));
    let cases = differential::cases(SEED, testbed::now());
    assert!(cases.len() >= 300, "{} cases", cases.len());
    let mut agreed = 0;
    let mut known: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unclassified = Vec::new();
    for case in &cases {
        let (by_wsgate, by_jwt_authn) = (accepted(&ours, case), accepted(&native, case));
        if by_wsgate == by_jwt_authn {
            agreed += 1;
            continue;
        }
        let stricter = if by_jwt_authn {
            Stricter::Wsgate
        } else {
            Stricter::JwtAuthn
        };
        match KNOWN.iter().find(|(class, _, _)| *class == case.class) {
            Some((class, side, _)) if *side == stricter || *side == Stricter::Either => {
                *known.entry(class).or_default() += 1;
            }
            _ => unclassified.push(format!(
                "{} ({}): {stricter:?} is stricter",
                case.class, case.detail
            )),
        }
    }
    let log = ours.log();
    for sign in VM_FAILURE_SIGNS {
        assert!(!log.contains(sign), "wsgate's VM failed ({sign}):\n{log}");
    }
    eprintln!(
        "{} cases: {agreed} agreed, known disagreements {known:?}",
        cases.len()
    );
    assert!(
        unclassified.is_empty(),
        "{} unclassified disagreement(s):\n{}",
        unclassified.len(),
        unclassified.join("\n")
    );
    // Every valid token of every algorithm is accepted by both.
    for case in cases.iter().filter(|case| case.class == "valid") {
        assert!(accepted(&ours, case), "{}", case.detail);
    }
}

/// SECURITY.md carries the table: one row per class, naming the stricter side.
#[test]
fn security_md_carries_the_table() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/SECURITY.md"))
        .expect("SECURITY.md");
    for (class, side, _) in KNOWN {
        let row = text
            .lines()
            .find(|line| line.starts_with(&format!("| `{class}` |")))
            .unwrap_or_else(|| panic!("SECURITY.md has no row for `{class}`"));
        let named = match side {
            Stricter::Wsgate => "wsgate",
            Stricter::JwtAuthn => "`jwt_authn`",
            Stricter::Either => "either",
        };
        assert!(row.contains(&format!("| {named} |")), "{row}");
    }
}
