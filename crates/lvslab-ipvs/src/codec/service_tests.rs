//! Byte-level tests of the service requests and of kernel service replies.
//!
//! `test_bytes` explains how the expected bytes are written.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::codec::parse_dest_reply;
use crate::codec::test_bytes::*;
use crate::wire::{split_messages, Attrs, Reply, NLA_F_NESTED};

#[test]
fn new_service_matches_the_spec_wire_example() {
    // ipvsadm -A -t 10.0.0.1:80 -s rr (ipvs-spec §4.7): 104 bytes.
    let svc = ServiceConfig::new(
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: v4(10, 0, 0, 1),
            port: 80,
        },
        Scheduler::Rr,
    );
    let bytes = Request::new_service(&svc).expect("encodes").to_message(FAM, 1);
    let expected = cat(&[
        nlhdr(104, FAM, 0x0005, 1),                     // REQUEST|ACK
        vec![1, 1, 0, 0],                               // genl: cmd NEW_SERVICE, version 1
        nla(84, 1),                                     // SERVICE nest
        nla(6, 1), h16(2), vec![0, 0],                  // AF_INET
        nla(6, 2), h16(6), vec![0, 0],                  // TCP
        nla(20, 3), vec![10, 0, 0, 1], vec![0; 12],     // 10.0.0.1
        nla(6, 4), vec![0x00, 0x50], vec![0, 0],        // port 80, network order
        nla(7, 6), b"rr\0".to_vec(), vec![0],           // "rr\0" + 1 pad
        nla(12, 7), h32(0), h32(0xffff_ffff),           // flags 0 / mask all
        nla(8, 8), h32(0),                              // timeout 0
        nla(8, 9), vec![0xff; 4],                       // netmask /32
    ]);
    assert_eq!(bytes.len(), 104);
    assert_eq!(bytes, expected);
}

#[test]
fn set_service_fwmark_persistent_with_sh_flags() {
    // ipvsadm -E -f 7 -s sh -b sh-fallback,sh-port -p 300 -M 255.255.255.0
    let mut svc = ServiceConfig::new(
        ServiceKey::Fwmark {
            family: Family::Inet,
            mark: 7,
        },
        Scheduler::Sh,
    );
    svc.flags = ServiceFlags {
        persistent: true,
        sched1: true,
        sched2: true,
        ..ServiceFlags::default()
    };
    svc.timeout = 300;
    svc.netmask = u32::from(Ipv4Addr::new(255, 255, 255, 0));
    let bytes = Request::set_service(&svc).expect("encodes").to_message(FAM, 9);
    let expected = cat(&[
        nlhdr(76, FAM, 0x0005, 9),
        vec![2, 1, 0, 0],                               // SET_SERVICE
        nla(56, 1),                                     // SERVICE nest
        nla(6, 1), h16(2), vec![0, 0],                  // AF_INET
        nla(8, 5), h32(7),                              // FWMARK 7 (host); no proto/addr/port
        nla(7, 6), b"sh\0".to_vec(), vec![0],           // "sh"
        nla(12, 7), h32(0x01 | 0x08 | 0x10), h32(!0),   // PERSISTENT|SCHED1|SCHED2, mask all
        nla(8, 8), h32(300),                            // persistence timeout 300 s
        nla(8, 9), vec![255, 255, 255, 0],              // mask, network order
    ]);
    assert_eq!(bytes, expected);
}

#[test]
fn new_service_ipv6_udp_with_pe_and_one_packet() {
    // ipvsadm -A -u [2001:db8::1]:5060 -s rr -p 60 --pe sip -o (netmask default /128)
    let addr6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let mut svc = ServiceConfig::new(
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: IpAddr::V6(addr6),
            port: 5060,
        },
        Scheduler::Rr,
    );
    svc.flags.persistent = true;
    svc.flags.one_packet = true;
    svc.timeout = 60;
    svc.pe_name = Some("sip".into());
    let req = Request::new_service(&svc).expect("encodes");
    let expected_attrs = cat(&[
        nla(92, 1),
        nla(6, 1), h16(10), vec![0, 0],                 // AF_INET6
        nla(6, 2), h16(17), vec![0, 0],                 // UDP
        nla(20, 3), addr6.octets().to_vec(),            // 16 address bytes
        nla(6, 4), vec![0x13, 0xc4], vec![0, 0],        // 5060 network order
        nla(7, 6), b"rr\0".to_vec(), vec![0],           // scheduler
        nla(8, 11), b"sip\0".to_vec(),                  // PE_NAME after SCHED_NAME
        nla(12, 7), h32(0x01 | 0x04), h32(!0),          // PERSISTENT|ONEPACKET
        nla(8, 8), h32(60),                             // timeout
        nla(8, 9), h32(128),                            // IPv6: prefix length, host order
    ]);
    assert_eq!(req.attrs, expected_attrs);
    assert_eq!(req.nl_flags(), 0x0005);
}

#[test]
fn ipv6_netmask_outside_prefix_range_is_refused() {
    let mut svc = ServiceConfig::new(
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark: 1,
        },
        Scheduler::Rr,
    );
    svc.netmask = 129;
    assert!(matches!(
        Request::new_service(&svc),
        Err(EncodeError::Ipv6Netmask { netmask: 129, .. })
    ));
}

#[test]
fn del_service_sends_ipvsadm_defaults_with_the_key() {
    // ipvsadm -D -t 192.168.80.10:80
    let bytes = Request::del_service(&article_vip()).expect("encodes").to_message(FAM, 3);
    let expected = cat(&[
        nlhdr(104, FAM, 0x0005, 3),
        vec![3, 1, 0, 0],                               // DEL_SERVICE
        tcp_service_nest_wlc([192, 168, 80, 10], [0, 80]),
    ]);
    assert_eq!(bytes, expected);
}

#[test]
fn get_service_dump_has_no_attributes() {
    let bytes = Request::dump_services().to_message(FAM, 4);
    let expected = cat(&[
        nlhdr(20, FAM, 0x0305, 4),                      // REQUEST|ACK|DUMP
        vec![4, 1, 0, 0],                               // GET_SERVICE
    ]);
    assert_eq!(bytes, expected);
    let one = Request::get_service(&article_vip()).expect("encodes");
    assert!(!one.dump);
    assert_eq!(one.cmd, Command::GetService);
    assert_eq!(one.reply_cmd(), Some(Command::NewService));
}

/// A GET_SERVICE dump message as the kernel builds it: no NLA_F_NESTED on nests, HASHED in
/// FLAGS, 32-bit STATS then STATS64 with PAD attributes before the 64-bit values.
fn kernel_service_reply(seq: u32) -> Vec<u8> {
    let stats32 = cat(&[
        nla(92, 10),                                    // SVC STATS nest (no NESTED bit)
        nla(8, 1), h32(5),                              // CONNS u32
        nla(8, 2), h32(40),                             // INPKTS u32
        nla(8, 3), h32(38),                             // OUTPKTS u32
        nla(12, 4), h64(3_000),                         // INBYTES u64
        nla(12, 5), h64(9_000),                         // OUTBYTES u64
        nla(8, 6), h32(1),                              // CPS
        nla(8, 7), h32(2),                              // INPPS
        nla(8, 8), h32(3),                              // OUTPPS
        nla(8, 9), h32(4),                              // INBPS
        nla(8, 10), h32(5),                             // OUTBPS
    ]);
    let stats64 = cat(&[
        nla(132, 12),                                   // SVC STATS64 nest
        nla(4, 11),                                     // PAD (empty) for 8-byte alignment
        nla(12, 1), h64(5),                             // CONNS
        nla(4, 11),                                     // PAD
        nla(12, 2), h64(5_000_000_000),                 // INPKTS beyond u32
        nla(12, 3), h64(38),                            // OUTPKTS
        nla(12, 4), h64(3_000),                         // INBYTES
        nla(12, 5), h64(9_000),                         // OUTBYTES
        nla(12, 6), h64(1),                             // CPS
        nla(12, 7), h64(2),                             // INPPS
        nla(12, 8), h64(3),                             // OUTPPS
        nla(12, 9), h64(4),                             // INBPS
        nla(12, 10), h64(5),                            // OUTBPS
    ]);
    let nest_body = cat(&[
        nla(6, 1), h16(2), vec![0, 0],                  // AF_INET
        nla(6, 2), h16(6), vec![0, 0],                  // TCP
        nla(20, 3), vec![192, 168, 80, 10], vec![0; 12],// ADDR
        nla(6, 4), vec![0, 80], vec![0, 0],             // PORT 80
        nla(8, 6), b"wrr\0".to_vec(),                   // SCHED_NAME
        nla(12, 7), h32(0x0002), h32(!0),               // FLAGS: HASHED only, mask all
        nla(8, 8), h32(0),                              // TIMEOUT
        nla(8, 9), vec![0xff; 4],                       // NETMASK
        stats32,
        stats64,
    ]);
    let nest = cat(&[nla(4 + nest_body.len() as u16, 1), nest_body]);
    cat(&[
        nlhdr(16 + 4 + nest.len() as u32, FAM, 0x0002, seq), // NLM_F_MULTI
        vec![1, 1, 0, 0],                               // reply cmd NEW_SERVICE (not GET)
        nest,
    ])
}

#[test]
fn parses_kernel_service_dump_message() {
    let mut buf = kernel_service_reply(11);
    buf.extend(cat(&[nlhdr(20, 3, 0x0002, 11), h32(0)])); // NLMSG_DONE, error 0
    let msgs = split_messages(&buf).expect("frames");
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].reply().expect("classifies"), Reply::Done);
    let Reply::Data(g) = msgs[0].reply().expect("classifies") else {
        panic!("expected data");
    };
    let got = parse_service_reply(&g).expect("parses");
    let want = ServiceStatus {
        config: ServiceConfig::new(article_vip(), Scheduler::Wrr),
        stats: Stats {
            conns: 5,
            inpkts: 5_000_000_000, // from STATS64, not the 32-bit STATS value 40
            outpkts: 38,
            inbytes: 3_000,
            outbytes: 9_000,
            cps: 1,
            inpps: 2,
            outpps: 3,
            inbps: 4,
            outbps: 5,
        },
        dests: vec![],
    };
    assert_eq!(got, want);
    // HASHED is not a model flag.
    assert_eq!(got.config.flags, ServiceFlags::default());
}

#[test]
fn service_reply_with_only_32_bit_stats_and_nested_flag() {
    // An older kernel (no STATS64) and a sender that sets NLA_F_NESTED on the nest.
    let body = cat(&[
        nla(6, 1), h16(2), vec![0, 0],
        nla(8, 5), h32(42),                             // FWMARK 42
        nla(7, 6), b"rr\0".to_vec(), vec![0],
        nla(12, 7), h32(0x0003), h32(!0),               // PERSISTENT|HASHED
        nla(8, 8), h32(360),
        nla(8, 9), vec![255, 255, 0, 0],
        nla(12, 10 | NLA_F_NESTED), nla(8, 1), h32(9),  // STATS {CONNS 9}
    ]);
    let msg = cat(&[nla(4 + body.len() as u16, 1 | NLA_F_NESTED), body]);
    let g = GenlMessage {
        cmd: 1,
        version: 1,
        attrs: &msg,
    };
    let got = parse_service_reply(&g).expect("parses");
    let mut want = ServiceConfig::new(
        ServiceKey::Fwmark {
            family: Family::Inet,
            mark: 42,
        },
        Scheduler::Rr,
    );
    want.flags.persistent = true;
    want.timeout = 360;
    want.netmask = 0xffff_0000;
    assert_eq!(got.config, want);
    assert_eq!(got.stats.conns, 9);
}

fn round_trip_service(svc: &ServiceConfig) -> ServiceConfig {
    let mut w = AttrWriter::new();
    put_service(&mut w, svc).expect("encodes");
    let bytes = w.finish();
    let nest = Attrs::new(&bytes).next().expect("one").expect("valid");
    parse_service_nest(&nest).expect("parses").0
}

#[test]
fn service_nests_round_trip() {
    let mut cases = vec![
        ServiceConfig::new(article_vip(), Scheduler::Wrr),
        ServiceConfig::new(
            ServiceKey::Addr {
                protocol: Protocol::Sctp,
                addr: v4(203, 0, 113, 5),
                port: 9,
            },
            Scheduler::Mh,
        ),
    ];
    let mut p = ServiceConfig::new(
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark: 3,
        },
        Scheduler::Sh,
    );
    p.flags = ServiceFlags::from_bits(0x3d);
    p.timeout = 600;
    p.netmask = 64;
    p.pe_name = Some("sip".into());
    cases.push(p);
    for svc in &cases {
        assert_eq!(&round_trip_service(svc), svc);
    }
}

#[test]
fn overlong_pe_name_is_refused() {
    let mut svc = ServiceConfig::new(article_vip(), Scheduler::Rr);
    svc.pe_name = Some("a-very-long-persistence-engine".into());
    assert!(matches!(
        Request::new_service(&svc),
        Err(EncodeError::NameTooLong { .. })
    ));
}

#[test]
fn truncated_replies_never_panic() {
    let full = kernel_service_reply(1);
    for cut in 0..full.len() {
        let part = &full[..cut];
        if let Ok(msgs) = split_messages(part) {
            for m in msgs {
                if let Ok(Reply::Data(g)) = m.reply() {
                    let _ = parse_service_reply(&g);
                }
            }
        }
        // Also feed the body directly, so the attribute parser sees the cut.
        if cut > 20 {
            let g = GenlMessage {
                cmd: 1,
                version: 1,
                attrs: &full[20..cut],
            };
            let _ = parse_service_reply(&g);
            let _ = parse_dest_reply(&GenlMessage { cmd: 5, ..g }, AF_INET);
        }
    }
}

#[test]
fn zero_and_flush_requests() {
    assert_eq!(
        Request::flush().to_message(FAM, 5),
        cat(&[nlhdr(20, FAM, 0x0005, 5), vec![17, 1, 0, 0]]) // FLUSH
    );
    assert_eq!(
        Request::zero(None).expect("encodes").to_message(FAM, 6),
        cat(&[nlhdr(20, FAM, 0x0005, 6), vec![16, 1, 0, 0]]) // ZERO all: no service nest
    );
    assert_eq!(
        Request::zero(Some(&article_vip())).expect("encodes").to_message(FAM, 7),
        cat(&[
            nlhdr(104, FAM, 0x0005, 7),
            vec![16, 1, 0, 0],                          // ZERO one service
            tcp_service_nest_wlc([192, 168, 80, 10], [0, 80]),
        ])
    );
}

