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
    !text.is_empty() && text.chars().all(is_token_char)
}

/// Whether `c` may be part of an HTTP token (`tchar`).
pub fn is_token_char(c: char) -> bool {
    matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '!' | '#' | '$' | '%' | '&' | '\'' | '*'
        | '+' | '-' | '.' | '^' | '_' | '`' | '|' | '~')
}

/// Whether two header names are one to a backend that maps names to variables the CGI way
/// (`HTTP_X_JWT_SUB` for `x-jwt-sub`, `x_jwt_sub` and `X-JWT-SUB` alike: WSGI, Rack, PHP,
/// gunicorn before 22 joins them): ASCII case ignored, `_` and `-` the same.
pub fn same_spelling(a: &str, b: &str) -> bool {
    let fold = |byte: u8| match byte {
        b'_' => b'-',
        other => other.to_ascii_lowercase(),
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
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
