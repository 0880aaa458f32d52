//! A real WebSocket echo upstream that records every request that reached it.
//!
//! WebSocket upgrades get a 101 (answering the first offered subprotocol) and every text or
//! binary message is sent back unchanged, except the text [`REPORT`], which is answered with
//! the upgrade request as this upstream saw it, as JSON (for the browser page and its test).
//! Any other request gets `200` with the body `upstream saw {method} {path}`. Each request's
//! method, path and headers are kept in order, for tests to assert on and for the demo
//! to print.

use std::io::{BufReader, Write};

use crate::http::read_head;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// The text message a WebSocket client sends to learn what its upgrade request looked like
/// here: the answer is `{"method": .., "path": .., "headers": [[name, value], ..]}`.
pub const REPORT: &str = "wsgate-demo:report";

/// One request as the upstream saw it.
pub type Seen = crate::http::Head;

/// A running echo upstream; it serves until the process ends.
#[derive(Clone)]
pub struct Echo {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Echo {
    /// Binds a free loopback port and serves in background threads.
    pub fn start() -> Echo {
        Self::bind("127.0.0.1:0").expect("bind the echo upstream")
    }

    /// Binds `addr` and serves in background threads.
    pub fn bind(addr: &str) -> std::io::Result<Echo> {
        let listener = TcpListener::bind(addr)?;
        let echo = Echo {
            addr: listener.local_addr()?,
            seen: Arc::default(),
        };
        let seen = echo.seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                thread::spawn(move || serve(stream, &seen));
            }
        });
        Ok(echo)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request seen so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }

    /// The most recent request seen on `path` (query included in the comparison only when
    /// `path` has one).
    pub fn last_on(&self, path: &str) -> Option<Seen> {
        self.seen().into_iter().rev().find(|seen| {
            seen.path == path || (!path.contains('?') && seen.path.split('?').next() == Some(path))
        })
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_head(&mut reader) else {
            return;
        };
        if let Ok(mut all) = seen.lock() {
            all.push(request.clone());
        }
        let is_upgrade = request
            .header_values("upgrade")
            .iter()
            .any(|value| value.eq_ignore_ascii_case("websocket"));
        if is_upgrade {
            let key = request.header("sec-websocket-key").unwrap_or_default();
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            let mut response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n"
            );
            if let Some(offered) = request.header("sec-websocket-protocol") {
                if let Some(first) = offered.split(',').map(str::trim).find(|p| !p.is_empty()) {
                    response.push_str(&format!("sec-websocket-protocol: {first}\r\n"));
                }
            }
            response.push_str("\r\n");
            let buffered = reader.buffer().to_vec();
            let mut stream = reader.into_inner();
            if stream.write_all(response.as_bytes()).is_err() {
                return;
            }
            let socket = WebSocket::from_partially_read(stream, buffered, Role::Server, None);
            echo_messages(socket, &request);
            return;
        }
        let body = format!("upstream saw {} {}", request.method, request.path);
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if reader.get_mut().write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn echo_messages(mut socket: WebSocket<TcpStream>, upgrade: &Seen) {
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => {
                let answer = if text.as_str() == REPORT {
                    let report = serde_json::json!({
                        "method": upgrade.method,
                        "path": upgrade.path,
                        "headers": upgrade.headers,
                    });
                    Message::text(report.to_string())
                } else {
                    Message::Text(text)
                };
                if socket.send(answer).is_err() {
                    return;
                }
            }
            Ok(Message::Binary(bytes)) => {
                if socket.send(Message::Binary(bytes)).is_err() {
                    return;
                }
            }
            Ok(Message::Close(_)) => {
                // tungstenite queued the closing handshake's answer: send it, so the client
                // sees a clean close (1000), not a dropped connection (1006).
                let _ = socket.flush();
                return;
            }
            Err(_) => return,
            Ok(_) => {}
        }
    }
}
