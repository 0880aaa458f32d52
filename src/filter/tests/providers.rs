//! Several providers through the glue: each provider's keys are fetched and waited for on
//! their own, and logs, access-log fields and stats name the provider.

use testbed::keys::RSA_2048_OTHER;

use super::*;

const ACS: &str = "https://acs.example";
const ENTRA: &str = "https://login.example/v2.0";

/// `acs` with inline keys and `x-acs-sub`; `entra` with remote keys; `/ws` takes both,
/// `/calls/` only `acs`.
fn two() -> String {
    json!({
        "providers": {
            "acs": {"issuer": ACS, "audiences": ["acs-id"], "jwks": jwks(&[(&RSA_2048, "a")]),
                    "claim_to_headers": [{"header_name": "x-acs-sub", "claim_name": "sub"}]},
            "entra": {"issuer": ENTRA, "audiences": ["api://media"],
                      "jwks_uri": "https://login.example/keys", "cluster": "entra"}
        },
        "rules": [
            {"match": {"path": "/ws"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "acs"}, {"provider_name": "entra"}]}}},
            {"match": {"prefix": "/calls/"}, "requires": {"provider_name": "acs"}}
        ]
    })
    .to_string()
}

fn bearer(key: &testbed::keys::TestKey, kid: &str, iss: &str, aud: &str) -> String {
    let token = key.sign(
        json!({"kid": kid}),
        &json!({"iss": iss, "aud": aud, "sub": "bob", "exp": NOW + 60}),
    );
    format!("Bearer {token}")
}

fn acs() -> String {
    bearer(&RSA_2048, "a", ACS, "acs-id")
}

fn entra() -> String {
    bearer(&RSA_2048_OTHER, "e", ENTRA, "api://media")
}

#[test]
fn each_provider_is_decided_fetched_and_counted_on_its_own() {
    let (host, mut root) = start(&two());
    // acs's keys are inline: accepted at once, while entra's are still to come.
    let action = request(&host, &root, 100, "/ws", &[("authorization", &acs())]);
    assert_eq!(action, Action::Continue);
    assert_eq!(header(&host, 100, "x-acs-sub").as_deref(), Some("bob"));
    let effects = host.take_effects();
    assert_eq!(
        property(&effects, "wsgate.provider").as_deref(),
        Some("acs")
    );
    assert_eq!(host.metric("wsgate.provider.acs.allowed"), 1);

    // entra's token waits for entra's keys; a forged x-acs-sub is removed all the same.
    let token = entra();
    let forged = [("authorization", token.as_str()), ("x-acs-sub", "mallory")];
    assert_eq!(request(&host, &root, 101, "/ws", &forged), Action::Pause);
    assert!(host.take_effects().is_empty(), "parked, not refused");

    host.enter(ROOT);
    root.on_tick();
    let effects = host.take_effects();
    let [Effect::Dispatch { call, cluster, .. }] = effects.as_slice() else {
        panic!("one dispatch, for entra: {effects:?}")
    };
    assert_eq!(cluster, "entra");
    let keys = jwks(&[(&RSA_2048_OTHER, "e")]).to_string();
    host.answer("200", &keys);
    root.on_http_call_response(*call, 3, keys.len(), 0);
    let effects = host.take_effects();
    assert!(effects.contains(&Effect::Resume(101)), "{effects:?}");
    assert_eq!(
        property(&effects, "wsgate.provider").as_deref(),
        Some("entra")
    );
    assert_eq!(
        header(&host, 101, "x-acs-sub"),
        None,
        "acs's header, removed"
    );
    assert_eq!(host.metric("wsgate.provider.entra.jwks_fetch_success"), 1);
    assert_eq!(host.metric("wsgate.provider.entra.jwks_keys"), 1);
    assert_eq!(host.metric("wsgate.provider.acs.jwks_keys"), 1);
    assert_eq!(host.metric("wsgate.provider.entra.allowed"), 1);
    assert_eq!(host.metric("wsgate.allowed"), 2);

    // /calls/ takes acs only: entra's token is refused there, by acs's policy.
    host.enter(ROOT);
    let action = request(
        &host,
        &root,
        102,
        "/calls/9/media",
        &[("authorization", &entra())],
    );
    assert_eq!(action, Action::Pause);
    let effects = host.take_effects();
    assert_eq!(replies(&effects)[0].1, 401);
    assert_eq!(
        property(&effects, "wsgate.reason").as_deref(),
        Some("wrong_issuer")
    );
    assert_eq!(
        property(&effects, "wsgate.provider").as_deref(),
        Some("acs")
    );
    assert_eq!(host.metric("wsgate.provider.acs.denied"), 1);
    assert_eq!(host.metric("wsgate.denied.wrong_issuer"), 1);
}

/// A token whose issuer no provider of the rule has is refused before any provider is
/// chosen: no provider's counter moves, and the access log says `-`.
#[test]
fn a_stranger_moves_no_providers_counter() {
    let (host, root) = start(&two());
    let stranger = bearer(&RSA_2048, "a", "https://stranger.example", "acs-id");
    let action = request(&host, &root, 100, "/ws", &[("authorization", &stranger)]);
    assert_eq!(action, Action::Pause);
    let effects = host.take_effects();
    assert_eq!(property(&effects, "wsgate.provider").as_deref(), Some("-"));
    assert_eq!(host.metric("wsgate.denied.wrong_issuer"), 1);
    assert_eq!(host.metric("wsgate.provider.acs.denied"), 0);
    assert_eq!(host.metric("wsgate.provider.entra.denied"), 0);
}

/// The single-issuer form names no provider: no `provider` field, no per-provider stats.
#[test]
fn the_single_issuer_form_names_no_provider() {
    let (host, root) = start(&inline(json!({})));
    let bearer = format!("Bearer {}", token(NOW + 60));
    request(&host, &root, 100, "/ws", &[("authorization", &bearer)]);
    let effects = host.take_effects();
    assert_eq!(
        property(&effects, "wsgate.decision").as_deref(),
        Some("allow")
    );
    assert_eq!(property(&effects, "wsgate.provider"), None);
    let per_provider: Vec<String> = host
        .metric_names()
        .into_iter()
        .filter(|name| name.starts_with("wsgate.provider."))
        .collect();
    assert!(per_provider.is_empty(), "{per_provider:?}");
    assert!(host.metric_names().contains(&"wsgate.allowed".to_owned()));
}
