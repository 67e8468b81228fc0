//! FullNAT (Alibaba LVS / DPVS FNAT; not in mainline): both endpoints are translated, and
//! the client's address can ride along in a TOA TCP option.

use std::net::SocketAddrV4;

use super::{finish, ipvs_transmit_checks, parse_ipv4_frame, require_ports, set_macs};
use super::{Egress, Verdict};
use crate::packet::checksum::update_u16;
use crate::packet::frame::be16;
use crate::packet::{mangle, Ipv4Info, Transport};

/// Where a FullNAT request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullNatRequest {
    /// The connection's local address and port (`LIP:lport`), the new source.
    pub local: SocketAddrV4,
    /// The real server (`RIP:rport`), the new destination.
    pub real: SocketAddrV4,
    /// Next hop toward the real server.
    pub egress: Egress,
    /// TOA option kind to insert (254 for Alibaba/DPVS, 200 for some vendors), or `None`.
    /// The engine sets it for the client's SYN and first ACK (the segment acknowledging the
    /// real server's ISN + 1).
    pub toa_kind: Option<u8>,
}

/// How a FullNAT reply leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullNatReply {
    /// The virtual service (`VIP:vport`), the new source.
    pub virtual_service: SocketAddrV4,
    /// The client (`CIP:cport`), the new destination.
    pub client: SocketAddrV4,
    /// Next hop toward the client.
    pub egress: Egress,
}

/// Length of the IPv4 TOA option: kind, length, port (2), address (4).
const TOA_LEN: usize = 8;
/// Most option bytes a TCP header can hold (data offset 15 words).
const MAX_TCP_OPTIONS: usize = 40;

/// Rewrites a client's request on a FullNAT connection (spec §2.8 inbound): source
/// `CIP:cport` → `LIP:lport`, destination `VIP:vport` → `RIP:rport`, with the IPVS transmit
/// rules (TTL − 1, ICMP time-exceeded / frag-needed from the VIP) and new MACs. With
/// `toa_kind` a TOA option carrying `CIP:cport` is inserted first when [`insert_toa`] finds room.
/// All checksums are updated incrementally; a UDP checksum of 0 is replaced by a full one.
/// Sequence-number remapping and timestamp removal need connection state and are not done here.
pub fn fullnat_request(frame: &mut Vec<u8>, to: &FullNatRequest, reply: &mut Vec<u8>) -> Verdict {
    reply.clear();
    finish(fullnat_request_steps(frame, to, reply))
}

fn fullnat_request_steps(
    frame: &mut Vec<u8>,
    to: &FullNatRequest,
    reply: &mut Vec<u8>,
) -> Result<(), Verdict> {
    let mut ip = parse_ipv4_frame(frame)?;
    require_ports(&ip)?;
    let vip = ip.dst;
    let mtu = usize::from(to.egress.mtu);
    ipvs_transmit_checks(frame, &mut ip, mtu, vip, reply)?;
    if let Some(kind) = to.toa_kind {
        insert_toa(frame, &mut ip, kind, mtu);
    }
    mangle::set_src(frame, &mut ip, *to.local.ip());
    mangle::set_src_port(frame, &mut ip, to.local.port());
    mangle::set_dst(frame, &mut ip, *to.real.ip());
    mangle::set_dst_port(frame, &mut ip, to.real.port());
    mangle::finish_udp_checksum(frame, &mut ip);
    set_macs(frame, &to.egress);
    Ok(())
}

/// Rewrites a real server's reply on a FullNAT connection (spec §2.8 outbound): source
/// `RIP:rport` → `VIP:vport`, destination `LIP:lport` → `CIP:cport`. The reply is addressed
/// to the director (the LIP), so IPVS's own transmit rules apply with ICMP errors from the LIP.
pub fn fullnat_reply(frame: &mut [u8], to: &FullNatReply, reply: &mut Vec<u8>) -> Verdict {
    reply.clear();
    finish(fullnat_reply_steps(frame, to, reply))
}

fn fullnat_reply_steps(
    frame: &mut [u8],
    to: &FullNatReply,
    reply: &mut Vec<u8>,
) -> Result<(), Verdict> {
    let mut ip = parse_ipv4_frame(frame)?;
    require_ports(&ip)?;
    let lip = ip.dst;
    let mtu = usize::from(to.egress.mtu);
    ipvs_transmit_checks(frame, &mut ip, mtu, lip, reply)?;
    mangle::set_src(frame, &mut ip, *to.virtual_service.ip());
    mangle::set_src_port(frame, &mut ip, to.virtual_service.port());
    mangle::set_dst(frame, &mut ip, *to.client.ip());
    mangle::set_dst_port(frame, &mut ip, to.client.port());
    mangle::finish_udp_checksum(frame, &mut ip);
    set_macs(frame, &to.egress);
    Ok(())
}

/// Inserts a TOA option (`kind`, length 8, the packet's current source port and IPv4
/// address) right after the fixed TCP header, as Alibaba's `tcp_opt_add_toa` does, so an
/// end-of-options marker among the existing options cannot hide it. Done only for TCP when
/// the options stay within 40 bytes and the packet within `mtu`; returns whether it was
/// inserted. Data offset, IP total length and both checksums are updated incrementally (the
/// option starts at an even offset, so the shifted bytes keep their place in the sum).
/// Ethernet padding after the packet is removed.
pub fn insert_toa(frame: &mut Vec<u8>, ip: &mut Ipv4Info, kind: u8, mtu: usize) -> bool {
    let Transport::Tcp(tcp) = &mut ip.transport else {
        return false;
    };
    let options_len = tcp.header_len - 20;
    if options_len + TOA_LEN > MAX_TCP_OPTIONS || ip.total_len + TOA_LEN > mtu {
        return false;
    }
    let l4 = ip.offset + ip.header_len;
    let tcp_checksum = l4 + 16;
    let mut toa = [kind, TOA_LEN as u8, 0, 0, 0, 0, 0, 0];
    toa[2..4].copy_from_slice(&be16(frame, l4).to_be_bytes());
    toa[4..8].copy_from_slice(&ip.src.octets());

    frame.truncate(ip.offset + ip.total_len);
    frame.splice(l4 + 20..l4 + 20, toa);
    mangle::add_to_checksum(frame, tcp_checksum, &toa);

    tcp.header_len += TOA_LEN;
    let offset_and_flags = be16(frame, l4 + 12);
    let data_offset_words = (tcp.header_len / 4) as u16;
    let new_offset_and_flags = (offset_and_flags & 0x0fff) | (data_offset_words << 12);
    mangle::write_u16(frame, l4 + 12, new_offset_and_flags, &[tcp_checksum]);

    let old_segment_len = (ip.total_len - ip.header_len) as u16;
    let new_segment_len = old_segment_len + TOA_LEN as u16;
    let pseudo_fixed = update_u16(be16(frame, tcp_checksum), old_segment_len, new_segment_len);
    frame[tcp_checksum..tcp_checksum + 2].copy_from_slice(&pseudo_fixed.to_be_bytes());

    ip.total_len += TOA_LEN;
    let total_len = ip.total_len as u16;
    mangle::write_u16(
        frame,
        ip.offset + 2,
        total_len,
        &[mangle::ip_checksum_at(ip)],
    );
    true
}
