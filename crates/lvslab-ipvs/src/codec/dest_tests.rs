//! Byte-level tests of the destination requests and of kernel destination replies.
//!
//! `test_bytes` explains how the expected bytes are written.

use std::net::Ipv6Addr;

use lvslab_spec::lb::LbError;

use super::*;
use crate::codec::test_bytes::*;
use crate::codec::key_only_service;
use crate::error::{to_lb_error, Error, Target};
use crate::wire::Attrs;

/// Dest nest for the article's first real server: 192.168.80.11:8080 -m -w 3.
fn article_dest_nest() -> Vec<u8> {
    cat(&[
        nla(96, 2),                                     // IPVS_CMD_ATTR_DEST
        nla(6, 11), h16(2), vec![0, 0],                 // ADDR_FAMILY AF_INET (host)
        nla(20, 1), vec![192, 168, 80, 11], vec![0; 12],// ADDR
        nla(6, 2), vec![0x1f, 0x90], vec![0, 0],        // PORT 8080 network order
        nla(8, 3), h32(0),                              // FWD_METHOD 0 = MASQ
        nla(8, 4), h32(3),                              // WEIGHT 3 (host)
        nla(5, 13), vec![0], vec![0, 0, 0],             // TUN_TYPE u8 IPIP + 3 pad
        nla(6, 14), vec![0, 0], vec![0, 0],             // TUN_PORT 0 (network) + pad
        nla(6, 15), h16(0), vec![0, 0],                 // TUN_FLAGS 0 (host) + pad
        nla(8, 5), h32(0),                              // U_THRESH
        nla(8, 6), h32(0),                              // L_THRESH
    ])
}

fn article_dest() -> DestConfig {
    DestConfig {
        method: ForwardMethod::Nat,
        weight: 3,
        ..DestConfig::new(v4(192, 168, 80, 11), 8080)
    }
}

#[test]
fn new_dest_nat_matches_ipvsadm() {
    // ipvsadm -a -t 192.168.80.10:80 -r 192.168.80.11:8080 -m -w 3
    let svc = key_only_service(&article_vip());
    let bytes = Request::new_dest(&svc, &article_dest()).expect("encodes").to_message(FAM, 5);
    let expected = cat(&[
        nlhdr(16 + 4 + 84 + 96, FAM, 0x0005, 5),
        vec![5, 1, 0, 0],                               // NEW_DEST
        tcp_service_nest_wlc([192, 168, 80, 10], [0, 80]),
        article_dest_nest(),
    ]);
    assert_eq!(bytes, expected);
}

#[test]
fn set_dest_gue_tunnel_with_thresholds() {
    // ipvsadm -e -t 192.168.80.10:80 -r 198.51.100.7:80 -i --tun-type gue --tun-port 5555
    //         --tun-csum -w 2 -x 100 -y 50
    let dest = DestConfig {
        method: ForwardMethod::Tunnel,
        weight: 2,
        u_threshold: 100,
        l_threshold: 50,
        tun_type: Encap::Gue,
        tun_port: 5555,
        tun_flags: 1,
        ..DestConfig::new(v4(198, 51, 100, 7), 80)
    };
    let req = Request::set_dest(&key_only_service(&article_vip()), &dest).expect("encodes");
    assert_eq!(req.cmd as u8, 6);
    let dest_nest = cat(&[
        nla(96, 2),
        nla(6, 11), h16(2), vec![0, 0],                 // AF_INET
        nla(20, 1), vec![198, 51, 100, 7], vec![0; 12], // ADDR
        nla(6, 2), vec![0, 80], vec![0, 0],             // PORT 80
        nla(8, 3), h32(2),                              // TUNNEL
        nla(8, 4), h32(2),                              // weight 2
        nla(5, 13), vec![1], vec![0, 0, 0],             // TUN_TYPE GUE
        nla(6, 14), vec![0x15, 0xb3], vec![0, 0],       // TUN_PORT 5555, network order
        nla(6, 15), h16(1), vec![0, 0],                 // TUN_FLAGS CSUM, host order
        nla(8, 5), h32(100),                            // U_THRESH
        nla(8, 6), h32(50),                             // L_THRESH
    ]);
    assert_eq!(req.attrs, cat(&[tcp_service_nest_wlc([192, 168, 80, 10], [0, 80]), dest_nest]));
}

#[test]
fn del_dest_sends_full_nest_with_defaults() {
    // ipvsadm -d -t 192.168.80.10:80 -r 192.168.80.11:8080: method DR, weight 1 defaults
    let req = Request::del_dest(&key_only_service(&article_vip()), v4(192, 168, 80, 11), 8080)
        .expect("encodes");
    assert_eq!(req.cmd as u8, 7);
    let dest_nest = cat(&[
        nla(96, 2),
        nla(6, 11), h16(2), vec![0, 0],
        nla(20, 1), vec![192, 168, 80, 11], vec![0; 12],
        nla(6, 2), vec![0x1f, 0x90], vec![0, 0],
        nla(8, 3), h32(3),                              // DR (ipvsadm default -g)
        nla(8, 4), h32(1),                              // weight 1 default
        nla(5, 13), vec![0], vec![0, 0, 0],
        nla(6, 14), vec![0, 0], vec![0, 0],
        nla(6, 15), h16(0), vec![0, 0],
        nla(8, 5), h32(0),
        nla(8, 6), h32(0),
    ]);
    assert_eq!(req.attrs, cat(&[tcp_service_nest_wlc([192, 168, 80, 10], [0, 80]), dest_nest]));
}

#[test]
fn get_dest_is_a_dump_with_the_service_nest() {
    let svc = key_only_service(&article_vip());
    let bytes = Request::dump_dests(&svc).expect("encodes").to_message(FAM, 8);
    let expected = cat(&[
        nlhdr(104, FAM, 0x0305, 8),                     // REQUEST|ACK|DUMP
        vec![8, 1, 0, 0],                               // GET_DEST
        tcp_service_nest_wlc([192, 168, 80, 10], [0, 80]),
    ]);
    assert_eq!(bytes, expected);
}

#[test]
fn parses_kernel_dest_dump_message_in_kernel_attribute_order() {
    let body = cat(&[
        nla(20, 1), vec![192, 168, 80, 11], vec![0; 12],// ADDR
        nla(6, 2), vec![0x1f, 0x90], vec![0, 0],        // PORT 8080
        nla(8, 3), h32(0),                              // MASQ
        nla(8, 4), h32(3),                              // weight
        nla(5, 13), vec![0], vec![0; 3],                // TUN_TYPE
        nla(6, 14), vec![0, 0], vec![0, 0],             // TUN_PORT
        nla(6, 15), h16(0), vec![0, 0],                 // TUN_FLAGS
        nla(8, 5), h32(0),                              // U_THRESH
        nla(8, 6), h32(0),                              // L_THRESH
        nla(8, 7), h32(2),                              // ACTIVE_CONNS
        nla(8, 8), h32(7),                              // INACT_CONNS
        nla(8, 9), h32(1),                              // PERSIST_CONNS
        nla(6, 11), h16(2), vec![0, 0],                 // ADDR_FAMILY
        nla(12, 10), nla(8, 1), h32(9),                 // STATS {CONNS 9} (superseded)
        nla(20, 12), nla(4, 11), nla(12, 1), h64(10),   // STATS64 {PAD, CONNS 10}
    ]);
    let attrs = cat(&[nla(4 + body.len() as u16, 2), body]);
    let g = GenlMessage {
        cmd: 5, // reply cmd NEW_DEST
        version: 1,
        attrs: &attrs,
    };
    let got = parse_dest_reply(&g, AF_INET).expect("parses");
    let want = DestStatus {
        config: article_dest(),
        active_conns: 2,
        inactive_conns: 7,
        persist_conns: 1,
        stats: Stats {
            conns: 10,
            ..Stats::default()
        },
    };
    assert_eq!(got, want);
    // The same message under the request command number is not a GET_DEST reply.
    let wrong = GenlMessage { cmd: 8, ..g };
    assert_eq!(
        parse_dest_reply(&wrong, AF_INET),
        Err(DecodeError::Command {
            expected: 5,
            got: 8
        })
    );
}

#[test]
fn dest_reply_from_old_kernel_without_family_or_tunnel_attrs() {
    let addr6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);
    let body = cat(&[
        nla(20, 1), addr6.octets().to_vec(),
        nla(6, 2), vec![0, 80], vec![0, 0],
        nla(8, 3), h32(3),                              // DR
        nla(8, 4), h32(0),                              // quiesced
        nla(8, 5), h32(10),
        nla(8, 6), h32(5),
    ]);
    let attrs = cat(&[nla(4 + body.len() as u16, 2), body]);
    let g = GenlMessage {
        cmd: 5,
        version: 1,
        attrs: &attrs,
    };
    let got = parse_dest_reply(&g, AF_INET6).expect("parses");
    assert_eq!(
        got.config,
        DestConfig {
            weight: 0,
            u_threshold: 10,
            l_threshold: 5,
            ..DestConfig::new(IpAddr::V6(addr6), 80)
        }
    );
}

#[test]
fn dest_nests_round_trip() {
    for d in [
        article_dest(),
        DestConfig {
            method: ForwardMethod::Tunnel,
            tun_type: Encap::Gre,
            tun_flags: 1,
            ..DestConfig::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2)), 443)
        },
        DestConfig {
            method: ForwardMethod::Local,
            weight: 0,
            ..DestConfig::new(v4(192, 0, 2, 1), 0)
        },
    ] {
        let mut w = AttrWriter::new();
        put_dest(&mut w, &d).expect("encodes");
        let bytes = w.finish();
        let nest = Attrs::new(&bytes).next().expect("one").expect("valid");
        assert_eq!(parse_dest_nest(&nest, AF_INET).expect("parses").config, d);
    }
}

#[test]
fn fullnat_destination_is_unavailable_on_the_kernel() {
    let d = DestConfig {
        method: ForwardMethod::FullNat,
        ..article_dest()
    };
    let err = Request::new_dest(&key_only_service(&article_vip()), &d).expect_err("no FullNAT");
    let lb = to_lb_error(
        Error::Encode {
            op: "add destination 192.168.80.11:8080".into(),
            source: err,
        },
        Target::Dest,
    );
    match lb {
        LbError::Unavailable(m) => {
            assert!(m.contains("NAT") && m.contains("nft SNAT"), "{m}");
            assert!(m.contains("192.168.80.11:8080"), "{m}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

