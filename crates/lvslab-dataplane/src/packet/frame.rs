//! Checked parsing of Ethernet frames into a small owned summary ([`FrameInfo`]) that records
//! the fields decisions need and the offsets rewrites use. Once a frame has parsed, every offset
//! in its summary is inside the frame, so rewrites can index without further checks.

use std::net::Ipv4Addr;

use super::checksum;
use super::DropReason;

/// An Ethernet (MAC) address.
pub use lvslab_spec::MacAddr;

/// Length of an untagged Ethernet II header.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Length of an ARP packet for Ethernet/IPv4.
pub const ARP_LEN: usize = 28;
/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;

/// IP protocol numbers the engine knows.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4 in IPv4 (IPIP).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// Generic Routing Encapsulation.
    pub const GRE: u8 = 47;
}

/// ICMP types the engine reads or produces.
pub mod icmp_type {
    /// Destination unreachable (code 4: fragmentation needed).
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench.
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Time exceeded (code 0: TTL exceeded in transit).
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;

    /// Whether an ICMP message of this type is an error that quotes a packet (RFC 1122
    /// §3.2.2; the kernel's `icmp_is_err`). No ICMP error is ever sent about one of these.
    pub fn is_error(ty: u8) -> bool {
        matches!(
            ty,
            DEST_UNREACH | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETER_PROBLEM
        )
    }
}

/// TCP header flag bits (low byte of header word 6).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// What a parsed Ethernet frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// Source MAC.
    pub src_mac: MacAddr,
    /// The EtherType.
    pub ethertype: u16,
    /// The parsed payload.
    pub payload: Payload,
}

/// Payload of an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Ethernet/IPv4 ARP.
    Arp(ArpInfo),
    /// A valid, unfragmented IPv4 packet.
    Ipv4(Ipv4Info),
    /// Anything else (IPv6, VLAN tags, LLDP, …): passed through untouched.
    Other,
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpInfo {
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

/// A checked IPv4 packet inside a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Offset of the IPv4 header in the frame.
    pub offset: usize,
    /// Header length in bytes (IHL × 4), options included.
    pub header_len: usize,
    /// Total length from the header; the frame may carry padding after it.
    pub total_len: usize,
    /// TOS / DSCP+ECN byte.
    pub tos: u8,
    /// Don't-fragment flag.
    pub dont_fragment: bool,
    /// Time to live.
    pub ttl: u8,
    /// Protocol number.
    pub protocol: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// The transport header.
    pub transport: Transport,
}

impl Ipv4Info {
    /// Offset just past the IPv4 packet (where Ethernet padding, if any, begins).
    pub fn end(&self) -> usize {
        self.offset + self.total_len
    }

    /// Offset of the transport header.
    pub fn transport_offset(&self) -> usize {
        self.offset + self.header_len
    }

    /// Source and destination ports for TCP and UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport {
            Transport::Tcp(TcpInfo {
                src_port, dst_port, ..
            })
            | Transport::Udp(UdpInfo {
                src_port, dst_port, ..
            }) => Some((src_port, dst_port)),
            Transport::Icmp(_) | Transport::Other => None,
        }
    }
}

/// The transport header of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP with a consistent data offset.
    Tcp(TcpInfo),
    /// UDP whose length field matches the IP payload.
    Udp(UdpInfo),
    /// ICMP, with the packet it quotes if it is an error.
    Icmp(IcmpInfo),
    /// Any other protocol: only the IP header is known.
    Other,
}

/// A TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Header length in bytes (data offset × 4).
    pub header_len: usize,
    /// Flag bits, see [`tcp_flags`].
    pub flags: u8,
}

/// A UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpInfo {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Checksum as sent; 0 means the sender computed none.
    pub checksum: u16,
}

/// An ICMP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpInfo {
    /// Type.
    pub ty: u8,
    /// Code.
    pub code: u8,
    /// For errors: the quoted packet, when its IP header is complete.
    pub quoted: Option<QuotedPacket>,
}

/// The original packet an ICMP error quotes (its first bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedPacket {
    /// Offset of the quoted IPv4 header in the frame.
    pub offset: usize,
    /// Its header length.
    pub header_len: usize,
    /// Its protocol.
    pub protocol: u8,
    /// Its source.
    pub src: Ipv4Addr,
    /// Its destination.
    pub dst: Ipv4Addr,
    /// Source and destination ports, when the quoted protocol has them and they are present.
    pub ports: Option<(u16, u16)>,
}

pub(crate) fn be16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

pub(crate) fn be32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn mac(buf: &[u8], at: usize) -> MacAddr {
    let mut m = [0; 6];
    m.copy_from_slice(&buf[at..at + 6]);
    MacAddr(m)
}

fn ipv4(buf: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(be32(buf, at))
}

/// Parses an Ethernet II frame. IPv4 is checked the way the kernel's `ip_rcv` checks it
/// (version, IHL, total length, header checksum) and fragments are refused because the engine
/// sees packets before any reassembly; transport headers are checked for consistent lengths.
/// Other EtherTypes parse as [`Payload::Other`] so the caller can pass them on unchanged.
pub fn parse_frame(frame: &[u8]) -> Result<FrameInfo, DropReason> {
    if frame.len() < ETHERNET_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let ethertype = be16(frame, 12);
    let payload = match ethertype {
        ETHERTYPE_IPV4 => Payload::Ipv4(parse_ipv4(frame, ETHERNET_HEADER_LEN)?),
        ETHERTYPE_ARP => Payload::Arp(parse_arp(frame, ETHERNET_HEADER_LEN)?),
        _ => Payload::Other,
    };
    Ok(FrameInfo {
        dst_mac: mac(frame, 0),
        src_mac: mac(frame, 6),
        ethertype,
        payload,
    })
}

fn parse_arp(frame: &[u8], at: usize) -> Result<ArpInfo, DropReason> {
    let arp = frame
        .get(at..at + ARP_LEN)
        .ok_or(DropReason::MalformedArp)?;
    let ethernet_ipv4 = be16(arp, 0) == 1 && be16(arp, 2) == ETHERTYPE_IPV4 && arp[4..6] == [6, 4];
    if !ethernet_ipv4 {
        return Err(DropReason::MalformedArp);
    }
    Ok(ArpInfo {
        operation: be16(arp, 6),
        sender_mac: mac(arp, 8),
        sender_ip: ipv4(arp, 14),
        target_mac: mac(arp, 18),
        target_ip: ipv4(arp, 24),
    })
}

/// Parses and checks the IPv4 packet that starts at `offset` in `frame`.
pub fn parse_ipv4(frame: &[u8], offset: usize) -> Result<Ipv4Info, DropReason> {
    let rest = frame.get(offset..).ok_or(DropReason::Truncated)?;
    if rest.len() < IPV4_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    if rest[0] >> 4 != 4 {
        return Err(DropReason::BadIpVersion);
    }
    let header_len = usize::from(rest[0] & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN {
        return Err(DropReason::BadHeaderLength);
    }
    if rest.len() < header_len {
        return Err(DropReason::Truncated);
    }
    let total_len = usize::from(be16(rest, 2));
    if total_len < header_len {
        return Err(DropReason::BadTotalLength);
    }
    if rest.len() < total_len {
        return Err(DropReason::Truncated);
    }
    if checksum::checksum(&rest[..header_len]) != 0 {
        return Err(DropReason::BadIpChecksum);
    }
    let flags_fragment = be16(rest, 6);
    let more_fragments = flags_fragment & 0x2000 != 0;
    if more_fragments || flags_fragment & 0x1fff != 0 {
        return Err(DropReason::Fragment);
    }
    let protocol = rest[9];
    let l4 = offset + header_len;
    let transport = parse_transport(frame, l4, offset + total_len, protocol)?;
    Ok(Ipv4Info {
        offset,
        header_len,
        total_len,
        tos: rest[1],
        dont_fragment: flags_fragment & 0x4000 != 0,
        ttl: rest[8],
        protocol,
        src: ipv4(rest, 12),
        dst: ipv4(rest, 16),
        transport,
    })
}

fn parse_transport(
    frame: &[u8],
    start: usize,
    end: usize,
    protocol: u8,
) -> Result<Transport, DropReason> {
    let segment = &frame[start..end];
    match protocol {
        proto::TCP => {
            if segment.len() < 20 {
                return Err(DropReason::Truncated);
            }
            let header_len = usize::from(segment[12] >> 4) * 4;
            if header_len < 20 || header_len > segment.len() {
                return Err(DropReason::BadTransportHeader);
            }
            Ok(Transport::Tcp(TcpInfo {
                src_port: be16(segment, 0),
                dst_port: be16(segment, 2),
                seq: be32(segment, 4),
                ack: be32(segment, 8),
                header_len,
                flags: segment[13],
            }))
        }
        proto::UDP => {
            if segment.len() < 8 {
                return Err(DropReason::Truncated);
            }
            // A UDP length shorter than the IP payload is legal but makes the checksum span
            // ambiguous for rewriting; no stack sends it, so it is refused.
            if usize::from(be16(segment, 4)) != segment.len() {
                return Err(DropReason::BadTransportHeader);
            }
            Ok(Transport::Udp(UdpInfo {
                src_port: be16(segment, 0),
                dst_port: be16(segment, 2),
                checksum: be16(segment, 6),
            }))
        }
        proto::ICMP => {
            if segment.len() < 8 {
                return Err(DropReason::Truncated);
            }
            let ty = segment[0];
            let quoted = if icmp_type::is_error(ty) {
                parse_quoted(frame, start + 8, end)
            } else {
                None
            };
            Ok(Transport::Icmp(IcmpInfo {
                ty,
                code: segment[1],
                quoted,
            }))
        }
        _ => Ok(Transport::Other),
    }
}

/// The quoted packet of an ICMP error is cut short by design and its length fields describe the
/// original, so only its header is checked for being present and IPv4.
fn parse_quoted(frame: &[u8], offset: usize, end: usize) -> Option<QuotedPacket> {
    let quoted = frame.get(offset..end)?;
    if quoted.len() < IPV4_HEADER_LEN || quoted[0] >> 4 != 4 {
        return None;
    }
    let header_len = usize::from(quoted[0] & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN || header_len > quoted.len() {
        return None;
    }
    let protocol = quoted[9];
    let first_fragment = be16(quoted, 6) & 0x1fff == 0;
    let has_ports = matches!(protocol, proto::TCP | proto::UDP) && first_fragment;
    let ports = (has_ports && quoted.len() >= header_len + 4)
        .then(|| (be16(quoted, header_len), be16(quoted, header_len + 2)));
    Some(QuotedPacket {
        offset,
        header_len,
        protocol,
        src: ipv4(quoted, 12),
        dst: ipv4(quoted, 16),
        ports,
    })
}
