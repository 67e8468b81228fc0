//! What rules compile to, checked against what nft 1.0.6 generates for the same text
//! (`nft --debug=netlink`, NAT expressions in the form the kernel dumps them back).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use lvslab_spec::lb::Protocol;

use super::*;
use crate::nft::model::{IfName, Ipv4Prefix, NatTo, PayloadBase, PortField, Rule, Statement};

fn a(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn prefix(s: &str, len: u8) -> Ipv4Prefix {
    Ipv4Prefix::new(a(s), len).expect("test prefix")
}

fn port(protocol: Protocol, field: PortField, port: u16) -> Match {
    Match::Port {
        protocol,
        field,
        port,
    }
}

/// One line per expression, as nft prints them.
fn compiled(
    family: Family,
    matches: Vec<Match>,
    statement: Statement,
) -> (Vec<String>, Vec<AnonSet>) {
    let rule = Rule::new(matches, statement).expect("valid rule");
    let mut sets = Vec::new();
    let lines = compile_rule(family, &rule, &mut sets)
        .iter()
        .map(|e| format!("[ {e} ]"))
        .collect();
    (lines, sets)
}

#[test]
fn dnat_to_address_and_port() {
    // ip daddr 192.0.2.10 tcp dport 80 dnat to 10.0.0.2:8080
    let (got, _) = compiled(
        Family::Ip,
        vec![
            Match::Daddr {
                prefix: Ipv4Prefix::host(a("192.0.2.10")),
                negate: false,
            },
            port(Protocol::Tcp, PortField::Dport, 80),
        ],
        Statement::Dnat(NatTo::addr(a("10.0.0.2")).with_port(8080)),
    );
    assert_eq!(
        got,
        [
            "[ payload load 4b @ network header + 16 => reg 1 ]",
            "[ cmp eq reg 1 0x0a0200c0 ]",
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000006 ]",
            "[ payload load 2b @ transport header + 2 => reg 1 ]",
            "[ cmp eq reg 1 0x00005000 ]",
            "[ immediate reg 1 0x0200000a ]",
            "[ immediate reg 2 0x0000901f ]",
            "[ nat dnat ip addr_min reg 1 addr_max reg 1 proto_min reg 2 proto_max reg 2 flags 0x3 ]",
        ]
    );
}

#[test]
fn masquerade_with_aligned_and_masked_prefixes_and_an_interface() {
    // ip saddr 10.0.0.0/8 ip daddr != 10.0.0.0/12 oifname "eth0" masquerade
    let (got, _) = compiled(
        Family::Ip,
        vec![
            Match::Saddr {
                prefix: prefix("10.0.0.0", 8),
                negate: false,
            },
            Match::Daddr {
                prefix: prefix("10.0.0.0", 12),
                negate: true,
            },
            Match::Oifname {
                name: IfName::new("eth0").expect("ifname"),
                negate: false,
            },
        ],
        Statement::Masquerade,
    );
    assert_eq!(
        got,
        [
            "[ payload load 1b @ network header + 12 => reg 1 ]",
            "[ cmp eq reg 1 0x0000000a ]",
            "[ payload load 4b @ network header + 16 => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x0000f0ff ) ^ 0x00000000 ]",
            "[ cmp neq reg 1 0x0000000a ]",
            "[ meta load oifname => reg 1 ]",
            "[ cmp eq reg 1 0x30687465 0x00000000 0x00000000 0x00000000 ]",
            "[ masq ]",
        ]
    );
}

#[test]
fn snat_forms() {
    // ip saddr 10.1.2.0/24 snat to 192.0.2.1
    let (got, _) = compiled(
        Family::Ip,
        vec![Match::Saddr {
            prefix: prefix("10.1.2.0", 24),
            negate: false,
        }],
        Statement::Snat(NatTo::addr(a("192.0.2.1"))),
    );
    assert_eq!(
        got,
        [
            "[ payload load 3b @ network header + 12 => reg 1 ]",
            "[ cmp eq reg 1 0x0002010a ]",
            "[ immediate reg 1 0x010200c0 ]",
            "[ nat snat ip addr_min reg 1 addr_max reg 1 flags 0x1 ]",
        ]
    );
    // ip saddr != 10.0.0.0/8 meta l4proto tcp snat to 10.1.0.1-10.1.0.3:1000
    let (got, _) = compiled(
        Family::Ip,
        vec![
            Match::Saddr {
                prefix: prefix("10.0.0.0", 8),
                negate: true,
            },
            Match::L4Proto(6),
        ],
        Statement::Snat(
            NatTo::range(a("10.1.0.1"), a("10.1.0.3"))
                .expect("range")
                .with_port(1000),
        ),
    );
    assert_eq!(
        got,
        [
            "[ payload load 1b @ network header + 12 => reg 1 ]",
            "[ cmp neq reg 1 0x0000000a ]",
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000006 ]",
            "[ immediate reg 1 0x0100010a ]",
            "[ immediate reg 2 0x0300010a ]",
            "[ immediate reg 3 0x0000e803 ]",
            "[ nat snat ip addr_min reg 1 addr_max reg 2 proto_min reg 3 proto_max reg 3 flags 0x3 ]",
        ]
    );
    // ip saddr 10.1.2.0/23 masquerade; ip saddr 0.0.0.0/0 accept
    let (got, _) = compiled(
        Family::Ip,
        vec![Match::Saddr {
            prefix: prefix("10.1.2.0", 23),
            negate: false,
        }],
        Statement::Masquerade,
    );
    assert_eq!(
        got[1],
        "[ bitwise reg 1 = ( reg 1 & 0x00feffff ) ^ 0x00000000 ]"
    );
    let (got, _) = compiled(
        Family::Ip,
        vec![Match::Saddr {
            prefix: prefix("0.0.0.0", 0),
            negate: false,
        }],
        Statement::Accept,
    );
    assert_eq!(
        got,
        [
            "[ payload load 4b @ network header + 12 => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x00000000 ) ^ 0x00000000 ]",
            "[ cmp eq reg 1 0x00000000 ]",
            "[ immediate reg 0 accept ]",
        ]
    );
}

#[test]
fn netdev_rules_check_the_ethertype_once_and_sets_become_lookups() {
    // ip saddr 172.16.20.11 tcp sport 8080 ip daddr != { 203.0.113.10, 10.0.0.1 } drop
    let addrs: BTreeSet<_> = [a("203.0.113.10"), a("10.0.0.1")].into_iter().collect();
    let (got, sets) = compiled(
        Family::Netdev,
        vec![
            Match::Saddr {
                prefix: Ipv4Prefix::host(a("172.16.20.11")),
                negate: false,
            },
            port(Protocol::Tcp, PortField::Sport, 8080),
            Match::DaddrIn {
                addrs,
                negate: true,
            },
        ],
        Statement::Drop,
    );
    assert_eq!(
        got,
        [
            "[ meta load protocol => reg 1 ]",
            "[ cmp eq reg 1 0x00000008 ]",
            "[ payload load 4b @ network header + 12 => reg 1 ]",
            "[ cmp eq reg 1 0x0b1410ac ]",
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000006 ]",
            "[ payload load 2b @ transport header + 0 => reg 1 ]",
            "[ cmp eq reg 1 0x0000901f ]",
            "[ payload load 4b @ network header + 16 => reg 1 ]",
            "[ lookup reg 1 set __set0 0x1 ]",
            "[ immediate reg 0 drop ]",
        ]
    );
    assert_eq!(
        sets,
        [AnonSet {
            key_type: KEY_TYPE_IPV4_ADDR,
            key_len: 4,
            elements: vec![vec![10, 0, 0, 1], vec![203, 0, 113, 10]],
        }]
    );
    // ip daddr { 198.51.100.1 } ip protocol 47 drop: one element is a plain compare.
    let (got, sets) = compiled(
        Family::Netdev,
        vec![
            Match::DaddrIn {
                addrs: [a("198.51.100.1")].into_iter().collect(),
                negate: false,
            },
            Match::IpProtocol(47),
        ],
        Statement::Drop,
    );
    assert!(sets.is_empty());
    assert_eq!(
        got,
        [
            "[ meta load protocol => reg 1 ]",
            "[ cmp eq reg 1 0x00000008 ]",
            "[ payload load 4b @ network header + 16 => reg 1 ]",
            "[ cmp eq reg 1 0x016433c6 ]",
            "[ payload load 1b @ network header + 9 => reg 1 ]",
            "[ cmp eq reg 1 0x0000002f ]",
            "[ immediate reg 0 drop ]",
        ]
    );
}

#[test]
fn icmp_errors_with_raw_transport_matches() {
    // icmp type { destination-unreachable, source-quench, time-exceeded }
    //   @th,64,8 0x45 @th,136,8 6 @th,192,32 0xac10140b @th,240,16 8080 drop
    let raw =
        |offset, len, value| Match::raw(PayloadBase::Transport, offset, len, value).expect("raw");
    let (got, sets) = compiled(
        Family::Netdev,
        vec![
            Match::IcmpType([3u8, 4, 11].into_iter().collect()),
            raw(64, 8, 0x45),
            raw(136, 8, 6),
            raw(192, 32, 0xac10_140b),
            raw(240, 16, 8080),
        ],
        Statement::Drop,
    );
    assert_eq!(
        got,
        [
            "[ meta load protocol => reg 1 ]",
            "[ cmp eq reg 1 0x00000008 ]",
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000001 ]",
            "[ payload load 1b @ transport header + 0 => reg 1 ]",
            "[ lookup reg 1 set __set0 0x0 ]",
            "[ payload load 1b @ transport header + 8 => reg 1 ]",
            "[ cmp eq reg 1 0x00000045 ]",
            "[ payload load 1b @ transport header + 17 => reg 1 ]",
            "[ cmp eq reg 1 0x00000006 ]",
            "[ payload load 4b @ transport header + 24 => reg 1 ]",
            "[ cmp eq reg 1 0x0b1410ac ]",
            "[ payload load 2b @ transport header + 30 => reg 1 ]",
            "[ cmp eq reg 1 0x0000901f ]",
            "[ immediate reg 0 drop ]",
        ]
    );
    assert_eq!(sets[0].key_type, KEY_TYPE_ICMP_TYPE);
    assert_eq!(sets[0].elements, vec![vec![3], vec![4], vec![11]]);
}

#[test]
fn unaligned_and_link_layer_raw_matches() {
    // @nh,3,5 3 drop: the low five bits of the first byte.
    let (got, _) = compiled(
        Family::Netdev,
        vec![Match::raw(PayloadBase::Network, 3, 5, 3).expect("raw")],
        Statement::Drop,
    );
    assert_eq!(
        got[..3],
        [
            "[ payload load 1b @ network header + 0 => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x0000001f ) ^ 0x00000000 ]",
            "[ cmp eq reg 1 0x00000003 ]",
        ]
    );
    // @ll,0,48 0x010203040506 drop
    let (got, _) = compiled(
        Family::Netdev,
        vec![Match::raw(PayloadBase::Link, 0, 48, 0x0102_0304_0506).expect("raw")],
        Statement::Drop,
    );
    assert_eq!(
        got[..2],
        [
            "[ payload load 6b @ link header + 0 => reg 1 ]",
            "[ cmp eq reg 1 0x04030201 0x00000605 ]",
        ]
    );
}

#[test]
fn inet_dependencies_follow_the_order_of_the_matches() {
    // meta l4proto tcp ip daddr 10.0.0.1 tcp dport 22 accept
    let (got, _) = compiled(
        Family::Inet,
        vec![
            Match::L4Proto(6),
            Match::Daddr {
                prefix: Ipv4Prefix::host(a("10.0.0.1")),
                negate: false,
            },
            port(Protocol::Tcp, PortField::Dport, 22),
        ],
        Statement::Accept,
    );
    assert_eq!(
        got,
        [
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000006 ]",
            "[ meta load nfproto => reg 1 ]",
            "[ cmp eq reg 1 0x00000002 ]",
            "[ payload load 4b @ network header + 16 => reg 1 ]",
            "[ cmp eq reg 1 0x0100000a ]",
            "[ payload load 2b @ transport header + 2 => reg 1 ]",
            "[ cmp eq reg 1 0x00001600 ]",
            "[ immediate reg 0 accept ]",
        ]
    );
    // ip protocol tcp tcp dport 22: the protocol match is the dependency.
    let (got, _) = compiled(
        Family::Inet,
        vec![
            Match::IpProtocol(6),
            port(Protocol::Tcp, PortField::Dport, 22),
        ],
        Statement::Accept,
    );
    assert!(!got.iter().any(|l| l.contains("l4proto")), "{got:#?}");
}

#[test]
fn jumps_and_returns() {
    let (got, _) = compiled(
        Family::Ip,
        vec![],
        Statement::Jump(crate::nft::model::Name::new("other_c").expect("name")),
    );
    assert_eq!(got, ["[ immediate reg 0 jump -> other_c ]"]);
    let (got, _) = compiled(Family::Ip, vec![], Statement::Return);
    assert_eq!(got, ["[ immediate reg 0 return ]"]);
}
