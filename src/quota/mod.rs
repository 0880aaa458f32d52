//! `max_sockets_per_identity`: open WebSockets counted per identity across all of Envoy's
//! worker VMs, through shared data (behind [`SharedStore`], so this module is plain Rust).
//!
//! Shared data has no listing and no deletion, and a VM can die holding slots. So:
//!
//! - Identities are spread over [`BUCKETS`] entries `{scope}/bucket/{n}` (by a hash of the
//!   provider's issuer and the identity: one `sub` of two issuers is two identities). A bucket holds, for each identity with open sockets, one
//!   count per VM that holds them; each VM only ever changes its own counts, every write is
//!   a compare-and-swap of the whole bucket, and a count that reaches 0 leaves the bucket.
//!   The identity itself is stored, not its hash: two identities never share a count. A
//!   bucket holds at most [`MAX_ENTRIES`] counts: past that, a new identity hashed there is
//!   refused ([`Refusal::Unavailable`], 503) until one ends, rather than let memory grow.
//! - Each VM stamps itself in `{scope}/live` every [`BEAT_MS`] (from its tick). The counts of
//!   a VM whose stamp is older than [`LIVE_MS`] no longer count; a stamp older than three
//!   times that leaves the table (which holds at most [`MAX_VMS`], the oldest going first),
//!   and whoever writes a bucket next drops the counts of VMs the table no longer lists. So
//!   a VM that stalls, or a clock that jumps, makes its counts pause rather than vanish.
//! - The table and every bucket are created when a VM starts (Envoy configures the main
//!   thread's VM before any worker's), because a first write cannot be a compare-and-swap; a
//!   bucket found missing later refuses ([`Refusal::Unavailable`]) rather than be written
//!   without one.
//!
//! Memory is bounded: [`BUCKETS`] × [`MAX_ENTRIES`] counts of at most
//! [`MAX_IDENTITY_BYTES`] each, and the table. A guarded upgrade with a limit costs three
//! shared-data calls (the table, the bucket, its write) and so does its end, whatever the
//! number of open sockets.

use std::cell::Cell;

use crate::deny::DenyReason;
use crate::shared::{self, SharedStore};

/// Buckets identities are spread over.
pub const BUCKETS: u32 = 1024;
/// Counts one bucket holds: one per (identity, VM) with open sockets.
pub const MAX_ENTRIES: usize = 64;
/// Longest identity counted; a longer one is refused (it cannot be counted).
pub const MAX_IDENTITY_BYTES: usize = 256;
/// How often a VM stamps itself as alive.
pub const BEAT_MS: u64 = 1_000;
/// How long a VM counts as alive after its last stamp.
pub const LIVE_MS: u64 = 10_000;
/// VMs the table lists at most.
pub const MAX_VMS: usize = 256;
/// Compare-and-swap attempts before a write gives up.
const CAS_TRIES: usize = 16;

/// A socket counted against an identity: what its end must give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    bucket: u32,
    identity: Vec<u8>,
}

/// Why a socket was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The identity holds `limit` open sockets already.
    AtLimit,
    /// The count could not be read or written: other VMs kept winning, the store refused,
    /// or the bucket is full.
    Unavailable,
}

impl Refusal {
    /// The deny reason a refusal is answered with.
    pub fn reason(self) -> DenyReason {
        match self {
            Refusal::AtLimit => DenyReason::TooManySockets,
            Refusal::Unavailable => DenyReason::QuotaUnavailable,
        }
    }
}

/// One VM's view of the shared socket counts of one plugin.
pub struct SocketQuota<S: SharedStore> {
    store: S,
    scope: String,
    vm: u32,
    last_beat_ms: Cell<u64>,
}

/// One count: an identity, a VM, its open sockets there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Count {
    identity: Vec<u8>,
    vm: u32,
    open: u32,
}

impl<S: SharedStore> SocketQuota<S> {
    /// The counts under `scope`, as VM `vm` (a number no other VM of the process draws).
    pub fn new(store: S, scope: &str, vm: u32) -> Self {
        SocketQuota {
            store,
            scope: scope.to_owned(),
            vm,
            last_beat_ms: Cell::new(0),
        }
    }

    /// Creates the table and every bucket not yet there, and stamps this VM alive.
    pub fn start(&self, now_ms: u64) {
        shared::create_if_absent(&self.store, &self.live_key(), &[]);
        for bucket in 0..BUCKETS {
            shared::create_if_absent(&self.store, &self.bucket_key(bucket), &[]);
        }
        self.beat(now_ms);
    }

    /// Stamps this VM alive when [`BEAT_MS`] have passed since it last did; whether the
    /// table holds a fresh stamp of it.
    pub fn beat(&self, now_ms: u64) -> bool {
        if self.last_beat_ms.get() != 0 && now_ms < self.last_beat_ms.get().saturating_add(BEAT_MS)
        {
            return true;
        }
        let key = self.live_key();
        for _ in 0..CAS_TRIES {
            let (value, cas) = self.store.get(&key);
            if cas.is_none() {
                return false;
            }
            let mut table = decode_table(value.as_deref().unwrap_or_default());
            table.retain(|&(vm, stamp)| {
                vm != self.vm && stamp.saturating_add(3 * LIVE_MS) >= now_ms
            });
            table.push((self.vm, now_ms));
            while table.len() > MAX_VMS {
                let oldest =
                    (0..table.len()).min_by_key(|&at| table.get(at).map(|&(_, stamp)| stamp));
                table.swap_remove(oldest.unwrap_or_default());
            }
            if self.store.set(&key, &encode_table(&table), cas) {
                self.last_beat_ms.set(now_ms);
                return true;
            }
        }
        false
    }

    /// Counts one more socket of `identity` (of the provider whose issuer is `issuer`)
    /// unless it holds `limit` already, summed over the VMs whose counts count.
    pub fn acquire(
        &self,
        issuer: &str,
        identity: &str,
        limit: u32,
        now_ms: u64,
    ) -> Result<Slot, Refusal> {
        if identity.len() > MAX_IDENTITY_BYTES {
            return Err(Refusal::Unavailable);
        }
        let identity = counted_identity(issuer, identity);
        let slot = Slot {
            bucket: bucket_of(&identity),
            identity,
        };
        self.update(&slot, now_ms, |counts, counted| {
            if held(counts, &slot.identity, counted) >= limit {
                return Err(Refusal::AtLimit);
            }
            let full = counts.len() >= MAX_ENTRIES;
            match counts
                .iter_mut()
                .find(|count| count.identity == slot.identity && count.vm == self.vm)
            {
                Some(mine) => mine.open = mine.open.saturating_add(1),
                None if full => return Err(Refusal::Unavailable),
                None => counts.push(Count {
                    identity: slot.identity.clone(),
                    vm: self.vm,
                    open: 1,
                }),
            }
            Ok(())
        })?;
        Ok(slot)
    }

    /// Gives back a socket `acquire` counted; whether it was written (a `false` should be
    /// tried again later: until then the identity's count is one too high).
    pub fn release(&self, slot: &Slot, now_ms: u64) -> bool {
        self.update(slot, now_ms, |counts, _| {
            if let Some(mine) = counts
                .iter_mut()
                .find(|count| count.identity == slot.identity && count.vm == self.vm)
            {
                mine.open = mine.open.saturating_sub(1);
            }
            Ok(())
        })
        .is_ok()
    }

    /// Open sockets of `identity` (of the provider whose issuer is `issuer`) over the VMs
    /// whose counts count.
    #[cfg(test)]
    pub fn held(&self, issuer: &str, identity: &str, now_ms: u64) -> u32 {
        let live = self.live_table();
        let wanted = counted_identity(issuer, identity);
        let (value, _) = self.store.get(&self.bucket_key(bucket_of(&wanted)));
        let counts = decode_bucket(value.as_deref().unwrap_or_default());
        held(&counts, &wanted, &|vm| self.counts(&live, vm, now_ms))
    }

    /// Applies `change` to `slot`'s bucket, without the empty counts and those of VMs the
    /// table no longer lists, and writes it back with compare-and-swap, reading again when
    /// another VM wrote first. `change` sees whose counts count now.
    fn update(
        &self,
        slot: &Slot,
        now_ms: u64,
        mut change: impl FnMut(&mut Vec<Count>, &dyn Fn(u32) -> bool) -> Result<(), Refusal>,
    ) -> Result<(), Refusal> {
        let key = self.bucket_key(slot.bucket);
        let live = self.live_table();
        let counted = |vm: u32| self.counts(&live, vm, now_ms);
        for _ in 0..CAS_TRIES {
            let (value, cas) = self.store.get(&key);
            // A bucket missing (never created, or its creation refused): writing it without
            // a compare-and-swap could wipe another VM's first count.
            if cas.is_none() {
                return Err(Refusal::Unavailable);
            }
            let mut counts = decode_bucket(value.as_deref().unwrap_or_default());
            counts.retain(|count| count.open > 0 && self.listed(&live, count.vm));
            change(&mut counts, &counted)?;
            counts.retain(|count| count.open > 0);
            if self.store.set(&key, &encode_bucket(&counts), cas) {
                return Ok(());
            }
        }
        Err(Refusal::Unavailable)
    }

    fn live_table(&self) -> Vec<(u32, u64)> {
        decode_table(
            self.store
                .get(&self.live_key())
                .0
                .as_deref()
                .unwrap_or_default(),
        )
    }

    /// Whether `vm`'s counts count by `table` at `now_ms`: its stamp is younger than
    /// [`LIVE_MS`] (this VM's always count).
    fn counts(&self, table: &[(u32, u64)], vm: u32, now_ms: u64) -> bool {
        vm == self.vm
            || table
                .iter()
                .any(|&(listed, stamp)| listed == vm && stamp.saturating_add(LIVE_MS) >= now_ms)
    }

    /// Whether `table` still lists `vm` (this VM always is): only then are its counts kept.
    fn listed(&self, table: &[(u32, u64)], vm: u32) -> bool {
        vm == self.vm || table.iter().any(|&(listed, _)| listed == vm)
    }

    fn bucket_key(&self, bucket: u32) -> String {
        format!("{}/bucket/{bucket}", self.scope)
    }

    fn live_key(&self) -> String {
        format!("{}/live", self.scope)
    }
}

/// What a bucket stores for `identity` of the provider whose issuer is `issuer`: the
/// issuer's length and bytes, then the identity, so that two issuers' identities never share
/// a count.
fn counted_identity(issuer: &str, identity: &str) -> Vec<u8> {
    let length = u32::try_from(issuer.len()).unwrap_or(u32::MAX);
    let mut bytes = length.to_le_bytes().to_vec();
    bytes.extend_from_slice(issuer.as_bytes());
    bytes.extend_from_slice(identity.as_bytes());
    bytes
}

/// Open sockets of the counted `identity` in `counts`, of the VMs whose counts count.
fn held(counts: &[Count], identity: &[u8], counted: &dyn Fn(u32) -> bool) -> u32 {
    counts
        .iter()
        .filter(|count| count.identity == identity && counted(count.vm))
        .map(|count| count.open)
        .fold(0, u32::saturating_add)
}

/// The bucket of a counted identity: FNV-1a, the same in every VM.
fn bucket_of(identity: &[u8]) -> u32 {
    let hash = identity
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    u32::try_from(hash % u64::from(BUCKETS)).unwrap_or_default()
}

/// The table: `(vm, stamp)` pairs of 4 + 8 little-endian bytes.
fn encode_table(table: &[(u32, u64)]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(table.len() * 12);
    for &(vm, stamp) in table {
        bytes.extend_from_slice(&vm.to_le_bytes());
        bytes.extend_from_slice(&stamp.to_le_bytes());
    }
    bytes
}

/// The table from its bytes; a malformed tail is dropped (its VMs count as dead).
fn decode_table(bytes: &[u8]) -> Vec<(u32, u64)> {
    bytes
        .chunks_exact(12)
        .filter_map(|entry| {
            let (vm, stamp) = entry.split_at(4);
            Some((
                u32::from_le_bytes(vm.try_into().ok()?),
                u64::from_le_bytes(stamp.try_into().ok()?),
            ))
        })
        .collect()
}

/// A bucket: counts of a 2-byte length, the identity, then VM and open sockets (4 bytes
/// each), little-endian.
fn encode_bucket(counts: &[Count]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for count in counts {
        let length = u16::try_from(count.identity.len()).unwrap_or(u16::MAX);
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(
            count
                .identity
                .get(..usize::from(length))
                .unwrap_or_default(),
        );
        bytes.extend_from_slice(&count.vm.to_le_bytes());
        bytes.extend_from_slice(&count.open.to_le_bytes());
    }
    bytes
}

/// A bucket from its bytes; decoding stops at a malformed count (the rest are lost, and
/// with them at most some sockets' counts: never a panic).
fn decode_bucket(mut bytes: &[u8]) -> Vec<Count> {
    let mut counts = Vec::new();
    while !bytes.is_empty() {
        let Some(count) = (|| {
            let length = u16::from_le_bytes(take(&mut bytes, 2)?.try_into().ok()?);
            let identity = take(&mut bytes, usize::from(length))?.to_vec();
            let vm = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().ok()?);
            let open = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().ok()?);
            Some(Count { identity, vm, open })
        })() else {
            break;
        };
        counts.push(count);
    }
    counts
}

/// The first `n` bytes of `bytes`, which move past them.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = bytes.split_at_checked(n)?;
    *bytes = rest;
    Some(head)
}

#[cfg(test)]
mod tests;
