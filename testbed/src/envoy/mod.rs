//! Runs a real Envoy with the built wsgate module on loopback: finding it and the modules
//! ([`binary`]), the bootstraps tests give it ([`bootstrap`]), and the process here.
//!
//! The binary is found, in order, through `ENVOY_BIN`, `func-e run` when func-e is on PATH,
//! or the project virtualenv's `.venv/bin/envoy` (what `make setup` installs). The module is
//! `WSGATE_WASM` or `target/wasm32-wasip1/release/wsgate.wasm` (what `make build` leaves).
//! Neither being there is a loud failure, never a skip.
//!
//! Listener and admin bind port 0; the real ports are read back from Envoy, so instances
//! never collide, and `--use-dynamic-base-id` keeps their shared memory apart.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod binary;
mod bootstrap;

pub use binary::*;
pub use bootstrap::*;

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// What Envoy logs when a Wasm VM panics, traps or fails (a panic kills the VM).
pub const VM_FAILURE_SIGNS: [&str; 5] = [
    "panicked",
    "wasm trap",
    "Function: proxy_on",
    "VM failed",
    "Plugin failed",
];

/// A running Envoy; killed when dropped.
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    admin: SocketAddr,
    listener: SocketAddr,
}

/// What became of an Envoy that was expected not to start.
pub struct Refusal {
    pub status: Option<ExitStatus>,
    pub log: String,
}

impl Envoy {
    /// Starts Envoy with `bootstrap` and waits until its listener is ready.
    /// Panics with Envoy's log if it does not get there.
    pub fn start(bootstrap: &Value) -> Envoy {
        Self::start_with(bootstrap, 1)
    }

    /// As [`Envoy::start`], with `concurrency` worker threads.
    pub fn start_with(bootstrap: &Value, concurrency: usize) -> Envoy {
        let text = serde_json::to_vec_pretty(bootstrap).expect("bootstrap");
        Self::start_file("envoy.json", &text, concurrency)
    }

    /// As [`Envoy::start`], from a YAML configuration (Envoy reads it by its extension).
    pub fn start_yaml(yaml: &str) -> Envoy {
        Self::start_file("envoy.yaml", yaml.as_bytes(), 1)
    }

    fn start_file(name: &str, config: &[u8], concurrency: usize) -> Envoy {
        let binary = EnvoyBinary::locate().unwrap_or_else(|why| panic!("{why}"));
        let (child, dir) = spawn(&binary, name, config, concurrency);
        let mut envoy = Envoy {
            child,
            dir,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listener: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                panic!(
                    "Envoy ({}) exited with {status} before it was ready:\n{}",
                    binary.source,
                    envoy.log()
                );
            }
            if let Some(admin) = envoy.read_admin_address() {
                envoy.admin = admin;
                if let Some(listener) = envoy.ready_listener() {
                    envoy.listener = listener;
                    eprintln!(
                        "envoy: {} (listener {listener}, admin {admin})",
                        binary.source
                    );
                    return envoy;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "Envoy ({}) was not ready within 60 s:\n{}",
                    binary.source,
                    envoy.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts Envoy with a bootstrap that must be refused; returns its exit and log once it
    /// has exited (or panics if it is still serving after 60 s).
    pub fn expect_refusal(bootstrap: &Value) -> Refusal {
        let binary = EnvoyBinary::locate().unwrap_or_else(|why| panic!("{why}"));
        let text = serde_json::to_vec_pretty(bootstrap).expect("bootstrap");
        let (mut child, dir) = spawn(&binary, "envoy.json", &text, 1);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = read_log(&dir);
                let _ = fs::remove_dir_all(&dir);
                return Refusal {
                    status: Some(status),
                    log,
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let log = read_log(&dir);
                panic!("Envoy did not refuse the configuration within 60 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id of Envoy itself: the child started, or (under func-e) the child's
    /// child named `envoy`.
    pub fn pid(&self) -> u32 {
        let child = self.child.id();
        let is_envoy = |pid: &str| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "envoy")
        };
        if is_envoy(&child.to_string()) {
            return child;
        }
        let parent_is_child = |pid: &str| {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // pid (comm) state ppid ...: comm may hold spaces, so count from its ')'.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .is_some_and(|ppid| ppid == child.to_string())
            })
        };
        fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .find(|pid| is_envoy(pid) && parent_is_child(pid))
            .and_then(|pid| pid.parse().ok())
            .unwrap_or(child)
    }

    /// CPU time all of Envoy's threads have used so far, from Linux's per-thread
    /// `schedstat` (nanoseconds); `None` where there is no `/proc`.
    pub fn cpu_time(&self) -> Option<Duration> {
        let tasks = fs::read_dir(format!("/proc/{}/task", self.pid())).ok()?;
        let nanos: u64 = tasks
            .flatten()
            .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        Some(Duration::from_nanos(nanos))
    }

    /// Envoy's resident memory now (Linux `/proc`), which includes the WebAssembly VMs'
    /// linear memories that Envoy's own allocator does not see.
    pub fn resident_bytes(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The ingress listener.
    pub fn listener(&self) -> SocketAddr {
        self.listener
    }

    /// What Envoy wrote to stdout so far (access logs sent to `/dev/stdout`).
    pub fn stdout(&self) -> String {
        fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    /// Envoy's log once it holds `needle`, or as it is after `timeout` (Envoy flushes its
    /// files on a timer).
    pub fn log_with(&self, needle: &str, timeout: Duration) -> String {
        once_holding(|| self.log(), needle, timeout)
    }

    /// What Envoy wrote to stdout (access logs sent to `/dev/stdout`) once it holds `needle`,
    /// or as it is after `timeout`.
    pub fn stdout_with(&self, needle: &str, timeout: Duration) -> String {
        once_holding(|| self.stdout(), needle, timeout)
    }

    /// How many times Envoy's log shows a Wasm VM panicking or failing
    /// ([`VM_FAILURE_SIGNS`]); 0 for a healthy run.
    pub fn vm_failures(&self) -> usize {
        let log = self.log();
        VM_FAILURE_SIGNS
            .iter()
            .map(|sign| log.matches(sign).count())
            .sum()
    }

    /// Every stat whose name contains `filter`, as `name -> value` (counters and gauges).
    pub fn stats(&self, filter: &str) -> std::collections::BTreeMap<String, u64> {
        let body = self
            .admin_get(&format!("/stats?filter={filter}"))
            .unwrap_or_default();
        body.lines()
            .filter_map(|line| line.split_once(": "))
            .filter_map(|(name, value)| Some((name.to_owned(), value.trim().parse().ok()?)))
            .collect()
    }

    /// GET on the admin interface; the body of a 200, else `None`.
    pub fn admin_get(&self, path: &str) -> Option<String> {
        admin_get(self.admin, path)
    }

    /// POST on the admin interface (its endpoints that change something, such as
    /// `/logging?wasm=debug`); the body of a 200, else `None`.
    pub fn admin_post(&self, path: &str) -> Option<String> {
        admin_request(self.admin, "POST", path)
    }

    fn read_admin_address(&self) -> Option<SocketAddr> {
        fs::read_to_string(self.dir.join("admin-address"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn ready_listener(&self) -> Option<SocketAddr> {
        let ready = self.admin_get("/ready")?;
        if ready.trim() != "LIVE" {
            return None;
        }
        let listeners: Value =
            serde_json::from_str(&self.admin_get("/listeners?format=json")?).ok()?;
        let address = &listeners["listener_statuses"][0]["local_address"]["socket_address"];
        let port = address["port_value"].as_u64().filter(|&port| port != 0)?;
        Some(SocketAddr::from((
            [127, 0, 0, 1],
            u16::try_from(port).ok()?,
        )))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- Envoy log ({}), start-up lines left out ---",
                self.dir.display()
            );
            for line in self
                .log()
                .lines()
                .filter(|line| !line.contains("server.cc:4"))
            {
                eprintln!("{line}");
            }
        } else {
            if std::env::var_os("WSGATE_KEEP_ENVOY").is_none() {
                let _ = fs::remove_dir_all(&self.dir);
            }
        }
    }
}

fn spawn(binary: &EnvoyBinary, name: &str, config: &[u8], concurrency: usize) -> (Child, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "wsgate-envoy-{}-{}",
        std::process::id(),
        INSTANCE.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("Envoy work directory");
    let path = dir.join(name);
    fs::write(&path, config).expect("write the Envoy configuration");
    let config = path;
    let concurrency = concurrency.to_string();
    let child = binary
        .command(&[
            "-c",
            &config.display().to_string(),
            "--concurrency",
            &concurrency,
            "--use-dynamic-base-id",
            "--admin-address-path",
            &dir.join("admin-address").display().to_string(),
            "-l",
            log_level(),
            "--disable-hot-restart",
            // Access logs reach their files within 100 ms instead of 10 s.
            "--file-flush-interval-msec",
            "100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            fs::File::create(dir.join("stdout")).expect("Envoy stdout file"),
        ))
        .stderr(Stdio::from(
            fs::File::create(dir.join("envoy.log")).expect("Envoy log file"),
        ))
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start Envoy ({}): {error}", binary.source));
    (child, dir)
}

/// `read()` once it holds `needle`, or as it is after `timeout`.
fn once_holding(read: impl Fn() -> String, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = read();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("envoy.log")).unwrap_or_default()
}

fn admin_get(admin: SocketAddr, path: &str) -> Option<String> {
    admin_request(admin, "GET", path)
}

fn admin_request(admin: SocketAddr, method: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: admin\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(dechunk(body));
    }
    Some(body.to_owned())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
