use super::*;
use crate::shared::memory::Memory;

const T0: u64 = 1_800_000_000_000;

fn vm(store: &Memory, id: u32) -> SocketQuota<&Memory> {
    let quota = SocketQuota::new(store, "q", id);
    quota.start(T0);
    quota
}

#[test]
fn the_limit_holds_across_vms_and_a_slot_frees_when_its_socket_ends() {
    let store = Memory::default();
    let (a, b) = (vm(&store, 1), vm(&store, 2));
    let first = a.acquire("i", "alice", 2, T0).unwrap();
    let _second = b.acquire("i", "alice", 2, T0).unwrap();
    assert_eq!(a.acquire("i", "alice", 2, T0), Err(Refusal::AtLimit));
    assert_eq!(b.acquire("i", "alice", 2, T0), Err(Refusal::AtLimit));
    assert!(
        b.acquire("i", "bob", 2, T0).is_ok(),
        "another identity is unaffected"
    );
    assert!(
        a.acquire("j", "alice", 2, T0).is_ok(),
        "another issuer's alice is another"
    );
    assert_eq!(a.held("i", "alice", T0), 2);
    assert!(a.release(&first, T0));
    assert_eq!(b.held("i", "alice", T0), 1);
    assert!(b.acquire("i", "alice", 2, T0).is_ok());
    assert_eq!(a.acquire("i", "alice", 2, T0), Err(Refusal::AtLimit));
}

#[test]
fn a_dead_vms_slots_stop_counting_then_leave_with_its_stamp() {
    let store = Memory::default();
    let (a, b) = (vm(&store, 1), vm(&store, 2));
    a.acquire("i", "alice", 1, T0).unwrap();
    // VM 1 dies: it stamps no more. VM 2 keeps stamping.
    assert_eq!(
        b.acquire("i", "alice", 1, T0 + LIVE_MS),
        Err(Refusal::AtLimit)
    );
    let later = T0 + LIVE_MS + BEAT_MS;
    assert!(b.beat(later));
    let second = b.acquire("i", "alice", 1, later).unwrap();
    let key = b.bucket_key(bucket_of(&counted_identity("i", "alice")));
    let vms = |store: &Memory| -> Vec<u32> {
        let entries = store.entries.borrow();
        decode_bucket(&entries[&key].0)
            .iter()
            .map(|count| count.vm)
            .collect()
    };
    assert_eq!(vms(&store), [1, 2], "VM 1's count pauses, still listed");
    // Past three times LIVE_MS the table forgets VM 1, and the next write drops its count.
    let much_later = T0 + 3 * LIVE_MS + 1;
    assert!(b.beat(much_later));
    let table = decode_table(&store.entries.borrow()["q/live"].0);
    assert_eq!(table, vec![(2, much_later)]);
    assert!(b.release(&second, much_later));
    assert_eq!(vms(&store), Vec::<u32>::new());
}

#[test]
fn a_stalled_vm_gets_its_counts_back_when_it_stamps_again() {
    let store = Memory::default();
    let (a, b) = (vm(&store, 1), vm(&store, 2));
    a.acquire("i", "alice", 1, T0).unwrap();
    let stalled = T0 + LIVE_MS + BEAT_MS;
    assert!(b.beat(stalled));
    let extra = b.acquire("i", "alice", 1, stalled).unwrap();
    assert!(b.release(&extra, stalled));
    // VM 1 comes back within three LIVE_MS: its socket counts again.
    assert!(a.beat(stalled));
    assert_eq!(b.acquire("i", "alice", 1, stalled), Err(Refusal::AtLimit));
}

/// Envoy hands back an empty value as none with its CAS token: a bucket emptied by its last
/// release must not look absent to a VM that starts later, which would rewrite it without a
/// compare-and-swap and could wipe a count written in between.
#[test]
fn an_emptied_bucket_is_not_created_again() {
    let store = Memory::default();
    let a = vm(&store, 1);
    let slot = a.acquire("i", "alice", 1, T0).unwrap();
    assert!(a.release(&slot, T0));
    let key = a.bucket_key(bucket_of(&counted_identity("i", "alice")));
    let cas = store.entries.borrow()[&key].1;
    assert_eq!((&store).get(&key), (None, Some(cas)), "empty, and present");
    vm(&store, 2);
    assert_eq!(store.entries.borrow()[&key].1, cas, "not written again");
    // A bucket that is missing refuses rather than be written without a compare-and-swap.
    store.entries.borrow_mut().remove(&key);
    assert_eq!(a.acquire("i", "alice", 1, T0), Err(Refusal::Unavailable));
}

#[test]
fn a_write_lost_to_another_vm_is_read_again() {
    let store: &'static Memory = Box::leak(Box::default());
    let (a, b) = (vm(store, 1), vm(store, 2));
    let key = a.bucket_key(bucket_of(&counted_identity("i", "alice")));
    // VM 2 takes alice's last slot between VM 1's read and its write.
    let b = std::rc::Rc::new(b);
    let other = b.clone();
    *store.before_set.borrow_mut() = Some((
        key,
        Box::new(move || {
            other.acquire("i", "alice", 1, T0).unwrap();
        }),
    ));
    assert_eq!(a.acquire("i", "alice", 1, T0), Err(Refusal::AtLimit));
    assert_eq!(a.held("i", "alice", T0), 1);
}

#[test]
fn a_full_bucket_refuses_new_identities_and_counts_the_rest() {
    let store = Memory::default();
    let a = vm(&store, 1);
    let bucket = bucket_of(&counted_identity("i", "target"));
    let colliding: Vec<String> = (0..)
        .map(|n| format!("user-{n}"))
        .filter(|name| bucket_of(&counted_identity("i", name)) == bucket)
        .take(MAX_ENTRIES)
        .collect();
    for name in &colliding {
        a.acquire("i", name, 5, T0).unwrap();
    }
    assert_eq!(a.acquire("i", "target", 5, T0), Err(Refusal::Unavailable));
    assert!(
        a.acquire("i", &colliding[0], 5, T0).is_ok(),
        "a counted identity still counts"
    );
    assert_eq!(
        a.acquire("i", &"x".repeat(MAX_IDENTITY_BYTES + 1), 5, T0),
        Err(Refusal::Unavailable)
    );
}

#[test]
fn a_store_that_keeps_refusing_fails_closed() {
    struct Refusing;
    impl SharedStore for Refusing {
        fn get(&self, _: &str) -> (Option<Vec<u8>>, Option<u32>) {
            (None, None)
        }
        fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> bool {
            false
        }
    }
    let quota = SocketQuota::new(Refusing, "q", 1);
    quota.start(T0);
    assert!(!quota.beat(T0));
    assert_eq!(
        quota.acquire("i", "alice", 1, T0),
        Err(Refusal::Unavailable)
    );
}

#[test]
fn garbage_in_the_store_never_panics() {
    for bytes in [
        &b"\xff"[..],
        b"\x05\x00ab",
        b"\x01\x00a\x01\x00\x00\x00\x01",
        &[0; 11],
    ] {
        decode_bucket(bytes);
        decode_table(bytes);
    }
    let count = Count {
        identity: b"id".to_vec(),
        vm: 7,
        open: 3,
    };
    assert_eq!(
        decode_bucket(&encode_bucket(std::slice::from_ref(&count))),
        vec![count]
    );
    assert_eq!(decode_table(&encode_table(&[(1, 2)])), vec![(1, 2)]);
}
