//! What every rewrite_* target checks, shared by them (a module, not a target).
//!
//! The first input byte picks the settings (route MTU, PMTU discovery, TOA), the rest is
//! the frame. Each target runs its rewrites on the frame as given and on a copy whose
//! IPv4 header and TCP/UDP/ICMP checksums were repaired, so mutations reach past the
//! header check. A crash is a panic or a broken promise: a forwarded frame that does not
//! parse (its IPv4 header checksum included), a transport checksum that verified before
//! and not after, an ICMP error reply that is not a valid ICMP message, or a reply buffer
//! holding something when the verdict has no reply.

#![allow(dead_code)]

use lvslab_dataplane::packet::{parse_frame, Payload};
use lvslab_dataplane::rewrite::{tun_decapsulate, Egress, Verdict};
use lvslab_spec::MacAddr;

/// Settings decoded from the first input byte.
pub struct Settings {
    pub mtu: u16,
    pub pmtu_disc: bool,
    pub toa: bool,
}

/// Splits an input into settings and frame.
pub fn split(data: &[u8]) -> Option<(Settings, &[u8])> {
    let (&first, frame) = data.split_first()?;
    let mtus = [0, 60, 68, 96, 576, 1280, 1500, 9000];
    Some((
        Settings {
            mtu: mtus[usize::from(first & 7)],
            pmtu_disc: first & 8 == 0,
            toa: first & 16 != 0,
        },
        frame,
    ))
}

pub fn egress(mtu: u16) -> Egress {
    Egress {
        src_mac: MacAddr([0x02, 0, 0, 0, 0, 0x03]),
        dst_mac: MacAddr([0x02, 0, 0, 0, 0, 0x04]),
        mtu,
    }
}

/// A deliberately plain RFC 1071 sum, independent of the engine's.
pub fn plain_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u32::from(pair[0]) << 8 | pair.get(1).map_or(0, |&b| u32::from(b));
        sum += word;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether an IPv4 frame's TCP, UDP (0 = none is fine) or ICMP checksum verifies; `None`
/// when the frame is not IPv4 with one of those.
pub fn l4_verifies(frame: &[u8]) -> Option<bool> {
    let Payload::Ipv4(ip) = parse_frame(frame).ok()?.payload else {
        return None;
    };
    let segment = &frame[ip.transport_offset()..ip.end()];
    match ip.protocol {
        17 if segment.len() >= 8 && segment[6..8] == [0, 0] => Some(true),
        6 | 17 => {
            let mut covered = ip.src.octets().to_vec();
            covered.extend_from_slice(&ip.dst.octets());
            covered.extend_from_slice(&[0, ip.protocol]);
            covered.extend_from_slice(&(segment.len() as u16).to_be_bytes());
            covered.extend_from_slice(segment);
            Some(plain_checksum(&covered) == 0)
        }
        1 => Some(plain_checksum(segment) == 0),
        _ => None,
    }
}

/// The frame with its IPv4 header checksum, and its TCP/UDP/ICMP checksum if the packet
/// holds one, recomputed (as far as the lengths allow).
pub fn repaired(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return f;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    if ihl < 20 || f.len() < 14 + ihl {
        return f;
    }
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let end = (14 + total).min(f.len());
    let l4 = 14 + ihl;
    let at = match f[23] {
        6 => Some(l4 + 16),
        17 => Some(l4 + 6),
        1 => Some(l4 + 2),
        _ => None,
    };
    if let Some(at) = at.filter(|&at| at + 2 <= end && l4 <= end) {
        f[at..at + 2].fill(0);
        let segment = &f[l4..end];
        let sum = if f[23] == 1 {
            plain_checksum(segment)
        } else {
            let mut covered = f[26..34].to_vec();
            covered.extend_from_slice(&[0, f[23]]);
            covered.extend_from_slice(&(segment.len() as u16).to_be_bytes());
            covered.extend_from_slice(segment);
            plain_checksum(&covered)
        };
        f[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }
    f[24..26].fill(0);
    let sum = plain_checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    f
}

/// How the forwarded frame of a rewrite is to be read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An Ethernet/IPv4 frame.
    Plain,
    /// An IPIP or GRE packet whose inner packet is the one to check.
    Tunnelled,
}

/// Checks one rewrite's outcome against the promises above.
pub fn check(name: &str, input: &[u8], out: &[u8], verdict: Verdict, reply: &[u8], shape: Shape) {
    match verdict {
        Verdict::Forward => {
            let frame = match shape {
                Shape::Plain => out.to_vec(),
                Shape::Tunnelled => {
                    let inner = tun_decapsulate(out).unwrap_or_else(|r| {
                        panic!("{name}: forwarded a broken tunnel packet: {r}")
                    });
                    let mut f = out[..14].to_vec();
                    f.extend_from_slice(inner);
                    f
                }
            };
            if let Err(r) = parse_frame(&frame) {
                panic!("{name}: forwarded a frame that does not parse: {r}");
            }
            if l4_verifies(input) == Some(true) {
                assert_eq!(
                    l4_verifies(&frame),
                    Some(true),
                    "{name}: a transport checksum that verified no longer does"
                );
            }
        }
        Verdict::DropWithReply(_) => {
            let Ok(info) = parse_frame(reply) else {
                panic!("{name}: the ICMP error reply does not parse");
            };
            let Payload::Ipv4(ip) = info.payload else {
                panic!("{name}: the ICMP error reply is not IPv4");
            };
            assert_eq!(ip.protocol, 1, "{name}: the error reply is not ICMP");
            assert_eq!(
                plain_checksum(&reply[ip.transport_offset()..ip.end()]),
                0,
                "{name}: the ICMP error reply's checksum"
            );
        }
        Verdict::Drop(_) => assert!(reply.is_empty(), "{name}: a reply without a reply verdict"),
    }
}
