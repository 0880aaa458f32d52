//! Churn for the soak: WebSockets opening, living a while and closing all through the run,
//! with `close_on_expiry` on, as a media service's calls come and go.
//!
//! Every second a batch of [`BATCH`] sockets opens on one token living 3 to 6 s. Every other
//! batch is closed by its clients 1.5 s before its `exp`; the rest stay open and must each be
//! closed by wsgate within [`MAX_LATE`] of `exp`, and none before it. Each batch is judged
//! as it ends; at the end of the run the batches in flight are let finish and judged too.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testbed::crowd::{self, Crowd};

/// Sockets opened together on one token.
pub const BATCH: usize = 20;
/// How late after `exp` a socket may be closed (Envoy's 1 s delayed close included).
pub const MAX_LATE: Duration = Duration::from_secs(2);

/// What became of the churned sockets.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub opened: usize,
    /// Handshakes that did not upgrade (each a failure: the tokens are valid).
    pub refused: Vec<String>,
    pub closed_by_clients: usize,
    /// Sockets left open for their token to expire, and how many of those wsgate closed.
    pub left_to_expire: usize,
    pub closed_at_expiry: usize,
    /// Sockets closed by the proxy before their token's `exp`.
    pub closed_early: usize,
    /// The latest close after `exp`, in seconds.
    pub latest: f64,
}

/// The churn, running on a thread of its own until [`Churn::finish`].
pub struct Churn {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Tally>,
}

impl Churn {
    /// Starts churning through `addr`; `sign` makes a valid token expiring at `exp`.
    pub fn start(addr: SocketAddr, sign: impl Fn(u64) -> String + Send + 'static) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || run(addr, &sign, &stopped));
        Churn { stop, thread }
    }

    /// Stops opening sockets, lets the ones open end, and returns the tally.
    pub fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_default()
    }
}

struct Batch {
    crowd: Crowd,
    exp: u64,
    closed_by_clients: bool,
}

fn run(addr: SocketAddr, sign: &dyn Fn(u64) -> String, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut batches: VecDeque<Batch> = VecDeque::new();
    let mut opened_batches: u64 = 0;
    let mut next_open = SystemTime::now();
    while !stop.load(Ordering::SeqCst) || !batches.is_empty() {
        let now = SystemTime::now();
        if !stop.load(Ordering::SeqCst) && now >= next_open {
            let exp = testbed::now() + 3 + opened_batches % 4;
            let bearer = format!("Bearer {}", sign(exp));
            let head = crowd::upgrade_head("/ws", &[("authorization", &bearer)]);
            batches.push_back(Batch {
                crowd: Crowd::open(addr, vec![head; BATCH], BATCH),
                exp,
                closed_by_clients: opened_batches % 2 == 0,
            });
            opened_batches += 1;
            next_open = now + Duration::from_secs(1);
        }
        batches.retain(|batch| !judge(batch, now, &mut tally));
        thread::sleep(Duration::from_millis(50));
    }
    tally
}

/// Judges `batch` once its time has come, adding it to `tally`; returns whether it is done
/// (its sockets then close as it is dropped).
fn judge(batch: &Batch, now: SystemTime, tally: &mut Tally) -> bool {
    let exp = UNIX_EPOCH + Duration::from_secs(batch.exp);
    let crowd = &batch.crowd;
    if batch.closed_by_clients {
        if now + Duration::from_millis(1500) < exp {
            return false;
        }
        tally.opened += crowd.opened();
        tally.refused.extend(crowd.refused());
        tally.closed_by_clients += crowd.still_open();
        tally.closed_early += crowd.closed_at().len();
        return true;
    }
    if now < exp + MAX_LATE + Duration::from_secs(1) {
        return false;
    }
    let closed = crowd.closed_at();
    tally.opened += crowd.opened();
    tally.refused.extend(crowd.refused());
    tally.left_to_expire += crowd.opened();
    tally.closed_early += closed.iter().filter(|at| **at < exp).count();
    tally.closed_at_expiry += closed.iter().filter(|at| **at >= exp).count();
    for at in closed {
        if let Ok(late) = at.duration_since(exp) {
            tally.latest = tally.latest.max(late.as_secs_f64());
        }
    }
    true
}
