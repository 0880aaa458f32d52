//! The configuration: defaults, every field, and an error naming its field for each way to
//! get one wrong.

use super::*;
use crate::decision::record::default_correlation_headers;
use crate::keys::remote::{Endpoint, RemoteDocument};
use crate::token::extractor::HeaderSource;
use serde_json::{json, Map};
use testbed::keys::{jwks, P256, RSA_2048};

fn base() -> Value {
    json!({
        "issuer": "https://issuer.example",
        "audiences": ["api"],
        "jwks": jwks(&[(&RSA_2048, "r")]),
    })
}

fn parse(value: &Value) -> Result<Config, ConfigError> {
    Config::parse(value.to_string().as_bytes())
}

/// The paths of the single-issuer form's rules, as configured.
fn paths(config: &Config) -> Vec<&str> {
    config
        .rules
        .iter()
        .map(|rule| rule.shown.as_str())
        .collect()
}

fn error_field(value: &Value) -> String {
    parse(value).map(|_| ()).unwrap_err().field
}

#[test]
fn minimal_configuration_takes_defaults() {
    let config = parse(&base()).unwrap();
    assert_eq!(paths(&config), ["/ws"]);
    assert_eq!(
        config.providers[0].authenticator.policy.clock_skew_seconds,
        60
    );
    assert_eq!(config.providers[0].authenticator.max_token_bytes, 8192);
    let KeySource::Inline(keys) = &config.providers[0].keys else {
        panic!("inline")
    };
    assert_eq!(keys.len(), 1);
}

#[test]
fn every_field_is_read() {
    let mut value = base();
    value["paths"] = json!(["/ws", "/media"]);
    value["clock_skew_seconds"] = json!(0);
    value["max_token_bytes"] = json!(4096);
    value["jwks"] = Value::String(jwks(&[(&RSA_2048, "r"), (&P256, "e")]).to_string());
    let config = parse(&value).unwrap();
    assert_eq!(paths(&config), ["/ws", "/media"]);
    assert_eq!(
        config.providers[0].authenticator.policy.clock_skew_seconds,
        0
    );
    assert_eq!(config.providers[0].authenticator.max_token_bytes, 4096);
    let KeySource::Inline(keys) = &config.providers[0].keys else {
        panic!("inline")
    };
    assert_eq!(keys.len(), 2);
}

#[test]
fn errors_name_their_field() {
    // The field, without the index or member of the value at fault (the exact paths are
    // in `errors_name_the_path_of_the_bad_value`).
    let edit = |f: &dyn Fn(&mut Map<String, Value>)| {
        let mut value = base();
        f(value.as_object_mut().unwrap());
        let field = error_field(&value);
        field.split(['[', '.']).next().unwrap().to_owned()
    };
    assert_eq!(
        edit(&|c| {
            c.insert("issuers".into(), json!("x"));
        }),
        "issuers"
    );
    assert_eq!(
        edit(&|c| {
            c.remove("issuer");
        }),
        "issuer"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("issuer".into(), json!(""));
        }),
        "issuer"
    );
    assert_eq!(
        edit(&|c| {
            c.remove("audiences");
        }),
        "audiences"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("audiences".into(), json!([]));
        }),
        "audiences"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("audiences".into(), json!("api"));
        }),
        "audiences"
    );
    assert_eq!(
        edit(&|c| {
            c.remove("jwks");
        }),
        "jwks"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("jwks".into(), json!({"keys": []}));
        }),
        "jwks"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("jwks".into(), json!("{not json"));
        }),
        "jwks"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("jwks".into(), json!({"keys": [{"kty": "oct", "k": "AA"}]}));
        }),
        "jwks"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("paths".into(), json!(["ws"]));
        }),
        "paths"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("paths".into(), json!(["/ws?x=1"]));
        }),
        "paths"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("paths".into(), json!(["/m%C3%A9dia"]));
        }),
        "paths"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("clock_skew_seconds".into(), json!(-1));
        }),
        "clock_skew_seconds"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("clock_skew_seconds".into(), json!("60"));
        }),
        "clock_skew_seconds"
    );
    assert_eq!(
        edit(&|c| {
            c.insert("max_token_bytes".into(), json!(10));
        }),
        "max_token_bytes"
    );
}

fn remote(extra: Value) -> Value {
    let mut value = base();
    value.as_object_mut().unwrap().remove("jwks");
    for (key, item) in extra.as_object().unwrap() {
        value[key] = item.clone();
    }
    value
}

#[test]
fn discovery_with_defaults() {
    let value = remote(json!({
        "openid_config_url": "https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration",
        "cluster": "acs"
    }));
    let KeySource::Remote(keys) = parse(&value).unwrap().providers.remove(0).keys else {
        panic!("remote")
    };
    let RemoteDocument::Discovery {
        discovery,
        jwks_cluster,
    } = &keys.document
    else {
        panic!("discovery")
    };
    assert_eq!(
        discovery.authority,
        "acscallautomation.communication.azure.com"
    );
    assert_eq!(
        discovery.path,
        "/calling/.well-known/acsopenidconfiguration"
    );
    assert_eq!(jwks_cluster, "acs");
    assert_eq!(
        (
            keys.fetch_timeout_ms,
            keys.refresh_interval_seconds,
            keys.min_refresh_interval_seconds,
            keys.max_document_bytes
        ),
        (5_000, 600, 30, 256 * 1024)
    );
}

#[test]
fn jwks_uri_with_every_setting() {
    let value = remote(json!({
        "jwks_uri": "http://127.0.0.1:8081/keys",
        "cluster": "issuer",
        "fetch_timeout_ms": 1000,
        "refresh_interval_seconds": 5,
        "min_refresh_interval_seconds": 2,
        "max_document_bytes": 4096
    }));
    let KeySource::Remote(keys) = parse(&value).unwrap().providers.remove(0).keys else {
        panic!("remote")
    };
    assert_eq!(
        keys.document,
        RemoteDocument::Jwks(Endpoint::parse("http://127.0.0.1:8081/keys", "issuer").unwrap())
    );
    assert_eq!(keys.source_url(), "http://127.0.0.1:8081/keys");
    assert_eq!(
        (
            keys.fetch_timeout_ms,
            keys.refresh_interval_seconds,
            keys.min_refresh_interval_seconds,
            keys.max_document_bytes
        ),
        (1000, 5, 2, 4096)
    );
}

#[test]
fn key_source_errors_name_their_field() {
    assert_eq!(error_field(&remote(json!({}))), "jwks");
    assert_eq!(
        error_field(&remote(json!({"jwks_uri": "https://i/k"}))),
        "cluster"
    );
    assert_eq!(
        error_field(&remote(json!({"jwks_uri": "https://i/k", "cluster": ""}))),
        "cluster"
    );
    assert_eq!(
        error_field(&remote(json!({"jwks_uri": "ftp://i/k", "cluster": "c"}))),
        "jwks_uri"
    );
    assert_eq!(
        error_field(&remote(json!({"openid_config_url": 7, "cluster": "c"}))),
        "openid_config_url"
    );
    assert_eq!(
        error_field(&remote(
            json!({"jwks_uri": "https://i/k", "openid_config_url": "https://i/d", "cluster": "c"})
        )),
        "openid_config_url"
    );
    assert_eq!(
        error_field(&remote(
            json!({"jwks_uri": "https://i/k", "cluster": "c", "jwks_cluster": "d"})
        )),
        "jwks_cluster"
    );
    assert_eq!(
        error_field(&remote(
            json!({"jwks_uri": "https://i/k", "cluster": "c", "fetch_timeout_ms": 0})
        )),
        "fetch_timeout_ms"
    );
    assert_eq!(
        error_field(&remote(
            json!({"jwks_uri": "https://i/k", "cluster": "c", "refresh_interval_seconds": 10, "min_refresh_interval_seconds": 20})
        )),
        "min_refresh_interval_seconds"
    );
    assert_eq!(
        error_field(&remote(
            json!({"jwks_uri": "https://i/k", "cluster": "c", "max_document_bytes": 10})
        )),
        "max_document_bytes"
    );
    let mut both = base();
    both["jwks_uri"] = json!("https://i/k");
    assert_eq!(error_field(&both), "jwks_uri");
    let mut stray = base();
    stray["cluster"] = json!("c");
    assert_eq!(error_field(&stray), "cluster");
}

#[test]
fn identity_and_correlation_settings() {
    let mut value = base();
    value["claim_to_headers"] = json!([{"header_name": "X-JWT-Sub", "claim_name": "sub"}]);
    value["forward_payload_header"] = json!("x-jwt-payload");
    value["forward"] = json!(true);
    value["correlation_headers"] = json!({"call_id": "x-call-id"});
    let config = parse(&value).unwrap();
    assert_eq!(
        config.providers[0].upstream.claim_to_headers[0].header_name,
        "x-jwt-sub"
    );
    assert_eq!(
        config.providers[0]
            .upstream
            .forward_payload_header
            .as_deref(),
        Some("x-jwt-payload")
    );
    assert!(config.providers[0].upstream.forward);
    assert_eq!(
        config.correlation,
        [CorrelationHeader {
            field: "call_id".into(),
            header: "x-call-id".into()
        }]
    );
    let defaults = parse(&base()).unwrap();
    assert!(!defaults.providers[0].upstream.forward);
    assert_eq!(defaults.correlation, default_correlation_headers());
}

#[test]
fn identity_setting_errors_name_their_field() {
    let cases = [
        (
            "claim_to_headers",
            json!({"header_name": "x", "claim_name": "sub"}),
        ),
        ("claim_to_headers", json!([{"header_name": "x"}])),
        (
            "claim_to_headers",
            json!([{"header_name": "x", "claim_name": "sub", "extra": 1}]),
        ),
        (
            "claim_to_headers",
            json!([{"header_name": "authorization", "claim_name": "sub"}]),
        ),
        (
            "claim_to_headers",
            json!([{"header_name": ":path", "claim_name": "sub"}]),
        ),
        (
            "claim_to_headers",
            json!([{"header_name": "a b", "claim_name": "sub"}]),
        ),
        (
            "claim_to_headers",
            json!([{"header_name": "x", "claim_name": "sub"}, {"header_name": "X", "claim_name": "iss"}]),
        ),
        ("forward_payload_header", json!(1)),
        ("forward", json!("yes")),
        ("correlation_headers", json!(["x-a"])),
        ("correlation_headers", json!({"Bad-Name": "x-a"})),
        ("correlation_headers", json!({"sub": "x-a"})),
        ("correlation_headers", json!({"call": "host"})),
    ];
    for (field, setting) in cases {
        let mut value = base();
        value[field] = setting.clone();
        let named = error_field(&value);
        assert!(named.starts_with(field), "{setting}: {named}");
    }
    let mut clash = base();
    clash["claim_to_headers"] = json!([{"header_name": "x-p", "claim_name": "sub"}]);
    clash["forward_payload_header"] = json!("x-p");
    assert_eq!(error_field(&clash), "forward_payload_header");
}

#[test]
fn token_sources_and_plugin_wide_switches() {
    let defaults = parse(&base()).unwrap();
    assert_eq!(defaults.sources, TokenSources::default());
    assert!(!defaults.close_on_expiry);
    assert!(defaults.access_log_fields);
    assert!(!defaults.log_allowed);
    let mut value = base();
    value["from_headers"] =
        json!([{"name": "X-Token"}, {"name": "authorization", "value_prefix": "Bearer "}]);
    value["from_params"] = json!(["access_token"]);
    value["from_cookies"] = json!(["session"]);
    value["from_subprotocol"] = json!({"prefix": "access_token."});
    value["close_on_expiry"] = json!(true);
    value["access_log_fields"] = json!(false);
    value["log_allowed"] = json!(true);
    let config = parse(&value).unwrap();
    assert!(!config.access_log_fields);
    assert!(config.log_allowed);
    assert_eq!(
        config.sources.from_headers[0],
        HeaderSource {
            name: "x-token".into(),
            value_prefix: String::new()
        }
    );
    assert_eq!(config.sources.from_params, ["access_token"]);
    assert_eq!(config.sources.from_cookies, ["session"]);
    assert_eq!(
        config.sources.from_subprotocol.as_deref(),
        Some("access_token.")
    );
    assert!(config.close_on_expiry);
    // Only a query parameter.
    let mut only_param = base();
    only_param["from_headers"] = json!([]);
    only_param["from_params"] = json!(["t"]);
    assert!(parse(&only_param).unwrap().sources.from_headers.is_empty());
}

#[test]
fn token_source_errors_name_their_field() {
    let with = |field: &str, setting: Value| {
        let mut value = base();
        value[field] = setting;
        let field = error_field(&value);
        field.split(['[', '.']).next().unwrap().to_owned()
    };
    assert_eq!(with("from_headers", json!([])), "from_headers");
    assert_eq!(
        with("from_headers", json!([{"name": "cookie"}])),
        "from_headers"
    );
    assert_eq!(
        with("from_headers", json!([{"name": "sec-websocket-protocol"}])),
        "from_headers"
    );
    assert_eq!(
        with("from_headers", json!([{"name": "x", "prefix": "B"}])),
        "from_headers"
    );
    assert_eq!(with("from_headers", json!({"name": "x"})), "from_headers");
    assert_eq!(with("from_params", json!(["a&b"])), "from_params");
    // An array suffix is cut from names as sent, so a configured name cannot hold one.
    assert_eq!(with("from_params", json!(["token[0]"])), "from_params");
    assert_eq!(with("from_params", json!(["a;b"])), "from_params");
    assert_eq!(with("from_cookies", json!(["s[]"])), "from_cookies");
    assert_eq!(with("from_params", json!([""])), "from_params");
    assert_eq!(
        with("from_params", json!(["access%5Ftoken"])),
        "from_params"
    );
    assert_eq!(
        with("from_cookies", json!(["s\u{e9}ssion"])),
        "from_cookies"
    );
    assert_eq!(with("from_cookies", json!(["a;b"])), "from_cookies");
    assert_eq!(
        with("from_subprotocol", json!({"prefix": ""})),
        "from_subprotocol"
    );
    assert_eq!(
        with("from_subprotocol", json!({"prefix": "a b"})),
        "from_subprotocol"
    );
    assert_eq!(
        with("from_subprotocol", json!("access_token.")),
        "from_subprotocol"
    );
    assert_eq!(with("close_on_expiry", json!(1)), "close_on_expiry");
    assert_eq!(with("access_log_fields", json!("no")), "access_log_fields");
    assert_eq!(with("log_allowed", json!("yes")), "log_allowed");
}

#[test]
fn whole_document_errors() {
    assert_eq!(Config::parse(b"").unwrap_err().field, "configuration");
    assert_eq!(Config::parse(b"[]").unwrap_err().field, "configuration");
    let dup = br#"{"issuer":"a","issuer":"b"}"#;
    let error = Config::parse(dup).unwrap_err();
    assert_eq!(error.field, "configuration");
    assert!(
        error.problem.contains("duplicate member name \"issuer\""),
        "{error}"
    );
}

#[test]
fn skipped_keys_are_reported() {
    let mut value = base();
    value["jwks"]["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "k": "AA"}));
    let config = parse(&value).unwrap();
    assert_eq!(config.providers[0].skipped_keys.len(), 1);
    assert!(
        config.providers[0].skipped_keys[0].contains("symmetric"),
        "{:?}",
        config.providers[0].skipped_keys
    );
}

#[test]
fn max_rsa_key_bits_bounds_the_keys() {
    let big = testbed::keys::rsa_jwk_of_bits(6144, "big");
    let mut value = base();
    value["jwks"]["keys"].as_array_mut().unwrap().push(big);
    let config = parse(&value).unwrap();
    assert_eq!(config.key_limits.max_rsa_key_bits, 4096, "the default");
    assert_eq!(config.providers[0].skipped_keys.len(), 1);
    assert!(
        config.providers[0].skipped_keys[0].contains("6144 bits; max_rsa_key_bits is 4096"),
        "{:?}",
        config.providers[0].skipped_keys
    );
    value["max_rsa_key_bits"] = json!(8192);
    let config = parse(&value).unwrap();
    assert!(
        config.providers[0].skipped_keys.is_empty(),
        "{:?}",
        config.providers[0].skipped_keys
    );
    for bad in [json!(2047), json!(8193), json!("4096")] {
        value["max_rsa_key_bits"] = bad;
        assert_eq!(error_field(&value), "max_rsa_key_bits");
    }
}

#[test]
fn error_messages_read_well() {
    let mut value = base();
    value.as_object_mut().unwrap().remove("audiences");
    assert_eq!(
        parse(&value).unwrap_err().to_string(),
        "field \"audiences\": is required"
    );
    // The README quotes this one.
    let mut value = base();
    value["from_headers"] = json!([{"name": "x-a"}, {"name": "x-b", "value_prefix": 1}]);
    assert_eq!(
        parse(&value).unwrap_err().to_string(),
        "field \"from_headers[1].value_prefix\": invalid type: integer `1`, expected a string"
    );
    let mut value = base();
    value["issuers"] = json!("x");
    let message = parse(&value).unwrap_err().to_string();
    assert!(
        message.starts_with("field \"issuers\": unknown field `issuers`, expected one of `paths`"),
        "{message}"
    );
}

mod bounds;
mod paths;
mod policies;
mod providers;
