//! WebSocket upgrade detection.
//!
//! Over HTTP/1.1 (RFC 6455 §4.1) an upgrade is a `GET` with an `Upgrade` header naming
//! `websocket` (case-insensitive) and a `Connection` header whose comma-separated tokens
//! include `upgrade`; repeated headers are read as one list, as RFC 9110 §5.3 says. Over
//! HTTP/2 and HTTP/3 (RFC 8441, RFC 9220) it is an extended `CONNECT` with
//! `:protocol: websocket`. (Envoy usually presents the latter to filters in the HTTP/1.1 form;
//! both are recognised either way.)

use crate::request::RequestHead;

/// Whether `head` asks to open a WebSocket.
pub fn is_websocket_upgrade(head: &RequestHead) -> bool {
    let http1 = head.method() == "GET"
        && has_token(head, "upgrade", "websocket")
        && has_token(head, "connection", "upgrade");
    let extended_connect = head.method() == "CONNECT"
        && head
            .first(":protocol")
            .is_some_and(|protocol| protocol.eq_ignore_ascii_case("websocket"));
    http1 || extended_connect
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
    fn an_extended_connect_is_one() {
        assert!(is_websocket_upgrade(&head(&[
            (":method", "CONNECT"),
            (":protocol", "websocket")
        ])));
        assert!(
            !is_websocket_upgrade(&head(&[(":method", "CONNECT")])),
            "plain CONNECT"
        );
        assert!(!is_websocket_upgrade(&head(&[
            (":method", "CONNECT"),
            (":protocol", "webtransport")
        ])));
        assert!(!is_websocket_upgrade(&head(&[
            (":method", "GET"),
            (":protocol", "websocket")
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
