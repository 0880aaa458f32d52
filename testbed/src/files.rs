//! A static HTTP/1.1 file server on loopback: what a release's `wsgate.wasm` looks like when
//! Envoy loads it by URL (`vm_config.code.remote`), as Istio and Envoy Gateway do.

use std::collections::HashMap;
use std::io::{BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

/// A running file server; it serves until the process ends.
#[derive(Clone)]
pub struct Files {
    addr: SocketAddr,
    root: PathBuf,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Files {
    /// Serves the files under `root` (by their path below it) on a free loopback port.
    pub fn serve(root: &Path) -> Files {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the file server");
        let files = Files {
            addr: listener.local_addr().expect("its address"),
            root: root.to_owned(),
            hits: Arc::default(),
        };
        let serving = files.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let serving = serving.clone();
                thread::spawn(move || serving.answer(stream));
            }
        });
        files
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times `path` (for example `/wsgate.wasm`) was asked for.
    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .map(|hits| hits.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn answer(&self, stream: TcpStream) {
        let Ok(reading) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(reading);
        let mut stream = stream;
        while let Some(head) = crate::http::read_head(&mut reader) {
            if let Ok(mut hits) = self.hits.lock() {
                *hits.entry(head.path.clone()).or_default() += 1;
            }
            let name = head.path.trim_start_matches('/');
            let body = (!name.contains("..") && head.method == "GET")
                .then(|| std::fs::read(self.root.join(name)).ok())
                .flatten();
            let (status, body) = match body {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&body).is_err() {
                return;
            }
        }
    }
}
