//! Header names an operator may configure: HTTP tokens (RFC 9110 §5.6.2), compared
//! lower-case, and never one that the WebSocket handshake or the token itself depends on.

/// Headers wsgate may never be asked to write or to read as correlation values.
const RESERVED: [&str; 12] = [
    "authorization",
    "host",
    "connection",
    "upgrade",
    "content-length",
    "transfer-encoding",
    "te",
    "keep-alive",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// Whether `text` is an HTTP token: what header names and WebSocket subprotocols are made
/// of. Never empty.
pub fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `name` lower-cased, if it is a header wsgate may write or read as a plain value: no
/// pseudo-header, no non-token character, none of the headers the handshake and the token
/// depend on. The error says why not.
pub fn owned(name: &str) -> Result<String, String> {
    let name = name.to_ascii_lowercase();
    if !is_token(&name) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    if RESERVED.contains(&name.as_str()) {
        return Err(format!("{name:?} is reserved"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_names_are_lower_case_tokens_outside_the_handshake() {
        assert_eq!(owned("X-JWT-Sub").as_deref(), Ok("x-jwt-sub"));
        for bad in [
            "",
            ":path",
            "a b",
            "x\u{e9}",
            "Authorization",
            "sec-websocket-key",
        ] {
            assert!(owned(bad).is_err(), "{bad:?}");
        }
    }
}
