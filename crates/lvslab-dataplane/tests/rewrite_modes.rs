//! Byte-level tests of each forwarding mode's rewrite, against the kernel rules of
//! ipvs-spec.md §2 and traps 25–30. Every forwarded frame's checksums are compared with a
//! full recomputation by an independent implementation.

mod rewrite_support;

use std::net::SocketAddrV4;

use lvslab_dataplane::packet::frame::tcp_flags::{ACK, SYN};
use lvslab_dataplane::packet::{checksum, mangle, parse_frame, DropReason, Payload};
use lvslab_dataplane::rewrite::*;
use lvslab_spec::lb::Encap;
use rewrite_support::*;

fn egress_to_real(mtu: u16) -> Egress {
    Egress {
        src_mac: lvslab_spec::MacAddr(DIRECTOR_INSIDE_MAC),
        dst_mac: lvslab_spec::MacAddr(REAL_MAC),
        mtu,
    }
}

fn egress_to_client() -> Egress {
    Egress {
        src_mac: lvslab_spec::MacAddr(DIRECTOR_MAC),
        dst_mac: lvslab_spec::MacAddr(CLIENT_MAC),
        mtu: 1500,
    }
}

fn nat_to(real_port: u16) -> NatRequest {
    NatRequest {
        real: SocketAddrV4::new(RIP, real_port),
        egress: egress_to_real(1500),
    }
}

/// Bytes that differ between two frames of equal length, as offsets.
fn changed_offsets(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len());
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

// ---------------------------------------------------------------- parsing and drops

#[test]
fn malformed_frames_name_their_drop_reason() {
    let good = Pkt::tcp(SYN, b"").build();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut frame = good.clone();
        f(&mut frame);
        parse_frame(&frame).err()
    };
    assert_eq!(with(&|f| f.truncate(13)), Some(DropReason::Truncated));
    assert_eq!(with(&|f| f.truncate(30)), Some(DropReason::Truncated));
    assert_eq!(with(&|f| f[14] = 0x65), Some(DropReason::BadIpVersion));
    assert_eq!(with(&|f| f[14] = 0x44), Some(DropReason::BadHeaderLength));
    assert_eq!(
        with(&|f| f[16..18].copy_from_slice(&[0, 10])),
        Some(DropReason::BadTotalLength)
    );
    assert_eq!(
        with(&|f| f[16..18].copy_from_slice(&[5, 0])),
        Some(DropReason::Truncated)
    );
    assert_eq!(with(&|f| f[24] ^= 1), Some(DropReason::BadIpChecksum));
    assert_eq!(parse_frame(&good).err(), None);

    let fragment = Pkt {
        df: false,
        ..Pkt::tcp(SYN, b"")
    };
    let mut frame = fragment.build();
    // Set MF and fix the header checksum so only the fragment rule can fire.
    frame[20] |= 0x20;
    let sum = u16::from_be_bytes([frame[24], frame[25]]);
    let fixed = checksum::update_u16(sum, 0x0000, 0x2000);
    frame[24..26].copy_from_slice(&fixed.to_be_bytes());
    assert_eq!(parse_frame(&frame).err(), Some(DropReason::Fragment));

    let mut bad_offset = good.clone();
    bad_offset[14 + 20 + 12] = 0x40; // data offset 4 words < 5
    assert_eq!(
        parse_frame(&bad_offset).err(),
        Some(DropReason::BadTransportHeader)
    );
    let mut udp = Pkt::udp(b"abc", false).build();
    udp[14 + 20 + 5] += 1; // UDP length past the IP payload
    assert_eq!(
        parse_frame(&udp).err(),
        Some(DropReason::BadTransportHeader)
    );
}

#[test]
fn unknown_ethertype_and_protocol_pass_through() {
    let mut ipv6ish = Pkt::tcp(SYN, b"").build();
    ipv6ish[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(parse_frame(&ipv6ish).map(|f| f.payload), Ok(Payload::Other));

    let sctp = Pkt {
        l4: L4::Raw {
            protocol: 132,
            payload: vec![0; 12],
        },
        ..Pkt::tcp(0, b"")
    };
    let mut frame = sctp.build();
    let original = frame.clone();
    let mut reply = Vec::new();
    // NAT needs ports it cannot find in an unknown protocol; DR forwards any protocol.
    assert_eq!(
        nat_request(&mut frame.clone(), &nat_to(8080), &mut reply),
        Verdict::Drop(DropReason::UnknownProtocol)
    );
    let dr = DrRequest {
        egress: egress_to_real(1500),
    };
    assert_eq!(dr_request(&mut frame, &dr, &mut reply), Verdict::Forward);
    assert_eq!(frame[14 + 20..], original[14 + 20..], "payload untouched");
}

#[test]
fn options_are_accepted_and_offsets_follow_the_header_length() {
    let pkt = Pkt {
        ip_options: vec![1, 1, 1, 0], // NOP NOP NOP EOL
        ..Pkt::tcp(SYN, b"hi")
    };
    let mut frame = pkt.build();
    let mut reply = Vec::new();
    assert_eq!(
        nat_request(&mut frame, &nat_to(8080), &mut reply),
        Verdict::Forward
    );
    assert_eq!(be16(&frame, 14 + 24 + 2), 8080);
    assert_checksums_equal_full_recompute(&frame);
}

// ---------------------------------------------------------------- NAT

#[test]
fn nat_request_rewrites_destination_ttl_and_macs_only() {
    let original = Pkt::tcp(SYN, b"GET /").build();
    let mut frame = original.clone();
    let mut reply = Vec::new();
    assert_eq!(
        nat_request(&mut frame, &nat_to(8080), &mut reply),
        Verdict::Forward
    );
    assert!(reply.is_empty());

    assert_eq!(frame[0..6], REAL_MAC);
    assert_eq!(frame[6..12], DIRECTOR_INSIDE_MAC);
    assert_eq!(frame[22], 63, "TTL decremented");
    assert_eq!(addr(&frame, 26), CIP, "source kept");
    assert_eq!(addr(&frame, 30), RIP);
    assert_eq!(be16(&frame, 34), 40000, "source port kept");
    assert_eq!(be16(&frame, 36), 8080);
    let touched: Vec<usize> = changed_offsets(&original, &frame)
        .into_iter()
        .filter(|&i| i >= 12)
        .collect();
    let allowed = [22, 24, 25, 30, 31, 32, 33, 36, 37, 50, 51];
    assert!(touched.iter().all(|i| allowed.contains(i)), "{touched:?}");
    assert_checksums_equal_full_recompute(&frame);
}

#[test]
fn nat_request_gives_zero_checksum_udp_a_real_checksum() {
    let mut frame = Pkt::udp(b"query", true).build();
    let mut reply = Vec::new();
    assert_eq!(
        nat_request(&mut frame, &nat_to(5353), &mut reply),
        Verdict::Forward
    );
    let stored = be16(&frame, 14 + 20 + 6);
    assert_ne!(stored, 0, "trap 28: no zero UDP checksum after NAT");
    assert_checksums_equal_full_recompute(&frame);
}

#[test]
fn udp_checksum_that_computes_to_zero_is_sent_as_ffff() {
    // Choose the first payload word so that the post-NAT datagram sums to 0xFFFF: adding
    // a packet's own checksum to its sum does exactly that (S + ~S = 0xFFFF).
    let after_nat = |payload: &[u8]| Pkt {
        dst: RIP,
        l4: L4::Udp {
            sport: 40000,
            dport: 5353,
            payload: payload.to_vec(),
            zero_checksum: false,
        },
        ..Pkt::udp(b"", false)
    };
    let probe = after_nat(&[0, 0, 0xab, 0xcd]).build();
    let checksum_now = be16(&probe, 14 + 20 + 6);
    let mut payload = checksum_now.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0xab, 0xcd]);
    for zero_checksum in [true, false] {
        let mut frame = Pkt::udp(&payload, zero_checksum).build();
        let mut reply = Vec::new();
        assert_eq!(
            nat_request(&mut frame, &nat_to(5353), &mut reply),
            Verdict::Forward
        );
        assert_eq!(
            be16(&frame, 14 + 20 + 6),
            0xffff,
            "RFC 768: computed 0 goes out as 0xFFFF"
        );
        let sum_with_pseudo = checksum::transport_checksum(CIP, RIP, 17, &frame[34..], 6);
        assert_eq!(sum_with_pseudo, 0, "the datagram really sums to zero");
    }
}

#[test]
fn nat_request_at_ttl_one_answers_time_exceeded_from_the_vip() {
    let original = Pkt {
        ttl: 1,
        ..Pkt::tcp(SYN, b"")
    }
    .build();
    let mut frame = original.clone();
    let mut reply = Vec::new();
    let verdict = nat_request(&mut frame, &nat_to(8080), &mut reply);
    assert_eq!(verdict, Verdict::DropWithReply(DropReason::TtlExpired));
    assert_eq!(frame, original, "dropped frame left alone");

    assert_eq!(reply[0..6], CLIENT_MAC, "back to the sender");
    assert_eq!(reply[6..12], DIRECTOR_MAC);
    assert_eq!(
        addr(&reply, 26),
        VIP,
        "spec §2.2: errors about VIP packets come from the VIP"
    );
    assert_eq!(addr(&reply, 30), CIP);
    assert_eq!(reply[23], 1, "ICMP");
    assert_eq!(reply[22], 64, "default TTL");
    assert_eq!(reply[15], 0xc0, "precedence internetwork control");
    assert_eq!(reply[34..36], [11, 0], "time exceeded in transit");
    assert_eq!(reply[42..], original[14..], "whole short packet quoted");
    assert_eq!(simple_checksum(&reply[14..34]), 0);
    assert_eq!(simple_checksum(&reply[34..]), 0);
    assert!(parse_frame(&reply).is_ok());
}

#[test]
fn df_packet_over_mtu_gets_frag_needed_with_the_route_mtu() {
    let big = Pkt::tcp(ACK, &[7; 1400]).build();
    let mut frame = big.clone();
    let mut reply = Vec::new();
    let to = NatRequest {
        egress: egress_to_real(1280),
        ..nat_to(8080)
    };
    let verdict = nat_request(&mut frame, &to, &mut reply);
    assert_eq!(
        verdict,
        Verdict::DropWithReply(DropReason::NeedsFragmentation)
    );
    assert_eq!(reply[34..36], [3, 4]);
    assert_eq!(be16(&reply, 40), 1280, "next-hop MTU");
    assert_eq!(addr(&reply, 26), VIP);
    assert_eq!(be16(&reply, 16), 576, "error datagram capped at 576 bytes");
    // IPVS decrements the TTL before its MTU check: the quoted header shows it.
    assert_eq!(reply[42 + 8], 63);
    assert_eq!(addr(&reply, 42 + 16), VIP, "quoted before DNAT");
    assert_eq!(simple_checksum(&reply[34..]), 0);

    let no_df = Pkt {
        df: false,
        ..Pkt::tcp(ACK, &[7; 1400])
    }
    .build();
    let mut frame = no_df;
    let verdict = nat_request(&mut frame, &to, &mut reply);
    assert_eq!(verdict, Verdict::Drop(DropReason::NeedsFragmentation));
    assert!(reply.is_empty());
}

#[test]
fn nat_reply_rewrites_source_to_the_virtual_service() {
    let pkt = Pkt {
        src_mac: REAL_MAC,
        dst_mac: DIRECTOR_INSIDE_MAC,
        src: RIP,
        dst: CIP,
        l4: L4::Tcp {
            sport: 8080,
            dport: 40000,
            seq: 5,
            ack: 1001,
            flags: SYN | ACK,
            options: vec![2, 4, 0x05, 0xb4],
            payload: vec![],
        },
        ..Pkt::tcp(0, b"")
    };
    let mut frame = pkt.build();
    let to = NatReply {
        virtual_service: SocketAddrV4::new(VIP, 80),
        egress: egress_to_client(),
        director: DIP,
    };
    let mut reply = Vec::new();
    assert_eq!(nat_reply(&mut frame, &to, &mut reply), Verdict::Forward);
    assert_eq!(addr(&frame, 26), VIP);
    assert_eq!(be16(&frame, 34), 80);
    assert_eq!(addr(&frame, 30), CIP);
    assert_eq!(be16(&frame, 36), 40000);
    assert_eq!(
        frame[22], 63,
        "trap 26: the forwarding path decrements reply TTLs"
    );
    assert_eq!(frame[0..6], CLIENT_MAC);
    assert_checksums_equal_full_recompute(&frame);

    let mut expiring = Pkt { ttl: 1, ..pkt }.build();
    let verdict = nat_reply(&mut expiring, &to, &mut reply);
    assert_eq!(verdict, Verdict::DropWithReply(DropReason::TtlExpired));
    assert_eq!(
        addr(&reply, 26),
        DIP,
        "forwarding path answers from the director"
    );
    assert_eq!(addr(&reply, 30), RIP);
}

// ---------------------------------------------------------------- DR

#[test]
fn dr_changes_only_macs_ttl_and_ip_checksum() {
    let original = Pkt::tcp(SYN, b"x").build();
    let mut frame = original.clone();
    let mut reply = Vec::new();
    let dr = DrRequest {
        egress: egress_to_real(1500),
    };
    assert_eq!(dr_request(&mut frame, &dr, &mut reply), Verdict::Forward);
    assert_eq!(frame[0..6], REAL_MAC);
    assert_eq!(frame[6..12], DIRECTOR_INSIDE_MAC);
    let touched: Vec<usize> = changed_offsets(&original, &frame)
        .into_iter()
        .filter(|&i| i >= 12)
        .collect();
    assert_eq!(
        touched,
        vec![22, 24],
        "TTL and the header checksum (one byte of it here)"
    );
    assert_eq!(frame[22], 63);
    assert_eq!(addr(&frame, 30), VIP, "destination stays the VIP");
    assert_checksums_equal_full_recompute(&frame);
}

// ---------------------------------------------------------------- TUN

fn tun_to(tunnel: Encap, mtu: u16, pmtu_disc: bool) -> TunRequest {
    TunRequest {
        tunnel,
        local: DIP,
        real: RIP,
        egress: egress_to_real(mtu),
        pmtu_disc,
        ip_id: 0x4242,
    }
}

#[test]
fn ipip_outer_header_follows_the_kernel() {
    // DSCP 0x28 (AF11) with ECN CE: outer gets ECT(0) per RFC 6040.
    let original = Pkt {
        tos: (0x0a << 2) | 0b11,
        ..Pkt::tcp(SYN, b"data")
    }
    .build();
    let mut frame = original.clone();
    frame.extend_from_slice(&[0; 6]); // Ethernet padding must not be tunnelled
    let mut reply = Vec::new();
    let verdict = tun_request(&mut frame, &tun_to(Encap::Ipip, 1500, true), &mut reply);
    assert_eq!(verdict, Verdict::Forward);
    assert_eq!(frame[0..6], REAL_MAC);
    assert_eq!(frame.len(), original.len() + 20);
    let outer = &frame[14..34];
    assert_eq!(outer[0], 0x45);
    assert_eq!(outer[1], (0x0a << 2) | 0b10, "DSCP copied, CE → ECT(0)");
    assert_eq!(usize::from(be16(outer, 2)), original.len() - 14 + 20);
    assert_eq!(be16(outer, 4), 0x4242);
    assert_eq!(outer[6], 0x40, "DF copied from the inner packet");
    assert_eq!(outer[8], 63, "outer TTL = inner TTL after the decrement");
    assert_eq!(outer[9], 4, "IPIP");
    assert_eq!(addr(outer, 12), DIP);
    assert_eq!(addr(outer, 16), RIP);
    assert_eq!(simple_checksum(outer), 0);

    let inner = &frame[34..];
    assert_eq!(inner[8], 63, "inner TTL decremented");
    assert_eq!(addr(inner, 16), VIP, "inner destination stays the VIP");
    let mut as_frame = original[..14].to_vec();
    as_frame.extend_from_slice(inner);
    assert_checksums_equal_full_recompute(&as_frame);

    assert_eq!(tun_decapsulate(&frame), Ok(inner));
}

#[test]
fn gre_adds_a_four_byte_header_and_decapsulates() {
    let original = Pkt::udp(b"dns", false).build();
    let mut frame = original.clone();
    let mut reply = Vec::new();
    let verdict = tun_request(&mut frame, &tun_to(Encap::Gre, 1500, true), &mut reply);
    assert_eq!(verdict, Verdict::Forward);
    assert_eq!(frame[23], 47);
    assert_eq!(frame[34..38], [0, 0, 0x08, 0x00]);
    let inner = tun_decapsulate(&frame).expect("decapsulates");
    assert_eq!(inner.len(), original.len() - 14);
    assert_eq!(inner[8], 63);

    let mut with_key = frame.clone();
    with_key[34] = 0x20; // K bit: a 4-byte key follows
    with_key.splice(38..38, [0, 0, 0, 9]);
    let total = be16(&with_key, 16) + 4;
    with_key[16..18].copy_from_slice(&total.to_be_bytes());
    with_key[24..26].fill(0);
    let sum = simple_checksum(&with_key[14..34]);
    with_key[24..26].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(tun_decapsulate(&with_key), Ok(inner));

    let mut routing = frame.clone();
    routing[34] = 0x40;
    assert_eq!(tun_decapsulate(&routing), Err(DropReason::BadGreHeader));
    assert_eq!(tun_decapsulate(&original), Err(DropReason::NotTunnelled));
}

#[test]
fn tunnel_overhead_reduces_the_mtu_for_df_packets() {
    // 1480 bytes fit IPIP on a 1500 route, not GRE (1476).
    let pkt = Pkt::tcp(ACK, &[1; 1480 - 40]);
    let mut reply = Vec::new();
    let mut frame = pkt.build();
    let ipip = tun_request(&mut frame, &tun_to(Encap::Ipip, 1500, true), &mut reply);
    assert_eq!(ipip, Verdict::Forward);

    let mut frame = pkt.build();
    let gre = tun_request(&mut frame, &tun_to(Encap::Gre, 1500, true), &mut reply);
    assert_eq!(gre, Verdict::DropWithReply(DropReason::NeedsFragmentation));
    assert_eq!(reply[34..36], [3, 4]);
    assert_eq!(be16(&reply, 40), 1476, "route MTU − 20 − 4");
    assert_eq!(addr(&reply, 26), VIP);

    // pmtu_disc = 0: no ICMP, and the outer header never has DF.
    let small = Pkt::tcp(ACK, b"x");
    let mut frame = small.build();
    let verdict = tun_request(&mut frame, &tun_to(Encap::Ipip, 1500, false), &mut reply);
    assert_eq!(verdict, Verdict::Forward);
    assert_eq!(frame[20], 0, "outer DF clear");

    let mut frame = small.build();
    let tiny = tun_request(&mut frame, &tun_to(Encap::Ipip, 87, true), &mut reply);
    assert_eq!(tiny, Verdict::Drop(DropReason::TunnelMtuTooSmall));
    let mut frame = small.build();
    let gue = tun_request(&mut frame, &tun_to(Encap::Gue, 1500, true), &mut reply);
    assert_eq!(gue, Verdict::Drop(DropReason::UnsupportedTunnel));
}

// ---------------------------------------------------------------- FullNAT and TOA

fn fullnat_to(toa_kind: Option<u8>) -> FullNatRequest {
    FullNatRequest {
        local: SocketAddrV4::new(LIP, 5001),
        real: SocketAddrV4::new(RIP, 8080),
        egress: egress_to_real(1500),
        toa_kind,
    }
}

#[test]
fn fullnat_request_translates_both_ends_and_inserts_toa_after_the_fixed_header() {
    let mss = vec![2, 4, 0x05, 0xb4];
    let pkt = Pkt {
        l4: L4::Tcp {
            sport: 40000,
            dport: 80,
            seq: 1000,
            ack: 0,
            flags: SYN,
            options: mss.clone(),
            payload: vec![],
        },
        ..Pkt::tcp(0, b"")
    };
    let original = pkt.build();
    let mut frame = original.clone();
    let mut reply = Vec::new();
    assert_eq!(
        fullnat_request(&mut frame, &fullnat_to(Some(254)), &mut reply),
        Verdict::Forward
    );
    assert_eq!(frame.len(), original.len() + 8);
    assert_eq!(be16(&frame, 16), be16(&original, 16) + 8, "IP total length");
    assert_eq!(addr(&frame, 26), LIP);
    assert_eq!(addr(&frame, 30), RIP);
    assert_eq!(be16(&frame, 34), 5001);
    assert_eq!(be16(&frame, 36), 8080);
    assert_eq!(frame[34 + 12] >> 4, 8, "data offset 6 + 2 words");
    let toa = &frame[54..62];
    assert_eq!(toa[0..2], [254, 8]);
    assert_eq!(be16(toa, 2), 40000, "client port");
    assert_eq!(addr(toa, 4), CIP, "client address");
    assert_eq!(frame[62..66], mss[..], "existing options follow");
    assert_checksums_equal_full_recompute(&frame);
}

#[test]
fn toa_is_skipped_without_option_room_or_for_udp() {
    let pkt = Pkt {
        l4: L4::Tcp {
            sport: 40000,
            dport: 80,
            seq: 1,
            ack: 0,
            flags: SYN,
            options: vec![1; 36],
            payload: vec![],
        },
        ..Pkt::tcp(0, b"")
    };
    let original = pkt.build();
    let mut frame = original.clone();
    let mut reply = Vec::new();
    assert_eq!(
        fullnat_request(&mut frame, &fullnat_to(Some(254)), &mut reply),
        Verdict::Forward
    );
    assert_eq!(frame.len(), original.len(), "36 + 8 > 40 option bytes");
    assert_checksums_equal_full_recompute(&frame);

    let mut udp = Pkt::udp(b"q", true).build();
    assert_eq!(
        fullnat_request(&mut udp, &fullnat_to(Some(254)), &mut reply),
        Verdict::Forward
    );
    assert_eq!(addr(&udp, 26), LIP);
    assert_checksums_equal_full_recompute(&udp);
}

#[test]
fn fullnat_reply_restores_the_client_view() {
    let pkt = Pkt {
        src_mac: REAL_MAC,
        dst_mac: DIRECTOR_INSIDE_MAC,
        src: RIP,
        dst: LIP,
        l4: L4::Udp {
            sport: 8080,
            dport: 5001,
            payload: b"answer".to_vec(),
            zero_checksum: false,
        },
        ..Pkt::tcp(0, b"")
    };
    let mut frame = pkt.build();
    let to = FullNatReply {
        virtual_service: SocketAddrV4::new(VIP, 80),
        client: SocketAddrV4::new(CIP, 40000),
        egress: egress_to_client(),
    };
    let mut reply = Vec::new();
    assert_eq!(fullnat_reply(&mut frame, &to, &mut reply), Verdict::Forward);
    assert_eq!((addr(&frame, 26), be16(&frame, 34)), (VIP, 80));
    assert_eq!((addr(&frame, 30), be16(&frame, 36)), (CIP, 40000));
    assert_checksums_equal_full_recompute(&frame);
}

// ---------------------------------------------------------------- ICMP errors

/// A port-unreachable from the real server about the client's UDP datagram as the RS saw it.
fn port_unreachable_from_real_server(
    quoted_src: SocketAddrV4,
    quoted_dst: SocketAddrV4,
) -> Vec<u8> {
    let mut quoted = Pkt {
        src: *quoted_src.ip(),
        dst: *quoted_dst.ip(),
        l4: L4::Udp {
            sport: quoted_src.port(),
            dport: quoted_dst.port(),
            payload: b"q".to_vec(),
            zero_checksum: false,
        },
        ..Pkt::tcp(0, b"")
    }
    .build()
    .split_off(14);
    quoted.truncate(28);
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted);
    Pkt {
        src_mac: REAL_MAC,
        dst_mac: DIRECTOR_INSIDE_MAC,
        src: RIP,
        dst: *quoted_src.ip(),
        df: false,
        l4: L4::Raw {
            protocol: 1,
            payload: icmp,
        },
        ..Pkt::tcp(0, b"")
    }
    .build()
}

#[test]
fn nat_icmp_error_from_real_server_shows_the_client_its_own_packet() {
    let original = port_unreachable_from_real_server(
        SocketAddrV4::new(CIP, 40000),
        SocketAddrV4::new(RIP, 8080),
    );
    let quoted_udp_checksum = be16(&original, 42 + 20 + 6);
    let mut frame = original.clone();
    let how = IcmpTranslation::nat_from_real_server(SocketAddrV4::new(VIP, 80), egress_to_client());
    assert_eq!(translate_icmp_error(&mut frame, &how), Verdict::Forward);
    assert_eq!(addr(&frame, 26), VIP, "outer source");
    assert_eq!(addr(&frame, 30), CIP);
    assert_eq!(frame[22], 63);
    assert_eq!(addr(&frame, 42 + 12), CIP, "quoted source");
    assert_eq!(addr(&frame, 42 + 16), VIP, "quoted destination");
    assert_eq!(be16(&frame, 42 + 22), 80, "quoted destination port");
    assert_eq!(
        be16(&frame, 42 + 26),
        quoted_udp_checksum,
        "trap 28: quoted L4 checksum untouched"
    );
    assert_eq!(
        simple_checksum(&frame[42..62]),
        0,
        "quoted IP header checksum fixed"
    );
    assert_eq!(simple_checksum(&frame[34..]), 0, "ICMP checksum fixed");
    assert_checksums_equal_full_recompute(&frame);
}

#[test]
fn fullnat_icmp_errors_translate_both_ways() {
    let local = SocketAddrV4::new(LIP, 5001);
    let real = SocketAddrV4::new(RIP, 8080);
    let client = SocketAddrV4::new(CIP, 40000);
    let vs = SocketAddrV4::new(VIP, 80);
    let mut frame = port_unreachable_from_real_server(local, real);
    let how = IcmpTranslation::fullnat_from_real_server(vs, client, egress_to_client());
    assert_eq!(translate_icmp_error(&mut frame, &how), Verdict::Forward);
    assert_eq!((addr(&frame, 26), addr(&frame, 30)), (VIP, CIP));
    assert_eq!((addr(&frame, 54), be16(&frame, 62)), (CIP, 40000));
    assert_eq!((addr(&frame, 58), be16(&frame, 64)), (VIP, 80));
    assert_eq!(simple_checksum(&frame[34..]), 0);

    // Back again: what the client would send about that packet becomes the RS's view.
    let mut back = frame.clone();
    let how = IcmpTranslation::fullnat_from_client(local, real, egress_to_real(1500));
    back[26..34].copy_from_slice(&[CIP.octets(), VIP.octets()].concat());
    back[24..26].fill(0);
    let sum = simple_checksum(&back[14..34]);
    back[24..26].copy_from_slice(&sum.to_be_bytes());
    back[42 + 12..42 + 20].copy_from_slice(&[VIP.octets(), CIP.octets()].concat());
    back[62..66].copy_from_slice(&[0, 80, 0x9c, 0x40]);
    back[42 + 10..42 + 12].fill(0);
    let sum = simple_checksum(&back[42..62]);
    back[52..54].copy_from_slice(&sum.to_be_bytes());
    back[36..38].fill(0);
    let sum = simple_checksum(&back[34..]);
    back[36..38].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(translate_icmp_error(&mut back, &how), Verdict::Forward);
    assert_eq!((addr(&back, 26), addr(&back, 30)), (LIP, RIP));
    assert_eq!((addr(&back, 54), be16(&back, 62)), (RIP, 8080));
    assert_eq!((addr(&back, 58), be16(&back, 64)), (LIP, 5001));
    assert_eq!(simple_checksum(&back[34..]), 0);
}

#[test]
fn icmp_translation_refuses_what_the_kernel_refuses() {
    let how = IcmpTranslation::nat_from_real_server(SocketAddrV4::new(VIP, 80), egress_to_client());
    let good =
        port_unreachable_from_real_server(SocketAddrV4::new(CIP, 1), SocketAddrV4::new(RIP, 2));
    let mut bad_sum = good.clone();
    bad_sum[36] ^= 0xff;
    assert_eq!(
        translate_icmp_error(&mut bad_sum, &how),
        Verdict::Drop(DropReason::BadIcmpChecksum)
    );

    let echo = Pkt {
        l4: L4::Raw {
            protocol: 1,
            payload: vec![8, 0, 0, 0, 0, 1, 0, 1],
        },
        ..Pkt::tcp(0, b"")
    };
    let mut frame = echo.build();
    assert_eq!(
        translate_icmp_error(&mut frame, &how),
        Verdict::Drop(DropReason::NotIcmpError)
    );

    let mut expiring = good.clone();
    expiring[22] = 1;
    let sum = checksum::update_u16(
        be16(&expiring, 24),
        u16::from_be_bytes([64, 1]),
        u16::from_be_bytes([1, 1]),
    );
    expiring[24..26].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        translate_icmp_error(&mut expiring, &how),
        Verdict::Drop(DropReason::TtlExpired)
    );
}

// ---------------------------------------------------------------- ARP

fn arp_request(target: std::net::Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&CIP.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

#[test]
fn arp_requests_for_the_vip_are_answered() {
    let mut out = Vec::new();
    assert_eq!(
        arp_reply(
            &arp_request(VIP),
            &[VIP],
            lvslab_spec::MacAddr(DIRECTOR_MAC),
            &mut out
        ),
        Ok(())
    );
    assert_eq!(out[0..6], CLIENT_MAC);
    assert_eq!(out[6..12], DIRECTOR_MAC);
    assert_eq!(out[12..14], [0x08, 0x06]);
    assert_eq!(be16(&out, 20), 2, "reply");
    assert_eq!(out[22..28], DIRECTOR_MAC);
    assert_eq!(addr(&out, 28), VIP);
    assert_eq!(out[32..38], CLIENT_MAC);
    assert_eq!(addr(&out, 38), CIP);

    let other = arp_reply(
        &arp_request(RIP),
        &[VIP],
        lvslab_spec::MacAddr(DIRECTOR_MAC),
        &mut out,
    );
    assert_eq!(other, Err(DropReason::NotOurAddress));
    let mut not_request = arp_request(VIP);
    not_request[21] = 2;
    let r = arp_reply(
        &not_request,
        &[VIP],
        lvslab_spec::MacAddr(DIRECTOR_MAC),
        &mut out,
    );
    assert_eq!(r, Err(DropReason::NotArpRequest));
    let r = arp_reply(
        &arp_request(VIP)[..30],
        &[VIP],
        lvslab_spec::MacAddr(DIRECTOR_MAC),
        &mut out,
    );
    assert_eq!(r, Err(DropReason::MalformedArp));
}

// ---------------------------------------------------------------- checksum completion

#[test]
fn partial_checksum_is_completed_to_the_full_one() {
    for original in [
        Pkt::tcp(SYN, b"hello").build(),
        Pkt::udp(b"hello", false).build(),
    ] {
        let at = transport_checksum_at(&original).expect("tcp or udp");
        let mut frame = original.clone();
        // What a CHECKSUM_PARTIAL sender leaves: the folded, uncomplemented pseudo-header sum.
        let len = (frame.len() - 34) as u16;
        let pseudo = checksum::fold(checksum::pseudo_header_sum(CIP, VIP, frame[23], len));
        frame[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
        let Ok(info) = parse_frame(&frame) else {
            panic!("parses")
        };
        let Payload::Ipv4(mut ip) = info.payload else {
            panic!("ipv4")
        };
        assert_eq!(
            mangle::complete_transport_checksum(&mut frame, &mut ip),
            Ok(())
        );
        assert_eq!(frame, original);
    }
}
