//! Decoding one frame: fields, checksum states, padding, hostile input.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;

use super::checksum::{ones_sum, pseudo_sum};
use super::*;
use crate::pcapng::LinkType;

const A: [u8; 4] = [192, 0, 2, 1];
const B: [u8; 4] = [198, 51, 100, 2];

fn tcp_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(A, B, 64)
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .write(&mut v, payload)
        .expect("build");
    v
}

#[test]
fn tcp_fields_and_valid_checksums() {
    let f = tcp_frame(b"hello");
    let s = decode_frame("client:eth0", 1, 5, LinkType::Ethernet, &f);
    assert_eq!(s.malformed, None);
    let ip = s.inner().expect("ip");
    assert_eq!(ip.src, Ipv4Addr::from(A));
    assert_eq!(ip.ttl, 64);
    assert_eq!(ip.header_checksum, Checksum::Valid);
    let Some(L4Summary::Tcp(t)) = s.l4 else {
        panic!("not tcp: {s:?}")
    };
    assert_eq!((t.sport, t.dport, t.seq), (40000, 80, 1000));
    assert!(t.flags.has(TcpFlags::SYN));
    assert_eq!(t.payload_len, 5);
    assert_eq!(t.payload_hash, fnv1a64(b"hello"));
    assert_eq!(t.checksum, Checksum::Valid);
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = tcp_frame(b"");
    f.resize(60, 0);
    let s = decode_frame("p", 1, 0, LinkType::Ethernet, &f);
    let Some(L4Summary::Tcp(t)) = s.l4 else {
        panic!("not tcp")
    };
    assert_eq!(t.payload_len, 0);
    assert_eq!(t.checksum, Checksum::Valid);
}

#[test]
fn corrupted_vs_offload_pending_checksum() {
    let mut f = tcp_frame(b"x");
    let at = 14 + 20 + 16;
    f[at] ^= 0x55;
    let s = decode_frame("p", 1, 0, LinkType::Ethernet, &f);
    let Some(L4Summary::Tcp(t)) = s.l4 else {
        panic!("not tcp")
    };
    assert!(t.checksum.is_bad());
    // What Linux leaves in the field of a CHECKSUM_PARTIAL skb: the folded pseudo sum.
    let seg_len = f.len() - 34;
    let partial = ones_sum(&[], pseudo_sum(A.into(), B.into(), 6, seg_len));
    f[at..at + 2].copy_from_slice(&partial.to_be_bytes());
    let s = decode_frame("p", 1, 0, LinkType::Ethernet, &f);
    let Some(L4Summary::Tcp(t)) = s.l4 else {
        panic!("not tcp")
    };
    assert_eq!(t.checksum, Checksum::Partial);
}

#[test]
fn garbage_never_panics() {
    let f = tcp_frame(b"payload");
    for cut in 0..f.len() {
        let _ = decode_frame("p", 1, 0, LinkType::Ethernet, &f[..cut]);
        let _ = decode_frame("p", 1, 0, LinkType::RawIp, &f[14..cut.max(14)]);
    }
    let mut g = f.clone();
    for i in 0..g.len() {
        g[i] = g[i].wrapping_mul(31).wrapping_add(7);
        let _ = decode_frame("p", 1, 0, LinkType::Ethernet, &g);
    }
}

#[test]
fn mac_parse_display() {
    let m: MacAddr = "02:00:0a:ff:00:01".parse().expect("mac");
    assert_eq!(m.to_string(), "02:00:0a:ff:00:01");
    assert!("02:00".parse::<MacAddr>().is_err());
}
