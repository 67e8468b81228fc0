//! Frame → [`PacketSummary`]: Ethernet, ARP, IPv4, ICMP (with the embedded original header of
//! errors), TCP, UDP, and IPv4 carried in IPv4 (IPIP, protocol 4) or GRE (47, 0x0800), nested
//! to any depth. Decoding never panics: where a frame stops making sense, the summary keeps what
//! was understood and says why it stopped in `malformed`.

use std::fmt;
use std::net::Ipv4Addr;

use etherparse::{Ethernet2HeaderSlice, Ipv4HeaderSlice, TcpHeaderSlice, UdpHeaderSlice};
use serde::{Deserialize, Serialize};

use crate::pcapng::{Capture, LinkType, PacketDirection};
pub use lvslab_spec::MacAddr;

/// State of one checksum field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Checksum {
    /// The field matches the data.
    Valid,
    /// The field does not match and the frame was not flagged or shaped as offload-pending.
    Invalid {
        /// Value in the packet.
        found: u16,
        /// Value a full computation gives.
        expected: u16,
    },
    /// Checksum offload had not completed when the frame was captured: the field holds only
    /// the pseudo-header sum (or the capture side flagged it). Not corruption.
    Partial,
    /// UDP over IPv4 with checksum 0: the sender chose not to compute one.
    Absent,
    /// Could not be checked (frame cut by the snap length, or a fragment).
    Unverifiable,
}

impl Checksum {
    /// Whether this state indicates a damaged packet.
    pub fn is_bad(self) -> bool {
        matches!(self, Checksum::Invalid { .. })
    }
}

/// TCP flags byte (FIN 0x01 … CWR 0x80), shown tcpdump-style (`S.` = SYN+ACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// Whether every bit of `mask` is set.
    pub fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        for (bit, c) in [
            (0x02, 'S'),
            (0x01, 'F'),
            (0x04, 'R'),
            (0x08, 'P'),
            (0x20, 'U'),
        ] {
            if self.0 & bit != 0 {
                s.push(c);
            }
        }
        if self.0 & 0x10 != 0 {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        f.write_str(&s)
    }
}

impl Serialize for TcpFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for TcpFlags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u8::deserialize(d).map(TcpFlags)
    }
}

/// Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthSummary {
    /// Source MAC.
    pub src: MacAddr,
    /// Destination MAC.
    pub dst: MacAddr,
    /// EtherType.
    pub ethertype: u16,
}

/// ARP for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArpSummary {
    /// 1 request, 2 reply.
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

/// How the next IPv4 layer is carried inside this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TunnelHeader {
    /// IPv4 directly in IPv4 (protocol 4).
    Ipip,
    /// GRE (protocol 47) with the given payload protocol type (0x0800 = IPv4).
    Gre {
        /// GRE protocol type field.
        protocol: u16,
        /// Whether the GRE checksum bit was set.
        checksum: bool,
    },
}

/// One IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4Summary {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Protocol number.
    pub proto: u8,
    /// Identification.
    pub id: u16,
    /// Don't-fragment bit.
    pub df: bool,
    /// More-fragments bit.
    pub mf: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// Type-of-service byte (DSCP << 2 | ECN).
    pub tos: u8,
    /// Total length from the header.
    pub total_len: u16,
    /// Header checksum state.
    pub header_checksum: Checksum,
    /// Set when this header carries another IPv4 header.
    pub encap: Option<TunnelHeader>,
}

/// TCP header and payload facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSummary {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with ACK).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field.
    pub window: u16,
    /// Payload length (from the IP total length, not the captured length).
    pub payload_len: u32,
    /// FNV-1a 64 of the captured payload bytes.
    pub payload_hash: u64,
    /// Checksum state.
    pub checksum: Checksum,
}

/// UDP header and payload facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpSummary {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Payload length.
    pub payload_len: u32,
    /// FNV-1a 64 of the captured payload bytes.
    pub payload_hash: u64,
    /// Checksum state.
    pub checksum: Checksum,
}

/// The original packet an ICMP error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedSummary {
    /// Source address of the quoted packet.
    pub src: Ipv4Addr,
    /// Destination address of the quoted packet.
    pub dst: Ipv4Addr,
    /// Protocol of the quoted packet.
    pub proto: u8,
    /// Identification of the quoted packet.
    pub id: u16,
    /// TTL of the quoted packet.
    pub ttl: u8,
    /// Source port (TCP/UDP), if quoted.
    pub sport: Option<u16>,
    /// Destination port (TCP/UDP), if quoted.
    pub dport: Option<u16>,
}

/// ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcmpSummary {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Echo identifier and sequence (types 0 and 8).
    pub echo: Option<(u16, u16)>,
    /// Bytes after the 8-byte ICMP header.
    pub payload_len: u32,
    /// FNV-1a 64 of those bytes.
    pub payload_hash: u64,
    /// Checksum state.
    pub checksum: Checksum,
    /// For errors (3, 4, 5, 11, 12): the quoted original header.
    pub embedded: Option<EmbeddedSummary>,
}

/// Transport layer of the innermost IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum L4Summary {
    /// TCP.
    Tcp(TcpSummary),
    /// UDP.
    Udp(UdpSummary),
    /// ICMP.
    Icmp(IcmpSummary),
    /// Anything else: protocol number and payload facts.
    Other {
        /// Protocol number.
        proto: u8,
        /// Payload length.
        payload_len: u32,
        /// FNV-1a 64 of the payload.
        payload_hash: u64,
    },
}

impl L4Summary {
    /// (source, destination) ports for TCP/UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self {
            L4Summary::Tcp(t) => Some((t.sport, t.dport)),
            L4Summary::Udp(u) => Some((u.sport, u.dport)),
            _ => None,
        }
    }

    /// Payload (length, hash).
    pub fn payload(&self) -> (u32, u64) {
        match self {
            L4Summary::Tcp(t) => (t.payload_len, t.payload_hash),
            L4Summary::Udp(u) => (u.payload_len, u.payload_hash),
            L4Summary::Icmp(i) => (i.payload_len, i.payload_hash),
            L4Summary::Other {
                payload_len,
                payload_hash,
                ..
            } => (*payload_len, *payload_hash),
        }
    }
}

/// Everything the assertions need to know about one captured frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketSummary {
    /// Capture point `node:iface`.
    pub point: String,
    /// 1-based frame number in its capture file.
    pub frame: u64,
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub len: u32,
    /// Direction, if the capture recorded it.
    pub direction: Option<PacketDirection>,
    /// Ethernet header (absent for raw-IP capture points).
    pub eth: Option<EthSummary>,
    /// ARP body.
    pub arp: Option<ArpSummary>,
    /// IPv4 headers, outermost first; the last one is the innermost packet.
    pub ip: Vec<Ipv4Summary>,
    /// Transport layer of the innermost IPv4 header.
    pub l4: Option<L4Summary>,
    /// The capture side flagged the L4 checksum as not yet computed.
    pub csum_not_ready: bool,
    /// Why decoding stopped early, if it did.
    pub malformed: Option<String>,
}

impl PacketSummary {
    /// The innermost IPv4 header.
    pub fn inner(&self) -> Option<&Ipv4Summary> {
        self.ip.last()
    }

    /// `tcp` / `udp` / `icmp` / `ip` / `arp` / `eth`, for paths and labels.
    pub fn l4_name(&self) -> &'static str {
        match (&self.l4, &self.arp) {
            (Some(L4Summary::Tcp(_)), _) => "tcp",
            (Some(L4Summary::Udp(_)), _) => "udp",
            (Some(L4Summary::Icmp(_)), _) => "icmp",
            (Some(L4Summary::Other { .. }), _) => "ip",
            (None, Some(_)) => "arp",
            (None, None) => "eth",
        }
    }

    /// One-line description in the style of tcpdump.
    pub fn describe(&self) -> String {
        if let Some(a) = &self.arp {
            return match a.operation {
                1 => format!("ARP who-has {} tell {}", a.target_ip, a.sender_ip),
                2 => format!("ARP {} is-at {}", a.sender_ip, a.sender_mac),
                op => format!("ARP op {op}"),
            };
        }
        let Some(inner) = self.inner() else {
            return match &self.malformed {
                Some(m) => format!("undecoded: {m}"),
                None => "non-IP frame".to_string(),
            };
        };
        let mut s = String::new();
        for outer in &self.ip[..self.ip.len() - 1] {
            let how = match outer.encap {
                Some(TunnelHeader::Gre { .. }) => "gre",
                _ => "ipip",
            };
            s.push_str(&format!("[{} > {} {how}] ", outer.src, outer.dst));
        }
        match &self.l4 {
            Some(L4Summary::Tcp(t)) => s.push_str(&format!(
                "{}:{} > {}:{} tcp [{}] seq {} ack {} len {}",
                inner.src, t.sport, inner.dst, t.dport, t.flags, t.seq, t.ack, t.payload_len
            )),
            Some(L4Summary::Udp(u)) => s.push_str(&format!(
                "{}:{} > {}:{} udp len {}",
                inner.src, u.sport, inner.dst, u.dport, u.payload_len
            )),
            Some(L4Summary::Icmp(i)) => s.push_str(&format!(
                "{} > {} icmp type {} code {}",
                inner.src, inner.dst, i.icmp_type, i.code
            )),
            _ => s.push_str(&format!(
                "{} > {} proto {}",
                inner.src, inner.dst, inner.proto
            )),
        }
        s.push_str(&format!(" ttl {} id {}", inner.ttl, inner.id));
        s
    }
}

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
fn ones_sum(data: &[u8], initial: u32) -> u16 {
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

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
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

/// Checks a TCP/UDP checksum at byte `field` of `segment` (the whole L4 segment).
/// Linux leaves the folded pseudo-header sum in the field of a CHECKSUM_PARTIAL packet
/// (`~tcp_v4_check(len, saddr, daddr, 0)`), so that shape is reported as `Partial`.
fn l4_checksum(
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

fn decode_ipv4(s: &mut PacketSummary, b: &[u8]) {
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
        let header_checksum = if ones_sum(hdr, 0) == 0xFFFF {
            Checksum::Valid
        } else {
            let mut z = hdr.to_vec();
            z[10] = 0;
            z[11] = 0;
            Checksum::Invalid {
                found: ip.header_checksum(),
                expected: !ones_sum(&z, 0),
            }
        };
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
        let not_ready = s.csum_not_ready;
        s.l4 = Some(decode_l4(
            s,
            src,
            dst,
            proto,
            payload,
            full_payload_len,
            truncated || fragment,
            not_ready,
        ));
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

#[allow(clippy::too_many_arguments)]
fn decode_l4(
    s: &mut PacketSummary,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload: &[u8],
    full_len: usize,
    incomplete: bool,
    not_ready: bool,
) -> L4Summary {
    let other = |payload: &[u8]| L4Summary::Other {
        proto,
        payload_len: full_len as u32,
        payload_hash: fnv1a64(payload),
    };
    match proto {
        6 => match TcpHeaderSlice::from_slice(payload) {
            Ok(t) => {
                let hl = t.slice().len();
                let data = &payload[hl..];
                let checksum = if incomplete {
                    Checksum::Unverifiable
                } else {
                    l4_checksum(src, dst, 6, payload, 16, not_ready)
                };
                L4Summary::Tcp(TcpSummary {
                    sport: t.source_port(),
                    dport: t.destination_port(),
                    seq: t.sequence_number(),
                    ack: t.acknowledgment_number(),
                    flags: TcpFlags(payload[13]),
                    window: t.window_size(),
                    payload_len: full_len.saturating_sub(hl) as u32,
                    payload_hash: fnv1a64(data),
                    checksum,
                })
            }
            Err(e) => {
                s.malformed = Some(format!("tcp: {e}"));
                other(payload)
            }
        },
        17 => match UdpHeaderSlice::from_slice(payload) {
            Ok(u) => {
                let checksum = if u.checksum() == 0 {
                    Checksum::Absent
                } else if incomplete {
                    Checksum::Unverifiable
                } else {
                    l4_checksum(src, dst, 17, payload, 6, not_ready)
                };
                L4Summary::Udp(UdpSummary {
                    sport: u.source_port(),
                    dport: u.destination_port(),
                    payload_len: full_len.saturating_sub(8) as u32,
                    payload_hash: fnv1a64(&payload[8..]),
                    checksum,
                })
            }
            Err(e) => {
                s.malformed = Some(format!("udp: {e}"));
                other(payload)
            }
        },
        1 if payload.len() >= 8 => {
            let icmp_type = payload[0];
            let code = payload[1];
            let checksum = if incomplete {
                Checksum::Unverifiable
            } else if ones_sum(payload, 0) == 0xFFFF {
                Checksum::Valid
            } else {
                let mut z = payload.to_vec();
                z[2] = 0;
                z[3] = 0;
                Checksum::Invalid {
                    found: u16::from_be_bytes([payload[2], payload[3]]),
                    expected: !ones_sum(&z, 0),
                }
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
            L4Summary::Icmp(IcmpSummary {
                icmp_type,
                code,
                echo,
                payload_len: full_len.saturating_sub(8) as u32,
                payload_hash: fnv1a64(body),
                checksum,
                embedded,
            })
        }
        1 => {
            s.malformed = Some("icmp: shorter than 8 bytes".into());
            other(payload)
        }
        _ => other(payload),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const A: [u8; 4] = [192, 0, 2, 1];
    const B: [u8; 4] = [198, 51, 100, 2];

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(A, B, 64)
            .tcp(40000, 80, 1000, 64240)
            .syn()
            .write(&mut v, payload)
            .expect("build");
        v
    }

    #[test]
    fn tcp_fields_and_valid_checksums() {
        let f = tcp_frame(b"hello");
        let s = decode_frame("client:eth0", 1, 5, LinkType::Ethernet, &f);
        assert_eq!(s.malformed, None);
        let ip = s.inner().expect("ip");
        assert_eq!(ip.src, Ipv4Addr::from(A));
        assert_eq!(ip.ttl, 64);
        assert_eq!(ip.header_checksum, Checksum::Valid);
        let Some(L4Summary::Tcp(t)) = s.l4 else {
            panic!("not tcp: {s:?}")
        };
        assert_eq!((t.sport, t.dport, t.seq), (40000, 80, 1000));
        assert!(t.flags.has(TcpFlags::SYN));
        assert_eq!(t.payload_len, 5);
        assert_eq!(t.payload_hash, fnv1a64(b"hello"));
        assert_eq!(t.checksum, Checksum::Valid);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut f = tcp_frame(b"");
        f.resize(60, 0);
        let s = decode_frame("p", 1, 0, LinkType::Ethernet, &f);
        let Some(L4Summary::Tcp(t)) = s.l4 else {
            panic!("not tcp")
        };
        assert_eq!(t.payload_len, 0);
        assert_eq!(t.checksum, Checksum::Valid);
    }

    #[test]
    fn corrupted_vs_offload_pending_checksum() {
        let mut f = tcp_frame(b"x");
        let at = 14 + 20 + 16;
        f[at] ^= 0x55;
        let s = decode_frame("p", 1, 0, LinkType::Ethernet, &f);
        let Some(L4Summary::Tcp(t)) = s.l4 else {
            panic!("not tcp")
        };
        assert!(t.checksum.is_bad());
        // What Linux leaves in the field of a CHECKSUM_PARTIAL skb: the folded pseudo sum.
        let seg_len = f.len() - 34;
        let partial = ones_sum(&[], pseudo_sum(A.into(), B.into(), 6, seg_len));
        f[at..at + 2].copy_from_slice(&partial.to_be_bytes());
        let s = decode_frame("p", 1, 0, LinkType::Ethernet, &f);
        let Some(L4Summary::Tcp(t)) = s.l4 else {
            panic!("not tcp")
        };
        assert_eq!(t.checksum, Checksum::Partial);
    }

    #[test]
    fn garbage_never_panics() {
        let f = tcp_frame(b"payload");
        for cut in 0..f.len() {
            let _ = decode_frame("p", 1, 0, LinkType::Ethernet, &f[..cut]);
            let _ = decode_frame("p", 1, 0, LinkType::RawIp, &f[14..cut.max(14)]);
        }
        let mut g = f.clone();
        for i in 0..g.len() {
            g[i] = g[i].wrapping_mul(31).wrapping_add(7);
            let _ = decode_frame("p", 1, 0, LinkType::Ethernet, &g);
        }
    }

    #[test]
    fn mac_parse_display() {
        let m: MacAddr = "02:00:0a:ff:00:01".parse().expect("mac");
        assert_eq!(m.to_string(), "02:00:0a:ff:00:01");
        assert!("02:00".parse::<MacAddr>().is_err());
    }
}
