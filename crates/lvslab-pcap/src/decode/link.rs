//! The link layer (Ethernet II, ARP, raw IP) and whole captures.

use std::net::Ipv4Addr;

use etherparse::Ethernet2HeaderSlice;

use super::ipv4::decode_ipv4;
use super::{ArpSummary, Checksum, EthSummary, L4Summary, MacAddr, PacketSummary};
use crate::pcapng::{Capture, LinkType};

/// Decodes every frame of a capture; `point` of each summary is its interface name.
pub fn decode_capture(cap: &Capture) -> Vec<PacketSummary> {
    cap.frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (point, linktype) = cap
                .interfaces
                .get(f.interface as usize)
                .map(|i| (i.name.clone(), i.linktype))
                .unwrap_or_else(|| (format!("interface{}", f.interface), LinkType::Ethernet));
            let mut s = decode_frame(&point, i as u64 + 1, f.ts_ns, linktype, &f.data);
            s.len = f.orig_len;
            s.direction = f.direction;
            if f.csum_not_ready() {
                s.csum_not_ready = true;
                mark_partial(&mut s);
            }
            s
        })
        .collect()
}

/// A frame flagged not-ready whose checksum looked invalid is re-labelled `Partial`.
fn mark_partial(s: &mut PacketSummary) {
    match &mut s.l4 {
        Some(L4Summary::Tcp(t)) if t.checksum.is_bad() => t.checksum = Checksum::Partial,
        Some(L4Summary::Udp(u)) if u.checksum.is_bad() => u.checksum = Checksum::Partial,
        _ => {}
    }
}

/// Decodes one frame captured at `point`.
pub fn decode_frame(
    point: &str,
    frame: u64,
    ts_ns: u64,
    linktype: LinkType,
    data: &[u8],
) -> PacketSummary {
    let mut s = PacketSummary {
        point: point.to_string(),
        frame,
        ts_ns,
        len: u32::try_from(data.len()).unwrap_or(u32::MAX),
        direction: None,
        eth: None,
        arp: None,
        ip: Vec::new(),
        l4: None,
        csum_not_ready: false,
        malformed: None,
    };
    match linktype {
        LinkType::Ethernet => match Ethernet2HeaderSlice::from_slice(data) {
            Ok(eth) => {
                let ethertype = eth.ether_type().0;
                s.eth = Some(EthSummary {
                    src: MacAddr(eth.source()),
                    dst: MacAddr(eth.destination()),
                    ethertype,
                });
                let rest = &data[eth.slice().len()..];
                match ethertype {
                    0x0800 => decode_ipv4(&mut s, rest),
                    0x0806 => decode_arp(&mut s, rest),
                    _ => {}
                }
            }
            Err(e) => s.malformed = Some(format!("ethernet: {e}")),
        },
        LinkType::RawIp => match data.first().map(|b| b >> 4) {
            Some(4) => decode_ipv4(&mut s, data),
            Some(v) => s.malformed = Some(format!("raw IP version {v} not decoded")),
            None => s.malformed = Some("empty frame".into()),
        },
        LinkType::Other(n) => s.malformed = Some(format!("link type {n} not decoded")),
    }
    s
}

fn decode_arp(s: &mut PacketSummary, b: &[u8]) {
    // Only IPv4-over-Ethernet ARP (htype 1, ptype 0x0800, hlen 6, plen 4) is of interest.
    if b.len() < 28 || b[0..2] != [0, 1] || b[2..4] != [8, 0] || b[4] != 6 || b[5] != 4 {
        s.malformed = Some("arp: not IPv4 over Ethernet or truncated".into());
        return;
    }
    let mac = |at: usize| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&b[at..at + 6]);
        MacAddr(m)
    };
    let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
    s.arp = Some(ArpSummary {
        operation: u16::from_be_bytes([b[6], b[7]]),
        sender_mac: mac(8),
        sender_ip: ip(14),
        target_mac: mac(18),
        target_ip: ip(24),
    });
}
