//! The policies in the contexts: what the client receives for each (status, body,
//! `WWW-Authenticate`, `Retry-After`), and socket slots held until the stream ends, shared
//! between two VMs of one host.

use super::*;

fn signed(claims: Value) -> String {
    let mut all = json!({"iss": "https://issuer.example", "aud": "api", "exp": NOW + 600});
    for (name, value) in claims.as_object().cloned().unwrap_or_default() {
        all[name] = value;
    }
    format!("Bearer {}", RSA_2048.sign(json!({"kid": "r"}), &all))
}

/// The one reply in `effects`: status, its headers by name, body.
fn reply(effects: &[Effect]) -> (u32, Vec<(String, String)>, String) {
    let replies: Vec<_> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Reply {
                status,
                headers,
                body,
                ..
            } => Some((*status, headers.clone(), body.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "{effects:?}");
    replies.into_iter().next().unwrap()
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(have, _)| have == name)
        .map(|(_, value)| value.as_str())
}

#[test]
fn claims_and_origins_answer_403() {
    let (host, root) = start(&inline(json!({
        "claims": [{"name": "roles", "values": ["media.stream"]}],
        "origins": ["https://app.example.com"],
    })));
    let good = signed(json!({"sub": "alice", "roles": ["media.stream"]}));
    let ok = request(&host, &root, 100, "/ws", &[("authorization", &good)]);
    assert_eq!(ok, Action::Continue, "no Origin: judged on the token alone");
    let browser = [
        ("authorization", good.as_str()),
        ("origin", "https://app.example.com"),
    ];
    assert_eq!(
        request(&host, &root, 101, "/ws", &browser),
        Action::Continue
    );
    host.take_effects();

    let other = [
        ("authorization", good.as_str()),
        ("origin", "https://app.example.com:8443"),
    ];
    assert_eq!(request(&host, &root, 102, "/ws", &other), Action::Pause);
    let (status, headers, body) = reply(&host.take_effects());
    assert_eq!(
        (status, body.as_str()),
        (403, "Forbidden WebSocket connection.")
    );
    assert_eq!(header_of(&headers, "www-authenticate"), None);
    assert_eq!(host.metric("wsgate.denied.origin_not_allowed"), 1);

    let reader = signed(json!({"sub": "bob", "roles": ["reader"]}));
    assert_eq!(
        request(&host, &root, 103, "/ws", &[("authorization", &reader)]),
        Action::Pause
    );
    let (status, headers, body) = reply(&host.take_effects());
    assert_eq!(
        (status, body.as_str()),
        (403, "Forbidden WebSocket connection.")
    );
    assert!(header_of(&headers, "www-authenticate")
        .unwrap()
        .starts_with("Bearer error=\"insufficient_scope\""));
    assert_eq!(host.metric("wsgate.denied.claims_not_satisfied"), 1);
}

#[test]
fn keys_unavailable_answers_503_with_retry_after_or_401_when_configured() {
    for (extra, status) in [
        (json!({}), 503),
        (json!({"keys_unavailable_status": 401}), 401),
    ] {
        let mut config: Value = serde_json::from_str(&remote()).unwrap();
        for (name, value) in extra.as_object().cloned().unwrap_or_default() {
            config[name] = value;
        }
        let config = config.to_string();
        let host = Recording::new(&config, NOW_MS);
        let mut root = GateRoot::new(ROOT, host.clone());
        assert!(root.on_configure(0));
        host.refuse("dispatch_http_call");
        let bearer = signed(json!({"sub": "alice"}));
        request(&host, &root, 100, "/ws", &[("authorization", &bearer)]);
        host.take_effects();
        host.enter(ROOT);
        root.on_tick();
        let (got, headers, _) = reply(&host.take_effects());
        assert_eq!(got, status);
        let retry_after = header_of(&headers, "retry-after");
        assert_eq!(retry_after.is_some(), status == 503, "{headers:?}");
    }
}

/// Two VMs of one Envoy: the same recording host (one shared data), two root contexts.
#[test]
fn the_socket_quota_holds_across_vms_and_frees_a_slot_when_a_socket_ends() {
    let config = inline(json!({"max_sockets_per_identity": 2}));
    let (host, first_vm) = start(&config);
    let mut second_vm = GateRoot::new(2, host.clone());
    assert!(second_vm.on_configure(config.len()));
    host.take_effects();
    let alice = signed(json!({"sub": "alice"}));
    let open = |root: &GateRoot<Recording>, context: u32, bearer: &str| {
        host.request(
            context,
            &[
                (":method", "GET"),
                (":path", "/ws"),
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("authorization", bearer),
            ],
        );
        let mut stream = root.stream(context);
        (stream.on_http_request_headers(5, false), stream)
    };
    let (first, mut first_stream) = open(&first_vm, 100, &alice);
    let (second, _second_stream) = open(&second_vm, 101, &alice);
    assert_eq!((first, second), (Action::Continue, Action::Continue));
    host.take_effects();
    for (root, context) in [(&first_vm, 102), (&second_vm, 103)] {
        assert_eq!(open(root, context, &alice).0, Action::Pause);
        let (status, headers, body) = reply(&host.take_effects());
        assert_eq!(
            (status, body.as_str()),
            (429, "Too many WebSocket connections.")
        );
        assert_eq!(header_of(&headers, "retry-after"), Some("10"));
    }
    assert_eq!(host.metric("wsgate.denied.too_many_sockets"), 2);
    let bob = signed(json!({"sub": "bob"}));
    assert_eq!(
        open(&second_vm, 104, &bob).0,
        Action::Continue,
        "bob is unaffected"
    );
    // Alice's first socket ends: her slot is free again, on either VM.
    assert!(first_stream.on_done());
    host.end(100);
    assert_eq!(open(&second_vm, 105, &alice).0, Action::Continue);
    // A token without the identity claim cannot be counted.
    let nobody = signed(json!({}));
    assert_eq!(open(&first_vm, 106, &nobody).0, Action::Pause);
    assert_eq!(host.metric("wsgate.denied.claims_not_satisfied"), 1);
}
