//! Attribute numbers and helpers shared by more than one object: the top-level command
//! attributes, the stats nest, addresses and reply checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_spec::lb::Stats;

use super::{DecodeError, AF_INET, AF_INET6};
use crate::wire::{Attr, GenlMessage};

/// Top-level attributes (`IPVS_CMD_ATTR_*`).
pub mod cmd_attr {
    /// Nested service.
    pub const SERVICE: u16 = 1;
    /// Nested destination.
    pub const DEST: u16 = 2;
    /// TCP timeout (u32 seconds).
    pub const TIMEOUT_TCP: u16 = 4;
    /// TCP FIN_WAIT timeout (u32 seconds).
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    /// UDP timeout (u32 seconds).
    pub const TIMEOUT_UDP: u16 = 6;
}

/// Stats attributes (`IPVS_STATS_ATTR_*`), nested in service/dest STATS and STATS64.
pub mod stats_attr {
    /// New connections.
    pub const CONNS: u16 = 1;
    /// Packets in.
    pub const INPKTS: u16 = 2;
    /// Packets out.
    pub const OUTPKTS: u16 = 3;
    /// Bytes in (always 64-bit).
    pub const INBYTES: u16 = 4;
    /// Bytes out (always 64-bit).
    pub const OUTBYTES: u16 = 5;
    /// Connections per second.
    pub const CPS: u16 = 6;
    /// Packets in per second.
    pub const INPPS: u16 = 7;
    /// Packets out per second.
    pub const OUTPPS: u16 = 8;
    /// Bytes in per second.
    pub const INBPS: u16 = 9;
    /// Bytes out per second.
    pub const OUTBPS: u16 = 10;
    /// Alignment padding before 64-bit values; skipped.
    pub const PAD: u16 = 11;
}

/// `union nf_inet_addr`: IPv4 in the first 4 bytes, the rest zero.
pub(super) fn addr16(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

pub(super) fn expect_cmd(msg: &GenlMessage<'_>, expected: u8) -> Result<(), DecodeError> {
    if msg.cmd != expected {
        return Err(DecodeError::Command {
            expected,
            got: msg.cmd,
        });
    }
    Ok(())
}

pub(super) fn find_nest<'a>(
    msg: &GenlMessage<'a>,
    ty: u16,
) -> Result<Option<Attr<'a>>, DecodeError> {
    for a in msg.attrs() {
        let a = a?;
        if a.ty == ty {
            return Ok(Some(a));
        }
    }
    Ok(None)
}

pub(super) fn read_addr(
    a: &Attr<'_>,
    af: u16,
    object: &'static str,
) -> Result<IpAddr, DecodeError> {
    let p = a.payload;
    match af {
        AF_INET if p.len() >= 4 => Ok(IpAddr::V4(Ipv4Addr::new(p[0], p[1], p[2], p[3]))),
        AF_INET6 if p.len() >= 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&p[..16]);
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => Err(DecodeError::Value {
            object,
            detail: format!("address of {} bytes for address family {af}", p.len()),
        }),
    }
}

/// Parses a stats nest (32-bit STATS or 64-bit STATS64), skipping PAD and unknown types.
pub fn parse_stats(nest: &Attr<'_>) -> Result<Stats, DecodeError> {
    let mut s = Stats::default();
    for a in nest.nested() {
        let a = a?;
        let slot = match a.ty {
            stats_attr::CONNS => &mut s.conns,
            stats_attr::INPKTS => &mut s.inpkts,
            stats_attr::OUTPKTS => &mut s.outpkts,
            stats_attr::INBYTES => &mut s.inbytes,
            stats_attr::OUTBYTES => &mut s.outbytes,
            stats_attr::CPS => &mut s.cps,
            stats_attr::INPPS => &mut s.inpps,
            stats_attr::OUTPPS => &mut s.outpps,
            stats_attr::INBPS => &mut s.inbps,
            stats_attr::OUTBPS => &mut s.outbps,
            _ => continue,
        };
        *slot = a.counter("stats counter")?;
    }
    Ok(s)
}
