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
    let first = a.acquire(0, "alice", 2, T0).unwrap();
    let _second = b.acquire(0, "alice", 2, T0).unwrap();
    assert_eq!(a.acquire(0, "alice", 2, T0), Err(Refusal::AtLimit));
    assert_eq!(b.acquire(0, "alice", 2, T0), Err(Refusal::AtLimit));
    assert!(
        b.acquire(0, "bob", 2, T0).is_ok(),
        "another identity is unaffected"
    );
    assert!(
        a.acquire(1, "alice", 2, T0).is_ok(),
        "another provider's alice is another"
    );
    assert_eq!(a.held(0, "alice", T0), 2);
    assert!(a.release(&first, T0));
    assert_eq!(b.held(0, "alice", T0), 1);
    assert!(b.acquire(0, "alice", 2, T0).is_ok());
    assert_eq!(a.acquire(0, "alice", 2, T0), Err(Refusal::AtLimit));
}

#[test]
fn a_dead_vms_slots_are_reclaimed_once_its_stamp_is_old() {
    let store = Memory::default();
    let (a, b) = (vm(&store, 1), vm(&store, 2));
    a.acquire(0, "alice", 1, T0).unwrap();
    // VM 1 dies: it stamps no more. VM 2 keeps stamping.
    assert_eq!(
        b.acquire(0, "alice", 1, T0 + LIVE_MS),
        Err(Refusal::AtLimit)
    );
    let later = T0 + LIVE_MS + BEAT_MS;
    assert!(b.beat(later));
    assert!(
        b.acquire(0, "alice", 1, later).is_ok(),
        "the dead VM's count no longer counts"
    );
    // Its count left the bucket when VM 2 wrote it.
    let key = b.bucket_key(bucket_of(0, "alice"));
    let counts = decode_bucket(&store.entries.borrow()[&key].0);
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].vm, 2);
    // Past three times LIVE_MS the table forgets it.
    assert!(b.beat(T0 + 3 * LIVE_MS + 1));
    let table = decode_table(&store.entries.borrow()["q/live"].0);
    assert_eq!(table, vec![(2, T0 + 3 * LIVE_MS + 1)]);
}

#[test]
fn a_write_lost_to_another_vm_is_read_again() {
    let store: &'static Memory = Box::leak(Box::default());
    let (a, b) = (vm(store, 1), vm(store, 2));
    let key = a.bucket_key(bucket_of(0, "alice"));
    // VM 2 takes alice's last slot between VM 1's read and its write.
    let b = std::rc::Rc::new(b);
    let other = b.clone();
    *store.before_set.borrow_mut() = Some((
        key,
        Box::new(move || {
            other.acquire(0, "alice", 1, T0).unwrap();
        }),
    ));
    assert_eq!(a.acquire(0, "alice", 1, T0), Err(Refusal::AtLimit));
    assert_eq!(a.held(0, "alice", T0), 1);
}

#[test]
fn a_full_bucket_refuses_new_identities_and_counts_the_rest() {
    let store = Memory::default();
    let a = vm(&store, 1);
    let bucket = bucket_of(0, "target");
    let colliding: Vec<String> = (0..)
        .map(|n| format!("user-{n}"))
        .filter(|name| bucket_of(0, name) == bucket)
        .take(MAX_ENTRIES)
        .collect();
    for name in &colliding {
        a.acquire(0, name, 5, T0).unwrap();
    }
    assert_eq!(a.acquire(0, "target", 5, T0), Err(Refusal::Unavailable));
    assert!(
        a.acquire(0, &colliding[0], 5, T0).is_ok(),
        "a counted identity still counts"
    );
    assert_eq!(
        a.acquire(0, &"x".repeat(MAX_IDENTITY_BYTES + 1), 5, T0),
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
    assert_eq!(quota.acquire(0, "alice", 1, T0), Err(Refusal::Unavailable));
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
