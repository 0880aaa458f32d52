//! Unit tests of [`super`].

use super::*;
use crate::decision::{CacheUse, Outcome, Verdict};
use crate::deny::DenyReason;
use crate::provider::ProviderId;
use crate::token::extractor::TokenSources;
use serde_json::json;

fn policy(forward: bool) -> UpstreamPolicy {
    UpstreamPolicy {
        claim_to_headers: vec![
            ClaimToHeader {
                header_name: "x-jwt-sub".into(),
                claim_name: "sub".into(),
            },
            ClaimToHeader {
                header_name: "x-jwt-tenant".into(),
                claim_name: "org.tenant".into(),
            },
            ClaimToHeader {
                header_name: "x-jwt-level".into(),
                claim_name: "level".into(),
            },
            ClaimToHeader {
                header_name: "x-jwt-admin".into(),
                claim_name: "admin".into(),
            },
            ClaimToHeader {
                header_name: "x-jwt-url".into(),
                claim_name: "https://example.com/role".into(),
            },
            ClaimToHeader {
                header_name: "x-jwt-roles".into(),
                claim_name: "roles".into(),
            },
            ClaimToHeader {
                header_name: "x-jwt-missing".into(),
                claim_name: "nope".into(),
            },
            ClaimToHeader {
                header_name: "x-jwt-evil".into(),
                claim_name: "evil".into(),
            },
        ],
        forward_payload_header: Some("x-jwt-payload".into()),
        forward,
    }
}

fn allow() -> Outcome {
    allow_cutting(cut_of(&head()))
}

/// Every source a token may come from, as the extractor finds them, with a second
/// parameter (`token`).
fn sources() -> TokenSources {
    TokenSources {
        from_params: vec!["access_token".into(), "token".into()],
        ..TokenSources::every_source()
    }
}

/// How the extractor would cut the tokens of `head`.
fn cut_of(head: &RequestHead) -> TokenCut {
    sources().scan(head).cut
}

/// A refusal for `reason`, its tokens cut by `tokens`.
fn refusal(reason: DenyReason, tokens: TokenCut) -> Outcome {
    Outcome::refused(reason, tokens)
}

fn head() -> RequestHead {
    RequestHead::new([(":path", "/ws"), ("authorization", "Bearer t")])
}

fn allow_cutting(tokens: TokenCut) -> Outcome {
    let claims = json!({
        "sub": "alice", "org": {"tenant": "t-1"}, "level": 3, "admin": false,
        "https://example.com/role": "ops", "roles": ["a", "b"], "evil": "a\r\nx-injected: 1"
    });
    Outcome {
        provider: Some(ProviderId::at(0)),
        tokens,
        verdict: Verdict::Allow(Identity {
            claims: claims.as_object().unwrap().clone().into(),
            payload: "eyJzdWIiOiJhbGljZSJ9".into(),
        }),
        cache: CacheUse::Off,
        slot: None,
    }
}

#[test]
fn an_accepted_request_gets_the_identity_and_loses_the_token() {
    let edits = policy(false).edits(&allow(), &head());
    assert!(
        edits.remove.contains(&"x-jwt-sub".to_owned()),
        "client copies go first"
    );
    assert!(edits.remove.contains(&"authorization".to_owned()));
    let set: Vec<(&str, &str)> = edits
        .set
        .iter()
        .map(|(h, v)| (h.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        set,
        [
            ("x-jwt-sub", "alice"),
            ("x-jwt-tenant", "t-1"),
            ("x-jwt-level", "3"),
            ("x-jwt-admin", "false"),
            ("x-jwt-url", "ops"),
            ("x-jwt-payload", "eyJzdWIiOiJhbGljZSJ9"),
        ]
    );
    assert_eq!(edits.unset, ["x-jwt-roles", "x-jwt-missing", "x-jwt-evil"]);
}

#[test]
fn forward_keeps_the_token() {
    assert!(!policy(true)
        .edits(&allow(), &head())
        .remove
        .contains(&"authorization".to_owned()));
}

#[test]
fn a_refused_request_still_loses_client_copies() {
    let edits = policy(false).edits(&refusal(DenyReason::Expired, TokenCut::default()), &head());
    assert_eq!(edits.remove.len(), 9);
    assert!(edits.remove.contains(&"x-jwt-payload".to_owned()));
    assert!(edits.set.is_empty());
}

#[test]
fn the_token_is_cut_from_wherever_it_came() {
    let plain = UpstreamPolicy::default();
    // (request headers with one token, headers removed, headers set)
    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
    );
    let cases: [Case; 7] = [
        (&[("x-token", "t")], &["x-token"], &[]),
        (
            &[(":path", "/ws?room=1&access_token=t&flag&x=2")],
            &[],
            &[(":path", "/ws?room=1&flag&x=2")],
        ),
        (&[(":path", "/ws?access_token=t")], &[], &[(":path", "/ws")]),
        (
            // Another spelling of the name; the path as the client sent it.
            &[(":path", "/WS;v=1/?a=%41&Access%5Ftoken=t")],
            &[],
            &[(":path", "/WS;v=1/?a=%41")],
        ),
        (
            &[("cookie", "SESSION=t; theme=dark")],
            &[],
            &[("cookie", "theme=dark")],
        ),
        (
            &[("cookie", "theme=dark; session=t"), ("cookie", "lang=en")],
            &[],
            &[("cookie", "theme=dark; lang=en")],
        ),
        (
            &[("sec-websocket-protocol", "access_token.t, chat.v1, chat.v2")],
            &[],
            &[("sec-websocket-protocol", "chat.v1, chat.v2")],
        ),
    ];
    for (pairs, removed, set) in cases {
        let head = RequestHead::new(pairs.iter().copied());
        assert_eq!(sources().scan(&head).found.len(), 1, "{pairs:?}");
        let edits = plain.edits(&allow_cutting(cut_of(&head)), &head);
        // A refused token is cut the same way, `forward` or not: nothing goes upstream,
        // but what Envoy logs must not hold it either.
        let refused = refusal(DenyReason::BadSignature, cut_of(&head));
        assert_eq!(plain.edits(&refused, &head), edits, "{pairs:?}");
        let forwarding = UpstreamPolicy {
            forward: true,
            ..UpstreamPolicy::default()
        };
        assert_eq!(forwarding.edits(&refused, &head), edits, "{pairs:?}");
        assert_eq!(edits.remove, removed, "{pairs:?}");
        let set_pairs: Vec<(&str, &str)> = edits
            .set
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(set_pairs, set, "{pairs:?}");
    }
    let only = RequestHead::new([("sec-websocket-protocol", "access_token.t")]);
    let only_token = plain.edits(&allow_cutting(cut_of(&only)), &only);
    assert_eq!(only_token.remove, ["sec-websocket-protocol"]);
    let forwarded = UpstreamPolicy {
        forward: true,
        ..UpstreamPolicy::default()
    };
    let query = RequestHead::new([(":path", "/ws?access_token=t")]);
    let kept = forwarded.edits(&allow_cutting(cut_of(&query)), &query);
    assert_eq!(kept, HeaderEdits::default());
}

/// #25: a client copy of an owned header goes in every spelling a CGI-style backend
/// reads as it, on every guarded request; a header that only looks alike stays.
#[test]
fn owned_headers_go_in_every_spelling() {
    let head = RequestHead::new([
        (":path", "/ws"),
        ("x_jwt_sub", "admin"),
        ("X-JWT_Sub", "admin"),
        ("x_jwt_payload", "e30"),
        ("x-jwt-subject", "kept"),
        ("x_jwt_sub_", "kept"),
    ]);
    for decision in [allow(), refusal(DenyReason::Expired, TokenCut::default())] {
        let edits = policy(false).edits(&decision, &head);
        for spelling in [
            "x-jwt-sub",
            "x_jwt_sub",
            "x-jwt_sub",
            "x-jwt-payload",
            "x_jwt_payload",
        ] {
            assert!(
                edits.remove.iter().any(|r| r == spelling),
                "{spelling}: {edits:?}"
            );
        }
        assert!(!edits
            .remove
            .iter()
            .any(|r| r.starts_with("x-jwt-subject") || r == "x_jwt_sub_"));
    }
}

/// Every copy the extractor would count is cut, with the separators it splits on, and
/// the rest is kept as it was sent.
#[test]
fn the_token_is_cut_behind_every_separator() {
    let plain = UpstreamPolicy::default();
    let cut = |pairs: &[(&str, &str)]| {
        let head = RequestHead::new(pairs.iter().copied());
        plain.edits(&allow_cutting(cut_of(&head)), &head)
    };
    let edits = cut(&[(":path", "/ws?room=1;access_token=t&x=2;y")]);
    assert_eq!(
        edits.set,
        [(":path".to_owned(), "/ws?room=1&x=2;y".to_owned())]
    );
    let edits = cut(&[(":path", "/ws?access_token=t;x=2")]);
    assert_eq!(edits.set, [(":path".to_owned(), "/ws?x=2".to_owned())]);
    let edits = cut(&[("cookie", "a=1, session=t; b=2")]);
    assert_eq!(edits.set, [("cookie".to_owned(), "a=1; b=2".to_owned())]);
    let edits = cut(&[("cookie", "session=t"), ("cookie", "a=1")]);
    assert_eq!(edits.set, [("cookie".to_owned(), "a=1".to_owned())]);
    let edits = cut(&[("x_token", "t")]);
    assert_eq!(edits.remove.last().map(String::as_str), Some("x_token"));
}

/// A refused request with several tokens has every one cut before Envoy logs it (a refused
/// query token reached the access log through `%REQ(:PATH)%`), and a copy only a decoding
/// proxy would see goes with the whole query.
#[test]
fn every_token_of_a_refused_request_is_cut() {
    let plain = UpstreamPolicy::default();
    let head = RequestHead::new([
        (":path", "/ws?room=1&access_token=a;x=2&token=b"),
        ("authorization", "Bearer c"),
        ("cookie", "session=d; theme=dark"),
    ]);
    let refused = refusal(DenyReason::MultipleTokens, cut_of(&head));
    let edits = plain.edits(&refused, &head);
    assert_eq!(edits.remove, ["authorization"]);
    assert_eq!(
        edits.set,
        [
            (":path".to_owned(), "/ws?room=1;x=2".to_owned()),
            ("cookie".to_owned(), "theme=dark".to_owned())
        ]
    );
    for (path, cut) in [
        ("/ws%3Faccess_token=a?access_token=b", "/ws"),
        ("/ws?x=1%26access_token%3Da&access_token=b", "/ws"),
        ("/%2Fws%3Faccess_token=a", "/"),
    ] {
        let head = RequestHead::new([(":path", path)]);
        let revealed = refusal(DenyReason::MultipleTokens, cut_of(&head));
        let edits = plain.edits(&revealed, &head);
        assert_eq!(edits.set, [(":path".to_owned(), cut.to_owned())], "{path}");
    }
}

/// Every subprotocol entry with the prefix is cut, however many were offered (in linear
/// work: thousands of entries were quadratic).
#[test]
fn every_subprotocol_token_of_a_refusal_is_cut() {
    let offered: Vec<String> = (0..3000).map(|i| format!("access_token.{i}")).collect();
    let value = format!("chat.v1, {}", offered.join(", "));
    let head = RequestHead::new([("sec-websocket-protocol", value.as_str())]);
    let refused = refusal(DenyReason::MultipleTokens, cut_of(&head));
    let edits = UpstreamPolicy::default().edits(&refused, &head);
    assert_eq!(
        edits.set,
        [("sec-websocket-protocol".to_owned(), "chat.v1".to_owned())]
    );
}

#[test]
fn edits_apply_in_order_and_stop_at_the_first_refusal() {
    let edits = HeaderEdits {
        remove: vec!["x-jwt-sub".into(), "authorization".into()],
        set: vec![("x-jwt-sub".into(), "alice".into())],
        unset: vec![],
    };
    let mut seen = Vec::new();
    let all = edits.apply(|name, value| {
        seen.push((name.to_owned(), value.map(str::to_owned)));
        true
    });
    assert_eq!(all, Ok(()));
    assert_eq!(
        seen,
        [
            ("x-jwt-sub".to_owned(), None),
            ("authorization".to_owned(), None),
            ("x-jwt-sub".to_owned(), Some("alice".to_owned())),
        ]
    );
    let mut tried = 0;
    let refused = edits.apply(|name, _| {
        tried += 1;
        name != "authorization"
    });
    assert_eq!(
        refused,
        Err(EditFailed {
            header: "authorization".into()
        })
    );
    assert_eq!(tried, 2, "nothing is set after a refused removal");
}
