//! The glue against the recording host: the contexts are driven as Envoy drives them, and
//! the tests check what reached the host (headers, replies, resumes, dispatches, stats).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::Action;
use serde_json::{json, Value};
use testbed::keys::{jwks, RSA_2048};

use super::root::GateRoot;
use crate::host::recording::{Effect, Recording};
use crate::host::HostStatus;

const ROOT: u32 = 1;
const NOW: u64 = 1_800_000_000;
const NOW_MS: u64 = NOW * 1000;

fn inline(extra: Value) -> String {
    let mut config = json!({
        "issuer": "https://issuer.example",
        "audiences": ["api"],
        "jwks": jwks(&[(&RSA_2048, "r")]),
    });
    for (field, value) in extra.as_object().cloned().unwrap_or_default() {
        config[field] = value;
    }
    config.to_string()
}

fn remote() -> String {
    json!({
        "issuer": "https://issuer.example",
        "audiences": ["api"],
        "jwks_uri": "https://issuer.example/keys",
        "cluster": "issuer",
    })
    .to_string()
}

fn token(exp: u64) -> String {
    RSA_2048.sign(
        json!({"kid": "r"}),
        &json!({"iss": "https://issuer.example", "aud": "api", "sub": "alice", "exp": exp}),
    )
}

/// A configured root context over a fresh recording host.
fn start(config: &str) -> (Recording, GateRoot<Recording>) {
    let host = Recording::new(config, NOW_MS);
    let mut root = GateRoot::new(ROOT, host.clone());
    assert!(root.on_configure(config.len()), "configuration refused");
    host.take_effects();
    (host, root)
}

/// Request `context` to `path` with `extra` headers through a new stream context. (Tests
/// call the contexts' methods directly: a `dyn` context would link the SDK's default
/// methods, which call the real host.)
fn request(
    host: &Recording,
    root: &GateRoot<Recording>,
    context: u32,
    path: &str,
    extra: &[(&str, &str)],
) -> Action {
    let mut headers = vec![
        (":method", "GET"),
        (":path", path),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
    ];
    headers.extend_from_slice(extra);
    host.request(context, &headers);
    let mut stream = root.stream(context);
    stream.on_http_request_headers(headers.len(), false)
}

fn replies(effects: &[Effect]) -> Vec<(u32, u32, String)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Reply {
                context,
                status,
                body,
                ..
            } => Some((*context, *status, body.clone())),
            _ => None,
        })
        .collect()
}

fn property(effects: &[Effect], wanted: &str) -> Option<String> {
    effects.iter().find_map(|effect| match effect {
        Effect::SetProperty { path, value, .. } if path == wanted => Some(value.clone()),
        _ => None,
    })
}

fn header(host: &Recording, context: u32, name: &str) -> Option<String> {
    host.headers(context)
        .into_iter()
        .find(|(header, _)| header == name)
        .map(|(_, value)| value)
}

/// An inline configuration whose verified `sub` goes upstream as `x-sub`.
fn with_x_sub() -> String {
    inline(json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]}))
}

/// Request 100 on `/ws` with a valid token and a client-sent `x-sub: mallory`.
fn forged_sub_request(host: &Recording, root: &GateRoot<Recording>) -> Action {
    let bearer = format!("Bearer {}", token(NOW + 60));
    request(
        host,
        root,
        100,
        "/ws",
        &[("authorization", &bearer), ("x-sub", "mallory")],
    )
}

#[test]
fn an_accepted_request_goes_on_with_its_identity_and_without_forged_copies() {
    let (host, root) = start(&with_x_sub());
    let action = forged_sub_request(&host, &root);
    assert_eq!(action, Action::Continue);
    assert_eq!(header(&host, 100, "x-sub").as_deref(), Some("alice"));
    assert_eq!(header(&host, 100, "authorization"), None, "forward is off");
    let effects = host.take_effects();
    assert!(replies(&effects).is_empty());
    assert_eq!(
        property(&effects, "wsgate.decision").as_deref(),
        Some("allow")
    );
    assert_eq!(property(&effects, "wsgate.sub").as_deref(), Some("alice"));
    assert_eq!(host.metric("wsgate.allowed"), 1);
    assert_eq!(host.metric("wsgate.jwt_cache_miss"), 1);
}

#[test]
fn refusals_get_their_local_reply_and_counter() {
    let (host, root) = start(&inline(json!({})));
    assert_eq!(request(&host, &root, 100, "/ws", &[]), Action::Pause);
    host.request(101, &[(":method", "GET"), (":path", "/WS")]);
    let mut plain = root.stream(101);
    assert_eq!(plain.on_http_request_headers(2, true), Action::Pause);
    let effects = host.take_effects();
    assert_eq!(
        replies(&effects),
        [
            (100, 401, "Unauthorized WebSocket connection.".to_owned()),
            (101, 400, "WebSocket connection expected.".to_owned()),
        ]
    );
    let challenge = effects.iter().find_map(|effect| match effect {
        Effect::Reply { headers, .. } => headers
            .iter()
            .find(|(name, _)| name == "www-authenticate")
            .map(|(_, value)| value.clone()),
        _ => None,
    });
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(host.metric("wsgate.denied.missing_token"), 1);
    assert_eq!(host.metric("wsgate.denied.not_websocket"), 1);
    assert_eq!(host.metric("wsgate.denied"), 2);
}

#[test]
fn other_paths_pass_with_no_effect() {
    let (host, root) = start(&inline(json!({})));
    assert_eq!(request(&host, &root, 100, "/api", &[]), Action::Continue);
    assert!(host.take_effects().is_empty());
    assert_eq!(
        host.metric("wsgate.allowed") + host.metric("wsgate.denied"),
        0
    );
}

#[test]
fn a_token_the_host_will_not_remove_fails_the_request_closed() {
    let (host, root) = start(&inline(json!({})));
    host.refuse("set_map_value:authorization");
    let bearer = format!("Bearer {}", token(NOW + 60));
    let action = request(&host, &root, 100, "/ws", &[("authorization", &bearer)]);
    assert_eq!(action, Action::Pause);
    let effects = host.take_effects();
    assert_eq!(
        replies(&effects),
        [(
            100,
            500,
            "WebSocket connection could not be forwarded safely.".to_owned()
        )]
    );
    assert_eq!(
        property(&effects, "wsgate.reason").as_deref(),
        Some("upstream_edit_failed")
    );
    assert_eq!(host.metric("wsgate.denied.upstream_edit_failed"), 1);
    assert_eq!(host.metric("wsgate.allowed"), 0);
}

#[test]
fn a_forged_identity_the_host_will_not_remove_fails_the_request_closed() {
    let (host, root) = start(&with_x_sub());
    host.refuse("set_map_value:x-sub");
    let action = forged_sub_request(&host, &root);
    assert_eq!(action, Action::Pause);
    assert_eq!(replies(&host.take_effects()).len(), 1);
    assert_eq!(host.metric("wsgate.denied.upstream_edit_failed"), 1);
}

#[test]
fn a_refused_token_is_cut_even_when_another_edit_is_refused() {
    let config = inline(json!({
        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
        "from_params": ["access_token"],
    }));
    let (host, root) = start(&config);
    host.refuse("set_map_value:x-sub");
    let path = format!("/ws?access_token={}&room=1", token(NOW - 60));
    let action = request(&host, &root, 100, &path, &[]);
    assert_eq!(action, Action::Pause);
    let effects = host.take_effects();
    assert_eq!(replies(&effects)[0].1, 401);
    assert_eq!(
        property(&effects, "wsgate.reason").as_deref(),
        Some("expired")
    );
    assert_eq!(header(&host, 100, ":path").as_deref(), Some("/ws?room=1"));
}

#[test]
fn a_request_whose_headers_the_host_will_not_hand_over_is_refused() {
    let (host, root) = start(&inline(json!({})));
    host.refuse("get_map_value::path");
    assert_eq!(request(&host, &root, 100, "/api", &[]), Action::Pause);
    assert_eq!(
        replies(&host.take_effects()),
        [(
            100,
            500,
            "WebSocket connection could not be forwarded safely.".to_owned()
        )]
    );
    assert_eq!(host.metric("wsgate.denied.request_unreadable"), 1);
    let (host, root) = start(&inline(json!({})));
    host.refuse("get_map_bytes");
    assert_eq!(request(&host, &root, 100, "/ws", &[]), Action::Pause);
    assert_eq!(host.metric("wsgate.denied.request_unreadable"), 1);
}

#[test]
fn a_refused_local_reply_resets_the_stream() {
    let (host, root) = start(&inline(json!({})));
    host.refuse("send_http_response");
    assert_eq!(request(&host, &root, 100, "/ws", &[]), Action::Pause);
    assert_eq!(host.take_effects().last(), Some(&Effect::Reset(100)));
}

#[test]
fn bad_configuration_and_a_refused_tick_stop_the_plugin() {
    let host = Recording::new("{\"issuer\": 1}", NOW_MS);
    assert!(!GateRoot::new(ROOT, host).on_configure(0));
    let host = Recording::new(&remote(), NOW_MS);
    host.refuse("set_tick_period");
    assert!(!GateRoot::new(ROOT, host).on_configure(0));
    // With inline keys a tick only follows the log level: the plugin starts without one.
    let host = Recording::new(&inline(json!({})), NOW_MS);
    host.refuse("set_tick_period");
    assert!(GateRoot::new(ROOT, host).on_configure(0));
}

#[test]
fn remote_keys_park_early_requests_and_resume_them_when_the_keys_come() {
    let host = Recording::new(&remote(), NOW_MS);
    let mut root = GateRoot::new(ROOT, host.clone());
    assert!(root.on_configure(0));
    assert_eq!(
        host.take_effects(),
        [Effect::TickPeriod(super::plugin::TICK)]
    );
    let bearer = format!("Bearer {}", token(NOW + 60));
    assert_eq!(
        request(&host, &root, 100, "/ws", &[("authorization", &bearer)]),
        Action::Pause
    );
    assert_eq!(
        request(&host, &root, 101, "/ws", &[("authorization", &bearer)]),
        Action::Pause
    );
    assert!(host.take_effects().is_empty(), "parked, not refused");
    host.end(101); // the client gave up

    host.enter(ROOT);
    root.on_tick();
    let effects = host.take_effects();
    let [Effect::Dispatch {
        call,
        cluster,
        authority,
        path,
        ..
    }] = effects.as_slice()
    else {
        panic!("one dispatch expected: {effects:?}")
    };
    assert_eq!(
        (cluster.as_str(), authority.as_str(), path.as_str()),
        ("issuer", "issuer.example", "/keys")
    );
    root.on_tick();
    assert!(host.take_effects().is_empty(), "one fetch at a time");

    host.answer("200", &jwks(&[(&RSA_2048, "r")]).to_string());
    root.on_http_call_response(call + 7, 1, 10, 0);
    assert!(host.take_effects().is_empty(), "an answer to another call");
    let body_size = jwks(&[(&RSA_2048, "r")]).to_string().len();
    root.on_http_call_response(*call, 3, body_size, 0);
    let effects = host.take_effects();
    assert!(effects.contains(&Effect::Resume(100)), "{effects:?}");
    assert!(!effects
        .iter()
        .any(|effect| matches!(effect, Effect::Resume(101))));
    assert_eq!(host.effective(), ROOT, "the root is effective again");
    assert_eq!(host.metric("wsgate.jwks_fetch_success"), 1);
    assert_eq!(host.metric("wsgate.jwks_keys"), 1);
    assert_eq!(host.metric("wsgate.allowed"), 1);
}

#[test]
fn a_refused_dispatch_fails_the_attempt_and_decides_the_waiters() {
    let host = Recording::new(&remote(), NOW_MS);
    let mut root = GateRoot::new(ROOT, host.clone());
    assert!(root.on_configure(0));
    host.refuse("dispatch_http_call");
    let bearer = format!("Bearer {}", token(NOW + 60));
    assert_eq!(
        request(&host, &root, 100, "/ws", &[("authorization", &bearer)]),
        Action::Pause
    );
    host.take_effects();
    host.enter(ROOT);
    root.on_tick();
    assert_eq!(host.metric("wsgate.jwks_fetch_failed"), 1);
    assert_eq!(
        replies(&host.take_effects()),
        [(
            100,
            503,
            "WebSocket service temporarily unavailable.".to_owned()
        )]
    );
    assert_eq!(host.metric("wsgate.denied.keys_unavailable"), 1);
}

#[test]
fn a_failed_call_is_not_read() {
    let host = Recording::new(&remote(), NOW_MS);
    let mut root = GateRoot::new(ROOT, host.clone());
    assert!(root.on_configure(0));
    root.on_tick();
    let Some(Effect::Dispatch { call, .. }) = host.take_effects().pop() else {
        panic!("dispatch expected")
    };
    // Reading a failed call's maps would panic in the SDK: the recording host would answer,
    // so a read would show up as a success.
    host.answer("200", &jwks(&[(&RSA_2048, "r")]).to_string());
    root.on_http_call_response(call, 0, 0, 0);
    assert_eq!(host.metric("wsgate.jwks_fetch_failed"), 1);
    assert_eq!(host.metric("wsgate.jwks_fetch_success"), 0);
}

/// A host whose `verify_signature` is right for the known answers and for `tokens`: it
/// says valid exactly for the arguments a valid signature among them would be sent with.
fn host_verifying(host: &Recording, tokens: &[String]) {
    use crate::signature::{envoy_verify, self_test, JwsAlgorithm, VerifyingKey};
    let mut valid: Vec<Vec<u8>> = self_test::known_answers()
        .into_iter()
        .filter(|answer| answer.valid)
        .filter_map(|answer| {
            envoy_verify::arguments(
                answer.alg,
                answer.key.spki()?,
                &answer.signature,
                answer.message,
            )
        })
        .collect();
    let jwk = jwks(&[(&RSA_2048, "r")]);
    let b64 = |field: &str| {
        crate::encoding::base64url::decode(jwk["keys"][0][field].as_str().unwrap()).unwrap()
    };
    let key = VerifyingKey::rsa(&b64("n"), &b64("e")).unwrap();
    for token in tokens {
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = crate::encoding::base64url::decode(signature).unwrap();
        valid.push(
            envoy_verify::arguments(
                JwsAlgorithm::Rs256,
                key.spki().unwrap(),
                &signature,
                input.as_bytes(),
            )
            .unwrap(),
        );
    }
    host.foreign(move |name, arguments| {
        assert_eq!(name, "verify_signature");
        Ok(if valid.iter().any(|v| v == arguments) {
            vec![0x08, 0x01]
        } else {
            vec![0x12, 3, b'b', b'a', b'd']
        })
    });
}

fn refusing_foreign(host: &Recording, status: HostStatus) {
    host.foreign(move |_, _| {
        Err(crate::host::HostError {
            call: "call_foreign_function",
            status,
        })
    });
}

#[test]
fn signatures_go_to_the_host_once_it_passes_its_self_test() {
    let good = token(NOW + 60);
    let host = Recording::new(&inline(json!({"crypto": "host"})), NOW_MS);
    host_verifying(&host, std::slice::from_ref(&good));
    let mut root = GateRoot::new(ROOT, host.clone());
    assert!(root.on_configure(0));
    assert_eq!(
        host.foreign_calls(),
        30,
        "one valid and four invalid answers per algorithm"
    );
    let bearer = format!("Bearer {good}");
    assert_eq!(
        request(&host, &root, 100, "/ws", &[("authorization", &bearer)]),
        Action::Continue
    );
    assert_eq!(host.foreign_calls(), 31);
    // Another valid token the host was not told of: the host says no, and is believed.
    let other = format!("Bearer {}", token(NOW + 61));
    assert_eq!(
        request(&host, &root, 101, "/ws", &[("authorization", &other)]),
        Action::Pause
    );
    assert_eq!(host.metric("wsgate.denied.bad_signature"), 1);
}

#[test]
fn a_host_without_verify_signature_leaves_every_signature_to_the_module() {
    for status in [
        HostStatus::NotFound,
        HostStatus::BadArgument,
        HostStatus::Other(12),
    ] {
        let host = Recording::new(&inline(json!({})), NOW_MS);
        refusing_foreign(&host, status);
        let root = {
            let mut root = GateRoot::new(ROOT, host.clone());
            assert!(root.on_configure(0), "auto falls back ({status})");
            root
        };
        let calls = host.foreign_calls();
        let bearer = format!("Bearer {}", token(NOW + 60));
        assert_eq!(
            request(&host, &root, 100, "/ws", &[("authorization", &bearer)]),
            Action::Continue,
            "{status}"
        );
        assert_eq!(host.foreign_calls(), calls, "not asked again ({status})");

        let host = Recording::new(&inline(json!({"crypto": "host"})), NOW_MS);
        refusing_foreign(&host, status);
        assert!(
            !GateRoot::new(ROOT, host).on_configure(0),
            "host is required ({status})"
        );
    }
    // A host that says yes to everything fails the invalid answers.
    let host = Recording::new(&inline(json!({"crypto": "host"})), NOW_MS);
    host.foreign(|_, _| Ok(vec![0x08, 0x01]));
    assert!(!GateRoot::new(ROOT, host).on_configure(0));
    // With crypto "wasm" the host is never asked.
    let host = Recording::new(&inline(json!({"crypto": "wasm"})), NOW_MS);
    host.foreign(|_, _| panic!("asked"));
    assert!(GateRoot::new(ROOT, host.clone()).on_configure(0));
    assert_eq!(host.foreign_calls(), 0);
}

#[test]
fn a_host_error_after_the_self_test_falls_back_to_the_module() {
    let host = Recording::new(&inline(json!({})), NOW_MS);
    host_verifying(&host, &[]);
    let mut root = GateRoot::new(ROOT, host.clone());
    assert!(root.on_configure(0));
    host.foreign(|_, _| Ok(vec![0x12, 0xff])); // does not parse
    let bearer = format!("Bearer {}", token(NOW + 60));
    assert_eq!(
        request(&host, &root, 100, "/ws", &[("authorization", &bearer)]),
        Action::Continue
    );
    refusing_foreign(&host, HostStatus::Other(12));
    let good = token(NOW + 60);
    let (input, signature) = good.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{input}.{flipped}{}", &signature[1..]);
    let bearer = format!("Bearer {forged}");
    assert_eq!(
        request(&host, &root, 101, "/ws", &[("authorization", &bearer)]),
        Action::Pause
    );
}

#[test]
fn mismatched_algorithms_and_pss_or_eddsa_never_reach_the_host() {
    let keys = jwks(&[(&RSA_2048, "r"), (&testbed::keys::ED25519, "e")]);
    let host = Recording::new(&inline(json!({ "jwks": keys })), NOW_MS);
    host_verifying(&host, &[]);
    let mut root = GateRoot::new(ROOT, host.clone());
    assert!(root.on_configure(0));
    let calls = host.foreign_calls();
    let claims =
        json!({"iss": "https://issuer.example", "aud": "api", "sub": "s", "exp": NOW + 60});
    let tokens = [
        // ES256 naming the RSA key: no key fits.
        RSA_2048.sign(json!({"kid": "r", "alg": "ES256"}), &claims),
        // PS256 and EdDSA stay in the module.
        RSA_2048.sign(json!({"kid": "r", "alg": "PS256"}), &claims),
        testbed::keys::ED25519.sign(json!({"kid": "e"}), &claims),
    ];
    for (index, token) in tokens.iter().enumerate() {
        let bearer = format!("Bearer {token}");
        request(
            &host,
            &root,
            100 + index as u32,
            "/ws",
            &[("authorization", &bearer)],
        );
    }
    assert_eq!(host.foreign_calls(), calls);
    assert_eq!(host.metric("wsgate.denied.unknown_key"), 1);
    assert_eq!(host.metric("wsgate.allowed"), 2);
}

mod expiry;
mod outputs;
mod policies;
mod providers;
mod state;
