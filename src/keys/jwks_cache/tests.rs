//! The shared key cache against an in-memory store: leases, publication, backoff, races.

use super::*;
use crate::shared::memory::Memory;
use std::cell::RefCell;
use testbed::keys::{jwks, P256, RSA_2048};

const TIMING: Timing = Timing {
    refresh_interval_ms: 600_000,
    min_refresh_interval_ms: 30_000,
    lease_ms: 11_000,
    max_stale_ms: 0,
};

fn vm(memory: &Memory, owner: u64) -> JwksCache<&Memory> {
    let cache = JwksCache::new(memory, "wsgate/test", owner, TIMING, KeyLimits::default());
    cache.init();
    cache
}

fn document() -> Vec<u8> {
    jwks(&[(&RSA_2048, "a"), (&P256, "b")])
        .to_string()
        .into_bytes()
}

fn ticket(begin: Begin) -> Ticket {
    match begin {
        Begin::Fetch(ticket) => ticket,
        other => panic!("expected to fetch, got {other:?}"),
    }
}

#[test]
fn one_vm_fetches_and_every_vm_sees_the_keys() {
    let memory = Memory::default();
    let (mut one, mut two) = (vm(&memory, 1), vm(&memory, 2));
    assert!(one.keys().is_none());
    let t = ticket(one.begin(1_000, Trigger::Scheduled));
    assert_eq!(two.begin(1_000, Trigger::Scheduled), Begin::InProgress);
    let (_, state) = one.succeed(&t, &document(), 2, 1_500, 0.0).unwrap();
    assert_eq!(
        (state.key_count, state.completed, state.next_refresh_ms),
        (2, 1, 601_500)
    );
    assert_eq!(two.keys().unwrap().len(), 2);
    assert_eq!(one.keys().unwrap().len(), 2);
    // Not due again until the refresh interval has passed, for anyone.
    assert_eq!(two.begin(2_000, Trigger::Scheduled), Begin::Idle);
    assert!(matches!(
        two.begin(601_500, Trigger::Scheduled),
        Begin::Fetch(_)
    ));
}

#[test]
fn each_version_is_parsed_once_per_vm() {
    let memory = Memory::default();
    let mut one = vm(&memory, 1);
    let t = ticket(one.begin(0, Trigger::Scheduled));
    one.succeed(&t, &document(), 2, 10, 0.0).unwrap();
    let first = one.keys().unwrap();
    assert!(
        Rc::ptr_eq(&first, &one.keys().unwrap()),
        "same version, same parse"
    );
    let t = ticket(one.begin(700_000, Trigger::Scheduled));
    one.succeed(
        &t,
        &jwks(&[(&P256, "c")]).to_string().into_bytes(),
        1,
        700_000,
        0.0,
    )
    .unwrap();
    let second = one.keys().unwrap();
    assert!(!Rc::ptr_eq(&first, &second));
    assert_eq!(second.len(), 1);
    // The same document again: same version, nothing to parse.
    let t = ticket(one.begin(1_400_000, Trigger::Scheduled));
    let (before, after) = one
        .succeed(
            &t,
            &jwks(&[(&P256, "c")]).to_string().into_bytes(),
            1,
            1_400_000,
            0.0,
        )
        .unwrap();
    assert_eq!(before.version, after.version);
    assert!(Rc::ptr_eq(&second, &one.keys().unwrap()));
}

#[test]
fn a_lapsed_lease_can_be_taken_over() {
    let memory = Memory::default();
    let (one, two) = (vm(&memory, 1), vm(&memory, 2));
    let _abandoned = ticket(one.begin(0, Trigger::Scheduled));
    assert!(matches!(
        two.begin(10_999, Trigger::Scheduled),
        Begin::InProgress
    ));
    assert!(matches!(
        two.begin(11_000, Trigger::Scheduled),
        Begin::Fetch(_)
    ));
}

fn other_document() -> Vec<u8> {
    jwks(&[(&P256, "newer")]).to_string().into_bytes()
}

#[test]
fn a_fetch_that_outlived_its_lease_publishes_nothing() {
    let memory = Memory::default();
    let (mut one, mut two) = (vm(&memory, 1), vm(&memory, 2));
    let slow = ticket(one.begin(0, Trigger::Scheduled));
    // The lease lapses; VM 2 takes over and publishes a newer set.
    let fast = ticket(two.begin(11_000, Trigger::Scheduled));
    let (_, state) = two
        .succeed(&fast, &other_document(), 1, 11_100, 0.0)
        .unwrap();
    assert_eq!(state.version, 1);
    // VM 1's answer arrives late: dropped, and the newer set stays.
    assert_eq!(
        one.succeed(&slow, &document(), 2, 11_200, 0.0),
        Err(PublishError::LeaseLapsed)
    );
    assert_eq!(one.state().version, 1);
    assert_eq!(one.current(0).unwrap().version, 1);
    assert_eq!(one.keys().unwrap().len(), 1, "VM 2's document");
    // Even when VM 1's own clock says its lease still holds, the lease is VM 2's now.
    let slow = ticket(one.begin(700_000, Trigger::Scheduled));
    let _fast = ticket(two.begin(711_000, Trigger::Scheduled));
    assert_eq!(
        one.succeed(&slow, &document(), 2, 710_999, 0.0),
        Err(PublishError::LeaseLapsed)
    );
    // VM 1 gives the attempt up: requests waiting on it are woken, VM 2's lease stays.
    let completed = one.state().completed;
    assert_eq!(one.abandon(&slow).completed, completed + 1);
    assert!(matches!(
        one.begin(711_001, Trigger::Scheduled),
        Begin::InProgress
    ));
}

#[test]
fn a_slow_fetch_nobody_took_over_still_publishes() {
    let memory = Memory::default();
    let mut one = vm(&memory, 1);
    let slow = ticket(one.begin(0, Trigger::Scheduled));
    // Past the lease's time, but no other VM has taken it: the document is the newest.
    let (_, state) = one.succeed(&slow, &document(), 2, 20_000, 0.0).unwrap();
    assert_eq!((state.version, state.key_count), (1, 2));
    assert!(
        matches!(one.begin(20_001, Trigger::UnknownKey), Begin::Fetch(_)),
        "released"
    );
}

#[test]
fn a_version_that_does_not_parse_here_is_not_parsed_again() {
    let memory = Memory::default();
    let mut one = vm(&memory, 1);
    let t = ticket(one.begin(0, Trigger::Scheduled));
    // Published by a VM with laxer limits: an 8192-bit key this VM skips.
    let big = serde_json::json!({"keys": [testbed::keys::rsa_jwk_of_bits(8192, "big")]});
    one.succeed(&t, big.to_string().as_bytes(), 1, 0, 0.0)
        .unwrap();
    assert!(one.current(0).is_none());
    assert!(
        matches!(one.parsed, Some((1, None))),
        "remembered as unusable"
    );
    assert!(one.current(0).is_none());
}

/// Two VMs' threads: VM 2 takes the lapsed lease and publishes between VM 1's read of
/// the key set and VM 1's write. VM 1's compare-and-swap fails, it finds the lease gone,
/// and gives up: one document per version, and the newer one stays.
#[test]
fn racing_publishers_never_share_a_version() {
    // The hook outlives the test body's borrows, so the store and VM 2 are leaked.
    let memory: &'static Memory = Box::leak(Box::default());
    let two: &'static RefCell<JwksCache<&'static Memory>> =
        Box::leak(Box::new(RefCell::new(vm(memory, 2))));
    let mut one = vm(memory, 1);
    let slow = ticket(one.begin(0, Trigger::Scheduled));
    *memory.before_set.borrow_mut() = Some((
        "wsgate/test/jwks".to_owned(),
        Box::new(move || {
            let mut two = two.borrow_mut();
            let fast = ticket(two.begin(11_000, Trigger::Scheduled));
            two.succeed(&fast, &other_document(), 1, 11_050, 0.0)
                .unwrap();
        }),
    ));
    // VM 1's clock still says its lease holds.
    assert_eq!(
        one.succeed(&slow, &document(), 2, 10_999, 0.0),
        Err(PublishError::LeaseLapsed)
    );
    assert!(memory.before_set.borrow().is_none(), "the race ran");
    let state = one.state();
    assert_eq!((state.version, state.key_count), (1, 1));
    let VersionedKeys { version, keys } = one.current(0).unwrap();
    assert_eq!(
        (version, keys.len()),
        (1, 1),
        "version 1 is VM 2's document"
    );
    let es256 = crate::signature::JwsAlgorithm::Es256;
    assert_eq!(keys.candidates(es256, Some("newer")).count(), 1);
}

#[test]
fn the_version_entry_only_grows() {
    let memory = Memory::default();
    let mut one = vm(&memory, 1);
    let t = ticket(one.begin(0, Trigger::Scheduled));
    one.succeed(&t, &document(), 2, 0, 0.0).unwrap();
    let t = ticket(one.begin(600_000, Trigger::Scheduled));
    one.succeed(&t, &other_document(), 1, 600_000, 0.0).unwrap();
    one.raise_version(1);
    assert_eq!(
        memory.entries.borrow()["wsgate/test/version"].0,
        2u64.to_le_bytes()
    );
    assert_eq!(one.current(0).unwrap().version, 2);
}

#[test]
fn scheduled_refreshes_spread_over_the_last_tenth_of_the_interval() {
    let memory = Memory::default();
    let mut one = vm(&memory, 1);
    let mut due = Vec::new();
    for (step, jitter) in [0.0, 0.25, 0.5, 0.75, 0.999].into_iter().enumerate() {
        let now = step as u64 * 1_000_000;
        let t = ticket(one.begin(now, Trigger::Scheduled));
        let (_, state) = one.succeed(&t, &document(), 2, now, jitter).unwrap();
        due.push(state.next_refresh_ms - now);
    }
    assert_eq!(due, [600_000, 585_000, 570_000, 555_000, 540_060]);
}

#[test]
fn failures_keep_the_keys_and_back_off() {
    let memory = Memory::default();
    let mut one = vm(&memory, 1);
    let t = ticket(one.begin(0, Trigger::Scheduled));
    one.succeed(&t, &document(), 2, 0, 0.0).unwrap();
    let t = ticket(one.begin(600_000, Trigger::Scheduled));
    let (before, after) = one.fail(&t, "HTTP status 500", 600_000, 0.0);
    assert_eq!(before.failures, 0);
    assert_eq!((after.failures, after.next_refresh_ms), (1, 600_500));
    assert_eq!(after.last_error.as_deref(), Some("HTTP status 500"));
    assert_eq!(one.keys().unwrap().len(), 2, "last good set stays");
    assert_eq!(one.begin(600_499, Trigger::Scheduled), Begin::Idle);
    let t = ticket(one.begin(600_500, Trigger::Scheduled));
    let (_, after) = one.fail(&t, "HTTP status 500", 600_500, 0.999);
    assert_eq!(after.failures, 2);
    assert!(
        after.next_refresh_ms > 600_500 + 1_900,
        "{}",
        after.next_refresh_ms
    );
    let t = ticket(one.begin(after.next_refresh_ms, Trigger::Scheduled));
    let (_, state) = one
        .succeed(&t, &document(), 2, after.next_refresh_ms, 0.0)
        .unwrap();
    assert_eq!((state.failures, state.last_error), (0, None));
}

#[test]
fn unknown_kid_refetches_at_most_once_per_interval_across_vms() {
    let memory = Memory::default();
    let (mut one, two) = (vm(&memory, 1), vm(&memory, 2));
    let t = ticket(one.begin(0, Trigger::Scheduled));
    one.succeed(&t, &document(), 2, 0, 0.0).unwrap();
    let t = ticket(one.begin(5_000, Trigger::UnknownKey));
    // While it runs, others wait for it rather than fetching.
    assert_eq!(two.begin(5_001, Trigger::UnknownKey), Begin::InProgress);
    assert_eq!(two.worth_waiting(Trigger::UnknownKey, 5_001), Some(1));
    one.succeed(&t, &document(), 2, 5_100, 0.0).unwrap();
    let mut fetches = 0;
    for step in 0..200u64 {
        if let Begin::Fetch(t) = two.begin(5_200 + step * 100, Trigger::UnknownKey) {
            fetches += 1;
            two.fail(&t, "x", 5_200 + step * 100, 0.5);
        }
    }
    // 20 s of unknown kids after one forced fetch at 5 s: none until 35 s.
    assert_eq!(fetches, 0);
    assert!(matches!(
        two.begin(35_000, Trigger::UnknownKey),
        Begin::Fetch(_)
    ));
}

#[test]
fn who_waits_for_a_fetch() {
    let memory = Memory::default();
    let mut one = vm(&memory, 1);
    // Before anything: the first fetch is due, so a request without keys waits.
    assert_eq!(one.worth_waiting(Trigger::Scheduled, 0), Some(0));
    let t = ticket(one.begin(0, Trigger::Scheduled));
    assert_eq!(one.worth_waiting(Trigger::Scheduled, 1), Some(0), "running");
    one.fail(&t, "down", 100, 0.0);
    // Backing off: decide now.
    assert_eq!(one.worth_waiting(Trigger::Scheduled, 200), None);
    assert_eq!(
        one.worth_waiting(Trigger::Scheduled, 600),
        Some(1),
        "retry due"
    );
    let t = ticket(one.begin(600, Trigger::Scheduled));
    one.succeed(&t, &document(), 2, 700, 0.0).unwrap();
    assert_eq!(one.worth_waiting(Trigger::UnknownKey, 800), Some(2));
    let t = ticket(one.begin(800, Trigger::UnknownKey));
    one.succeed(&t, &document(), 2, 900, 0.0).unwrap();
    assert_eq!(
        one.worth_waiting(Trigger::UnknownKey, 1_000),
        None,
        "rate-limited"
    );
    assert_eq!(one.worth_waiting(Trigger::UnknownKey, 30_800), Some(3));
}

#[test]
fn backoff_doubles_to_a_cap_with_jitter() {
    assert_eq!(backoff_ms(1, 600_000, 0.0), 500);
    assert_eq!(backoff_ms(1, 600_000, 1.0), 1_000);
    assert_eq!(backoff_ms(3, 600_000, 1.0), 4_000);
    assert_eq!(backoff_ms(30, 600_000, 1.0), MAX_BACKOFF_MS);
    assert_eq!(
        backoff_ms(30, 5_000, 1.0),
        5_000,
        "never beyond the refresh interval"
    );
}

#[test]
fn corrupt_shared_entries_are_no_keys_not_a_panic() {
    let memory = Memory::default();
    let mut one = vm(&memory, 1);
    (&memory).set("wsgate/test/version", b"\x01", None);
    assert!(one.keys().is_none());
    (&memory).set("wsgate/test/version", &7u64.to_le_bytes(), None);
    (&memory).set("wsgate/test/jwks", b"short", None);
    assert!(one.keys().is_none());
    (&memory).set("wsgate/test/state", b"{not json", None);
    (&memory).set("wsgate/test/lease", b"\x00", None);
    assert!(matches!(one.begin(0, Trigger::Scheduled), Begin::Fetch(_)));
}

/// #25: keys are not trusted forever while refreshes fail. Past `max_stale_keys_seconds`
/// since the last successful fetch every VM stops serving them, the first failure past it
/// marks the drop once, and the next success trusts the set again.
#[test]
fn keys_are_dropped_when_refreshes_fail_past_the_stale_bound() {
    let timing = Timing {
        max_stale_ms: 3_600_000,
        ..TIMING
    };
    let memory = Memory::default();
    let vm = |owner| {
        let cache = JwksCache::new(&memory, "wsgate/stale", owner, timing, KeyLimits::default());
        cache.init();
        cache
    };
    let (mut one, mut two) = (vm(1), vm(2));
    let t = ticket(one.begin(1_000, Trigger::Scheduled));
    one.succeed(&t, &document(), 2, 1_000, 0.0).unwrap();
    // VM 2 never ticked: its first request reads when the set was fetched.
    assert!(two.current(3_600_999).is_some(), "within the bound");
    assert!(two.current(3_601_000).is_none(), "past it, without a tick");
    // Refreshes fail throughout; the set is kept within the bound and dropped past it.
    let t = ticket(one.begin(700_000, Trigger::Scheduled));
    let (_, after) = one.fail(&t, "issuer down", 700_000, 0.0);
    assert_eq!(after.stale_version, 0);
    assert!(one.current(3_600_999).is_some());
    let t = ticket(one.begin(3_700_000, Trigger::Scheduled));
    let (before, after) = one.fail(&t, "issuer down", 3_700_000, 0.0);
    assert_eq!(
        (before.stale_version, after.stale_version),
        (0, 1),
        "dropped once"
    );
    assert!(one.current(3_700_000).is_none());
    let t = ticket(one.begin(3_800_000, Trigger::Scheduled));
    let (before, after) = one.fail(&t, "issuer down", 3_800_000, 0.0);
    assert_eq!(
        (before.stale_version, after.stale_version),
        (1, 1),
        "not again"
    );
    // A success, even of the same document, trusts it again in every VM after its tick.
    let t = ticket(two.begin(3_900_000, Trigger::Scheduled));
    let (_, after) = two.succeed(&t, &document(), 2, 3_900_000, 0.0).unwrap();
    assert_eq!((after.version, after.stale_version), (1, 0));
    assert!(two.current(3_900_001).is_some());
    // VM 1 has not ticked since: a stale VM reads the state again before refusing.
    assert!(one.current(3_900_002).is_some());
    // State written by a module that did not record fetch times: the first tick starts the
    // clock, so the set is not trusted forever.
    let memory = Memory::default();
    let mut old = JwksCache::new(&memory, "wsgate/old", 1, timing, KeyLimits::default());
    old.init();
    let t = ticket(old.begin(0, Trigger::Scheduled));
    old.succeed(&t, &document(), 2, 0, 0.0).unwrap();
    let mut legacy = old.state();
    legacy.fetched_ms = 0;
    (&memory).set(
        "wsgate/old/state",
        &serde_json::to_vec(&legacy).unwrap(),
        None,
    );
    old.begin(10_000, Trigger::Scheduled);
    assert_eq!(old.state().fetched_ms, 10_000);
    assert!(old.current(3_609_999).is_some());
    assert!(old.current(3_610_000).is_none());
    // With no bound (0), the set is served however old it is.
    let memory = Memory::default();
    let mut forever = JwksCache::new(&memory, "wsgate/f", 1, TIMING, KeyLimits::default());
    forever.init();
    let t = ticket(forever.begin(0, Trigger::Scheduled));
    forever.succeed(&t, &document(), 2, 0, 0.0).unwrap();
    assert!(forever.current(u64::MAX - 1).is_some());
}
