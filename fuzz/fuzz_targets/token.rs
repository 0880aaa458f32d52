//! Any bytes as a request on a guarded path: the `Authorization` value and, after a newline,
//! more `name: value` header lines. Nothing may panic; whatever is accepted must carry an
//! identity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wsgate::config::{Config, KeySource};
use wsgate::decision::Decision;
use wsgate::decision::gate::Gate;
use wsgate::keys::jwks::KeySet;
use wsgate::request::RequestHead;

fn setup() -> &'static (Gate, KeySet) {
    static SETUP: OnceLock<(Gate, KeySet)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let config = format!(
            r#"{{"issuer":"https://issuer.example","audiences":["my-resource-id"],"jwks":{}}}"#,
            include_str!("../keys.json")
        );
        let config = Config::parse(config.as_bytes()).expect("fuzz configuration");
        let KeySource::Inline(keys) = config.providers[0].keys.clone() else { panic!("inline keys") };
        (Gate::new(&config), keys)
    })
}

fuzz_target!(|data: &[u8]| {
    let (gate, keys) = setup();
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
    if let Some(Decision::Allow(identity)) = gate.decide(&head, Some(keys), 1_800_000_000_000) {
        assert!(!identity.payload.is_empty());
    }
});
