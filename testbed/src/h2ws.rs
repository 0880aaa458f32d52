//! A WebSocket over HTTP/2 (RFC 8441): an extended CONNECT with `:protocol: websocket`,
//! then one masked text frame out and one frame back, on a single-threaded tokio runtime.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::client::{header_pairs, Response};

/// Opens a WebSocket over cleartext HTTP/2 to `addr{path}` with extra `headers`, sends
/// `text` and returns the status and the echoed text; a refused CONNECT comes back as the
/// response that refused it.
pub fn echo(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    text: &str,
) -> Result<(u16, String), Response> {
    block_on(exchange(addr, path, headers, text))
}

/// A plain HTTP/2 request (no extended CONNECT) to `addr{path}`.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    block_on(async {
        let mut client = connect(addr).await;
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .body(())
            .expect("request");
        let (response, _) = client.send_request(request, true).expect("send");
        let response = response.await.expect("response");
        let status = response.status().as_u16();
        let headers = header_pairs(response.headers());
        let body = read_body(&mut response.into_body()).await;
        Response {
            status,
            headers,
            body,
        }
    })
}

fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), work)
            .await
            .expect("HTTP/2 exchange timed out")
    })
}

/// An HTTP/2 connection to `addr`, driven in the background, ready for a request.
async fn connect(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client.ready().await.expect("h2 ready")
}

/// The whole body of a response, as text.
async fn read_body(body: &mut h2::RecvStream) -> String {
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        text.extend_from_slice(&chunk.expect("body"));
    }
    String::from_utf8_lossy(&text).into_owned()
}

async fn exchange(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    text: &str,
) -> Result<(u16, String), Response> {
    let mut client = connect(addr).await;
    // The server's SETTINGS may not have been read yet.
    for _ in 0..100 {
        if client.is_extended_connect_protocol_enabled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        client.is_extended_connect_protocol_enabled(),
        "the server did not enable extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)"
    );
    let mut request = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!("http://{addr}{path}"))
        .header("sec-websocket-version", "13");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(()).expect("request");
    request
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    let (response, mut send) = client.send_request(request, false).expect("send CONNECT");
    let response = response.await.expect("response");
    let status = response.status().as_u16();
    let response_headers = header_pairs(response.headers());
    let mut body = response.into_body();
    if status != 200 {
        let body = read_body(&mut body).await;
        return Err(Response {
            status,
            headers: response_headers,
            body,
        });
    }
    send.send_data(masked_text_frame(text), false)
        .expect("send frame");
    let mut received = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("frame bytes");
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
        if let Some(reply) = unmasked_text(&received) {
            let _ = send.send_data(Bytes::from_static(&[0x88, 0x80, 0, 0, 0, 0]), true);
            return Ok((status, reply));
        }
    }
    panic!("the stream ended before a reply frame");
}

/// A client-to-server text frame (masked, as RFC 6455 §5.3 requires), payload under 126 bytes.
fn masked_text_frame(text: &str) -> Bytes {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    Bytes::from(frame)
}

/// The text of a complete, unmasked server text frame (payload under 126 bytes).
fn unmasked_text(bytes: &[u8]) -> Option<String> {
    let (&opcode, rest) = bytes.split_first()?;
    let (&length, payload) = rest.split_first()?;
    let length = usize::from(length & 0x7f);
    (opcode == 0x81 && payload.len() >= length)
        .then(|| String::from_utf8_lossy(&payload[..length]).into_owned())
}
