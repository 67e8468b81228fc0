//! Byte-level tests of every IPVS request and of kernel replies.
//!
//! Expected bytes are written out attribute by attribute: `nla(len, type)` is the 4-byte
//! attribute header (`nla_len` counts header + unpadded payload), `h16/h32/h64` are host
//! byte order values, literal byte arrays are network order or raw bytes, and trailing
//! `0`s are alignment padding. Layouts follow ipvs-spec §4.3/§4.6 (libipvs attribute
//! order) and the §4.7 wire example.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_spec::lb::{
    DestConfig, DestStatus, Family, ForwardMethod, LbError, Protocol, ServiceConfig,
    ServiceFlags, ServiceKey, ServiceStatus, Scheduler, Stats, Timeouts, Encap,
};

use crate::codec::*;
use crate::error::{to_lb_error, Error, Target};
use crate::wire::{split_messages, AttrWriter, Attrs, GenlMessage, Reply, NLA_F_NESTED};

/// A made-up family id, as the controller would assign dynamically.
const FAM: u16 = 0x23;

fn h16(v: u16) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
fn h32(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
fn h64(v: u64) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
/// Attribute header: `nla_len`, `nla_type` (host order).
fn nla(len: u16, ty: u16) -> Vec<u8> {
    [h16(len), h16(ty)].concat()
}
/// `nlmsghdr`: len, type, flags, seq, pid 0.
fn nlhdr(len: u32, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
    [h32(len), h16(ty), h16(flags), h32(seq), h32(0)].concat()
}
fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn article_vip() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(192, 168, 80, 10),
        port: 80,
    }
}

/// The 84-byte service nest for a TCP/IPv4 key with ipvsadm's defaults (`wlc`).
fn tcp_service_nest_wlc(addr: [u8; 4], port: [u8; 2]) -> Vec<u8> {
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
fn config_info_zero_and_flush_requests() {
    // ipvsadm --set 900 120 300
    let set = Request::set_timeouts(&Timeouts {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
    });
    assert_eq!(
        set.to_message(FAM, 2),
        cat(&[
            nlhdr(44, FAM, 0x0005, 2),
            vec![12, 1, 0, 0],                          // SET_CONFIG
            nla(8, 4), h32(900),                        // TIMEOUT_TCP
            nla(8, 5), h32(120),                        // TIMEOUT_TCP_FIN
            nla(8, 6), h32(300),                        // TIMEOUT_UDP
        ])
    );
    assert_eq!(
        Request::get_timeouts().to_message(FAM, 3),
        cat(&[nlhdr(20, FAM, 0x0005, 3), vec![13, 1, 0, 0]]) // GET_CONFIG
    );
    assert_eq!(
        Request::get_info().to_message(FAM, 4),
        cat(&[nlhdr(20, FAM, 0x0005, 4), vec![15, 1, 0, 0]]) // GET_INFO
    );
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

#[test]
fn family_resolution_request_and_reply() {
    assert_eq!(
        resolve_family_message(1),
        cat(&[
            nlhdr(32, 0x10, 0x0005, 1),                 // GENL_ID_CTRL, REQUEST|ACK
            vec![3, 1, 0, 0],                           // CTRL_CMD_GETFAMILY, version 1
            nla(9, 2), b"IPVS\0".to_vec(), vec![0; 3],  // CTRL_ATTR_FAMILY_NAME + 3 pad
        ])
    );
    let reply = cat(&[
        nlhdr(48, 0x10, 0, 1),
        vec![1, 2, 0, 0],                               // CTRL_CMD_NEWFAMILY
        nla(9, 2), b"IPVS\0".to_vec(), vec![0; 3],      // FAMILY_NAME
        nla(6, 1), h16(FAM), vec![0, 0],                // FAMILY_ID (host)
        nla(8, 3), h32(1),                              // VERSION (ignored)
    ]);
    let msgs = split_messages(&reply).expect("frames");
    let Reply::Data(g) = msgs[0].reply().expect("classifies") else {
        panic!("expected a data message");
    };
    assert_eq!(parse_family_id(&g).expect("parses"), FAM);
}

#[test]
fn kernel_error_for_missing_family_is_enoent() {
    // What a kernel without IPVS answers to GETFAMILY "IPVS": NLMSG_ERROR -ENOENT, followed
    // by the echoed request header.
    let reply = cat(&[
        nlhdr(36, 2, 0x0100, 1),                        // NLMSG_ERROR, NLM_F_CAPPED
        (-2i32).to_ne_bytes().to_vec(),                 // error = -ENOENT
        nlhdr(32, 0x10, 0x0005, 1),                     // echoed request header
    ]);
    let msgs = split_messages(&reply).expect("frames");
    assert_eq!(msgs[0].reply().expect("classifies"), Reply::Error(2));
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
fn parses_info_and_config_replies_with_reply_command_numbers() {
    let info = cat(&[
        nla(8, 1), h32(0x0001_0201),                    // VERSION 1.2.1
        nla(8, 2), h32(4096),                           // CONN_TAB_SIZE
    ]);
    let g = GenlMessage {
        cmd: 14, // SET_INFO
        version: 1,
        attrs: &info,
    };
    let got = parse_info_reply(&g).expect("parses");
    assert_eq!(got.version, "1.2.1");
    assert_eq!(got.conn_table_size, 4096);
    assert!(parse_info_reply(&GenlMessage { cmd: 15, ..g }).is_err());

    let cfg = cat(&[
        nla(8, 4), h32(900),
        nla(8, 5), h32(120),
        nla(8, 6), h32(300),
    ]);
    let g = GenlMessage {
        cmd: 12, // SET_CONFIG
        version: 1,
        attrs: &cfg,
    };
    assert_eq!(
        parse_timeouts_reply(&g).expect("parses"),
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
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
