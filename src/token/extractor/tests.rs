//! Unit tests of [`super`].

use super::*;

fn extract(
    sources: &TokenSources,
    pairs: &[(&str, &str)],
) -> Result<Option<FoundToken>, DenyReason> {
    let mut all = vec![(":path", "/ws")];
    all.extend_from_slice(pairs);
    if let Some((_, path)) = pairs.iter().find(|(name, _)| *name == ":path") {
        all[0] = (":path", path);
    }
    sources.extract(&RequestHead::new(all))
}

fn token(values: &[&str]) -> Result<Option<String>, DenyReason> {
    let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("authorization", *v)).collect();
    extract(&TokenSources::default(), &pairs).map(|found| found.map(|f| f.token))
}

#[test]
fn finds_the_bearer_token_whatever_the_scheme_case() {
    assert_eq!(token(&["Bearer abc"]), Ok(Some("abc".into())));
    assert_eq!(token(&["bearer abc"]), Ok(Some("abc".into())));
    assert_eq!(token(&["BEARER   abc  "]), Ok(Some("abc".into())));
}

#[test]
fn no_bearer_is_no_token() {
    assert_eq!(token(&[]), Ok(None));
    assert_eq!(token(&["Basic dXNlcjpwYXNz"]), Ok(None));
    assert_eq!(token(&["Bearerabc"]), Ok(None));
    assert_eq!(token(&["Bear"]), Ok(None));
    assert_eq!(token(&["é"]), Ok(None));
}

#[test]
fn an_empty_bearer_is_an_empty_token() {
    assert_eq!(token(&["Bearer"]), Ok(Some(String::new())));
    assert_eq!(token(&["Bearer   "]), Ok(Some(String::new())));
}

#[test]
fn two_bearer_tokens_are_refused() {
    assert_eq!(
        token(&["Bearer a", "Bearer b"]),
        Err(DenyReason::MultipleTokens)
    );
    assert_eq!(
        token(&["Bearer a", "Bearer a"]),
        Err(DenyReason::MultipleTokens)
    );
    // As Envoy folds two headers into one value.
    assert_eq!(
        token(&["Bearer a,Bearer b"]),
        Err(DenyReason::MultipleTokens)
    );
    assert_eq!(
        token(&["Bearer a, bearer b"]),
        Err(DenyReason::MultipleTokens)
    );
    // Another scheme beside a bearer token is not a second token.
    assert_eq!(token(&["Basic x", "Bearer a"]), Ok(Some("a".into())));
}

#[test]
fn each_source_alone() {
    let sources = TokenSources::every_source();
    let cases: [(&[(&str, &str)], TokenLocation); 5] = [
        (
            &[("authorization", "Bearer t")],
            TokenLocation::Header {
                name: "authorization".into(),
            },
        ),
        (
            &[("x-token", "t")],
            TokenLocation::Header {
                name: "x-token".into(),
            },
        ),
        (
            &[(":path", "/ws?room=1&access_token=t&x=2")],
            TokenLocation::Param {
                name: "access_token".into(),
            },
        ),
        (
            &[("cookie", "theme=dark; session=t; lang=en")],
            TokenLocation::Cookie {
                name: "session".into(),
            },
        ),
        (
            &[("sec-websocket-protocol", "access_token.t, chat.v1")],
            TokenLocation::Subprotocol {
                entry: "access_token.t".into(),
            },
        ),
    ];
    for (pairs, location) in cases {
        let found = extract(&sources, pairs).unwrap().unwrap();
        assert_eq!(
            found,
            FoundToken {
                token: "t".into(),
                location
            },
            "{pairs:?}"
        );
    }
}

#[test]
fn two_sources_at_once_are_refused() {
    let sources = TokenSources::every_source();
    for pairs in [
        vec![
            ("authorization", "Bearer a"),
            (":path", "/ws?access_token=b"),
        ],
        vec![
            ("cookie", "session=a"),
            ("sec-websocket-protocol", "access_token.b"),
        ],
        vec![(":path", "/ws?access_token=a&access_token=b")],
        vec![("cookie", "session=a"), ("cookie", "session=b")],
        vec![("sec-websocket-protocol", "access_token.a, access_token.b")],
        vec![("x-token", "a"), ("authorization", "Bearer a")],
    ] {
        assert_eq!(
            extract(&sources, &pairs),
            Err(DenyReason::MultipleTokens),
            "{pairs:?}"
        );
    }
}

/// A name a backend reads as the token's is the token's, however it is spelled.
#[test]
fn a_second_token_in_any_spelling_is_refused() {
    let sources = TokenSources::every_source();
    for pairs in [
        vec![(":path", "/ws?access_token=a&access%5Ftoken=b")],
        vec![(":path", "/ws?access_token=a&access%5ftoken=b")],
        vec![(":path", "/ws?access_token=a&ACCESS_TOKEN=b")],
        vec![(":path", "/ws?access_token=a&%61ccess_token=b")],
        vec![(":path", "/ws?access_token=a&access%255Ftoken=b")],
        vec![(":path", "/ws?access_token=a&Access_Token")],
        vec![("cookie", "session=a; SESSION=b")],
        vec![("cookie", "session=a; %73ession=b")],
        vec![("cookie", "session=a"), ("cookie", "Session=b")],
        vec![("cookie", "session =b; session=a")],
        vec![("cookie", "session\t= b; session=a")],
        vec![(":path", "/ws?access_token=a&access_token%20=b")],
    ] {
        assert_eq!(
            extract(&sources, &pairs),
            Err(DenyReason::MultipleTokens),
            "{pairs:?}"
        );
    }
}

/// #25: a second token behind any separator some backend splits on is a second token.
#[test]
fn a_second_token_behind_any_separator_is_refused() {
    let sources = TokenSources::every_source();
    for pairs in [
        // ASP.NET Core splits cookies on `,` too, quoted or not.
        vec![("cookie", "session=a; x=1, session=b")],
        vec![("cookie", "session=a; x=\"y b, session=b\"")],
        vec![("cookie", "x=1,session=b"), ("authorization", "Bearer a")],
        // Older Rack, Python's parse_qs before 3.9.2 and Go before 1.17 split on `;`.
        vec![(":path", "/ws?x=1;access_token=b&access_token=a")],
        vec![(":path", "/ws?access_token=a;access_token=b")],
        // Any whitespace or control character after the scheme separates it.
        vec![
            ("authorization", "Bearer\tb"),
            (":path", "/ws?access_token=a"),
        ],
        vec![
            ("authorization", "Bearer\u{b}b"),
            (":path", "/ws?access_token=a"),
        ],
        vec![
            ("authorization", "bearer\u{a0}b"),
            (":path", "/ws?access_token=a"),
        ],
        vec![
            ("authorization", "Bearer:b"),
            (":path", "/ws?access_token=a"),
        ],
        // A query a decoding proxy reveals: in the path, or behind an encoded separator.
        vec![(":path", "/ws%3Faccess_token=b?access_token=a")],
        vec![(":path", "/ws%253Faccess_token=b?access_token=a")],
        vec![(":path", "/ws?x=1%26access_token%3Db&access_token=a")],
        vec![(":path", "/ws?x=1%3Baccess_token=b&access_token=a")],
        vec![
            (":path", "/ws%3Faccess_token=b"),
            ("authorization", "Bearer a"),
        ],
        // Header names a CGI-style backend folds into one variable.
        vec![("x_token", "b"), ("authorization", "Bearer a")],
        vec![("X_TOKEN", "b"), ("x-token", "a")],
    ] {
        assert_eq!(
            extract(&sources, &pairs),
            Err(DenyReason::MultipleTokens),
            "{pairs:?}"
        );
    }
}

/// The neighbours of those: one token, with the same separators in harmless places.
#[test]
fn one_token_among_separators_is_the_token() {
    let sources = TokenSources::every_source();
    let found = |pairs: &[(&str, &str)]| extract(&sources, pairs).map(|f| f.map(|f| f.token));
    for pairs in [
        vec![(":path", "/ws?room=1;lang=en&access_token=t")],
        vec![(":path", "/ws?room=%3B&access_token=t&next=%2Fws%3Fx%3D1")],
        vec![("cookie", "theme=a,b; session=t; lang=\"en, fr\"")],
        vec![("authorization", "BEARER   t  ")],
        vec![("x_token", "t")],
    ] {
        assert_eq!(found(&pairs), Ok(Some("t".to_owned())), "{pairs:?}");
    }
    // Only a decoding proxy would forward this one; wsgate cannot cut it, so it is no
    // token (as for jwt_authn, which reads the raw query).
    assert_eq!(found(&[(":path", "/ws%3Faccess_token=t")]), Ok(None));
    assert_eq!(found(&[("authorization", "Bearerabc")]), Ok(None));
    assert_eq!(found(&[("authorization", "Bearer.abc")]), Ok(None));
}

#[test]
fn a_lone_token_in_another_spelling_is_the_token() {
    let sources = TokenSources::every_source();
    for (pairs, location) in [
        (
            vec![(":path", "/ws?access%5Ftoken=t")],
            TokenLocation::Param {
                name: "access_token".into(),
            },
        ),
        (
            vec![("cookie", "SESSION=t")],
            TokenLocation::Cookie {
                name: "session".into(),
            },
        ),
    ] {
        assert_eq!(
            extract(&sources, &pairs),
            Ok(Some(FoundToken {
                token: "t".into(),
                location
            })),
            "{pairs:?}"
        );
    }
    // Other names are other names.
    let pairs = [(":path", "/ws?access_tokens=a&access-token=b&access+token=c")];
    assert_eq!(extract(&sources, &pairs), Ok(None));
}

#[test]
fn unconfigured_sources_are_not_read() {
    let only_header = TokenSources::default();
    for pairs in [
        vec![(":path", "/ws?access_token=t")],
        vec![("cookie", "session=t")],
        vec![("sec-websocket-protocol", "access_token.t")],
    ] {
        assert_eq!(extract(&only_header, &pairs), Ok(None), "{pairs:?}");
    }
}

#[test]
fn query_and_cookie_pairs() {
    assert_eq!(
        query_pairs("/p?a=1&b&c=3=4#f").collect::<Vec<_>>(),
        [("a", "1"), ("b", ""), ("c", "3=4")]
    );
    assert_eq!(query_pairs("/p").count(), 0);
    assert_eq!(
        cookie_pairs(" a=1 ;b=2;; c").collect::<Vec<_>>(),
        [("a", "1"), ("b", "2"), ("c", "")]
    );
    assert_eq!(
        query_pairs("/p?a=1;b=2&c").collect::<Vec<_>>(),
        [("a", "1"), ("b", "2"), ("c", "")]
    );
    assert_eq!(
        cookie_pairs("a=1, b=2;c=\"x,y\"").collect::<Vec<_>>(),
        [("a", "1"), ("b", "2"), ("c", "\"x"), ("y\"", "")]
    );
}

#[test]
fn one_scan_finds_every_token_and_how_to_cut_it() {
    let sources = TokenSources::every_source();
    let head = RequestHead::new([
        (
            ":path",
            "/ws%3Faccess_token=x?access_token=a&ACCESS_TOKEN=b",
        ),
        ("authorization", "Bearer c"),
        ("cookie", "session=d, session=e"),
    ]);
    let scan = sources.scan(&head);
    let tokens: Vec<&str> = scan
        .found
        .iter()
        .map(|found| found.token.as_str())
        .collect();
    assert_eq!(tokens, ["c", "a", "b", "d", "e"]);
    assert_eq!(scan.hidden, 1, "the revealed copy");
    assert_eq!(scan.cut.headers(), ["authorization"]);
    // A revealed copy cannot be cut alone: the query goes, and what decoding reveals.
    assert_eq!(scan.cut.path(), Some("/ws"));
    assert_eq!(scan.cut.cookies(), Some(&[][..]));
    assert_eq!(scan.cut.subprotocols(), None);
    assert!(sources
        .scan(&RequestHead::new([(":path", "/ws")]))
        .cut
        .is_empty());
}

/// #25 review: a second token in the places the first round missed.
#[test]
fn a_second_token_the_review_found_is_refused() {
    let sources = TokenSources::every_source();
    let deep = format!("/ws%3Faccess_token=b?x=%{}41", "25".repeat(9));
    for pairs in [
        // A path that cannot be decoded may hide one: fail closed.
        vec![(":path", deep.as_str()), ("authorization", "Bearer a")],
        // A revealed `#` ends nothing for a decoding proxy's backend here.
        vec![(":path", "/ws%3Faccess_token=b%23?access_token=a")],
        // Array suffixes: Express's qs, PHP and Rack read them as the name.
        vec![(":path", "/ws?access_token=a&access_token[0]=b")],
        vec![(":path", "/ws?access_token=a&access_token%5B%5D=b")],
        vec![("cookie", "session=a; session[x]=b")],
        // Python's SimpleCookie ends a pair at whitespace.
        vec![("cookie", "session=a; x=1 session=b")],
        // The subprotocol header in a CGI spelling.
        vec![
            ("sec-websocket-protocol", "access_token.a"),
            ("sec_websocket_protocol", "access_token.b"),
        ],
    ] {
        assert_eq!(
            extract(&sources, &pairs),
            Err(DenyReason::MultipleTokens),
            "{pairs:?}"
        );
    }
    // Their neighbours.
    let found = |pairs: &[(&str, &str)]| extract(&sources, pairs).map(|f| f.map(|f| f.token));
    assert_eq!(
        found(&[(":path", "/ws?access_tokens[0]=x&access_token=t")]),
        Ok(Some("t".to_owned()))
    );
    assert_eq!(
        found(&[("cookie", "theme=\"a b\"; session=t")]),
        Ok(Some("t".to_owned()))
    );
}
