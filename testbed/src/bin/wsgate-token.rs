//! Mints tokens for trying wsgate by hand.
//!
//!     wsgate-token new-key FILE [rsa|p256|ed25519]   write a fresh private JWK to FILE
//!     wsgate-token public FILE KID                   print the public JWKS for FILE's key
//!     wsgate-token mint FILE KID [claim=value ...]   print a signed token
//!
//! `mint` defaults: iss=https://issuer.example aud=my-resource-id sub=demo-caller, a
//! lifetime of ttl=300 seconds from now. Numeric values stay numbers.

use std::process::ExitCode;

use jwt_compact::alg::ModulusBits;
use serde_json::{json, Value};
use testbed::keys::{jwks, TestKey};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["new-key", file, rest @ ..] => new_key(file, rest.first().copied().unwrap_or("rsa")),
        ["public", file, kid] => load(file).map(|key| println!("{}", jwks(&[(&key, kid)]))),
        ["mint", file, kid, claims @ ..] => mint(file, kid, claims),
        _ => Err("usage: wsgate-token new-key FILE [rsa|p256|ed25519] | public FILE KID | mint FILE KID [claim=value ...]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("wsgate-token: {why}");
            ExitCode::FAILURE
        }
    }
}

fn new_key(file: &str, kind: &str) -> Result<(), String> {
    let key = match kind {
        "rsa" => TestKey::rsa(ModulusBits::TwoKibibytes),
        "p256" => TestKey::p256(),
        "ed25519" => TestKey::ed25519(),
        other => return Err(format!("unknown key kind {other:?}")),
    };
    let text = serde_json::to_string_pretty(&key.private_jwk()).map_err(|e| e.to_string())?;
    std::fs::write(file, text + "\n").map_err(|e| format!("{file}: {e}"))
}

fn load(file: &str) -> Result<TestKey, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let jwk: Value = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    TestKey::from_private_jwk(&jwk)
}

fn mint(file: &str, kid: &str, assignments: &[&str]) -> Result<(), String> {
    let key = load(file)?;
    let now = testbed::now();
    let mut ttl = 300;
    let mut claims = json!({
        "iss": "https://issuer.example",
        "aud": "my-resource-id",
        "sub": "demo-caller",
        "iat": now,
    });
    for assignment in assignments {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("{assignment:?} is not claim=value"))?;
        let value = value
            .parse::<i64>()
            .map_or_else(|_| Value::from(value), Value::from);
        if name == "ttl" {
            ttl = value.as_i64().ok_or("ttl must be a number of seconds")?;
        } else {
            claims[name] = value;
        }
    }
    if claims.get("exp").is_none() {
        claims["exp"] = json!(now as i64 + ttl);
    }
    println!("{}", key.sign(json!({ "kid": kid, "typ": "JWT" }), &claims));
    Ok(())
}
