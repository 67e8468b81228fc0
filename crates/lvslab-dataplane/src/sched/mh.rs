//! mh — Maglev hashing (Linux 4.18+).
//!
//! Kernel rule (`ip_vs_mh.c`): a lookup table of M = 4093 slots built from the list (newest
//! first) using each destination's **last_weight** (so a weight set to 0 keeps its slots and the
//! lookup then treats it as unusable). `g` = gcd of positive last weights (none → empty table),
//! `shift = max(bitlen(max / g) − 6, 0)`, `turns = (lw / g) >> shift`, or 1 if that is 0 and
//! `lw ≠ 0`. Per destination: `offset = h(K1, addr, port) mod M`,
//! `skip = h(K2, addr, port) mod (M − 1) + 1`; sweeps over the list let each destination with
//! turns claim that many free slots in a row, following its permutation, until the table is
//! full. `h(key, addr, port, off) = hsiphash(key, off + port + addr)` with the fixed keys
//! K1 = (2654435761, 2654435761), K2 = (2654446892, 2654446892). Rebuilt on add, delete, edit.
//! Pick: key = source address (+ source port with `mh-port`); without `mh-fallback` the slot's
//! destination if weight > 0 and no OVERLOAD; with it, re-hash probes
//! `h(K1, addr, port, (offset + ihash) mod M) mod M` for offset 0..M−1, stopping at an empty slot.

use std::net::IpAddr;

use super::hash::{addr_fold, hsiphash_u32};
use super::{DestId, DestView, SchedError, SchedInput};

/// Lookup-table size (prime; the kernel's default table index 12).
pub const MH_TAB_SIZE: usize = 4093;
/// Bits kept for `max_weight / gcd` before shifting.
const MH_WEIGHT_BITS: u32 = 6;
/// Key for offsets and lookups.
pub const MH_KEY1: (u64, u64) = (2_654_435_761, 2_654_435_761);
/// Key for skips.
pub const MH_KEY2: (u64, u64) = (2_654_446_892, 2_654_446_892);

/// `ip_vs_mh_hashkey`: hsiphash of `offset + port + addr` (host order, mod 2^32).
pub fn mh_hashkey(key: (u64, u64), addr: IpAddr, port: u16, offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(addr_fold(addr));
    hsiphash_u32(key, v)
}

/// A destination's place in the permutation: `(offset, skip)`.
pub fn permutation(addr: IpAddr, port: u16) -> (usize, usize) {
    let offset = mh_hashkey(MH_KEY1, addr, port, 0) as usize % MH_TAB_SIZE;
    let skip = mh_hashkey(MH_KEY2, addr, port, 0) as usize % (MH_TAB_SIZE - 1) + 1;
    (offset, skip)
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Maglev lookup table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mh {
    table: Vec<Option<DestId>>,
    shift: u32,
}

impl Mh {
    /// Builds the table from the list.
    pub fn build(dests: &[DestView]) -> Result<Self, SchedError> {
        if dests.len() > MH_TAB_SIZE {
            return Err(SchedError::TooManyDests {
                count: dests.len(),
                slots: MH_TAB_SIZE,
            });
        }
        let mut table = vec![None; MH_TAB_SIZE];
        let g = dests
            .iter()
            .map(|d| i64::from(d.last_weight))
            .filter(|&w| w > 0)
            .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
        if g < 1 {
            return Ok(Mh { table, shift: 0 });
        }
        let max = dests
            .iter()
            .map(|d| i64::from(d.last_weight))
            .fold(0, i64::max);
        let mw = max / g;
        let bitlen = 64 - mw.leading_zeros();
        let shift = bitlen.saturating_sub(MH_WEIGHT_BITS);

        struct Setup {
            perm: usize,
            skip: usize,
            turns: i64,
        }
        let mut setup: Vec<Setup> = dests
            .iter()
            .map(|d| {
                let (offset, skip) = permutation(d.addr, d.port);
                let lw = i64::from(d.last_weight);
                let scaled = if lw > 0 { (lw / g) >> shift } else { 0 };
                let turns = if scaled != 0 {
                    scaled
                } else {
                    i64::from(lw != 0)
                };
                Setup {
                    perm: offset,
                    skip,
                    turns,
                }
            })
            .collect();

        let mut taken = vec![false; MH_TAB_SIZE];
        let mut filled = 0;
        let mut dt_count = 0;
        'fill: while filled < MH_TAB_SIZE {
            let mut i = 0;
            let mut progressed = false;
            while i < setup.len() {
                let s = &mut setup[i];
                if s.turns < 1 {
                    i += 1;
                    continue;
                }
                while taken[s.perm] {
                    s.perm += s.skip;
                    if s.perm >= MH_TAB_SIZE {
                        s.perm -= MH_TAB_SIZE;
                    }
                }
                taken[s.perm] = true;
                table[s.perm] = Some(dests[i].id);
                progressed = true;
                filled += 1;
                if filled == MH_TAB_SIZE {
                    break 'fill;
                }
                dt_count += 1;
                if dt_count >= s.turns {
                    dt_count = 0;
                    i += 1;
                }
            }
            if !progressed {
                // Every destination has zero turns: nothing can ever be placed.
                break;
            }
        }
        Ok(Mh { table, shift })
    }

    /// The destination in slot `i`.
    pub fn slot(&self, i: usize) -> Option<DestId> {
        self.table.get(i).copied().flatten()
    }

    /// The weight right-shift used for the last build.
    pub fn shift(&self) -> u32 {
        self.shift
    }

    /// Picks by the packet's source (and, with `mh-port`, source port).
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
        let ihash = mh_hashkey(MH_KEY1, addr, port, 0) as usize % MH_TAB_SIZE;
        let first = self.slot(ihash);
        if !input.flags.sched1 {
            return first.filter(|&id| usable(id));
        }
        let first = first?;
        if usable(first) {
            return Some(first);
        }
        for offset in 0..MH_TAB_SIZE {
            let roffset = ((offset + ihash) % MH_TAB_SIZE) as u32;
            let h = mh_hashkey(MH_KEY1, addr, port, roffset) as usize % MH_TAB_SIZE;
            let id = self.slot(h)?;
            if usable(id) {
                return Some(id);
            }
        }
        None
    }
}
