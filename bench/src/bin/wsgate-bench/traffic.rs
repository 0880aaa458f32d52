//! The load generator's side: WebSocket handshakes and upgrade requests at fixed
//! concurrency, and the WebSocket echo upstream they reach.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Starts the WebSocket echo upstream on a thread of its own (it runs as long as the
/// process); its address.
pub fn spawn_echo(runtime: &tokio::runtime::Runtime) -> SocketAddr {
    let (listener, addr) = runtime.block_on(start_echo());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(serve_echo(listener));
    });
    addr
}

/// `count` handshakes by `concurrency` tasks; returns each one's latency and the failures.
pub async fn load(
    addr: SocketAddr,
    tokens: Arc<Vec<String>>,
    count: usize,
    concurrency: usize,
    with_token: bool,
) -> (Vec<Duration>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, failures, tokens) = (next.clone(), failures.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return latencies;
                }
                let token = with_token.then(|| tokens[i % tokens.len()].as_str());
                match handshake(addr, token).await {
                    Ok(latency) => latencies.push(latency),
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    (all, failures.load(Ordering::Relaxed))
}

/// One WebSocket: upgrade, 101, a masked "ping" echoed back, close.
pub async fn handshake(addr: SocketAddr, token: Option<&str>) -> Result<Duration, String> {
    let started = Instant::now();
    let mut stream = upgrade(addr, token).await?;
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x84];
    frame.extend_from_slice(&mask);
    frame.extend(b"ping".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    let mut reply = [0u8; 6];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|e| e.to_string())?;
    if &reply[2..] != b"ping" {
        return Err("no echo".to_owned());
    }
    let _ = stream.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await;
    Ok(started.elapsed())
}

/// A GET to `/ws` asking for a WebSocket, with `token` as a bearer credential when given.
pub fn upgrade_request(token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /ws HTTP/1.1\r\nhost: bench\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n{auth}\r\n"
    )
}

/// A new connection to `addr` that sent [`upgrade_request`] and got its 101.
pub async fn upgrade(
    addr: SocketAddr,
    token: Option<&str>,
) -> Result<BufReader<TcpStream>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut stream = BufReader::new(stream);
    stream
        .write_all(upgrade_request(token).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let head = read_head(&mut stream).await?;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(head.lines().next().unwrap_or_default().to_owned());
    }
    Ok(stream)
}

pub async fn read_head(stream: &mut (impl AsyncBufRead + Unpin)) -> Result<String, String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if stream
            .read_until(b'\n', &mut head)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err("closed".to_owned());
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

pub async fn start_echo() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let addr = listener.local_addr().expect("echo address");
    (listener, addr)
}

/// An async WebSocket echo: 101, each frame back unmasked, close.
pub async fn serve_echo(listener: std::net::TcpListener) {
    listener.set_nonblocking(true).expect("non-blocking");
    let listener = TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut stream = BufReader::new(stream);
            let Ok(head) = read_head(&mut stream).await else {
                return;
            };
            let key = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .starts_with("sec-websocket-key:")
                        .then(|| line[18..].trim().to_owned())
                })
                .unwrap_or_default();
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            let response = format!("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n");
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            let mut header = [0u8; 2];
            while stream.read_exact(&mut header).await.is_ok() {
                // Lengths up to 125 inline, up to 65535 in a 16-bit extension (126).
                let mut length = usize::from(header[1] & 0x7f);
                let mut out = vec![header[0], header[1] & 0x7f];
                if length == 126 {
                    let mut extended = [0u8; 2];
                    if stream.read_exact(&mut extended).await.is_err() {
                        return;
                    }
                    length = usize::from(u16::from_be_bytes(extended));
                    out.extend_from_slice(&extended);
                }
                let mut mask = [0u8; 4];
                let mut payload = vec![0u8; length];
                if stream.read_exact(&mut mask).await.is_err()
                    || stream.read_exact(&mut payload).await.is_err()
                {
                    return;
                }
                for (i, byte) in payload.iter_mut().enumerate() {
                    *byte ^= mask[i % 4];
                }
                out.extend_from_slice(&payload);
                if stream.write_all(&out).await.is_err() || header[0] == 0x88 {
                    return;
                }
            }
        });
    }
}
