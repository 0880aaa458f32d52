//! The accepted WebSockets of one VM that `close_on_expiry` must close, and when: their
//! bookkeeping costs the same whether ten or ten thousand are open.
//!
//! Sockets are held by context id (a map: opening and ending one is O(1)), and their
//! deadlines in a min-heap, so that each tick pops only what has expired (O(k log n) for k
//! expiring) instead of scanning every open socket. An ended socket leaves its heap entry
//! behind; stale entries are skipped when popped, and the heap is rebuilt from the map when
//! they outnumber the live ones, so its size stays within twice the open sockets (plus a
//! small constant).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Rebuild the heap once it holds this many more entries than twice the open sockets.
const STALE_SLACK: usize = 64;

/// Open sockets by context id, each with its deadline (ms since the epoch).
#[derive(Debug, Default)]
pub struct OpenSockets {
    deadlines: HashMap<u32, u64>,
    /// `(deadline, id)`, earliest first; may hold entries of ended sockets.
    queue: BinaryHeap<Reverse<(u64, u32)>>,
}

impl OpenSockets {
    /// Tracks socket `id` until `deadline_ms` (a socket opened again replaces its deadline).
    pub fn open(&mut self, id: u32, deadline_ms: u64) {
        self.deadlines.insert(id, deadline_ms);
        self.queue.push(Reverse((deadline_ms, id)));
        self.compact();
    }

    /// Forgets socket `id` (it ended); nothing when it is not tracked.
    pub fn close(&mut self, id: u32) {
        if self.deadlines.remove(&id).is_some() {
            self.compact();
        }
    }

    /// Takes up to `limit` sockets whose deadline is at or before `now_ms`, earliest first,
    /// with their deadlines.
    pub fn expired(&mut self, now_ms: u64, limit: usize) -> Vec<(u32, u64)> {
        let mut expired = Vec::new();
        while let Some(&Reverse((deadline, id))) = self.queue.peek() {
            if deadline > now_ms || expired.len() >= limit {
                break;
            }
            self.queue.pop();
            // Only the entry that matches the socket's current deadline counts; an ended
            // socket's or a replaced deadline's is stale.
            if self.deadlines.get(&id) == Some(&deadline) {
                self.deadlines.remove(&id);
                expired.push((id, deadline));
            }
        }
        expired
    }

    /// Whether a socket may be due at `now_ms` (an ended socket's entry can make this say yes
    /// once more than needed, never no when one is due).
    pub fn due(&self, now_ms: u64) -> bool {
        self.queue
            .peek()
            .is_some_and(|&Reverse((deadline, _))| deadline <= now_ms)
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }

    /// Heap entries held, live and stale (for tests of the bound).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Rebuilds the heap from the live sockets when stale entries outnumber them.
    fn compact(&mut self) {
        if self.queue.len() > 2 * self.deadlines.len() + STALE_SLACK {
            self.queue = self
                .deadlines
                .iter()
                .map(|(&id, &deadline)| Reverse((deadline, id)))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_sockets_come_out_earliest_first_and_ended_ones_never() {
        let mut sockets = OpenSockets::default();
        sockets.open(1, 300);
        sockets.open(2, 100);
        sockets.open(3, 200);
        sockets.open(4, 900);
        sockets.close(3);
        assert_eq!(sockets.expired(50, 10), []);
        assert!(!sockets.due(50));
        assert_eq!(sockets.expired(300, 10), [(2, 100), (1, 300)]);
        assert_eq!(sockets.len(), 1);
        assert_eq!(sockets.expired(1000, 10), [(4, 900)]);
        assert!(sockets.is_empty());
        // Opened again with a later deadline: the earlier entry is stale.
        sockets.open(5, 100);
        sockets.open(5, 500);
        assert_eq!(sockets.expired(200, 10), []);
        assert_eq!(sockets.expired(500, 10), [(5, 500)]);
    }

    /// Thousands opening and ending: the heap stays within its bound, and ten thousand
    /// expiring together come out `limit` at a time, earliest first, until none is due.
    #[test]
    fn churn_keeps_the_queue_bounded_and_a_mass_expiry_comes_out_in_batches() {
        let mut sockets = OpenSockets::default();
        for id in 0..100_000u32 {
            sockets.open(id, 1_000 + u64::from(id));
            if id >= 10 {
                sockets.close(id - 10);
            }
            assert!(sockets.queued() <= 2 * sockets.len() + STALE_SLACK + 1);
        }
        assert_eq!(sockets.len(), 10);
        let mut together = OpenSockets::default();
        for id in 0..10_000u32 {
            together.open(id, 5_000);
        }
        let mut taken = 0;
        while together.due(5_000) {
            let batch = together.expired(5_000, 256);
            assert!(batch.len() <= 256);
            taken += batch.len();
        }
        assert_eq!(taken, 10_000);
        assert!(together.is_empty());
    }
}
