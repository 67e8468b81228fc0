//! The transport layer of the innermost IPv4 packet: TCP, UDP, ICMP (with the header an
//! ICMP error quotes); anything else is summarised as an opaque payload.

use std::net::Ipv4Addr;

use etherparse::{TcpHeaderSlice, UdpHeaderSlice};

use super::checksum::{fnv1a64, l4_checksum, own_checksum};
use super::{
    Checksum, EmbeddedSummary, IcmpSummary, L4Summary, PacketSummary, TcpFlags, TcpSummary,
    UdpSummary,
};

/// The payload of the innermost IPv4 packet, with what its decoding needs to know.
pub(super) struct Segment<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    /// The captured payload bytes (the IP total length or the snap length ends them).
    pub bytes: &'a [u8],
    /// Payload length the IP header announces.
    pub full_len: usize,
    /// Cut short or a fragment: checksums cannot be verified.
    pub incomplete: bool,
    /// The capture side flagged the L4 checksum as not yet computed.
    pub not_ready: bool,
}

impl Segment<'_> {
    fn other(&self) -> L4Summary {
        L4Summary::Other {
            proto: self.proto,
            payload_len: self.full_len as u32,
            payload_hash: fnv1a64(self.bytes),
        }
    }
}

/// Decodes the segment; where it is malformed, says so in `s` and summarises it opaquely.
pub(super) fn decode_l4(s: &mut PacketSummary, seg: &Segment) -> L4Summary {
    let decoded = match seg.proto {
        6 => tcp(seg),
        17 => udp(seg),
        1 => icmp(seg),
        _ => return seg.other(),
    };
    decoded.unwrap_or_else(|why| {
        s.malformed = Some(why);
        seg.other()
    })
}

fn tcp(seg: &Segment) -> Result<L4Summary, String> {
    let t = TcpHeaderSlice::from_slice(seg.bytes).map_err(|e| format!("tcp: {e}"))?;
    let hl = t.slice().len();
    let checksum = if seg.incomplete {
        Checksum::Unverifiable
    } else {
        l4_checksum(seg.src, seg.dst, 6, seg.bytes, 16, seg.not_ready)
    };
    Ok(L4Summary::Tcp(TcpSummary {
        sport: t.source_port(),
        dport: t.destination_port(),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        flags: TcpFlags(seg.bytes[13]),
        window: t.window_size(),
        payload_len: seg.full_len.saturating_sub(hl) as u32,
        payload_hash: fnv1a64(&seg.bytes[hl..]),
        checksum,
    }))
}

fn udp(seg: &Segment) -> Result<L4Summary, String> {
    let u = UdpHeaderSlice::from_slice(seg.bytes).map_err(|e| format!("udp: {e}"))?;
    let checksum = if u.checksum() == 0 {
        Checksum::Absent
    } else if seg.incomplete {
        Checksum::Unverifiable
    } else {
        l4_checksum(seg.src, seg.dst, 17, seg.bytes, 6, seg.not_ready)
    };
    Ok(L4Summary::Udp(UdpSummary {
        sport: u.source_port(),
        dport: u.destination_port(),
        payload_len: seg.full_len.saturating_sub(8) as u32,
        payload_hash: fnv1a64(&seg.bytes[8..]),
        checksum,
    }))
}

fn icmp(seg: &Segment) -> Result<L4Summary, String> {
    let payload = seg.bytes;
    if payload.len() < 8 {
        return Err("icmp: shorter than 8 bytes".into());
    }
    let icmp_type = payload[0];
    let checksum = if seg.incomplete {
        Checksum::Unverifiable
    } else {
        own_checksum(payload, 2)
    };
    let echo = matches!(icmp_type, 0 | 8).then(|| {
        (
            u16::from_be_bytes([payload[4], payload[5]]),
            u16::from_be_bytes([payload[6], payload[7]]),
        )
    });
    let body = &payload[8..];
    let embedded = if matches!(icmp_type, 3 | 4 | 5 | 11 | 12) {
        embedded(body)
    } else {
        None
    };
    Ok(L4Summary::Icmp(IcmpSummary {
        icmp_type,
        code: payload[1],
        echo,
        payload_len: seg.full_len.saturating_sub(8) as u32,
        payload_hash: fnv1a64(body),
        checksum,
        embedded,
    }))
}

/// The quoted header of an ICMP error: IPv4 header plus (at least) 8 bytes of L4.
fn embedded(b: &[u8]) -> Option<EmbeddedSummary> {
    let version_ihl = *b.first()?;
    if version_ihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(version_ihl & 0x0F) * 4;
    if ihl < 20 || b.len() < ihl {
        return None;
    }
    let proto = b[9];
    let ports = match (proto, b.get(ihl..ihl + 4)) {
        (6 | 17, Some(p)) => Some((
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )),
        _ => None,
    };
    Some(EmbeddedSummary {
        src: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
        dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
        proto,
        id: u16::from_be_bytes([b[4], b[5]]),
        ttl: b[8],
        sport: ports.map(|p| p.0),
        dport: ports.map(|p| p.1),
    })
}
