//! WebSocket upgrade detection (RFC 6455 §4.1).
//!
//! An upgrade is a `GET` with an `Upgrade` header naming `websocket` (case-insensitive) and a
//! `Connection` header whose comma-separated tokens include `upgrade`. Repeated headers are
//! read as one comma-separated list, as RFC 9110 §5.3 says.

use crate::request::RequestHead;

/// Whether `head` asks to open a WebSocket.
pub fn is_websocket_upgrade(head: &RequestHead) -> bool {
    head.method() == "GET"
        && has_token(head, "upgrade", "websocket")
        && has_token(head, "connection", "upgrade")
}

fn has_token(head: &RequestHead, header: &str, token: &str) -> bool {
    head.values(header)
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &str)]) -> RequestHead {
        RequestHead::new(pairs.iter().copied())
    }

    #[test]
    fn a_browser_style_upgrade_is_one() {
        assert!(is_websocket_upgrade(&head(&[
            (":method", "GET"),
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ])));
        assert!(is_websocket_upgrade(&head(&[
            (":method", "GET"),
            ("connection", "keep-alive"),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
        ])));
    }

    #[test]
    fn anything_short_of_it_is_not() {
        for pairs in [
            vec![(":method", "GET")],
            vec![(":method", "GET"), ("upgrade", "websocket")],
            vec![(":method", "GET"), ("connection", "upgrade")],
            vec![
                (":method", "GET"),
                ("connection", "upgrade"),
                ("upgrade", "h2c"),
            ],
            vec![
                (":method", "GET"),
                ("connection", "upgraded"),
                ("upgrade", "websocket"),
            ],
            vec![
                (":method", "POST"),
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
            ],
            vec![
                (":method", "get"),
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
            ],
        ] {
            assert!(!is_websocket_upgrade(&head(&pairs)), "{pairs:?}");
        }
    }
}
