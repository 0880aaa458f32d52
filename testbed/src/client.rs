//! Clients that report what came back: a plain HTTP/1.1 request and a WebSocket handshake.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(have, _)| have == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads its response (head and
/// `content-length` body; it does not wait for the server to close).
/// `head_lines` are raw header lines (`"name: value"`), written as given.
pub fn request(addr: SocketAddr, method: &str, path: &str, head_lines: &[&str]) -> Response {
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nhost: wsgate.test\r\nconnection: close\r\n");
    for line in head_lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    raw(addr, text.as_bytes())
}

/// Sends `bytes` as they are and reads one response: its head, then a `content-length` body.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect to the listener");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.write_all(bytes).expect("send request");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                break;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
    parse_response(&raw)
}

/// A WebSocket handshake written byte for byte, with one extra header line per `extra`
/// (`name: value`, any bytes); returns the response without upgrading.
pub fn raw_handshake(addr: SocketAddr, path: &str, extra: &[(&str, &[u8])]) -> Response {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nhost: wsgate.test\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    )
    .into_bytes();
    for (name, value) in extra {
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    raw(addr, &request)
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response, got {text:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A WebSocket client connection.
pub type Socket = WebSocket<TcpStream>;

/// Opens a WebSocket to `ws://addr{path}` with extra `headers`. A refused handshake comes
/// back as the [`Response`] that refused it.
pub fn websocket(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Socket, Response), Response> {
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().append(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
        );
    }
    let stream = TcpStream::connect(addr).expect("connect to the listener");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    match tungstenite::client::client(request, stream) {
        Ok((socket, response)) => {
            let seen = Response {
                status: response.status().as_u16(),
                headers: header_pairs(response.headers()),
                body: String::new(),
            };
            Ok((socket, seen))
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(Response {
                status: response.status().as_u16(),
                headers: header_pairs(response.headers()),
                body: String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .into_owned(),
            })
        }
        Err(other) => panic!("WebSocket handshake failed without an HTTP answer: {other}"),
    }
}

/// The status a WebSocket upgrade to `path` with `headers` got: 101, or the refusal's.
pub fn upgrade_status(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> u16 {
    match websocket(addr, path, headers) {
        Ok((_, response)) => response.status,
        Err(response) => response.status,
    }
}

/// Sends `text` and returns the next text message.
pub fn echo(socket: &mut Socket, text: &str) -> String {
    socket.send(Message::Text(text.to_owned())).expect("send");
    loop {
        match socket.read().expect("read") {
            Message::Text(reply) => return reply,
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

pub(crate) fn header_pairs(headers: &tungstenite::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}
