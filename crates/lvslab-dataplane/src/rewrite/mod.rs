//! Per-mode packet rewrites of the userspace director, as pure functions over frame bytes.
//!
//! Each function parses and checks its input, applies the kernel's transmit rules (TTL, MTU,
//! ICMP errors) and rewrites the frame in place, keeping every checksum right with RFC 1624
//! incremental updates. Nothing here keeps state: the engine looks up the connection and
//! passes the addresses to use.
//!
//! | mode | request (client → RS) | reply (RS → client) |
//! |---|---|---|
//! | NAT | [`nat_request`] | [`nat_reply`] |
//! | DR | [`dr_request`] | never seen |
//! | TUN | [`tun_request`], [`tun_decapsulate`] on the RS | never seen |
//! | FullNAT | [`fullnat_request`] (optional TOA) | [`fullnat_reply`] |
//!
//! ICMP errors about tracked flows go through [`translate_icmp_error`]; ARP for the
//! addresses the engine owns through [`arp_reply`].
//!
//! Rewrites that may answer with an ICMP error take a `reply` buffer: they clear it first,
//! and it holds a frame exactly when the verdict is [`Verdict::DropWithReply`].

mod arp;
mod dr;
mod fullnat;
mod icmp;
mod nat;
mod tun;

pub use arp::arp_reply;
pub use dr::{dr_request, DrRequest};
pub use fullnat::{fullnat_reply, fullnat_request, insert_toa, FullNatReply, FullNatRequest};
pub use icmp::{translate_icmp_error, IcmpTranslation};
pub use nat::{nat_reply, nat_request, NatReply, NatRequest};
pub use tun::{tun_decapsulate, tun_request, TunRequest};

use std::net::Ipv4Addr;

use crate::packet::frame::icmp_type;
use crate::packet::{mangle, parse_frame, DropReason, Ipv4Info, MacAddr, Payload, Transport};
use icmp::IcmpError;

/// What the engine does with a frame after a rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the rewritten frame out of the egress interface.
    Forward,
    /// Drop the frame for this reason and send the ICMP error now in the reply buffer back
    /// out of the interface the frame came in on.
    DropWithReply(DropReason),
    /// Drop the frame for this reason.
    Drop(DropReason),
}

impl Verdict {
    /// The drop reason, unless the frame is forwarded.
    pub fn drop_reason(self) -> Option<DropReason> {
        match self {
            Verdict::Forward => None,
            Verdict::DropWithReply(r) | Verdict::Drop(r) => Some(r),
        }
    }
}

impl From<DropReason> for Verdict {
    fn from(reason: DropReason) -> Self {
        Verdict::Drop(reason)
    }
}

/// Where a rewritten frame leaves: the next hop's MAC (the real server for DR, TUN and NAT
/// on a shared segment, else the gateway's), the egress interface's MAC and route MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    /// MAC of the egress interface (new source MAC).
    pub src_mac: MacAddr,
    /// MAC of the next hop (new destination MAC).
    pub dst_mac: MacAddr,
    /// MTU of the route to the next hop, in bytes of IP packet.
    pub mtu: u16,
}

/// Default TTL of packets the director originates (`net.ipv4.ip_default_ttl`).
const DEFAULT_TTL: u8 = 64;

fn finish(result: Result<(), Verdict>) -> Verdict {
    result.err().unwrap_or(Verdict::Forward)
}

fn parse_ipv4_frame(frame: &[u8]) -> Result<Ipv4Info, DropReason> {
    match parse_frame(frame)?.payload {
        Payload::Ipv4(ip) => Ok(ip),
        Payload::Arp(_) | Payload::Other => Err(DropReason::NotIpv4),
    }
}

fn require_ports(ip: &Ipv4Info) -> Result<(), DropReason> {
    match ip.transport {
        Transport::Tcp(_) | Transport::Udp(_) => Ok(()),
        Transport::Icmp(_) | Transport::Other => Err(DropReason::UnknownProtocol),
    }
}

fn set_macs(frame: &mut [u8], egress: &Egress) {
    frame[0..6].copy_from_slice(&egress.dst_mac.0);
    frame[6..12].copy_from_slice(&egress.src_mac.0);
}

/// IPVS's own transmit checks (`__ip_vs_get_out_rt`, spec §2.2 steps 3–4): the TTL rule
/// ([`check_ttl`]) and decrement, then the MTU rule ([`check_mtu`]), so a quoted packet in a
/// frag-needed error carries the decremented TTL.
fn ipvs_transmit_checks(
    frame: &mut [u8],
    ip: &mut Ipv4Info,
    mtu: usize,
    icmp_source: Ipv4Addr,
    reply: &mut Vec<u8>,
) -> Result<(), Verdict> {
    check_ttl(frame, ip, icmp_source, reply)?;
    mangle::decrement_ttl(frame, ip);
    check_mtu(frame, ip, mtu, icmp_source, reply)
}

/// The kernel forwarding path's checks (`ip_forward`, which carries NAT replies): the TTL
/// rule, the MTU rule, and only then the decrement.
fn forwarding_checks(
    frame: &mut [u8],
    ip: &mut Ipv4Info,
    mtu: usize,
    icmp_source: Ipv4Addr,
    reply: &mut Vec<u8>,
) -> Result<(), Verdict> {
    check_ttl(frame, ip, icmp_source, reply)?;
    check_mtu(frame, ip, mtu, icmp_source, reply)?;
    mangle::decrement_ttl(frame, ip);
    Ok(())
}

/// A TTL of 1 or less is not forwarded: ICMP time-exceeded (type 11 code 0) from
/// `icmp_source`, unless the packet is itself an ICMP error.
fn check_ttl(
    frame: &[u8],
    ip: &Ipv4Info,
    icmp_source: Ipv4Addr,
    reply: &mut Vec<u8>,
) -> Result<(), Verdict> {
    if ip.ttl > 1 {
        return Ok(());
    }
    Err(send_error(
        frame,
        ip,
        IcmpError::TtlExceeded,
        icmp_source,
        reply,
    ))
}

/// A DF packet longer than `mtu` gets ICMP fragmentation-needed (type 3 code 4, next-hop
/// MTU = `mtu`) from `icmp_source`; ICMP errors being relayed are exempt. A non-DF packet
/// longer than `mtu` is dropped without ICMP: the kernel would fragment it, the engine does not.
fn check_mtu(
    frame: &[u8],
    ip: &Ipv4Info,
    mtu: usize,
    icmp_source: Ipv4Addr,
    reply: &mut Vec<u8>,
) -> Result<(), Verdict> {
    let relaying_error = matches!(ip.transport, Transport::Icmp(i) if icmp_type::is_error(i.ty));
    if ip.total_len <= mtu || relaying_error {
        return Ok(());
    }
    if !ip.dont_fragment {
        return Err(Verdict::Drop(DropReason::NeedsFragmentation));
    }
    let error = IcmpError::FragmentationNeeded { mtu };
    Err(send_error(frame, ip, error, icmp_source, reply))
}

fn send_error(
    frame: &[u8],
    ip: &Ipv4Info,
    error: IcmpError,
    source: Ipv4Addr,
    reply: &mut Vec<u8>,
) -> Verdict {
    let reason = error.drop_reason();
    if icmp::build_error(frame, ip, error, source, reply) {
        Verdict::DropWithReply(reason)
    } else {
        Verdict::Drop(reason)
    }
}
