//! The Internet checksum: full computation (RFC 1071), incremental update (RFC 1624) and
//! completion of checksums that the sending kernel left unfinished (`CHECKSUM_PARTIAL`).

use std::net::Ipv4Addr;

use super::DropReason;

/// Adds `data` to a ones'-complement accumulator as big-endian 16-bit words; an odd last
/// byte is padded with a zero byte (RFC 1071 §4.1). The accumulator is folded by [`fold`].
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        acc += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// Folds the carries of an accumulator back into 16 bits (end-around carry).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves at most 16 significant bits.
    acc as u16
}

/// The Internet checksum of `data` (RFC 1071): the complement of its ones'-complement sum.
/// A buffer that already holds a correct checksum gives 0.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// Ones'-complement sum of the IPv4 pseudo-header that TCP and UDP checksums cover
/// (RFC 793 §3.1, RFC 768): source, destination, zero + protocol, transport length.
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, transport_len: u16) -> u64 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc + u64::from(protocol) + u64::from(transport_len)
}

/// The TCP or UDP checksum of `segment` sent from `src` to `dst`, computed as if the
/// checksum field at `checksum_at` (an offset inside `segment`) held zero.
///
/// Returns the value as computed; UDP callers map 0 to 0xFFFF (RFC 768: 0 means "none").
pub fn transport_checksum(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    segment: &[u8],
    checksum_at: usize,
) -> u16 {
    // Segments come from validated IPv4 packets, whose length fits in 16 bits.
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    let mut acc = pseudo_header_sum(src, dst, protocol, len);
    let split = checksum_at.min(segment.len());
    acc = sum(acc, &segment[..split]);
    acc = sum(acc, segment.get(split + 2..).unwrap_or(&[]));
    !fold(acc)
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word covered by `check` changed from
/// `old` to `new`: `HC' = ~(~HC + ~m + m')`. This is what the kernel's `csum_replace2` does,
/// and unlike eqn. 2 it never turns a correct checksum into the wrong zero.
pub fn update_u16(check: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!check) + u64::from(!old) + u64::from(new))
}

/// [`update_u16`] for a 32-bit field such as an IPv4 address (`csum_replace4`).
pub fn update_u32(check: u16, old: u32, new: u32) -> u16 {
    let high = |v: u32| (v >> 16) as u16;
    let low = |v: u32| v as u16;
    update_u16(update_u16(check, high(old), high(new)), low(old), low(new))
}

/// Completes a transport checksum that the sender left to "hardware" (`CHECKSUM_PARTIAL`;
/// an AF_PACKET reader sees `TP_STATUS_CSUMNOTREADY`): the field at
/// `csum_start + csum_offset` holds only the folded pseudo-header sum, so the checksum is the
/// complement of the sum over `frame[csum_start..end]` with that field included. Like the
/// kernel's `skb_checksum_help`, a computed 0 is stored as 0xFFFF.
///
/// `csum_start` counts from the start of `frame` (as `virtio_net_hdr` does) and `end` is the
/// end of the IP packet inside the frame (Ethernet padding excluded).
pub fn complete_partial(
    frame: &mut [u8],
    csum_start: usize,
    csum_offset: usize,
    end: usize,
) -> Result<(), DropReason> {
    let field = csum_start
        .checked_add(csum_offset)
        .filter(|&at| at + 2 <= end && end <= frame.len())
        .ok_or(DropReason::BadChecksumOffset)?;
    let computed = !fold(sum(0, &frame[csum_start..end]));
    let stored = if computed == 0 { 0xffff } else { computed };
    frame[field..field + 2].copy_from_slice(&stored.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 §3 worked example: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
    #[test]
    fn rfc1071_example_sum() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn buffer_with_its_checksum_sums_to_zero() {
        let mut data = vec![
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0, 0,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut data = vec![0x45, 0x00, 0x00, 0x54, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x06];
        let before = checksum(&data);
        data[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        assert_eq!(update_u16(before, 0xabcd, 0x1234), checksum(&data));
        let old = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let after_first = checksum(&data);
        data[0..4].copy_from_slice(&0xc000_0201u32.to_be_bytes());
        assert_eq!(update_u32(after_first, old, 0xc000_0201), checksum(&data));
    }

    #[test]
    fn completion_out_of_range_is_a_drop() {
        let mut frame = [0u8; 10];
        assert_eq!(
            complete_partial(&mut frame, 4, 6, 10),
            Err(DropReason::BadChecksumOffset)
        );
        assert_eq!(
            complete_partial(&mut frame, usize::MAX, 6, 10),
            Err(DropReason::BadChecksumOffset)
        );
    }
}
