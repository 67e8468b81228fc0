//! lblcr — locality-based least connection with replication.
//!
//! Kernel rule (`ip_vs_lblcr.c`): the cache (1024 buckets, key = destination address) maps to a
//! *set* of servers, new members at the front, with a last-modified time. With an entry: the
//! weighted-least member `m` (first non-OVERLOAD available member with weight > 0, then later
//! non-OVERLOAD available members by `oh(m)·w(d) > oh(d)·w(m)`); if the set has more than one
//! member and `lblcr_expiration` passed since the last change, the weighted-most-loaded member
//! (OVERLOAD ignored, weight > 0) is removed; if `m` exists and is not lblc-overloaded it is
//! used, otherwise wlc over the whole service picks a server that joins the set. Without an
//! entry: wlc, then a new one-member set. Cache bound and GC as lblc.

use std::net::IpAddr;

use super::lblc::{
    lblc_bucket, lblc_overloaded, lblc_wlc, CHECK_EXPIRE_INTERVAL_MS, COUNT_FOR_FULL_EXPIRATION,
    ENTRY_TIMEOUT_MS, LBLC_MAX_SIZE, LBLC_TAB_SIZE,
};
use super::{DestId, Profile, SchedInput};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    addr: IpAddr,
    set: Vec<DestId>,
    lastmod_ms: u64,
    lastuse_ms: u64,
}

/// The lblcr cache and its GC state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lblcr {
    buckets: Vec<Vec<Entry>>,
    entries: usize,
    counter: u32,
    rover: usize,
    next_gc_ms: u64,
}

impl Lblcr {
    /// An empty cache whose first GC tick is 60 s after `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Lblcr {
            buckets: vec![Vec::new(); LBLC_TAB_SIZE],
            entries: 0,
            counter: 1,
            rover: 0,
            next_gc_ms: now_ms.saturating_add(CHECK_EXPIRE_INTERVAL_MS),
        }
    }

    /// Number of cached addresses.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The server set cached for `addr`, front first.
    pub fn cached_set(&self, addr: IpAddr) -> Option<Vec<DestId>> {
        self.buckets[lblc_bucket(addr)]
            .iter()
            .find(|e| e.addr == addr)
            .map(|e| e.set.clone())
    }

    fn set_min(set: &[DestId], input: &SchedInput<'_>) -> Option<DestId> {
        let views: Vec<_> = set.iter().filter_map(|&id| input.find(id)).collect();
        let first = views
            .iter()
            .position(|d| !d.overloaded && d.weight > 0 && d.available)?;
        let mut least = views[first];
        let mut loh = i64::from(least.overhead);
        for d in views[first + 1..].iter().filter(|d| !d.overloaded) {
            let doh = i64::from(d.overhead);
            if loh * i64::from(d.weight) > doh * i64::from(least.weight) && d.available {
                least = d;
                loh = doh;
            }
        }
        Some(least.id)
    }

    fn set_max(set: &[DestId], input: &SchedInput<'_>) -> Option<DestId> {
        let views: Vec<_> = set.iter().filter_map(|&id| input.find(id)).collect();
        let first = views.iter().position(|d| d.weight > 0)?;
        let mut most = views[first];
        let mut moh = i64::from(most.overhead);
        for d in &views[first + 1..] {
            let doh = i64::from(d.overhead);
            if moh * i64::from(d.weight) < doh * i64::from(most.weight) && d.weight > 0 {
                most = d;
                moh = doh;
            }
        }
        Some(most.id)
    }

    /// Picks a server for the packet's destination address.
    pub fn schedule(&mut self, input: &SchedInput<'_>) -> Option<DestId> {
        let addr = input.pkt.daddr;
        let now = input.now_ms;
        let b = lblc_bucket(addr);
        if let Some(e) = self.buckets[b].iter_mut().find(|e| e.addr == addr) {
            e.lastuse_ms = now;
            let m = Self::set_min(&e.set, input);
            if e.set.len() > 1 && now > e.lastmod_ms.saturating_add(input.cache_expiration_ms) {
                if let Some(most) = Self::set_max(&e.set, input) {
                    e.set.retain(|&id| id != most);
                    e.lastmod_ms = now;
                }
            }
            if let Some(m) = m {
                let not_overloaded = input
                    .find(m)
                    .is_some_and(|d| !lblc_overloaded(d, input.dests));
                if not_overloaded {
                    return Some(m);
                }
            }
            let id = lblc_wlc(input.dests)?;
            if !e.set.contains(&id) {
                e.set.insert(0, id);
                e.lastmod_ms = now;
            }
            return Some(id);
        }
        let id = lblc_wlc(input.dests)?;
        if input.profile == Profile::P2026 && self.entries >= LBLC_MAX_SIZE * 3 / 2 {
            return Some(id);
        }
        self.buckets[b].insert(
            0,
            Entry {
                addr,
                set: vec![id],
                lastmod_ms: now,
                lastuse_ms: now,
            },
        );
        self.entries += 1;
        Some(id)
    }

    /// Runs every GC tick due by `now_ms`.
    pub fn tick(&mut self, now_ms: u64, expiration_ms: u64) {
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
