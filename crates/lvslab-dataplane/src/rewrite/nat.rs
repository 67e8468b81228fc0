//! VS/NAT (masquerading, `ip_vs_nat_xmit` and the TCP/UDP `dnat`/`snat` handlers).

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{finish, forwarding_checks, ipvs_transmit_checks, parse_ipv4_frame, require_ports};
use super::{set_macs, Egress, Verdict};
use crate::packet::mangle;

/// Where a NAT request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatRequest {
    /// The real server's address and port (`RIP:rport`).
    pub real: SocketAddrV4,
    /// Next hop toward the real server.
    pub egress: Egress,
}

/// How a NAT reply leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatReply {
    /// The virtual service (`VIP:vport`) the reply must appear to come from.
    pub virtual_service: SocketAddrV4,
    /// Next hop toward the client.
    pub egress: Egress,
    /// The director's address on the real servers' side: the source of ICMP errors the
    /// forwarding path sends back to the real server.
    pub director: Ipv4Addr,
}

/// Rewrites a client's request to a NAT real server (spec §2.3 inbound): destination
/// `VIP:vport` → `RIP:rport`, source kept; TTL − 1 with ICMP time-exceeded from the VIP at
/// TTL ≤ 1 and ICMP frag-needed from the VIP for a DF packet over the route MTU (both before
/// the address change, as in `ip_vs_nat_xmit`); MACs set for the next hop. The IP and TCP/UDP
/// checksums are updated incrementally; a UDP checksum of 0 is replaced by a full one.
pub fn nat_request(frame: &mut [u8], to: &NatRequest, reply: &mut Vec<u8>) -> Verdict {
    reply.clear();
    finish(nat_request_steps(frame, to, reply))
}

fn nat_request_steps(
    frame: &mut [u8],
    to: &NatRequest,
    reply: &mut Vec<u8>,
) -> Result<(), Verdict> {
    let mut ip = parse_ipv4_frame(frame)?;
    require_ports(&ip)?;
    let vip = ip.dst;
    let mtu = usize::from(to.egress.mtu);
    ipvs_transmit_checks(frame, &mut ip, mtu, vip, reply)?;
    mangle::set_dst(frame, &mut ip, *to.real.ip());
    mangle::set_dst_port(frame, &mut ip, to.real.port());
    mangle::finish_udp_checksum(frame, &mut ip);
    set_macs(frame, &to.egress);
    Ok(())
}

/// Rewrites a real server's reply on a NAT connection (spec §2.3 outbound): source
/// `RIP:rport` → `VIP:vport`, destination kept. Replies take the kernel's forwarding path,
/// so its rules apply first: TTL ≤ 1 → ICMP time-exceeded, DF over the MTU → ICMP
/// frag-needed (both from the director's inside address, to the real server), then TTL − 1.
/// Checksums as for [`nat_request`].
pub fn nat_reply(frame: &mut [u8], to: &NatReply, reply: &mut Vec<u8>) -> Verdict {
    reply.clear();
    finish(nat_reply_steps(frame, to, reply))
}

fn nat_reply_steps(frame: &mut [u8], to: &NatReply, reply: &mut Vec<u8>) -> Result<(), Verdict> {
    let mut ip = parse_ipv4_frame(frame)?;
    require_ports(&ip)?;
    let mtu = usize::from(to.egress.mtu);
    forwarding_checks(frame, &mut ip, mtu, to.director, reply)?;
    mangle::set_src(frame, &mut ip, *to.virtual_service.ip());
    mangle::set_src_port(frame, &mut ip, to.virtual_service.port());
    mangle::finish_udp_checksum(frame, &mut ip);
    set_macs(frame, &to.egress);
    Ok(())
}
