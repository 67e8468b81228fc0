//! dh — destination hashing.
//!
//! Kernel rule (`ip_vs_dh.c`): 256 buckets; bucket `i` holds the `(i mod n)`-th element of the
//! list (newest first, weights ignored). Rebuilt on add and delete but **not** on edit. A pick
//! uses bucket `hash_32(daddr, 8)` and fails (no fallback) if it is empty or its destination
//! has weight ≤ 0, OVERLOAD, or is no longer available.

use super::hash::{addr_fold, hash_32};
use super::{DestId, DestView, SchedInput};

/// Number of hash bits (256 buckets).
pub const DH_TAB_BITS: u32 = 8;
/// Number of buckets.
pub const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

/// Destination-hashing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dh {
    buckets: Vec<Option<DestId>>,
}

impl Dh {
    /// Builds the table from the list.
    pub fn build(dests: &[DestView]) -> Self {
        let buckets = (0..DH_TAB_SIZE)
            .map(|i| {
                if dests.is_empty() {
                    None
                } else {
                    Some(dests[i % dests.len()].id)
                }
            })
            .collect();
        Dh { buckets }
    }

    /// The destination stored in bucket `i`.
    pub fn bucket(&self, i: usize) -> Option<DestId> {
        self.buckets.get(i).copied().flatten()
    }

    /// Picks by the packet's destination address.
    pub fn schedule(&self, input: &SchedInput<'_>) -> Option<DestId> {
        let b = hash_32(addr_fold(input.pkt.daddr), DH_TAB_BITS) as usize;
        let id = self.bucket(b)?;
        let d = input.find(id)?;
        (d.available && d.weight > 0 && !d.overloaded).then_some(id)
    }
}
