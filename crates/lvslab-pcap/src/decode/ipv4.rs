//! IPv4 headers and the tunnels that carry IPv4 in IPv4 (IPIP, GRE), nested up to 8 deep.

use etherparse::Ipv4HeaderSlice;

use super::checksum::{fnv1a64, own_checksum};
use super::transport::{decode_l4, Segment};
use super::{Ipv4Summary, L4Summary, PacketSummary, TunnelHeader};

pub(super) fn decode_ipv4(s: &mut PacketSummary, b: &[u8]) {
    // Bound nesting so a crafted frame cannot loop forever.
    let mut cur = b;
    for _ in 0..8 {
        let ip = match Ipv4HeaderSlice::from_slice(cur) {
            Ok(ip) => ip,
            Err(e) => {
                s.malformed = Some(format!("ipv4: {e}"));
                return;
            }
        };
        let hdr = ip.slice();
        let header_checksum = own_checksum(hdr, 10);
        let total = usize::from(ip.total_len());
        // Ethernet pads short frames: the IP total length, not the frame, ends the packet.
        let end = total.clamp(hdr.len(), cur.len());
        let payload = &cur[hdr.len()..end];
        let full_payload_len = total.saturating_sub(hdr.len());
        let truncated = payload.len() < full_payload_len;
        let frag_offset = ip.fragments_offset().value();
        let mut summary = Ipv4Summary {
            src: ip.source_addr(),
            dst: ip.destination_addr(),
            ttl: ip.ttl(),
            proto: ip.protocol().0,
            id: ip.identification(),
            df: ip.dont_fragment(),
            mf: ip.more_fragments(),
            frag_offset,
            tos: (ip.dcp().value() << 2) | ip.ecn().value(),
            total_len: ip.total_len(),
            header_checksum,
            encap: None,
        };
        let fragment = summary.mf || frag_offset != 0;
        // Next layer carried in IPv4?
        let next = if fragment {
            None
        } else {
            match summary.proto {
                4 => Some((TunnelHeader::Ipip, payload)),
                47 => match gre(payload) {
                    Some((
                        encap @ TunnelHeader::Gre {
                            protocol: 0x0800, ..
                        },
                        inner,
                    )) => Some((encap, inner)),
                    Some((encap, _)) => {
                        summary.encap = Some(encap);
                        None
                    }
                    None => {
                        s.malformed = Some("gre: truncated or unsupported header".into());
                        None
                    }
                },
                _ => None,
            }
        };
        if let Some((encap, inner)) = next {
            summary.encap = Some(encap);
            s.ip.push(summary);
            cur = inner;
            continue;
        }
        let proto = summary.proto;
        let (src, dst) = (summary.src, summary.dst);
        s.ip.push(summary);
        if matches!(summary.encap, Some(TunnelHeader::Gre { .. })) {
            // GRE carrying something other than IPv4: report it as an opaque payload.
            s.l4 = Some(L4Summary::Other {
                proto,
                payload_len: full_payload_len as u32,
                payload_hash: fnv1a64(payload),
            });
            return;
        }
        let segment = Segment {
            src,
            dst,
            proto,
            bytes: payload,
            full_len: full_payload_len,
            incomplete: truncated || fragment,
            not_ready: s.csum_not_ready,
        };
        s.l4 = Some(decode_l4(s, &segment));
        return;
    }
    s.malformed = Some("ipv4: more than 8 nested headers".into());
}

/// Parses a GRE header: (encapsulation, payload after the header).
fn gre(b: &[u8]) -> Option<(TunnelHeader, &[u8])> {
    let flags = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    let protocol = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    // Version must be 0 (version 1 is PPTP's enhanced GRE).
    if flags & 0x0007 != 0 {
        return None;
    }
    let csum = flags & 0x8000 != 0;
    let key = flags & 0x2000 != 0;
    let seq = flags & 0x1000 != 0;
    let len = 4 + 4 * (usize::from(csum) + usize::from(key) + usize::from(seq));
    Some((
        TunnelHeader::Gre {
            protocol,
            checksum: csum,
        },
        b.get(len..)?,
    ))
}
