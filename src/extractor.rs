//! Where the bearer token is: today, `Authorization: Bearer <token>` (RFC 6750 §2.1).
//!
//! Exactly one token is accepted. Two `Authorization` headers are refused rather than one
//! being picked, since a valid and an invalid token side by side is the classic way to slip
//! past a check that looks at one and a backend that reads the other. Envoy folds repeated
//! headers into one comma-separated value, and a bearer token (RFC 6750 `b64token`) can never
//! contain a comma, so each comma-separated item of each `Authorization` value is one
//! credential. A credential with another scheme (`Basic ...`) carries no bearer token.

use crate::decision::DenyReason;
use crate::request::RequestHead;

const SCHEME: &str = "bearer";

/// The one bearer token of `head`: `Ok(None)` when there is none,
/// [`DenyReason::MultipleTokens`] when there is more than one.
pub fn bearer_token(head: &RequestHead) -> Result<Option<&str>, DenyReason> {
    let mut tokens = head
        .values("authorization")
        .flat_map(|value| value.split(','))
        .filter_map(token_of);
    let first = tokens.next();
    if tokens.next().is_some() {
        return Err(DenyReason::MultipleTokens);
    }
    Ok(first)
}

/// The credentials of an `Authorization` value whose scheme is `Bearer` (any case), with the
/// separating spaces removed; `None` for other schemes.
fn token_of(value: &str) -> Option<&str> {
    let value = value.trim_start_matches(' ');
    let scheme = value.get(..SCHEME.len())?;
    let rest = value.get(SCHEME.len()..)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some(rest.trim_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(values: &[&str]) -> Result<Option<&'static str>, DenyReason> {
        let head = RequestHead::new(values.iter().map(|v| ("authorization", *v)));
        // Leak is fine in a test: it lets the borrowed token outlive `head`.
        let head: &'static RequestHead = Box::leak(Box::new(head));
        bearer_token(head)
    }

    #[test]
    fn finds_the_token_whatever_the_scheme_case() {
        assert_eq!(token(&["Bearer abc"]), Ok(Some("abc")));
        assert_eq!(token(&["bearer abc"]), Ok(Some("abc")));
        assert_eq!(token(&["BEARER   abc  "]), Ok(Some("abc")));
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
        // Present but empty: the authenticator refuses it as malformed.
        assert_eq!(token(&["Bearer"]), Ok(Some("")));
        assert_eq!(token(&["Bearer   "]), Ok(Some("")));
    }

    #[test]
    fn two_tokens_are_refused() {
        assert_eq!(
            token(&["Bearer a", "Bearer b"]),
            Err(DenyReason::MultipleTokens)
        );
        assert_eq!(
            token(&["Bearer a", "Bearer a"]),
            Err(DenyReason::MultipleTokens)
        );
        // Another scheme beside a bearer token is not a second token.
        assert_eq!(token(&["Basic x", "Bearer a"]), Ok(Some("a")));
    }
}
