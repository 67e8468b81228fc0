//! In-place field writes that keep checksums right by RFC 1624 incremental updates.
//!
//! Every write names the checksum fields that cover the changed word. A field covers a word
//! when the word lies at an even distance from the start of what that checksum sums (all
//! header fields the engine rewrites do), or when the word is part of its pseudo-header.

use std::net::Ipv4Addr;

use super::checksum::{self, update_u16, update_u32};
use super::frame::{be16, be32, Ipv4Info, Transport};

/// Writes the 16-bit word at `at` and updates each checksum field at `checksums`.
pub fn write_u16(buf: &mut [u8], at: usize, new: u16, checksums: &[usize]) {
    let old = be16(buf, at);
    buf[at..at + 2].copy_from_slice(&new.to_be_bytes());
    for &field in checksums {
        let fixed = update_u16(be16(buf, field), old, new);
        buf[field..field + 2].copy_from_slice(&fixed.to_be_bytes());
    }
}

/// Writes the 32-bit word at `at` and updates each checksum field at `checksums`.
pub fn write_u32(buf: &mut [u8], at: usize, new: u32, checksums: &[usize]) {
    let old = be32(buf, at);
    buf[at..at + 4].copy_from_slice(&new.to_be_bytes());
    for &field in checksums {
        let fixed = update_u32(be16(buf, field), old, new);
        buf[field..field + 2].copy_from_slice(&fixed.to_be_bytes());
    }
}

/// Folds bytes newly added to a checksummed area into the checksum field at `field`
/// (as if each 16-bit word changed from 0 to its value). `added` must start at an even
/// distance from the start of the checksummed area.
pub fn add_to_checksum(buf: &mut [u8], field: usize, added: &[u8]) {
    let old = be16(buf, field);
    let fixed = !checksum::fold(u64::from(!old) + checksum::sum(0, added));
    buf[field..field + 2].copy_from_slice(&fixed.to_be_bytes());
}

/// Offset of the IPv4 header checksum.
pub fn ip_checksum_at(ip: &Ipv4Info) -> usize {
    ip.offset + 10
}

/// Offset of the TCP or UDP checksum field, if the packet has one that is in use (a UDP
/// checksum of 0 means "none" and must not be updated incrementally).
pub fn transport_checksum_at(ip: &Ipv4Info) -> Option<usize> {
    let l4 = ip.transport_offset();
    match ip.transport {
        Transport::Tcp(_) => Some(l4 + 16),
        Transport::Udp(udp) if udp.checksum != 0 => Some(l4 + 6),
        Transport::Udp(_) | Transport::Icmp(_) | Transport::Other => None,
    }
}

/// Decrements the TTL by one and updates the header checksum, like the kernel's
/// `ip_decrease_ttl`. The caller has checked that the TTL is above 1.
pub fn decrement_ttl(buf: &mut [u8], ip: &mut Ipv4Info) {
    ip.ttl = ip.ttl.saturating_sub(1);
    let word = u16::from_be_bytes([ip.ttl, ip.protocol]);
    write_u16(buf, ip.offset + 8, word, &[ip_checksum_at(ip)]);
}

/// Replaces the source address, fixing the IP checksum and the transport checksum (whose
/// pseudo-header includes the address).
pub fn set_src(buf: &mut [u8], ip: &mut Ipv4Info, new: Ipv4Addr) {
    set_address(buf, ip, 12, new);
    ip.src = new;
}

/// Replaces the destination address, fixing the IP and transport checksums.
pub fn set_dst(buf: &mut [u8], ip: &mut Ipv4Info, new: Ipv4Addr) {
    set_address(buf, ip, 16, new);
    ip.dst = new;
}

fn set_address(buf: &mut [u8], ip: &Ipv4Info, field: usize, new: Ipv4Addr) {
    let ip_sum = ip_checksum_at(ip);
    match transport_checksum_at(ip) {
        Some(l4_sum) => write_u32(buf, ip.offset + field, new.into(), &[ip_sum, l4_sum]),
        None => write_u32(buf, ip.offset + field, new.into(), &[ip_sum]),
    }
}

/// Replaces the TCP/UDP source port (first word of the transport header), fixing its checksum.
pub fn set_src_port(buf: &mut [u8], ip: &mut Ipv4Info, new: u16) {
    set_port(buf, ip, 0, new);
}

/// Replaces the TCP/UDP destination port, fixing its checksum.
pub fn set_dst_port(buf: &mut [u8], ip: &mut Ipv4Info, new: u16) {
    set_port(buf, ip, 2, new);
}

fn set_port(buf: &mut [u8], ip: &mut Ipv4Info, field: usize, new: u16) {
    let at = ip.transport_offset() + field;
    match transport_checksum_at(ip) {
        Some(l4_sum) => write_u16(buf, at, new, &[l4_sum]),
        None => write_u16(buf, at, new, &[]),
    }
    match &mut ip.transport {
        Transport::Tcp(t) if field == 0 => t.src_port = new,
        Transport::Tcp(t) => t.dst_port = new,
        Transport::Udp(u) if field == 0 => u.src_port = new,
        Transport::Udp(u) => u.dst_port = new,
        Transport::Icmp(_) | Transport::Other => {}
    }
}

/// Gives a UDP packet a full checksum when it has none (the kernel's NAT handlers compute one
/// rather than leave 0), and turns a computed 0 into 0xFFFF as RFC 768 requires.
pub fn finish_udp_checksum(buf: &mut [u8], ip: &mut Ipv4Info) {
    let Transport::Udp(udp) = &mut ip.transport else {
        return;
    };
    let field = ip.offset + ip.header_len + 6;
    let mut value = be16(buf, field);
    if udp.checksum == 0 {
        let segment = &buf[ip.offset + ip.header_len..ip.offset + ip.total_len];
        value = checksum::transport_checksum(ip.src, ip.dst, ip.protocol, segment, 6);
    }
    if value == 0 {
        value = 0xffff;
    }
    buf[field..field + 2].copy_from_slice(&value.to_be_bytes());
    udp.checksum = value;
}

/// Completes the TCP/UDP checksum of a frame whose sender left it to the NIC (AF_PACKET
/// auxdata `TP_STATUS_CSUMNOTREADY`): the field holds only the pseudo-header sum, and
/// `csum_start`/`csum_offset` are the transport header and the checksum field within it.
/// Rewriting such a frame without this would forward a wrong checksum.
pub fn complete_transport_checksum(
    buf: &mut [u8],
    ip: &mut Ipv4Info,
) -> Result<(), super::DropReason> {
    let csum_offset = match ip.transport {
        Transport::Tcp(_) => 16,
        Transport::Udp(_) => 6,
        Transport::Icmp(_) | Transport::Other => return Ok(()),
    };
    let start = ip.transport_offset();
    checksum::complete_partial(buf, start, csum_offset, ip.end())?;
    if let Transport::Udp(udp) = &mut ip.transport {
        udp.checksum = be16(buf, start + csum_offset);
    }
    Ok(())
}
