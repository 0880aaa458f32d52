//! Errors name the path of the value at fault (`config::blame`), the field list is the raw
//! struct's, and `crypto` picks the verifier.

use super::*;

#[test]
fn errors_name_the_path_of_the_bad_value() {
    let cases = [
        (
            "from_headers",
            json!([{"name": "x-a"}, {"name": "x-b", "value_prefix": 1}]),
            "from_headers[1].value_prefix",
        ),
        (
            "from_headers",
            json!([{"name": "x-a"}, {"name": "cookie"}]),
            "from_headers[1].name",
        ),
        (
            "from_headers",
            json!([{"name": "x-a", "prefix": "B"}]),
            "from_headers[0].prefix",
        ),
        (
            "claim_to_headers",
            json!([{"header_name": "x"}]),
            "claim_to_headers[0].claim_name",
        ),
        (
            "claim_to_headers",
            json!([{"header_name": "x", "claim_name": 1}]),
            "claim_to_headers[0].claim_name",
        ),
        ("from_headers", json!([{"name": 5}]), "from_headers[0].name"),
        ("from_headers", json!({"name": "x"}), "from_headers"),
        (
            "correlation_headers",
            json!({"a": "x-a", "b": 2}),
            "correlation_headers.b",
        ),
        ("from_params", json!(["a", 3]), "from_params[1]"),
        ("forward", json!("yes"), "forward"),
        (
            "claim_to_headers",
            json!([{"header_name": "x", "claim_name": "sub"}, {"header_name": "X", "claim_name": "iss"}]),
            "claim_to_headers[1].header_name",
        ),
        (
            "correlation_headers",
            json!({"call": "host"}),
            "correlation_headers.call",
        ),
        ("from_params", json!(["a", "a&b"]), "from_params[1]"),
        (
            "from_subprotocol",
            json!({"prefix": ""}),
            "from_subprotocol.prefix",
        ),
        ("paths", json!(["/ws", "media"]), "paths[1]"),
        ("audiences", json!(["api", ""]), "audiences[1]"),
        ("issuer", json!(null), "issuer"),
        ("clock_skew_seconds", json!(1.5), "clock_skew_seconds"),
    ];
    for (field, setting, path) in cases {
        let mut value = base();
        value[field] = setting.clone();
        assert_eq!(error_field(&value), path, "{setting}");
    }
}

#[test]
fn the_field_list_is_the_raw_struct() {
    let fields = fields();
    assert_eq!(fields.len(), 37);
    assert!(fields.contains(&"providers") && fields.contains(&"rules"));
    assert_eq!(fields.first(), Some(&"paths"));
    assert!(fields.contains(&"from_subprotocol"));
    assert!(fields.contains(&"jwt_cache_size"));
}

#[test]
fn crypto_chooses_the_verifier() {
    assert_eq!(parse(&base()).unwrap().crypto, Crypto::Auto);
    for (name, crypto) in [
        ("auto", Crypto::Auto),
        ("host", Crypto::Host),
        ("wasm", Crypto::Wasm),
    ] {
        let mut value = base();
        value["crypto"] = json!(name);
        assert_eq!(parse(&value).unwrap().crypto, crypto);
    }
    for bad in [json!("Host"), json!("boringssl"), json!(true)] {
        let mut value = base();
        value["crypto"] = bad;
        assert_eq!(error_field(&value), "crypto");
    }
}
