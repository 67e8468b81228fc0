//! Internet checksums (IPv4 header, ICMP, TCP/UDP with the pseudo-header, offload-pending
//! shapes) and the payload hash.

use std::net::Ipv4Addr;

use super::Checksum;

/// FNV-1a, 64 bit: stable across runs and platforms, no dependency.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Ones'-complement sum of `data` folded to 16 bits, starting from `initial`.
pub(super) fn ones_sum(data: &[u8], initial: u32) -> u16 {
    let mut sum: u64 = u64::from(initial);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

pub(super) fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    u32::from(u16::from_be_bytes([s[0], s[1]]))
        + u32::from(u16::from_be_bytes([s[2], s[3]]))
        + u32::from(u16::from_be_bytes([d[0], d[1]]))
        + u32::from(u16::from_be_bytes([d[2], d[3]]))
        + u32::from(proto)
        + (len as u32 & 0xFFFF)
        + ((len as u32) >> 16)
}

/// Checks a checksum that covers only `data` itself (an IPv4 header, an ICMP message) at
/// byte `field` of it.
pub(super) fn own_checksum(data: &[u8], field: usize) -> Checksum {
    let Some(found) = data
        .get(field..field + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
    else {
        return Checksum::Unverifiable;
    };
    if ones_sum(data, 0) == 0xFFFF {
        return Checksum::Valid;
    }
    let mut zeroed = data.to_vec();
    zeroed[field] = 0;
    zeroed[field + 1] = 0;
    Checksum::Invalid {
        found,
        expected: !ones_sum(&zeroed, 0),
    }
}

/// Checks a TCP/UDP checksum at byte `field` of `segment` (the whole L4 segment).
/// Linux leaves the folded pseudo-header sum in the field of a CHECKSUM_PARTIAL packet
/// (`~tcp_v4_check(len, saddr, daddr, 0)`), so that shape is reported as `Partial`.
pub(super) fn l4_checksum(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    segment: &[u8],
    field: usize,
    flagged_not_ready: bool,
) -> Checksum {
    let Some(found) = segment
        .get(field..field + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
    else {
        return Checksum::Unverifiable;
    };
    let pseudo = pseudo_sum(src, dst, proto, segment.len());
    if ones_sum(segment, pseudo) == 0xFFFF {
        return Checksum::Valid;
    }
    let mut zeroed = segment.to_vec();
    zeroed[field] = 0;
    zeroed[field + 1] = 0;
    let mut expected = !ones_sum(&zeroed, pseudo);
    if proto == 17 && expected == 0 {
        expected = 0xFFFF;
    }
    let partial = ones_sum(&[], pseudo);
    if flagged_not_ready || found == partial || (partial == 0xFFFF && found == 0) {
        return Checksum::Partial;
    }
    Checksum::Invalid { found, expected }
}
