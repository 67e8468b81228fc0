//! A cheap seeded hasher for the director's internal maps.
//!
//! The standard SipHash-1-3 costs tens of nanoseconds per key and dominated the
//! existing-connection path, which makes several lookups per packet. This multiply-rotate
//! hasher (in the spirit of FxHash, with a final mix so hashbrown's low index bits and high
//! tag bits both depend on every input bit) takes a few nanoseconds. Each map draws a
//! random seed, as the kernel seeds its connection-table jhash at boot, so bucket layouts
//! are not predictable from outside; it is not a keyed PRF like SipHash, which the kernel
//! does not use for this either.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

/// Odd multiplier with well-spread bits (2^64 / golden ratio).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Hash state: one 64-bit word.
#[derive(Debug, Clone, Copy)]
pub struct MixHasher {
    h: u64,
}

impl MixHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.h = (self.h.rotate_left(23) ^ v).wrapping_mul(K);
    }
}

impl Hasher for MixHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Multiplication only carries upward: fold the well-mixed high half back down.
        let h = (self.h ^ (self.h >> 32)).wrapping_mul(K);
        h ^ (h >> 29)
    }
}

/// Builds [`MixHasher`]s from a per-map random seed.
#[derive(Debug, Clone, Copy)]
pub struct MixState {
    seed: u64,
}

impl Default for MixState {
    fn default() -> Self {
        // RandomState holds fresh per-process random keys: hashing a constant with it is a
        // portable way to draw a seed without another dependency.
        MixState {
            seed: RandomState::new().hash_one(0x6c76_736c_6162_u64),
        }
    }
}

impl BuildHasher for MixState {
    type Hasher = MixHasher;

    #[inline]
    fn build_hasher(&self) -> MixHasher {
        MixHasher { h: self.seed }
    }
}

/// A `HashMap` using [`MixState`].
pub type FastMap<K, V> = HashMap<K, V, MixState>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn nearby_keys_spread_over_index_and_tag_bits() {
        // Client addresses/ports that differ in a few low bits, as a benchmark or a NAT
        // gateway produces: both the bucket index (low bits) and hashbrown's 7-bit tag (top
        // bits) must vary, or lookups degrade into long probe chains.
        let s = MixState::default();
        let mut low = HashSet::new();
        let mut top = HashSet::new();
        for i in 0..4096u32 {
            let key = (
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i >> 6))),
                (i & 63) as u16,
            );
            let h = s.hash_one(key);
            low.insert(h & 0xfff);
            top.insert(h >> 57);
        }
        assert!(
            low.len() > 2400,
            "only {} of 4096 low-bit patterns",
            low.len()
        );
        assert_eq!(top.len(), 128, "every tag value should appear");
    }

    #[test]
    fn equal_keys_hash_equal_and_seeds_differ() {
        let a = MixState::default();
        let b = MixState::default();
        let key = (6u8, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80u16);
        assert_eq!(a.hash_one(key), a.hash_one(key));
        assert_ne!(a.seed, b.seed, "each map should draw its own seed");
    }

    #[test]
    fn trailing_bytes_are_not_ignored() {
        let s = MixState::default();
        let h = |b: &[u8]| {
            let mut x = s.build_hasher();
            x.write(b);
            x.finish()
        };
        assert_ne!(h(b"abcdefghi"), h(b"abcdefghj"));
        assert_ne!(h(b"ab"), h(b"ab\0"));
    }
}
