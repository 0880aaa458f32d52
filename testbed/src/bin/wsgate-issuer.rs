//! The demo's OpenID Connect issuer: `wsgate-issuer [--listen ADDR] [--issuer URL]`
//! (defaults 127.0.0.1:8081, and `http://ADDR` as `iss`).
//!
//!   GET  /.well-known/openid-configuration   discovery
//!   GET  /keys                               the JWKS
//!   GET  /token?sub=alice&aud=..&ttl=300     a signed token from the newest key
//!   POST /rotate                             a fresh signing key; the previous one stays
//!
//! Keys are generated at start; nothing is stored.

use std::time::Duration;

use jwt_compact::alg::ModulusBits;
use testbed::issuer::Issuer;
use testbed::keys::TestKey;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|at| args.get(at + 1))
            .cloned()
    };
    let listen = value("--listen").unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let key: &'static TestKey = Box::leak(Box::new(TestKey::rsa(ModulusBits::TwoKibibytes)));
    let issuer = match Issuer::bind(&listen, value("--issuer"), &[(key, "demo-key-1")]) {
        Ok(issuer) => issuer,
        Err(error) => {
            eprintln!("wsgate-issuer: cannot listen on {listen}: {error}");
            std::process::exit(1);
        }
    };
    println!(
        "wsgate-issuer: iss {} on {}",
        issuer.issuer(),
        issuer.addr()
    );
    println!("  discovery  {}", issuer.discovery_url());
    println!("  jwks       {}", issuer.jwks_url());
    println!(
        "  token      curl -s 'http://{}/token?sub=alice'",
        issuer.addr()
    );
    println!(
        "  rotate     curl -s -X POST http://{}/rotate",
        issuer.addr()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
