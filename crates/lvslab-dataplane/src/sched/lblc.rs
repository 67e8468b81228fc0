//! lblc — locality-based least connection.
//!
//! Kernel rule (`ip_vs_lblc.c`): a 1024-bucket cache maps the packet's **destination** address
//! (the VIP for ordinary services, so every client shares one entry) to one real server. A cached
//! server is kept while it is available, has weight > 0 and is not *lblc-overloaded*
//! (`active > weight` while some server of the service has `2·active < weight`); the generic
//! OVERLOAD flag is not consulted for it. Otherwise wlc's rule picks a new server and the entry
//! is replaced. 2026 kernels refuse to add entries beyond 1.5 × 16384 (the pick is still used).
//! GC every 60 s: a counter from 1 grows each tick while entries ≤ 16384; at a multiple of 30 a
//! full sweep drops entries unused for `lblc_expiration` (default 24 h); above 16384 entries,
//! entries idle ≥ 6 min are dropped, at most `min((entries − 16384)·4/3, 8192)` per tick,
//! resuming from a rover bucket.

use std::net::IpAddr;

use super::hash::{addr_fold, hash_32};
use super::leastconn::weighted_least;
use super::{DestId, DestView, Profile, SchedInput};

/// Cache hash bits (1024 buckets).
pub const LBLC_TAB_BITS: u32 = 10;
/// Cache buckets.
pub const LBLC_TAB_SIZE: usize = 1 << LBLC_TAB_BITS;
/// Entries beyond which the GC starts trimming (`max_size`).
pub const LBLC_MAX_SIZE: usize = LBLC_TAB_SIZE * 16;
/// GC period.
pub const CHECK_EXPIRE_INTERVAL_MS: u64 = 60_000;
/// Idle time after which an entry may be trimmed when the cache is over size.
pub const ENTRY_TIMEOUT_MS: u64 = 6 * 60_000;
/// Ticks between full expiration sweeps.
pub const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// The lblc cache bucket of an address.
pub fn lblc_bucket(addr: IpAddr) -> usize {
    hash_32(addr_fold(addr), LBLC_TAB_BITS) as usize
}

/// lblc's own overload test of a cached server.
pub(crate) fn lblc_overloaded(d: &DestView, dests: &[DestView]) -> bool {
    i64::from(d.active) > i64::from(d.weight)
        && dests
            .iter()
            .any(|x| 2 * i64::from(x.active) < i64::from(x.weight))
}

/// wlc's rule as lblc and lblcr use it.
pub(crate) fn lblc_wlc(dests: &[DestView]) -> Option<DestId> {
    weighted_least(dests, |d| i64::from(d.overhead))
}

/// One cached address: what lblc (a server) or lblcr (a server set) keeps for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheEntry<T> {
    /// The destination address the entry is keyed by.
    pub(crate) addr: IpAddr,
    /// Last time a packet used the entry (what the GC ages by).
    pub(crate) lastuse_ms: u64,
    /// The scheduler's data for the address.
    pub(crate) value: T,
}

/// The address-keyed cache lblc and lblcr share: 1024 buckets with newest entries at each
/// bucket's head, the 2026 size bound, and the 60-second GC with its counter and rover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddrCache<T> {
    buckets: Vec<Vec<CacheEntry<T>>>,
    entries: usize,
    counter: u32,
    rover: usize,
    next_gc_ms: u64,
}

impl<T: Clone> AddrCache<T> {
    /// An empty cache whose first GC tick is 60 s after `now_ms`.
    pub(crate) fn new(now_ms: u64) -> Self {
        AddrCache {
            buckets: vec![Vec::new(); LBLC_TAB_SIZE],
            entries: 0,
            counter: 1,
            rover: 0,
            next_gc_ms: now_ms.saturating_add(CHECK_EXPIRE_INTERVAL_MS),
        }
    }

    /// Number of cached addresses.
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// The entry for `addr`.
    pub(crate) fn get(&self, addr: IpAddr) -> Option<&CacheEntry<T>> {
        self.buckets[lblc_bucket(addr)]
            .iter()
            .find(|e| e.addr == addr)
    }

    /// The entry for `addr`, mutable.
    pub(crate) fn get_mut(&mut self, addr: IpAddr) -> Option<&mut CacheEntry<T>> {
        self.buckets[lblc_bucket(addr)]
            .iter_mut()
            .find(|e| e.addr == addr)
    }

    /// Adds an entry for `addr` (the caller checked there is none) used at `now_ms`, at its
    /// bucket's head as `hlist_add_head` does; 2026 kernels refuse beyond 1.5 × the GC size.
    pub(crate) fn insert_new(&mut self, profile: Profile, addr: IpAddr, now_ms: u64, value: T) {
        if profile == Profile::P2026 && self.entries >= LBLC_MAX_SIZE * 3 / 2 {
            return;
        }
        let entry = CacheEntry {
            addr,
            lastuse_ms: now_ms,
            value,
        };
        self.buckets[lblc_bucket(addr)].insert(0, entry);
        self.entries += 1;
    }

    /// Runs every GC tick due by `now_ms`.
    pub(crate) fn tick(&mut self, now_ms: u64, expiration_ms: u64) {
        // A long gap (a clock jump) runs a bounded number of ticks, enough for a full sweep,
        // instead of one per missed minute.
        let mut ticks = 0;
        while self.next_gc_ms <= now_ms {
            let t = self.next_gc_ms;
            self.gc_once(t, expiration_ms);
            ticks += 1;
            if ticks > COUNT_FOR_FULL_EXPIRATION {
                self.next_gc_ms = now_ms.saturating_add(CHECK_EXPIRE_INTERVAL_MS);
                break;
            }
            self.next_gc_ms = t.saturating_add(CHECK_EXPIRE_INTERVAL_MS);
        }
    }

    fn gc_once(&mut self, now_ms: u64, expiration_ms: u64) {
        if self.counter % COUNT_FOR_FULL_EXPIRATION == 0 {
            let mut removed = 0;
            for bucket in &mut self.buckets {
                let before = bucket.len();
                bucket.retain(|e| now_ms < e.lastuse_ms.saturating_add(expiration_ms));
                removed += before - bucket.len();
            }
            self.entries -= removed;
            self.counter = 1;
            return;
        }
        if self.entries <= LBLC_MAX_SIZE {
            self.counter += 1;
            return;
        }
        let mut goal = ((self.entries - LBLC_MAX_SIZE) * 4 / 3).min(LBLC_MAX_SIZE / 2) as i64;
        let mut j = self.rover;
        for _ in 0..LBLC_TAB_SIZE {
            j = (j + 1) & (LBLC_TAB_SIZE - 1);
            let bucket = &mut self.buckets[j];
            let before = bucket.len();
            bucket.retain(|e| now_ms < e.lastuse_ms.saturating_add(ENTRY_TIMEOUT_MS));
            let removed = before - bucket.len();
            self.entries -= removed;
            goal -= removed as i64;
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
    }
}

/// The lblc cache and its GC state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lblc {
    cache: AddrCache<DestId>,
}

impl Lblc {
    /// An empty cache whose first GC tick is 60 s after `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Lblc {
            cache: AddrCache::new(now_ms),
        }
    }

    /// Number of cached addresses.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.cache.len() == 0
    }

    /// The server cached for `addr`.
    pub fn cached(&self, addr: IpAddr) -> Option<DestId> {
        self.cache.get(addr).map(|e| e.value)
    }

    /// Picks a server for the packet's destination address.
    pub fn schedule(&mut self, input: &SchedInput<'_>) -> Option<DestId> {
        let addr = input.pkt.daddr;
        if let Some(e) = self.cache.get_mut(addr) {
            e.lastuse_ms = input.now_ms;
            let id = e.value;
            if let Some(d) = input.find(id) {
                if d.available && d.weight > 0 && !lblc_overloaded(d, input.dests) {
                    return Some(id);
                }
            }
        }
        let id = lblc_wlc(input.dests)?;
        match self.cache.get_mut(addr) {
            Some(e) => e.value = id,
            None => self.cache.insert_new(input.profile, addr, input.now_ms, id),
        }
        Some(id)
    }

    /// Runs every GC tick due by `now_ms`.
    pub fn tick(&mut self, now_ms: u64, expiration_ms: u64) {
        self.cache.tick(now_ms, expiration_ms);
    }
}
