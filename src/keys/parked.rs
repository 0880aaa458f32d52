//! Requests parked until a key fetch finishes, and the rule for when each is ready.
//!
//! A request that finds no usable key may wait for a fetch instead of being refused at once:
//! before the first key set ([`Trigger::Scheduled`]), or when its token names a `kid` the
//! set lacks ([`Trigger::UnknownKey`]). It is parked with the number of fetch attempts
//! finished so far and a deadline, and is ready to be decided again when:
//! - a fetch attempt has finished since it was parked (in any VM: the count is shared);
//! - its deadline has passed;
//! - it waited for a first key set and one is there now;
//! - it waited for an unknown `kid` and no refetch will run (rate-limited): see
//!   [`Parked::release_unknown_keys`].
//!
//! Plain data: the glue parks, forgets ended requests and resumes what [`Parked::take_ready`]
//! hands back, with the time and fetch count it reads from the host.

use crate::keys::jwks_cache::Trigger;

/// What a parked request waits for: `trigger`'s fetch, ready once more than `completed`
/// attempts have finished (in any VM), or at `deadline_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub trigger: Trigger,
    pub completed: u64,
    pub deadline_ms: u64,
}

/// Parked requests of one VM, each a `T` (the request's head) under its context id.
#[derive(Debug)]
pub struct Parked<T> {
    entries: Vec<Entry<T>>,
}

#[derive(Debug)]
struct Entry<T> {
    id: u32,
    request: T,
    trigger: Trigger,
    /// Fetch attempts finished when it was parked.
    completed: u64,
    deadline_ms: u64,
    /// No fetch will come for it: decide it at the next look.
    released: bool,
}

impl<T> Default for Parked<T> {
    fn default() -> Self {
        Parked {
            entries: Vec::new(),
        }
    }
}

impl<T> Parked<T> {
    /// Parks `request` (context `id`) until its `wait` ends.
    pub fn park(&mut self, id: u32, request: T, wait: Wait) {
        self.entries.push(Entry {
            id,
            request,
            trigger: wait.trigger,
            completed: wait.completed,
            deadline_ms: wait.deadline_ms,
            released: false,
        });
    }

    /// Forgets request `id` (it ended while parked).
    pub fn forget(&mut self, id: u32) {
        self.entries.retain(|entry| entry.id != id);
    }

    /// Whether a parked request waits for a refetch of an unknown `kid`.
    pub fn wants_refetch(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.trigger == Trigger::UnknownKey && !entry.released)
    }

    /// No refetch will run for the requests waiting on an unknown `kid` (rate-limited):
    /// they are ready at the next [`take_ready`](Self::take_ready).
    pub fn release_unknown_keys(&mut self) {
        for entry in &mut self.entries {
            if entry.trigger == Trigger::UnknownKey {
                entry.released = true;
            }
        }
    }

    /// Takes out, in the order they were parked, up to `limit` of the requests that are ready
    /// at `now_ms` when `completed` fetch attempts have finished and a key set is there or not
    /// (`have_keys`); the others stay parked. Also says whether ready ones were left.
    pub fn take_ready_at_most(
        &mut self,
        completed: u64,
        have_keys: bool,
        now_ms: u64,
        limit: usize,
    ) -> (Vec<(u32, T)>, bool) {
        let mut ready = Vec::new();
        let mut left = false;
        let mut waiting = Vec::new();
        for entry in self.entries.drain(..) {
            let is_ready = entry.released
                || completed > entry.completed
                || now_ms >= entry.deadline_ms
                || (entry.trigger == Trigger::Scheduled && have_keys);
            if is_ready && ready.len() < limit {
                ready.push((entry.id, entry.request));
            } else {
                left |= is_ready;
                waiting.push(entry);
            }
        }
        self.entries = waiting;
        (ready, left)
    }

    /// Every ready request ([`Parked::take_ready_at_most`] without a limit).
    #[cfg(test)]
    pub fn take_ready(&mut self, completed: u64, have_keys: bool, now_ms: u64) -> Vec<(u32, T)> {
        self.take_ready_at_most(completed, have_keys, now_ms, usize::MAX)
            .0
    }

    /// How many requests are parked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(trigger: Trigger, completed: u64, deadline_ms: u64) -> Wait {
        Wait {
            trigger,
            completed,
            deadline_ms,
        }
    }

    fn ids(ready: Vec<(u32, &str)>) -> Vec<u32> {
        ready.into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn a_finished_attempt_readies_those_parked_before_it() {
        let mut parked = Parked::default();
        parked.park(1, "a", wait(Trigger::Scheduled, 0, 5_000));
        parked.park(2, "b", wait(Trigger::UnknownKey, 0, 5_000));
        parked.park(3, "c", wait(Trigger::UnknownKey, 1, 5_000));
        assert!(parked.take_ready(0, false, 100).is_empty());
        assert_eq!(ids(parked.take_ready(1, false, 200)), [1, 2]);
        assert_eq!(
            parked.len(),
            1,
            "parked after the first attempt: waits for the next"
        );
        assert_eq!(ids(parked.take_ready(2, false, 300)), [3]);
        assert!(parked.is_empty());
    }

    #[test]
    fn deadlines_ready_what_no_fetch_answered() {
        let mut parked = Parked::default();
        parked.park(1, "a", wait(Trigger::UnknownKey, 4, 1_000));
        parked.park(2, "b", wait(Trigger::UnknownKey, 4, 2_000));
        assert!(parked.take_ready(4, true, 999).is_empty());
        assert_eq!(ids(parked.take_ready(4, true, 1_000)), [1]);
        assert_eq!(ids(parked.take_ready(4, true, 5_000)), [2]);
    }

    /// A first key set readies those that had none; an unknown `kid` needs a fetch that
    /// finished, since the set that was there lacked it.
    #[test]
    fn keys_arriving_ready_only_those_that_had_none() {
        let mut parked = Parked::default();
        parked.park(1, "first", wait(Trigger::Scheduled, 0, 9_000));
        parked.park(2, "kid", wait(Trigger::UnknownKey, 0, 9_000));
        assert_eq!(ids(parked.take_ready(0, true, 10)), [1]);
        assert_eq!(parked.len(), 1);
    }

    #[test]
    fn a_refused_refetch_releases_the_unknown_kid_waiters_only() {
        let mut parked = Parked::default();
        parked.park(1, "kid", wait(Trigger::UnknownKey, 0, 9_000));
        parked.park(2, "first", wait(Trigger::Scheduled, 0, 9_000));
        assert!(parked.wants_refetch());
        parked.release_unknown_keys();
        assert!(
            !parked.wants_refetch(),
            "released: no refetch is asked for them"
        );
        assert_eq!(ids(parked.take_ready(0, false, 10)), [1]);
        assert_eq!(ids(parked.take_ready(0, false, 9_000)), [2]);
    }

    /// A flood of unknown kids parks many requests; one finished attempt readies all of
    /// them, in order, and requests that ended meanwhile are not resumed.
    #[test]
    fn a_flood_is_decided_by_one_attempt_without_the_ended_ones() {
        let mut parked = Parked::default();
        for id in 0..1_000 {
            parked.park(id, "kid", wait(Trigger::UnknownKey, 7, 60_000));
        }
        for id in (0..1_000).step_by(2) {
            parked.forget(id);
        }
        assert!(parked.take_ready(7, true, 100).is_empty());
        let ready = ids(parked.take_ready(8, true, 200));
        assert_eq!(ready, (1..1_000).step_by(2).collect::<Vec<_>>());
    }

    #[test]
    fn a_limit_leaves_the_rest_parked_and_ready() {
        let mut parked = Parked::default();
        for id in 1..=5 {
            parked.park(id, "x", wait(Trigger::Scheduled, 0, 5_000));
        }
        let (first, left) = parked.take_ready_at_most(1, false, 100, 2);
        assert_eq!((ids(first), left), (vec![1, 2], true));
        let (rest, left) = parked.take_ready_at_most(1, false, 100, 10);
        assert_eq!((ids(rest), left), (vec![3, 4, 5], false));
        assert!(parked.is_empty());
    }
}
