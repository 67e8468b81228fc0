//! Hash primitives shared by dh, sh, mh, lblc and lblcr.
//!
//! Kernel rules followed: addresses are folded to 32 bits (IPv6: XOR of the four words) and read
//! as big-endian numbers; `hash_32` is the generic multiplicative hash with `0x61C88647`; mh
//! hashes a little-endian `u32` with SipHash-1-3 under 64-bit keys and keeps the low 32 bits
//! (what `hsiphash` is on 64-bit kernels).

use std::net::IpAddr;

/// The kernel's golden-ratio multiplier for `hash_32`.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `hash_32(x, bits)`: the top `bits` bits of `x · 0x61C88647 mod 2^32`.
pub fn hash_32(x: u32, bits: u32) -> u32 {
    if bits == 0 {
        return 0;
    }
    x.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits.min(32))
}

/// An address folded to a host-order `u32` (IPv4 as is, IPv6 XOR of its words).
pub fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            // The kernel XORs the network-order words and byte-swaps the result; XOR commutes
            // with the byte swap, so folding the host-order words is the same.
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// SipHash-1-3 of `data` with keys `(k0, k1)` (one compression round, three finalisation
/// rounds, standard initialisation constants).
pub fn siphash13(k0: u64, k1: u64, data: &[u8]) -> u64 {
    siphash(1, 3, k0, k1, data)
}

/// SipHash-c-d: `c` compression rounds per 8-byte word, `d` finalisation rounds.
fn siphash(c: usize, d: usize, k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let compress = |v: &mut [u64; 4], m: u64| {
        v[3] ^= m;
        for _ in 0..c {
            sip_round(v);
        }
        v[0] ^= m;
    };
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        compress(&mut v, u64::from_le_bytes(b));
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    // The message length (mod 256) goes into the top byte of the final word.
    compress(
        &mut v,
        u64::from_le_bytes(last) | ((data.len() as u64 & 0xff) << 56),
    );
    v[2] ^= 0xff;
    for _ in 0..d {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// `hsiphash(&v, 4, key)` as a 64-bit kernel computes it: SipHash-1-3 over the four
/// little-endian bytes of `v`, low 32 bits of the result.
pub fn hsiphash_u32(key: (u64, u64), v: u32) -> u32 {
    siphash13(key.0, key.1, &v.to_le_bytes()) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SipHash-2-4, whose reference vector (SipHash paper: key 00..0f, message 00..0e)
    /// checks the code shared with 1-3.
    fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
        siphash(2, 4, k0, k1, data)
    }

    #[test]
    fn sip_round_matches_published_siphash24_vector() {
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(k0, k1, &msg), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn ipv6_fold_xors_words() {
        let a: IpAddr = "2001:db8::1".parse().expect("literal");
        assert_eq!(addr_fold(a), 0x2001_0db8 ^ 1);
    }
}
