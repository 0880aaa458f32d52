//! `make soak`: wsgate under sustained, mixed handshakes for `SOAK_SECONDS` (default 600),
//! through a real Envoy with 2 workers, keys from the testbed issuer by OpenID Connect
//! discovery, key rotation every cycle and issuer outages (503, slow, truncated, down) with
//! recoveries in between.
//!
//! Every cycle (60 s, or the whole run when it is shorter than two minutes) goes:
//! - at 0: the next key is published beside the current one (as issuers do: published
//!   before it signs);
//! - at 1/6: tokens are signed with the next key;
//! - at 1/4: the old key leaves the set;
//! - from 5/12 to 2/3: the issuer is out, each cycle in another way; then it recovers.
//!
//! Handshakes mix valid tokens (an echo through the socket), tokens in a query parameter on
//! another spelling of the guarded path, forged, expired and malformed tokens, and spellings
//! of the guarded path with no token. Since every key is fetched before it signs and the
//! last good keys are kept through outages, every valid token must be accepted, outage or
//! not. The run fails on any false accept, any valid token refused, any VM panic or a failed
//! connection, and on resident memory growing past the bound after warm-up. It prints its
//! table and writes it to `bench/results/soak-DATE.md` (`--results DIR` elsewhere).
//!
//! Beside the handshakes, [`churn`] keeps WebSockets opening, living a few seconds and
//! closing all through the run, with `close_on_expiry` on: half closed by their clients,
//! half by wsgate when their token expires. The run also fails when one of those is refused,
//! closed before its `exp` or more than two seconds after it, or when wsgate still tracks a
//! socket at the end (its `expiry_tracked` gauge back at 0).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod churn;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy};
use testbed::issuer::{Behaviour, Issuer, DISCOVERY_PATH, JWKS_PATH};
use testbed::keys::{TestKey, RSA_2048_OTHER};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::http::HeaderValue;
use tungstenite::Message;

const AUDIENCE: &str = "soak-audience";
/// wsgate's gauge of the sockets `close_on_expiry` watches.
const TRACKED: &str = "wasmcustom.wsgate.expiry_tracked";
const LOAD_THREADS: usize = 4;
/// Resident memory may grow this much after warm-up before the soak fails: allocator noise
/// and the token cache filling are a few MiB; a leak per handshake is far more over minutes.
const MEMORY_SLACK_BYTES: u64 = 24 * 1024 * 1024;
/// Nor may it grow by more than this per handshake after warm-up: the absolute bound alone
/// would pass a 4 KiB-per-handshake leak in CI's 30 s (a few thousand handshakes). Judged
/// over at least [`SLOPE_MIN_HANDSHAKES`], so that one allocator step is not a slope.
const MAX_GROWTH_PER_HANDSHAKE: i64 = 1024;
const SLOPE_MIN_HANDSHAKES: usize = 1000;

/// Spellings of the guarded path `/ws` that a backend serves as `/ws`.
const VARIANTS: [&str; 8] = [
    "/WS",
    "/ws/",
    "//ws",
    "/%77s",
    "/ws;x=1",
    "/./ws",
    "/ws%2F",
    "/x/..;/ws",
];

/// Tokens that are not a usable JWS: wrong shape, bad base64url, `alg: none`, no claims.
const MALFORMED: [&str; 5] = [
    "not-a-jwt",
    "a.b.c",
    "eyJhbGciOiJSUzI1NiJ9.!!!.AAAA",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "eyJhbGciOiJSUzI1NiJ9.e30.AAAA",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Valid,
    ValidParamOnVariant,
    Forged,
    Expired,
    Malformed,
    VariantNoToken,
}

impl Kind {
    const MIX: [Kind; 8] = [
        Kind::Valid,
        Kind::Valid,
        Kind::Valid,
        Kind::ValidParamOnVariant,
        Kind::Forged,
        Kind::Expired,
        Kind::Malformed,
        Kind::VariantNoToken,
    ];

    fn valid(self) -> bool {
        matches!(self, Kind::Valid | Kind::ValidParamOnVariant)
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Valid => "valid token (Authorization), echoed",
            Kind::ValidParamOnVariant => "valid token (query, path spelled otherwise)",
            Kind::Forged => "forged (current kid, other key)",
            Kind::Expired => "expired",
            Kind::Malformed => "malformed",
            Kind::VariantNoToken => "no token, path spelled otherwise",
        }
    }
}

/// What one handshake came to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// 101, and for echoed kinds the message came back.
    Accepted,
    /// An HTTP status other than 101.
    Refused(u16),
    /// No HTTP answer, or a broken echo.
    Failed(String),
}

/// The signing key and its `kid`, shared with the load threads.
#[derive(Clone)]
struct Signer {
    key: &'static TestKey,
    kid: String,
}

struct Shared {
    signer: Mutex<Signer>,
    outcomes: Mutex<BTreeMap<(Kind, Outcome), usize>>,
    in_outage: AtomicBool,
    valid_refused_in_outage: AtomicUsize,
    stop: AtomicBool,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut results = envoy::workspace_root().join("bench/results");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--results" => results = args.next().expect("--results DIR").into(),
            other => panic!("unknown argument {other:?} (takes --results DIR)"),
        }
    }
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .map(|text| {
            text.parse()
                .expect("SOAK_SECONDS is a whole number of seconds")
        })
        .unwrap_or(600);
    assert!(seconds >= 10, "SOAK_SECONDS must be at least 10");
    let duration = Duration::from_secs(seconds);
    let cycle = if seconds < 120 {
        duration
    } else {
        Duration::from_secs(60)
    };

    let first = fresh_key();
    let issuer = Issuer::start(&[(first, "soak-1")]);
    let echo = Echo::start();
    let plugin = json!({
        "issuer": issuer.issuer(),
        "audiences": [AUDIENCE],
        "openid_config_url": issuer.discovery_url(),
        "cluster": "issuer",
        "refresh_interval_seconds": 1,
        "min_refresh_interval_seconds": 1,
        "fetch_timeout_ms": 500,
        "from_params": ["access_token"],
        "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}],
        // The churn's sockets are closed at their token's `exp` itself.
        "close_on_expiry": true,
        "clock_skew_seconds": 0,
    });
    let mut bootstrap = envoy::gate_bootstrap(echo.addr(), &plugin);
    envoy::add_cluster(&mut bootstrap, "issuer", issuer.addr());
    let envoy = Envoy::start_with(&bootstrap, 2);
    let memory_start = envoy.resident_bytes();
    eprintln!(
        "soak: {seconds} s, cycles of {} s, Envoy with 2 workers at {}",
        cycle.as_secs(),
        envoy.listener()
    );

    let shared = Arc::new(Shared {
        signer: Mutex::new(Signer {
            key: first,
            kid: "soak-1".into(),
        }),
        outcomes: Mutex::default(),
        in_outage: AtomicBool::new(false),
        valid_refused_in_outage: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let counter = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..LOAD_THREADS)
        .map(|_| {
            let (shared, counter) = (shared.clone(), counter.clone());
            let (addr, iss) = (envoy.listener(), issuer.issuer());
            thread::spawn(move || load(addr, &iss, &shared, &counter))
        })
        .collect();
    let churn = churn::Churn::start(envoy.listener(), {
        let (shared, iss) = (shared.clone(), issuer.issuer());
        move |exp| {
            let signer = shared.signer.lock().unwrap().clone();
            signer.key.sign(
                json!({"kid": signer.kid, "typ": "JWT"}),
                &json!({"iss": iss, "aud": AUDIENCE, "sub": "churn", "exp": exp}),
            )
        }
    });

    let started = Instant::now();
    let mut memory = Memory {
        envoy: &envoy,
        started,
        warm_up: (duration / 5).max(Duration::from_secs(5)),
        warm: None,
        warm_handshakes: 0,
        handshakes: &counter,
        peak: 0,
        tracked_peak: 0,
    };
    let mut timeline = Vec::new();
    let outages = [
        ("503", Behaviour::Status(503)),
        (
            "slow (2 s, past the 500 ms timeout)",
            Behaviour::Slow(Duration::from_secs(2)),
        ),
        ("truncated body", Behaviour::Truncated),
        ("down (connections refused)", Behaviour::Down),
    ];
    let mut generation = 1;
    let mut cycle_start = Duration::ZERO;
    while cycle_start < duration {
        let at = |fraction: f64| cycle_start + cycle.mul_f64(fraction);
        let (current, current_kid) = {
            let signer = shared.signer.lock().unwrap();
            (signer.key, signer.kid.clone())
        };
        generation += 1;
        let next = fresh_key();
        let next_kid = format!("soak-{generation}");
        issuer.set_keys(&[(current, &current_kid), (next, &next_kid)]);
        timeline.push(format!(
            "{:>5.1} s: {next_kid} published",
            started.elapsed().as_secs_f64()
        ));
        memory.wait_until(at(1.0 / 6.0));
        *shared.signer.lock().unwrap() = Signer {
            key: next,
            kid: next_kid.clone(),
        };
        timeline.push(format!(
            "{:>5.1} s: {next_kid} signs",
            started.elapsed().as_secs_f64()
        ));
        memory.wait_until(at(0.25));
        issuer.set_keys(&[(next, &next_kid)]);
        timeline.push(format!(
            "{:>5.1} s: {current_kid} withdrawn",
            started.elapsed().as_secs_f64()
        ));
        memory.wait_until(at(5.0 / 12.0));
        let (name, behaviour) = &outages[(generation - 2) % outages.len()];
        issuer.set_behaviour(behaviour.clone());
        shared.in_outage.store(true, Ordering::SeqCst);
        timeline.push(format!(
            "{:>5.1} s: issuer {name}",
            started.elapsed().as_secs_f64()
        ));
        memory.wait_until(at(2.0 / 3.0));
        issuer.set_behaviour(Behaviour::Normal);
        shared.in_outage.store(false, Ordering::SeqCst);
        timeline.push(format!(
            "{:>5.1} s: issuer recovered",
            started.elapsed().as_secs_f64()
        ));
        cycle_start += cycle;
        memory.wait_until(cycle_start.min(duration));
    }
    shared.stop.store(true, Ordering::SeqCst);
    for thread in threads {
        thread.join().expect("a load thread");
    }
    let churn = churn.finish();
    let elapsed = started.elapsed();
    let memory_end = envoy.resident_bytes();
    // Every socket has ended: wsgate must track none (its VMs' moves settle at once).
    let settle = Instant::now() + Duration::from_secs(5);
    let tracked_at_end = loop {
        let now = envoy.stats(TRACKED).get(TRACKED).copied();
        if now == Some(0) || Instant::now() > settle {
            break now;
        }
        thread::sleep(Duration::from_millis(100));
    };

    let panics = envoy.vm_failures();
    let outcomes = shared.outcomes.lock().unwrap().clone();
    let report = Report {
        seconds: elapsed.as_secs_f64(),
        outcomes,
        valid_refused_in_outage: shared.valid_refused_in_outage.load(Ordering::SeqCst),
        panics,
        memory: [memory_start, memory.warm, memory_end],
        handshakes_after_warm_up: counter
            .load(Ordering::Relaxed)
            .saturating_sub(memory.warm_handshakes),
        memory_peak: memory.peak,
        issuer_hits: (issuer.hits(DISCOVERY_PATH), issuer.hits(JWKS_PATH)),
        stats: envoy.stats("wsgate"),
        timeline,
        churn,
        tracked_at_end,
        tracked_peak: memory.tracked_peak,
    };
    let text = report.render();
    println!("{text}");
    std::fs::create_dir_all(&results).expect("the results directory");
    let file = results.join(format!("soak-{}.md", testbed::today()));
    std::fs::write(&file, &text).expect("write the soak result");
    eprintln!("soak: written to {}", file.display());
    let failures = report.failures();
    if !failures.is_empty() {
        eprintln!("soak FAILED:\n- {}", failures.join("\n- "));
        std::process::exit(1);
    }
}

/// A fresh 2048-bit RSA key that lives as long as the process (the issuer holds it).
fn fresh_key() -> &'static TestKey {
    Box::leak(Box::new(TestKey::rsa_of_bits(2048)))
}

/// Envoy's resident memory, sampled every second while the soak waits.
struct Memory<'a> {
    envoy: &'a Envoy,
    started: Instant,
    /// When the warm-up sample is taken.
    warm_up: Duration,
    warm: Option<u64>,
    /// Handshakes started when the warm-up sample was taken.
    warm_handshakes: usize,
    handshakes: &'a AtomicUsize,
    peak: u64,
    /// The most sockets wsgate's `expiry_tracked` gauge showed at a sample.
    tracked_peak: u64,
}

impl Memory<'_> {
    /// Sleeps until `at` after the start, sampling.
    fn wait_until(&mut self, at: Duration) {
        while self.started.elapsed() < at {
            thread::sleep((at - self.started.elapsed()).min(Duration::from_secs(1)));
            let now = self.envoy.resident_bytes().unwrap_or(0);
            self.peak = self.peak.max(now);
            let tracked = self.envoy.stats(TRACKED).get(TRACKED).copied().unwrap_or(0);
            self.tracked_peak = self.tracked_peak.max(tracked);
            if self.warm.is_none() && self.started.elapsed() >= self.warm_up {
                self.warm = Some(now);
                self.warm_handshakes = self.handshakes.load(Ordering::Relaxed);
            }
        }
    }
}

/// One load thread: handshakes of every kind in turn until told to stop.
fn load(addr: SocketAddr, iss: &str, shared: &Shared, counter: &AtomicUsize) {
    while !shared.stop.load(Ordering::SeqCst) {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let kind = Kind::MIX[n % Kind::MIX.len()];
        let signer = shared.signer.lock().unwrap().clone();
        let now = testbed::now();
        let claims = |exp: u64| json!({"iss": iss, "aud": AUDIENCE, "sub": format!("caller-{n}"), "iat": now, "exp": exp});
        let header = json!({"kid": signer.kid, "typ": "JWT"});
        let variant = VARIANTS[n / Kind::MIX.len() % VARIANTS.len()];
        let outcome = match kind {
            Kind::Valid => {
                let token = signer.key.sign(header, &claims(now + 300));
                handshake(addr, "/ws", Some(&token), true)
            }
            Kind::ValidParamOnVariant => {
                let token = signer.key.sign(header, &claims(now + 300));
                let path = format!("{}?access_token={token}", variant.replace("%2F", "/"));
                handshake(addr, &path, None, false)
            }
            Kind::Forged => {
                let token = RSA_2048_OTHER.sign(header, &claims(now + 300));
                handshake(addr, "/ws", Some(&token), false)
            }
            Kind::Expired => {
                let token = signer.key.sign(header, &claims(now - 600));
                handshake(addr, "/ws", Some(&token), false)
            }
            Kind::Malformed => {
                let token = MALFORMED[n / Kind::MIX.len() % MALFORMED.len()];
                handshake(addr, "/ws", Some(token), false)
            }
            Kind::VariantNoToken => handshake(addr, variant, None, false),
        };
        if kind.valid() && outcome != Outcome::Accepted && shared.in_outage.load(Ordering::SeqCst) {
            shared
                .valid_refused_in_outage
                .fetch_add(1, Ordering::Relaxed);
        }
        *shared
            .outcomes
            .lock()
            .unwrap()
            .entry((kind, outcome))
            .or_default() += 1;
    }
}

/// One WebSocket handshake to `path`, with `token` as a bearer when given; with `echo`, a
/// message sent and read back on the opened socket.
fn handshake(addr: SocketAddr, path: &str, token: Option<&str>, echo: bool) -> Outcome {
    let mut request = match format!("ws://{addr}{path}").into_client_request() {
        Ok(request) => request,
        Err(error) => return Outcome::Failed(format!("request: {error}")),
    };
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header value");
        request.headers_mut().insert("authorization", value);
    }
    let Ok(stream) = TcpStream::connect(addr) else {
        return Outcome::Failed("connect".into());
    };
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    match tungstenite::client::client(request, stream) {
        Ok((mut socket, _)) => {
            if echo {
                let sent = "soak";
                if let Err(error) = socket.send(Message::text(sent)) {
                    return Outcome::Failed(format!("echo: {error}"));
                }
                let back = socket.read();
                if !matches!(back, Ok(Message::Text(ref text)) if text.as_str() == sent) {
                    return Outcome::Failed(format!("echo: {back:?}"));
                }
            }
            socket.close(None).ok();
            Outcome::Accepted
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Outcome::Refused(response.status().as_u16())
        }
        Err(other) => Outcome::Failed(format!("handshake: {other}")),
    }
}

struct Report {
    seconds: f64,
    outcomes: BTreeMap<(Kind, Outcome), usize>,
    valid_refused_in_outage: usize,
    panics: usize,
    /// Resident bytes at start, after warm-up, at the end.
    memory: [Option<u64>; 3],
    /// Handshakes from the warm-up sample to the end.
    handshakes_after_warm_up: usize,
    memory_peak: u64,
    issuer_hits: (usize, usize),
    stats: BTreeMap<String, u64>,
    timeline: Vec<String>,
    churn: churn::Tally,
    /// wsgate's `expiry_tracked` gauge once every socket had ended, and its peak during
    /// the run (a gauge that never moved would pass the check at the end).
    tracked_at_end: Option<u64>,
    tracked_peak: u64,
}

impl Report {
    fn count(&self, keep: impl Fn(Kind, &Outcome) -> bool) -> usize {
        self.outcomes
            .iter()
            .filter(|((kind, outcome), _)| keep(*kind, outcome))
            .map(|(_, count)| count)
            .sum()
    }

    fn false_accepts(&self) -> usize {
        self.count(|kind, outcome| !kind.valid() && *outcome == Outcome::Accepted)
    }

    fn valid_refused(&self) -> usize {
        self.count(|kind, outcome| kind.valid() && matches!(outcome, Outcome::Refused(_)))
    }

    fn failed(&self) -> usize {
        self.count(|_, outcome| matches!(outcome, Outcome::Failed(_)))
    }

    fn memory_growth(&self) -> Option<i64> {
        let [_, warm, end] = self.memory;
        Some(end? as i64 - warm? as i64)
    }

    /// Bytes of resident memory grown per handshake after warm-up, when enough ran.
    fn growth_per_handshake(&self) -> Option<i64> {
        let handshakes = self.handshakes_after_warm_up;
        (handshakes >= SLOPE_MIN_HANDSHAKES)
            .then(|| {
                self.memory_growth()
                    .map(|growth| growth / handshakes as i64)
            })
            .flatten()
    }

    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.false_accepts() > 0 {
            failures.push(format!("{} false accepts", self.false_accepts()));
        }
        if self.valid_refused() > 0 {
            failures.push(format!("{} valid tokens refused", self.valid_refused()));
        }
        if self.failed() > 0 {
            failures.push(format!(
                "{} handshakes failed without an answer",
                self.failed()
            ));
        }
        if self.panics > 0 {
            failures.push(format!(
                "{} VM panics or failures in Envoy's log",
                self.panics
            ));
        }
        if let Some(growth) = self.memory_growth() {
            if growth > MEMORY_SLACK_BYTES as i64 {
                failures.push(format!(
                    "resident memory grew {} after warm-up",
                    mib(growth)
                ));
            }
        }
        if self.memory_growth().is_none() {
            failures.push("Envoy's resident memory could not be read: growth not judged".into());
        }
        failures.extend(self.churn_failures());
        if let Some(slope) = self.growth_per_handshake() {
            if slope > MAX_GROWTH_PER_HANDSHAKE {
                failures.push(format!(
                    "resident memory grew {slope} bytes per handshake after warm-up \
                     (at most {MAX_GROWTH_PER_HANDSHAKE})"
                ));
            }
        }
        failures
    }

    /// What the churn got wrong.
    fn churn_failures(&self) -> Vec<String> {
        let churn = &self.churn;
        let closed_on_expiry = self
            .stats
            .get("wasmcustom.wsgate.closed_on_expiry")
            .copied()
            .unwrap_or(0);
        let checks = [
            (churn.opened == 0, "no churned socket opened".to_owned()),
            (
                !churn.refused.is_empty(),
                format!(
                    "{} churned sockets refused (first: {:?})",
                    churn.refused.len(),
                    churn.refused.first()
                ),
            ),
            (
                churn.closed_early > 0,
                format!("{} churned sockets closed before exp", churn.closed_early),
            ),
            (
                churn.closed_at_expiry != churn.left_to_expire,
                format!(
                    "{} of {} churned sockets left to expire were closed",
                    churn.closed_at_expiry, churn.left_to_expire
                ),
            ),
            (
                churn.latest > churn::MAX_LATE.as_secs_f64(),
                format!("a churned socket closed {:.2} s after exp", churn.latest),
            ),
            (
                closed_on_expiry != churn.closed_at_expiry as u64,
                format!(
                    "wsgate counted {closed_on_expiry} closed on expiry, the clients saw {}",
                    churn.closed_at_expiry
                ),
            ),
            (
                self.tracked_peak == 0,
                "wsgate's expiry_tracked gauge never showed a socket".to_owned(),
            ),
            (
                self.tracked_at_end != Some(0),
                format!(
                    "wsgate still tracks {:?} sockets once all had ended",
                    self.tracked_at_end
                ),
            ),
        ];
        checks
            .into_iter()
            .filter(|(failed, _)| *failed)
            .map(|(_, what)| what)
            .collect()
    }

    fn render(&self) -> String {
        let total = self.count(|_, _| true);
        let mut out = String::new();
        let _ = writeln!(out, "# wsgate soak, {}\n", testbed::today());
        // Which code this judged: the commit, and whether the tree had changes beside it.
        let commit = std::process::Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|commit| !commit.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        let _ = writeln!(out, "- commit: {commit}\n");
        let _ = writeln!(
            out,
            "`make soak` (SOAK_SECONDS={:.0}): Envoy 1.40 with 2 workers, keys by OpenID Connect \
             discovery from the testbed issuer (refresh every 1 s, 500 ms fetch timeout), {} \
             load threads on this machine's {} cores, {total} handshakes in {:.0} s \
             ({:.0}/s). Cycle: publish the next key, sign with it, withdraw the old one, \
             then an issuer outage and its recovery.\n",
            self.seconds,
            LOAD_THREADS,
            thread::available_parallelism().map_or(0, |n| n.get()),
            self.seconds,
            total as f64 / self.seconds
        );
        let _ = writeln!(
            out,
            "Reading it: every handshake opens its own TCP connection and carries a freshly \
             signed token, so the token cache never helps and the rate is bound by the load \
             threads signing RSA tokens on the same cores, not by Envoy; this is a \
             correctness run, not a benchmark (`make bench` is). Resident memory is sampled \
             every second; warm-up is the first fifth of the run. The timeline's times drift \
             by the seconds a fresh RSA key takes to generate.\n"
        );
        let _ = writeln!(out, "| handshake | outcome | count |\n|---|---|---|");
        for ((kind, outcome), count) in &self.outcomes {
            let outcome = match outcome {
                Outcome::Accepted => "101 accepted".to_owned(),
                Outcome::Refused(status) => format!("{status} refused"),
                Outcome::Failed(why) => format!("failed: {why}"),
            };
            let _ = writeln!(out, "| {} | {outcome} | {count} |", kind.name());
        }
        let [start, warm, end] = self
            .memory
            .map(|bytes| bytes.map_or("?".into(), |b| mib(b as i64)));
        let _ = writeln!(out, "\n| check | result | must be |\n|---|---|---|");
        let rows = [
            ("false accepts", self.false_accepts().to_string(), "0"),
            (
                "valid tokens refused",
                self.valid_refused().to_string(),
                "0",
            ),
            (
                "of which during an outage",
                self.valid_refused_in_outage.to_string(),
                "0",
            ),
            (
                "handshakes failed without an answer",
                self.failed().to_string(),
                "0",
            ),
            (
                "VM panics or failures in Envoy's log",
                self.panics.to_string(),
                "0",
            ),
            (
                "Envoy resident memory: start / after warm-up / end (peak)",
                format!(
                    "{start} / {warm} / {end} ({})",
                    mib(self.memory_peak as i64)
                ),
                "no growth after warm-up beyond 24 MiB",
            ),
            (
                "growth after warm-up",
                self.memory_growth().map_or("?".into(), mib),
                "<= 24 MiB",
            ),
            (
                "growth per handshake after warm-up",
                match self.growth_per_handshake() {
                    Some(slope) => format!(
                        "{slope} bytes over {} handshakes",
                        self.handshakes_after_warm_up
                    ),
                    None => format!(
                        "not judged: {} handshakes (under {SLOPE_MIN_HANDSHAKES})",
                        self.handshakes_after_warm_up
                    ),
                },
                "<= 1024 bytes",
            ),
            (
                "churned sockets: opened / closed by clients / left to expire / closed by wsgate at expiry",
                format!(
                    "{} / {} / {} / {}",
                    self.churn.opened,
                    self.churn.closed_by_clients,
                    self.churn.left_to_expire,
                    self.churn.closed_at_expiry
                ),
                "every one left to expire closed, none refused",
            ),
            (
                "churned sockets closed before exp; latest close after exp",
                format!("{}; {:.2} s", self.churn.closed_early, self.churn.latest),
                "0; <= 2 s",
            ),
            (
                "sockets wsgate tracks (expiry_tracked): peak during the run; once all have ended",
                format!(
                    "{}; {}",
                    self.tracked_peak,
                    self.tracked_at_end.map_or("?".into(), |n| n.to_string())
                ),
                "> 0; 0",
            ),
            (
                "issuer hits: discovery / JWKS",
                format!("{} / {}", self.issuer_hits.0, self.issuer_hits.1),
                "-",
            ),
        ];
        for (check, result, bound) in rows {
            let _ = writeln!(out, "| {check} | {result} | {bound} |");
        }
        let _ = writeln!(out, "\nwsgate's counters at the end:\n\n```");
        for (name, value) in &self.stats {
            if *value > 0 {
                let _ = writeln!(out, "{name}: {value}");
            }
        }
        let _ = writeln!(
            out,
            "```\n\nTimeline:\n\n```\n{}\n```",
            self.timeline.join("\n")
        );
        let failures = self.failures();
        let _ = writeln!(
            out,
            "\nVerdict: {}",
            if failures.is_empty() {
                "passed".to_owned()
            } else {
                format!("FAILED ({})", failures.join("; "))
            }
        );
        out
    }
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
