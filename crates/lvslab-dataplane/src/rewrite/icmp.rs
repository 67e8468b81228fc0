//! ICMP errors: the ones the director originates (time exceeded, fragmentation needed) and
//! the translation of errors about tracked NAT/FullNAT flows.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{check_ttl, finish, parse_ipv4_frame, set_macs, Egress, Verdict};
use crate::packet::checksum;
use crate::packet::frame::{icmp_type, proto, ETHERTYPE_IPV4};
use crate::packet::{mangle, DropReason, Ipv4Info, Transport};

/// An error the director sends about a packet it will not forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IcmpError {
    /// Type 11 code 0: TTL exceeded in transit.
    TtlExceeded,
    /// Type 3 code 4 with the next-hop MTU in the low 16 bits of the rest-of-header word.
    FragmentationNeeded { mtu: usize },
}

impl IcmpError {
    pub(super) fn drop_reason(self) -> DropReason {
        match self {
            IcmpError::TtlExceeded => DropReason::TtlExpired,
            IcmpError::FragmentationNeeded { .. } => DropReason::NeedsFragmentation,
        }
    }

    fn header(self) -> [u8; 8] {
        let (ty, code, rest) = match self {
            IcmpError::TtlExceeded => (icmp_type::TIME_EXCEEDED, 0, 0u32),
            IcmpError::FragmentationNeeded { mtu } => (
                icmp_type::DEST_UNREACH,
                4,
                u32::from(u16::try_from(mtu).unwrap_or(u16::MAX)),
            ),
        };
        let mut header = [ty, code, 0, 0, 0, 0, 0, 0];
        header[4..].copy_from_slice(&rest.to_be_bytes());
        header
    }
}

/// Largest IP datagram an ICMP error may make (RFC 1812 §4.3.2.3; the kernel's `icmp_send`
/// caps at 576 bytes), so at most 576 − 20 − 8 bytes of the offending packet are quoted.
const MAX_ERROR_DATAGRAM: usize = 576;

/// IP precedence "internetwork control", which the kernel ORs into the TOS of ICMP errors.
const PRECEDENCE_INTERNETCONTROL: u8 = 0xc0;

/// The TOS bits the kernel keeps from the offending packet (`IPTOS_TOS_MASK`).
const TOS_MASK: u8 = 0x1e;

/// Builds the frame of an ICMP error about the IPv4 packet `ip` in `frame`, the way the
/// kernel's `icmp_send` does: the packet is quoted from its IP header on (as much as fits in
/// 576 bytes); the error's TOS keeps the quoted TOS bits with precedence 6, TTL is the default
/// 64, DF is clear (the kernel's ICMP socket does not do PMTU discovery) and the IP ID is
/// 0 (the kernel's ID generator is not modelled). The frame goes back the way the packet came:
/// its MACs are swapped. Returns false, leaving `out` empty, when the kernel sends nothing:
/// for a packet that is itself an ICMP error, and for a source that is not unicast.
pub(super) fn build_error(
    frame: &[u8],
    ip: &Ipv4Info,
    error: IcmpError,
    source: Ipv4Addr,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    let about_an_error = matches!(ip.transport, Transport::Icmp(i) if icmp_type::is_error(i.ty));
    let src = ip.src;
    if about_an_error || src.is_unspecified() || src.is_broadcast() || src.is_multicast() {
        return false;
    }
    let quoted_len = ip.total_len.min(MAX_ERROR_DATAGRAM - 20 - 8);
    let quoted = &frame[ip.offset..ip.offset + quoted_len];
    let total_len = u16::try_from(20 + 8 + quoted_len).unwrap_or(u16::MAX);

    out.extend_from_slice(&frame[6..12]);
    out.extend_from_slice(&frame[0..6]);
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let l3 = out.len();
    out.extend_from_slice(&[0x45, (ip.tos & TOS_MASK) | PRECEDENCE_INTERNETCONTROL]);
    out.extend_from_slice(&total_len.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, super::DEFAULT_TTL, proto::ICMP, 0, 0]);
    out.extend_from_slice(&source.octets());
    out.extend_from_slice(&src.octets());
    let ip_sum = checksum::checksum(&out[l3..]);
    out[l3 + 10..l3 + 12].copy_from_slice(&ip_sum.to_be_bytes());

    let l4 = out.len();
    out.extend_from_slice(&error.header());
    out.extend_from_slice(quoted);
    let icmp_sum = checksum::checksum(&out[l4..]);
    out[l4 + 2..l4 + 4].copy_from_slice(&icmp_sum.to_be_bytes());
    true
}

/// How to rewrite an ICMP error about a tracked flow so each side sees its own addresses.
/// `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpTranslation {
    /// New outer source address.
    pub outer_src: Option<Ipv4Addr>,
    /// New outer destination address.
    pub outer_dst: Option<Ipv4Addr>,
    /// New source address and port of the quoted packet.
    pub quoted_src: Option<SocketAddrV4>,
    /// New destination address and port of the quoted packet.
    pub quoted_dst: Option<SocketAddrV4>,
    /// Where the translated error leaves.
    pub egress: Egress,
}

impl IcmpTranslation {
    /// NAT, error from the real server's side about a request it got (`ip_vs_nat_icmp`
    /// "out"): outer source := VIP; quoted destination := VIP:vport.
    pub fn nat_from_real_server(virtual_service: SocketAddrV4, egress: Egress) -> Self {
        IcmpTranslation {
            outer_src: Some(*virtual_service.ip()),
            outer_dst: None,
            quoted_src: None,
            quoted_dst: Some(virtual_service),
            egress,
        }
    }

    /// NAT, error from the client's side about a reply it got (`ip_vs_nat_icmp` "in"):
    /// outer destination := RIP; quoted source := RIP:rport.
    pub fn nat_from_client(real: SocketAddrV4, egress: Egress) -> Self {
        IcmpTranslation {
            outer_src: None,
            outer_dst: Some(*real.ip()),
            quoted_src: Some(real),
            quoted_dst: None,
            egress,
        }
    }

    /// FullNAT, error from the real server's side (about LIP:lport → RIP:rport): outer
    /// VIP → CIP; quoted CIP:cport → VIP:vport, the packet the client sent.
    pub fn fullnat_from_real_server(
        virtual_service: SocketAddrV4,
        client: SocketAddrV4,
        egress: Egress,
    ) -> Self {
        IcmpTranslation {
            outer_src: Some(*virtual_service.ip()),
            outer_dst: Some(*client.ip()),
            quoted_src: Some(client),
            quoted_dst: Some(virtual_service),
            egress,
        }
    }

    /// FullNAT, error from the client's side (about VIP:vport → CIP:cport): outer LIP → RIP;
    /// quoted RIP:rport → LIP:lport, the packet the real server sent.
    pub fn fullnat_from_client(local: SocketAddrV4, real: SocketAddrV4, egress: Egress) -> Self {
        IcmpTranslation {
            outer_src: Some(*local.ip()),
            outer_dst: Some(*real.ip()),
            quoted_src: Some(real),
            quoted_dst: Some(local),
            egress,
        }
    }
}

/// Translates an ICMP error about a tracked flow (`ip_vs_in_icmp` / `ip_vs_out_icmp` with
/// `ip_vs_nat_icmp`). Only dest-unreachable, source-quench and time-exceeded are relayed; the
/// ICMP checksum is validated first. The outer addresses are rewritten with incremental
/// header-checksum updates; the quoted IP header's checksum and the whole ICMP checksum are
/// recomputed, as the kernel does; the quoted TCP/UDP checksum is **not** fixed (the kernel
/// leaves it, spec trap 28). The relayed error passes the transmit TTL rule like any packet,
/// but never triggers an ICMP error itself and skips the MTU check.
pub fn translate_icmp_error(frame: &mut [u8], how: &IcmpTranslation) -> Verdict {
    finish(translate(frame, how))
}

fn translate(frame: &mut [u8], how: &IcmpTranslation) -> Result<(), Verdict> {
    let mut ip = parse_ipv4_frame(frame)?;
    let Transport::Icmp(icmp) = ip.transport else {
        return Err(DropReason::NotIcmpError.into());
    };
    let relayed = [
        icmp_type::DEST_UNREACH,
        icmp_type::SOURCE_QUENCH,
        icmp_type::TIME_EXCEEDED,
    ];
    if !relayed.contains(&icmp.ty) {
        return Err(DropReason::NotIcmpError.into());
    }
    let (l4, end) = (ip.transport_offset(), ip.end());
    if checksum::checksum(&frame[l4..end]) != 0 {
        return Err(DropReason::BadIcmpChecksum.into());
    }
    let quoted = icmp.quoted.ok_or(DropReason::QuotedPacketTruncated)?;
    if !matches!(quoted.protocol, proto::TCP | proto::UDP) {
        return Err(DropReason::UnknownProtocol.into());
    }
    if quoted.ports.is_none() {
        return Err(DropReason::QuotedPacketTruncated.into());
    }
    // No error is ever sent about an ICMP error, so the reply buffer stays unused.
    check_ttl(frame, &ip, ip.dst, &mut Vec::new())?;
    mangle::decrement_ttl(frame, &mut ip);

    if let Some(src) = how.outer_src {
        mangle::set_src(frame, &mut ip, src);
    }
    if let Some(dst) = how.outer_dst {
        mangle::set_dst(frame, &mut ip, dst);
    }
    let q = quoted.offset;
    let quoted_ports = q + quoted.header_len;
    if let Some(src) = how.quoted_src {
        frame[q + 12..q + 16].copy_from_slice(&src.ip().octets());
        frame[quoted_ports..quoted_ports + 2].copy_from_slice(&src.port().to_be_bytes());
    }
    if let Some(dst) = how.quoted_dst {
        frame[q + 16..q + 20].copy_from_slice(&dst.ip().octets());
        frame[quoted_ports + 2..quoted_ports + 4].copy_from_slice(&dst.port().to_be_bytes());
    }
    frame[q + 10..q + 12].fill(0);
    let quoted_sum = checksum::checksum(&frame[q..q + quoted.header_len]);
    frame[q + 10..q + 12].copy_from_slice(&quoted_sum.to_be_bytes());
    frame[l4 + 2..l4 + 4].fill(0);
    let icmp_sum = checksum::checksum(&frame[l4..end]);
    frame[l4 + 2..l4 + 4].copy_from_slice(&icmp_sum.to_be_bytes());
    set_macs(frame, &how.egress);
    Ok(())
}
