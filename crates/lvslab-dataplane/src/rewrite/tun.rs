//! VS/TUN (`ip_vs_tunnel_xmit`): IPIP or GRE encapsulation on the director, and the
//! decapsulation our userspace tunnel endpoint does on real servers without ipip/gre.

use std::net::Ipv4Addr;

use lvslab_spec::lb::Encap;

use super::{check_mtu, check_ttl, finish, parse_ipv4_frame, set_macs, Egress, Verdict};
use crate::packet::checksum;
use crate::packet::frame::{be16, proto, ETHERNET_HEADER_LEN, IPV4_HEADER_LEN};
use crate::packet::{mangle, parse_frame, DropReason, Payload};

/// Where a tunnelled request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunRequest {
    /// Encapsulation (IPIP or GRE; GUE is refused).
    pub tunnel: Encap,
    /// Outer source: the preferred source address of the director's route to the RIP.
    pub local: Ipv4Addr,
    /// Outer destination: the real server.
    pub real: Ipv4Addr,
    /// Next hop toward the real server and the route MTU.
    pub egress: Egress,
    /// `net.ipv4.vs.pmtu_disc` (default 1): copy DF to the outer header and send
    /// frag-needed for DF packets that do not fit; 0 clears outer DF and skips the check.
    pub pmtu_disc: bool,
    /// Outer IP ID (the kernel takes it from its IP-ID generator).
    pub ip_id: u16,
}

/// Smallest MTU an IPv4 link may have (RFC 791); a tunnel route below it is unusable.
const MIN_IPV4_MTU: usize = 68;

/// GRE protocol type of an IPv4 payload.
const GRE_PROTO_IPV4: u16 = 0x0800;

/// ECN codepoint "congestion experienced".
const ECN_CE: u8 = 0b11;
/// ECN codepoint ECT(0).
const ECN_ECT0: u8 = 0b10;

fn encapsulation_len(tunnel: Encap) -> Result<usize, DropReason> {
    match tunnel {
        Encap::Ipip => Ok(0),
        Encap::Gre => Ok(4),
        Encap::Gue => Err(DropReason::UnsupportedTunnel),
    }
}

/// Encapsulates a request for a TUN real server (spec §2.5). The inner packet is the client's,
/// with TTL − 1 (ICMP time-exceeded from the VIP at TTL ≤ 1). The usable MTU is the route MTU
/// minus 20 (outer IPv4) minus 4 for GRE; below 68 the packet is dropped; with `pmtu_disc`
/// a DF packet longer than that gets ICMP frag-needed (type 3 code 4, next-hop MTU = that
/// value) from the VIP. The outer header is IPv4 without options: TOS = inner DSCP with ECN
/// encapsulated per RFC 6040 (inner CE → ECT(0), else copied), DF = inner DF when
/// `pmtu_disc`, TTL = inner TTL after the decrement, protocol 4 (IPIP) or 47 (GRE with a
/// 4-byte header: no flags, protocol 0x0800), `local` → `real`. Ethernet padding after the
/// inner packet is removed.
pub fn tun_request(frame: &mut Vec<u8>, to: &TunRequest, reply: &mut Vec<u8>) -> Verdict {
    reply.clear();
    finish(tun_request_steps(frame, to, reply))
}

fn tun_request_steps(
    frame: &mut Vec<u8>,
    to: &TunRequest,
    reply: &mut Vec<u8>,
) -> Result<(), Verdict> {
    let mut ip = parse_ipv4_frame(frame)?;
    let encap_len = encapsulation_len(to.tunnel)?;
    let vip = ip.dst;
    let mtu = usize::from(to.egress.mtu).saturating_sub(IPV4_HEADER_LEN + encap_len);
    check_ttl(frame, &ip, vip, reply)?;
    mangle::decrement_ttl(frame, &mut ip);
    if mtu < MIN_IPV4_MTU {
        return Err(DropReason::TunnelMtuTooSmall.into());
    }
    if to.pmtu_disc {
        check_mtu(frame, &ip, mtu, vip, reply)?;
    }
    let outer_len = IPV4_HEADER_LEN + encap_len + ip.total_len;
    if outer_len > usize::from(to.egress.mtu) {
        // Only reachable without pmtu_disc: the kernel would fragment the outer packet.
        return Err(DropReason::NeedsFragmentation.into());
    }
    let (protocol, encap): (u8, &[u8]) = match to.tunnel {
        Encap::Gre => (proto::GRE, &[0, 0, 0x08, 0x00]),
        Encap::Ipip | Encap::Gue => (proto::IPIP, &[]),
    };
    let inner_ecn = ip.tos & 0b11;
    let outer_ecn = if inner_ecn == ECN_CE {
        ECN_ECT0
    } else {
        inner_ecn
    };
    let df = if to.pmtu_disc && ip.dont_fragment {
        0x40
    } else {
        0
    };
    let total = u16::try_from(outer_len).map_err(|_| DropReason::NeedsFragmentation)?;
    let mut outer = [0u8; IPV4_HEADER_LEN];
    outer[0] = 0x45;
    outer[1] = (ip.tos & !0b11) | outer_ecn;
    outer[2..4].copy_from_slice(&total.to_be_bytes());
    outer[4..6].copy_from_slice(&to.ip_id.to_be_bytes());
    outer[6] = df;
    outer[8] = ip.ttl;
    outer[9] = protocol;
    outer[12..16].copy_from_slice(&to.local.octets());
    outer[16..20].copy_from_slice(&to.real.octets());
    let sum = checksum::checksum(&outer);
    outer[10..12].copy_from_slice(&sum.to_be_bytes());

    frame.truncate(ip.end());
    let headers = outer.iter().chain(encap).copied();
    frame.splice(ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN, headers);
    set_macs(frame, &to.egress);
    Ok(())
}

/// Decapsulates a tunnelled frame on a real server (what `ipip_rcv` / `gre_rcv` do): the outer
/// IPv4 packet must carry protocol 4, or 47 with a GRE version 0 header for protocol 0x0800
/// (checksum, key and sequence fields are skipped; routing is refused). Returns the inner
/// IPv4 packet, to be written to a TUN device; its own checks are left to the receiving stack,
/// as the kernel leaves them to `ip_rcv` after decapsulation.
pub fn tun_decapsulate(frame: &[u8]) -> Result<&[u8], DropReason> {
    let info = parse_frame(frame)?;
    let Payload::Ipv4(outer) = info.payload else {
        return Err(DropReason::NotIpv4);
    };
    let payload = &frame[outer.transport_offset()..outer.end()];
    let inner = match outer.protocol {
        proto::IPIP => payload,
        proto::GRE => strip_gre(payload)?,
        _ => return Err(DropReason::NotTunnelled),
    };
    if inner.len() < IPV4_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    if inner[0] >> 4 != 4 {
        return Err(DropReason::BadIpVersion);
    }
    let inner_len = usize::from(be16(inner, 2));
    if inner_len < IPV4_HEADER_LEN {
        return Err(DropReason::BadTotalLength);
    }
    inner.get(..inner_len).ok_or(DropReason::Truncated)
}

fn strip_gre(gre: &[u8]) -> Result<&[u8], DropReason> {
    const CHECKSUM: u16 = 0x8000;
    const ROUTING: u16 = 0x4000;
    const KEY: u16 = 0x2000;
    const SEQUENCE: u16 = 0x1000;
    const VERSION: u16 = 0x0007;
    if gre.len() < 4 {
        return Err(DropReason::Truncated);
    }
    let flags = be16(gre, 0);
    if flags & (ROUTING | VERSION) != 0 || be16(gre, 2) != GRE_PROTO_IPV4 {
        return Err(DropReason::BadGreHeader);
    }
    let optional = [CHECKSUM, KEY, SEQUENCE]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count();
    gre.get(4 + 4 * optional..).ok_or(DropReason::Truncated)
}
