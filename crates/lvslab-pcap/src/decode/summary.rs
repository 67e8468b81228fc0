//! What a frame decodes to: one summary per frame, layer by layer, with the checksum state
//! of each layer that has one.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::MacAddr;
use crate::pcapng::PacketDirection;

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
