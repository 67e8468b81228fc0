//! sh — source hashing.
//!
//! Kernel rule (`ip_vs_sh.c`): 256 buckets filled by walking the list cyclically; the current
//! element takes consecutive buckets until it holds `max(weight, 1)` of them in this round (a
//! weight-0 element still takes one), then the next element — so if the first weights add up to
//! ≥ 256 the later elements get nothing. Rebuilt on add, delete **and** edit.
//! Key: the source address, plus the client source port with `sh-port` (SCHED2, TCP/UDP/SCTP).
//! `ihash = hash_32(port + addr, 8)`. Without `sh-fallback` (SCHED1) the bucket's destination
//! is used unless it has weight ≤ 0 or OVERLOAD. With it, an unusable first choice leads to a
//! probe of buckets `(offset + 2·ihash) mod 256` for offset 0..255 (the kernel adds the offset
//! on top of a key that already includes ihash), stopping at an empty bucket.

use super::hash::{addr_fold, hash_32};
use super::{DestId, DestView, SchedInput};

/// Number of hash bits (256 buckets).
pub const SH_TAB_BITS: u32 = 8;
/// Number of buckets.
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;

/// Source-hashing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sh {
    buckets: Vec<Option<DestId>>,
}

/// `ihash` of the kernel: bucket for (addr, port) before any fallback offset.
pub fn sh_hashkey(addr: std::net::IpAddr, port: u16, offset: u32) -> usize {
    let key = u32::from(port).wrapping_add(addr_fold(addr));
    ((offset + hash_32(key, SH_TAB_BITS)) as usize) % SH_TAB_SIZE
}

impl Sh {
    /// Builds the table from the list.
    pub fn build(dests: &[DestView]) -> Self {
        let mut buckets = vec![None; SH_TAB_SIZE];
        if !dests.is_empty() {
            let mut idx = 0;
            let mut count: i64 = 0;
            for b in buckets.iter_mut() {
                let d = &dests[idx];
                *b = Some(d.id);
                count += 1;
                if count >= i64::from(d.weight) {
                    idx = (idx + 1) % dests.len();
                    count = 0;
                }
            }
        }
        Sh { buckets }
    }

    /// The destination stored in bucket `i`.
    pub fn bucket(&self, i: usize) -> Option<DestId> {
        self.buckets.get(i).copied().flatten()
    }

    /// Picks by the packet's source (and, with `sh-port`, source port).
    pub fn schedule(&self, input: &SchedInput<'_>) -> Option<DestId> {
        let port = if input.flags.sched2 {
            input.pkt.sport
        } else {
            0
        };
        let addr = input.pkt.saddr;
        let usable = |id: DestId| {
            input
                .find(id)
                .is_some_and(|d| d.weight > 0 && !d.overloaded)
        };
        let ihash = sh_hashkey(addr, port, 0);
        let first = self.bucket(ihash);
        if !input.flags.sched1 {
            return first.filter(|&id| usable(id));
        }
        let first = first?;
        if usable(first) {
            return Some(first);
        }
        for offset in 0..SH_TAB_SIZE as u32 {
            let roffset = (offset + ihash as u32) % SH_TAB_SIZE as u32;
            let id = self.bucket(sh_hashkey(addr, port, roffset))?;
            if usable(id) {
                return Some(id);
            }
        }
        None
    }
}
