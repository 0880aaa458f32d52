//! Thousands of WebSockets held open at once, for the sockets test and the bench: a crowd
//! of clients and an upstream that answers them, each on one tokio thread, so that N
//! sockets cost N file descriptors a side and no thread apiece.
//!
//! Neither side speaks WebSocket frames: once upgraded, Envoy forwards bytes as they come,
//! so the upstream sends back whatever it reads, and a client's liveness check is four bytes
//! there and back ([`Crowd::echo_all`]). A client notes when its socket was closed by the
//! other side ([`Crowd::closed_at`]), for timing expiries.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// The request head of a WebSocket upgrade to `path` with `headers` (HTTP/1.1).
pub fn upgrade_head(path: &str, headers: &[(&str, &str)]) -> String {
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nhost: crowd\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// A tokio runtime on a thread of its own, running until dropped.
struct Background {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    fn spawn<F>(work: impl FnOnce(watch::Receiver<bool>) -> F + Send + 'static) -> Background
    where
        F: std::future::Future<Output = ()> + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            // Every task still running is dropped with the runtime: its socket closes.
            runtime.block_on(work(stopped));
        });
        Background {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        if stopped.changed().await.is_err() {
            return;
        }
    }
}

/// The upstream: a 101 to every request with a `sec-websocket-key` (a 200 to any other),
/// then every byte back as it came.
pub struct Upstream {
    addr: SocketAddr,
    upgraded: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    _background: Background,
}

impl Upstream {
    /// Binds a free loopback port and serves until dropped.
    pub fn start() -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("upstream address");
        let upgraded = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (counts, gauge) = (upgraded.clone(), open.clone());
        let background = Background::spawn(move |stopped| async move {
            let Ok(listener) = TcpListener::from_std(listener) else {
                return;
            };
            let accept = async {
                loop {
                    if let Ok((stream, _)) = listener.accept().await {
                        tokio::spawn(answer(stream, counts.clone(), gauge.clone()));
                    }
                }
            };
            tokio::select! {
                () = accept => {}
                () = until_stopped(stopped) => {}
            }
        });
        Upstream {
            addr,
            upgraded,
            open,
            _background: background,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Upgrades answered so far.
    pub fn upgraded(&self) -> usize {
        self.upgraded.load(Ordering::Relaxed)
    }

    /// Upgraded sockets still open.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

async fn answer(stream: TcpStream, upgraded: Arc<AtomicUsize>, open: Arc<AtomicUsize>) {
    let mut stream = BufReader::new(stream);
    let Ok(head) = read_head(&mut stream).await else {
        return;
    };
    let Some(key) = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    }) else {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
        return;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-accept: {accept}\r\n\r\n"
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    upgraded.fetch_add(1, Ordering::Relaxed);
    open.fetch_add(1, Ordering::Relaxed);
    let mut buffer = [0u8; 256];
    while let Ok(read) = stream.read(&mut buffer).await {
        let Some(bytes) = buffer.get(..read).filter(|bytes| !bytes.is_empty()) else {
            break;
        };
        if stream.write_all(bytes).await.is_err() {
            break;
        }
    }
    open.fetch_sub(1, Ordering::Relaxed);
}

async fn read_head(stream: &mut (impl AsyncBufRead + Unpin)) -> Result<String, String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream
            .read_until(b'\n', &mut head)
            .await
            .map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("closed before a response".to_owned());
        }
        if head.len() > 64 * 1024 {
            return Err("a head over 64 KiB".to_owned());
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[derive(Default)]
struct Shared {
    opened: AtomicUsize,
    refused: Mutex<Vec<String>>,
    closed: Mutex<Vec<SystemTime>>,
    echoed_bytes: AtomicUsize,
}

/// A crowd of clients, each holding one socket open until the crowd is dropped.
pub struct Crowd {
    size: usize,
    shared: Arc<Shared>,
    ping: watch::Sender<u64>,
    _background: Background,
}

impl Crowd {
    /// Opens one socket to `addr` per request head in `heads`, at most `parallel` handshakes
    /// in flight at once. Returns at once; see [`Crowd::wait_settled`].
    pub fn open(addr: SocketAddr, heads: Vec<String>, parallel: usize) -> Crowd {
        let size = heads.len();
        let shared = Arc::new(Shared::default());
        let (ping, pinged) = watch::channel(0u64);
        let tasks = shared.clone();
        let background = Background::spawn(move |stopped| async move {
            let gate = Arc::new(Semaphore::new(parallel.max(1)));
            for head in heads {
                tokio::spawn(client(
                    addr,
                    head,
                    gate.clone(),
                    tasks.clone(),
                    pinged.clone(),
                ));
            }
            until_stopped(stopped).await;
        });
        Crowd {
            size,
            shared,
            ping,
            _background: background,
        }
    }

    /// Waits until every handshake has been answered (or `timeout`); returns how long that
    /// took, or `None` on timeout.
    pub fn wait_settled(&self, timeout: Duration) -> Option<Duration> {
        let started = Instant::now();
        while !self.settled() {
            if started.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Some(started.elapsed())
    }

    /// Whether every handshake has been answered.
    pub fn settled(&self) -> bool {
        self.opened() + self.refused().len() >= self.size
    }

    /// Sockets upgraded (101) so far, closed since or not.
    pub fn opened(&self) -> usize {
        self.shared.opened.load(Ordering::Relaxed)
    }

    /// The first response line (or the error) of every handshake that did not upgrade.
    pub fn refused(&self) -> Vec<String> {
        self.shared
            .refused
            .lock()
            .map(|refused| refused.clone())
            .unwrap_or_default()
    }

    /// When each upgraded socket that has ended was closed by the other side.
    pub fn closed_at(&self) -> Vec<SystemTime> {
        self.shared
            .closed
            .lock()
            .map(|closed| closed.clone())
            .unwrap_or_default()
    }

    /// Upgraded sockets still open.
    pub fn still_open(&self) -> usize {
        self.opened().saturating_sub(self.closed_at().len())
    }

    /// Sends four bytes on every open socket and waits (up to `timeout`) for them to come
    /// back; returns how many sockets' bytes came back.
    pub fn echo_all(&self, timeout: Duration) -> usize {
        let before = self.shared.echoed_bytes.load(Ordering::Relaxed);
        let expected = 4 * self.still_open();
        self.ping.send_modify(|generation| *generation += 1);
        let started = Instant::now();
        loop {
            let echoed = self.shared.echoed_bytes.load(Ordering::Relaxed) - before;
            if echoed >= expected || started.elapsed() > timeout {
                return echoed / 4;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

async fn client(
    addr: SocketAddr,
    head: String,
    gate: Arc<Semaphore>,
    shared: Arc<Shared>,
    mut pinged: watch::Receiver<u64>,
) {
    let refuse = |why: String| {
        if let Ok(mut refused) = shared.refused.lock() {
            refused.push(why);
        }
    };
    let Ok(permit) = gate.acquire().await else {
        return;
    };
    let mut stream = match handshake(addr, &head).await {
        Ok(stream) => stream,
        Err(why) => return refuse(why),
    };
    drop(permit);
    shared.opened.fetch_add(1, Ordering::Relaxed);
    pinged.mark_unchanged();
    let mut buffer = [0u8; 64];
    loop {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    shared.echoed_bytes.fetch_add(read, Ordering::Relaxed);
                }
            },
            changed = pinged.changed() => {
                if changed.is_err() || stream.write_all(b"ping").await.is_err() {
                    break;
                }
            }
        }
    }
    if let Ok(mut closed) = shared.closed.lock() {
        closed.push(SystemTime::now());
    }
}

async fn handshake(addr: SocketAddr, head: &str) -> Result<BufReader<TcpStream>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut stream = BufReader::new(stream);
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let response = read_head(&mut stream).await?;
    if response.starts_with("HTTP/1.1 101") {
        Ok(stream)
    } else {
        Err(response.lines().next().unwrap_or_default().to_owned())
    }
}
