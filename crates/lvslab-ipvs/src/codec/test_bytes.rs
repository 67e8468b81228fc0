//! Byte-building helpers shared by the codec's byte-level tests.
//!
//! Expected bytes are written out attribute by attribute: `nla(len, type)` is the 4-byte
//! attribute header (`nla_len` counts header + unpadded payload), `h16/h32/h64` are host
//! byte order values, literal byte arrays are network order or raw bytes, and trailing
//! `0`s are alignment padding. Layouts follow ipvs-spec §4.3/§4.6 (libipvs attribute
//! order) and the §4.7 wire example.

use std::net::{IpAddr, Ipv4Addr};

use lvslab_spec::lb::{Protocol, ServiceKey};

/// A made-up family id, as the controller would assign dynamically.
pub(super) const FAM: u16 = 0x23;

pub(super) fn h16(v: u16) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub(super) fn h32(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub(super) fn h64(v: u64) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Attribute header: `nla_len`, `nla_type` (host order).
pub(super) fn nla(len: u16, ty: u16) -> Vec<u8> {
    [h16(len), h16(ty)].concat()
}

/// `nlmsghdr`: len, type, flags, seq, pid 0.
pub(super) fn nlhdr(len: u32, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
    [h32(len), h16(ty), h16(flags), h32(seq), h32(0)].concat()
}

pub(super) fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

pub(super) fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

pub(super) fn article_vip() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(192, 168, 80, 10),
        port: 80,
    }
}

/// The 84-byte service nest for a TCP/IPv4 key with ipvsadm's defaults (`wlc`).
pub(super) fn tcp_service_nest_wlc(addr: [u8; 4], port: [u8; 2]) -> Vec<u8> {
    cat(&[
        nla(84, 1),                                     // IPVS_CMD_ATTR_SERVICE, no NLA_F_NESTED
        nla(6, 1), h16(2), vec![0, 0],                  // AF = AF_INET (host) + pad
        nla(6, 2), h16(6), vec![0, 0],                  // PROTOCOL = TCP (host) + pad
        nla(20, 3), addr.to_vec(), vec![0; 12],         // ADDR: nf_inet_addr, IPv4 first, rest 0
        nla(6, 4), port.to_vec(), vec![0, 0],           // PORT (network order) + pad
        nla(8, 6), b"wlc\0".to_vec(),                   // SCHED_NAME "wlc\0", no pad needed
        nla(12, 7), h32(0), h32(0xffff_ffff),           // FLAGS {flags 0, mask all} (host)
        nla(8, 8), h32(0),                              // TIMEOUT 0 s
        nla(8, 9), vec![0xff, 0xff, 0xff, 0xff],        // NETMASK 255.255.255.255 (network)
    ])
}
