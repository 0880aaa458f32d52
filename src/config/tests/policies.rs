//! `claims`, `origins`, `max_sockets_per_identity` with `identity_claim`, and
//! `keys_unavailable_status`, in both forms, and the errors that name their field.

use super::*;
use crate::decision::policy::{ClaimRequirement, SocketLimit};
use crate::deny::KeysUnavailableStatus;

fn claim(name: &str, values: &[&str]) -> ClaimRequirement {
    ClaimRequirement {
        name: name.to_owned(),
        values: values.iter().map(|value| (*value).to_owned()).collect(),
    }
}

#[test]
fn the_single_issuer_form_puts_claims_and_origins_on_every_path() {
    let mut value = base();
    value["paths"] = json!(["/ws", "/media"]);
    value["claims"] = json!([{"name": "roles", "values": ["media.stream"]}]);
    value["origins"] = json!(["https://App.Example.com", "http://localhost:3000"]);
    value["max_sockets_per_identity"] = json!(2);
    value["keys_unavailable_status"] = json!(401);
    let config = parse(&value).unwrap();
    for rule in &config.rules {
        assert_eq!(rule.claims, vec![claim("roles", &["media.stream"])]);
        assert_eq!(
            rule.origins,
            Some(vec![
                "https://app.example.com".to_owned(),
                "http://localhost:3000".to_owned()
            ])
        );
    }
    assert_eq!(
        config.providers[0].socket_limit,
        Some(SocketLimit {
            max: 2,
            identity_claim: "sub".to_owned()
        })
    );
    assert_eq!(
        config.replies.keys_unavailable,
        KeysUnavailableStatus::Unauthorized
    );
    let defaults = parse(&base()).unwrap();
    assert_eq!(defaults.rules[0].claims, vec![]);
    assert_eq!(defaults.rules[0].origins, None);
    assert_eq!(defaults.providers[0].socket_limit, None);
    assert_eq!(
        defaults.replies.keys_unavailable,
        KeysUnavailableStatus::ServiceUnavailable
    );
}

#[test]
fn rules_and_providers_carry_their_own() {
    let value = json!({
        "providers": {
            "acs": {"issuer": "https://acs.example", "audiences": ["a"],
                    "jwks": jwks(&[(&RSA_2048, "a")]),
                    "max_sockets_per_identity": 3, "identity_claim": "oid"}
        },
        "rules": [
            {"match": {"path": "/ws"}, "requires": {"provider_name": "acs"},
             "claims": [{"name": "scp", "values": ["a", "b"]}, {"name": "org.tier", "values": ["gold"]}]},
            {"match": {"path": "/browser"}, "requires": {"provider_name": "acs"},
             "origins": ["https://app.example.com"]}
        ]
    });
    let config = parse(&value).unwrap();
    assert_eq!(
        config.rules[0].claims,
        vec![claim("scp", &["a", "b"]), claim("org.tier", &["gold"])]
    );
    assert_eq!(config.rules[0].origins, None);
    assert_eq!(config.rules[1].claims, vec![]);
    assert_eq!(
        config.rules[1].origins,
        Some(vec!["https://app.example.com".to_owned()])
    );
    assert_eq!(
        config.providers[0].socket_limit,
        Some(SocketLimit {
            max: 3,
            identity_claim: "oid".to_owned()
        })
    );
}

#[test]
fn policy_errors_name_their_field() {
    let cases = [
        ("claims", json!([]), "claims"),
        ("claims", json!({"name": "roles"}), "claims"),
        ("claims", json!([{"name": "roles"}]), "claims[0].values"),
        (
            "claims",
            json!([{"name": "roles", "values": []}]),
            "claims[0].values",
        ),
        (
            "claims",
            json!([{"name": "roles", "values": [""]}]),
            "claims[0].values[0]",
        ),
        (
            "claims",
            json!([{"name": "roles", "values": [1]}]),
            "claims[0].values[0]",
        ),
        (
            "claims",
            json!([{"name": "", "values": ["a"]}]),
            "claims[0].name",
        ),
        (
            "claims",
            json!([{"name": "a..b", "values": ["a"]}]),
            "claims[0].name",
        ),
        ("claims", json!([{"values": ["a"]}]), "claims[0].name"),
        (
            "claims",
            json!([{"name": "r", "values": ["a"], "x": 1}]),
            "claims[0].x",
        ),
        ("origins", json!(["app.example.com"]), "origins[0]"),
        ("origins", json!(["https://a", "https://b/"]), "origins[1]"),
        ("origins", json!(["https://a:443"]), "origins[0]"),
        ("origins", json!(["http://a:80"]), "origins[0]"),
        ("origins", json!(["null"]), "origins[0]"),
        ("origins", json!(["*"]), "origins[0]"),
        ("origins", json!(["https://*.example.com"]), "origins[0]"),
        ("origins", json!(["wss://a"]), "origins[0]"),
        ("origins", json!("https://a"), "origins"),
        ("origins", json!([]), "origins"),
        ("origins", json!([7]), "origins[0]"),
        (
            "max_sockets_per_identity",
            json!(0),
            "max_sockets_per_identity",
        ),
        (
            "max_sockets_per_identity",
            json!(-1),
            "max_sockets_per_identity",
        ),
        ("identity_claim", json!("sub"), "identity_claim"),
        (
            "keys_unavailable_status",
            json!(500),
            "keys_unavailable_status",
        ),
    ];
    for (field, setting, path) in cases {
        let mut value = base();
        value[field] = setting.clone();
        assert_eq!(error_field(&value), path, "{field}: {setting}");
    }
    let mut value = base();
    value["max_sockets_per_identity"] = json!(1);
    value["identity_claim"] = json!("");
    assert_eq!(error_field(&value), "identity_claim");
}

#[test]
fn in_the_providers_form_claims_and_origins_belong_to_rules() {
    let providers = json!({"acs": {"issuer": "https://acs.example", "audiences": ["a"],
                                   "jwks": jwks(&[(&RSA_2048, "a")])}});
    let rules = json!([{"match": {"path": "/ws"}, "requires": {"provider_name": "acs"}}]);
    for (field, setting) in [
        ("claims", json!([{"name": "r", "values": ["a"]}])),
        ("origins", json!(["https://a"])),
    ] {
        let mut value = json!({"providers": providers, "rules": rules});
        value[field] = setting.clone();
        let error = parse(&value).unwrap_err();
        assert_eq!(error.field, "providers");
        assert!(error.problem.contains(field), "{error}");
        // Nor inside a provider.
        let mut value = json!({"providers": providers, "rules": rules});
        value["providers"]["acs"][field] = setting;
        assert_eq!(error_field(&value), format!("providers.acs.{field}"));
    }
    let mut value = json!({"providers": providers, "rules": rules});
    value["rules"][0]["origins"] = json!(["https://a/x"]);
    assert_eq!(error_field(&value), "rules[0].origins[0]");
    value["rules"][0]["origins"] = json!([7]);
    assert_eq!(error_field(&value), "rules[0].origins[0]");
    value["rules"][0]["origins"] = json!(["https://a"]);
    value["rules"][0]["claims"] = json!([{"name": "r", "values": []}]);
    assert_eq!(error_field(&value), "rules[0].claims[0].values");
    let mut value = json!({"providers": providers, "rules": rules});
    value["providers"]["acs"]["max_sockets_per_identity"] = json!(0);
    assert_eq!(
        error_field(&value),
        "providers.acs.max_sockets_per_identity"
    );
}
