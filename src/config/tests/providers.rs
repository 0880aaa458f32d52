//! `providers` and `rules`: `jwt_authn`'s shape, and the errors that name their field.

use super::*;
use crate::decision::rules::PathMatch;
use crate::request::path::NormalPath;

/// Two providers (one inline, one by discovery) and three rules.
fn two() -> Value {
    json!({
        "providers": {
            "acs": {
                "issuer": "https://acs.example",
                "audiences": ["acs-resource"],
                "jwks": jwks(&[(&RSA_2048, "a")]),
                "claim_to_headers": [{"header_name": "x-acs-sub", "claim_name": "sub"}]
            },
            "entra": {
                "issuer": "https://login.example/tenant/v2.0",
                "audiences": ["api://media"],
                "openid_config_url": "https://login.example/tenant/v2.0/.well-known/openid-configuration",
                "cluster": "entra",
                "clock_skew_seconds": 30,
                "forward": true
            }
        },
        "rules": [
            {"match": {"path": "/ws"},
             "requires": {"requires_any": {"requirements": [
                 {"provider_name": "acs"}, {"provider_name": "entra"}, {"provider_name": "acs"}]}}},
            {"match": {"prefix": "/calls/"}, "requires": {"provider_name": "acs"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "entra"}}
        ],
        "max_token_bytes": 4096
    })
}

#[test]
fn providers_and_rules_in_jwt_authns_shape() {
    let config = parse(&two()).unwrap();
    let names: Vec<_> = config.providers.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, [Some("acs".to_owned()), Some("entra".to_owned())]);
    let [acs, entra] = &config.providers[..] else {
        panic!("two providers")
    };
    assert!(matches!(acs.keys, KeySource::Inline(_)));
    assert!(matches!(entra.keys, KeySource::Remote(_)));
    assert_eq!(acs.upstream.claim_to_headers[0].header_name, "x-acs-sub");
    assert!(entra.upstream.forward && !acs.upstream.forward);
    assert_eq!(entra.authenticator.policy.clock_skew_seconds, 30);
    assert_eq!(acs.authenticator.policy.clock_skew_seconds, 60);
    // Plugin-wide settings reach every provider.
    assert_eq!(entra.authenticator.max_token_bytes, 4096);

    assert_eq!(config.rules.len(), 3);
    assert_eq!(config.rules[0].providers, ids(&[0, 1]), "repeats dropped");
    assert_eq!(
        config.rules[1].matcher,
        PathMatch::Directory(NormalPath::of("/calls"))
    );
    assert_eq!(config.rules[1].providers, ids(&[0]));
    assert_eq!(config.rules[2].providers, ids(&[1]));
}

#[test]
fn the_single_issuer_form_is_one_unnamed_provider_with_exact_rules() {
    let config = parse(&base()).unwrap();
    assert_eq!(config.providers.len(), 1);
    assert_eq!(config.providers[0].name, None);
    assert_eq!(config.rules.len(), 1);
    assert_eq!(
        config.rules[0].matcher,
        PathMatch::Exact(NormalPath::of("/ws"))
    );
}

/// A change to [`two`], the field its error must name, and what its message must say.
type Mistake = (Box<dyn Fn(&mut Value)>, &'static str, &'static str);

#[test]
fn each_mistake_names_its_field() {
    let cases: Vec<Mistake> = vec![
        (
            Box::new(|c| c["issuer"] = json!("https://x")),
            "providers",
            "\"issuer\"",
        ),
        (
            Box::new(|c| c["paths"] = json!(["/ws"])),
            "providers",
            "\"paths\"",
        ),
        (
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("rules");
            }),
            "rules",
            "required",
        ),
        (
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("providers");
            }),
            "providers",
            "required",
        ),
        (
            Box::new(|c| c["providers"] = json!({})),
            "providers",
            "at least one",
        ),
        (Box::new(|c| c["rules"] = json!([])), "rules", "non-empty"),
        (
            Box::new(|c| c["providers"]["entra"]["issuer"] = json!("https://acs.example")),
            "providers.entra.issuer",
            "\"acs\"",
        ),
        (
            Box::new(|c| {
                c["providers"]["entra"]
                    .as_object_mut()
                    .unwrap()
                    .remove("audiences");
            }),
            "providers.entra.audiences",
            "required",
        ),
        (
            Box::new(|c| c["providers"]["acs"]["cluster"] = json!("acs")),
            "providers.acs.cluster",
            "only applies",
        ),
        (
            Box::new(|c| c["providers"]["acs"]["claim_to_headers"][0]["header_name"] = json!("")),
            "providers.acs.claim_to_headers[0].header_name",
            "",
        ),
        (
            Box::new(|c| c["providers"]["acs"]["audience"] = json!(["x"])),
            "providers.acs.audience",
            "unknown field",
        ),
        (
            Box::new(|c| c["providers"]["bad name"] = c["providers"]["acs"].clone()),
            "providers.bad name",
            "provider name",
        ),
        (
            Box::new(|c| c["rules"][1]["match"] = json!({"path": "/a", "prefix": "/b"})),
            "rules[1].match",
            "exactly one",
        ),
        (
            Box::new(|c| c["rules"][1]["match"] = json!({"prefix": "calls"})),
            "rules[1].match.prefix",
            "not a path",
        ),
        (
            Box::new(|c| c["rules"][1]["requires"] = json!({"provider_name": "aad"})),
            "rules[1].requires.provider_name",
            "\"aad\" is not a provider (providers: acs, entra)",
        ),
        (
            Box::new(|c| {
                c["rules"][0]["requires"]["requires_any"]["requirements"][1] =
                    json!({"provider_name": "nope"})
            }),
            "rules[0].requires.requires_any.requirements[1].provider_name",
            "not a provider",
        ),
        (
            Box::new(|c| c["rules"][0]["requires"]["requires_any"]["requirements"] = json!([])),
            "rules[0].requires.requires_any.requirements",
            "non-empty array",
        ),
        (
            Box::new(|c| c["rules"][0]["requires"] = json!({})),
            "rules[0].requires",
            "exactly one",
        ),
        (
            Box::new(|c| c["rules"][0]["requires"]["allow_missing"] = json!({})),
            "rules[0].requires.allow_missing",
            "unknown field",
        ),
        (
            Box::new(|c| c["providers"]["acs"]["max_token_bytes"] = json!(1024)),
            "providers.acs.max_token_bytes",
            "not a provider field",
        ),
        (
            Box::new(|c| c["providers"]["acs"]["fetch_timeout_ms"] = json!("slow")),
            "providers.acs.fetch_timeout_ms",
            "invalid type",
        ),
        (
            Box::new(|c| c["providers"]["acs"] = json!([])),
            "providers.acs",
            "JSON object",
        ),
        (
            Box::new(|c| c["rules"][0]["match"] = json!({"path": 7})),
            "rules[0].match.path",
            "string",
        ),
        (
            Box::new(|c| c["rules"] = json!({"path": "/ws"})),
            "rules",
            "non-empty array",
        ),
    ];
    for (change, field, says) in cases {
        let mut value = two();
        change(&mut value);
        let error = parse(&value).expect_err(field);
        assert_eq!(error.field, field, "{error}");
        assert!(error.problem.contains(says), "{field}: {error}");
    }
}

fn ids(indices: &[usize]) -> Vec<crate::provider::ProviderId> {
    indices
        .iter()
        .map(|&index| crate::provider::ProviderId::at(index))
        .collect()
}
