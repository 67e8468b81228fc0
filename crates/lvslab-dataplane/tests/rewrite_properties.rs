//! Property tests: any bytes, and valid frames of every mode damaged by byte flips,
//! truncations and extensions, through parsing and every rewrite never panic; every
//! non-forwarded frame is accounted to a drop reason; forwarded frames stay valid (the IPv4
//! header checksum always, the TCP/UDP/ICMP checksum whenever the input's verified); and for
//! valid TCP/UDP packets every incremental checksum equals a full recomputation. Bounded:
//! a few seconds in all.

mod rewrite_support;

use std::net::{Ipv4Addr, SocketAddrV4};

use lvslab_dataplane::packet::{parse_frame, parse_ipv4, DropCounters, DropReason, Payload};
use lvslab_dataplane::rewrite::*;
use lvslab_spec::lb::Encap;
use proptest::prelude::*;
use rewrite_support::*;

fn egress() -> Egress {
    Egress {
        src_mac: lvslab_spec::MacAddr(DIRECTOR_INSIDE_MAC),
        dst_mac: lvslab_spec::MacAddr(REAL_MAC),
        mtu: 1500,
    }
}

fn tun(tunnel: Encap) -> TunRequest {
    TunRequest {
        tunnel,
        local: DIP,
        real: RIP,
        egress: egress(),
        pmtu_disc: true,
        ip_id: 7,
    }
}

fn fullnat() -> FullNatRequest {
    FullNatRequest {
        local: SocketAddrV4::new(LIP, 5001),
        real: SocketAddrV4::new(RIP, 8080),
        egress: egress(),
        toa_kind: Some(254),
    }
}

/// The outcome of one rewrite, as the engine would count it.
enum Outcome {
    Forwarded(Vec<u8>),
    Dropped(DropReason),
}

/// Every rewrite the engine can apply to a received frame, each on its own copy.
fn every_rewrite(frame: &[u8]) -> Vec<(&'static str, Outcome)> {
    let mut reply = Vec::new();
    let mut results = Vec::new();
    let mut run = |name, copy: Vec<u8>, verdict: Verdict, reply: &[u8]| {
        let outcome = match verdict {
            Verdict::Forward => Outcome::Forwarded(copy),
            Verdict::DropWithReply(reason) => {
                assert_reply_is_valid_icmp(reply);
                Outcome::Dropped(reason)
            }
            Verdict::Drop(reason) => {
                assert!(
                    reply.is_empty(),
                    "{name}: no reply buffer without a reply verdict"
                );
                Outcome::Dropped(reason)
            }
        };
        results.push((name, outcome));
    };

    let mut f = frame.to_vec();
    let to = NatRequest {
        real: SocketAddrV4::new(RIP, 8080),
        egress: egress(),
    };
    let v = nat_request(&mut f, &to, &mut reply);
    run("nat_request", f, v, &reply);

    let mut f = frame.to_vec();
    let to = NatReply {
        virtual_service: SocketAddrV4::new(VIP, 80),
        egress: egress(),
        director: DIP,
    };
    let v = nat_reply(&mut f, &to, &mut reply);
    run("nat_reply", f, v, &reply);

    let mut f = frame.to_vec();
    let v = dr_request(&mut f, &DrRequest { egress: egress() }, &mut reply);
    run("dr_request", f, v, &reply);

    for (name, tunnel) in [("tun_ipip", Encap::Ipip), ("tun_gre", Encap::Gre)] {
        let mut f = frame.to_vec();
        let v = tun_request(&mut f, &tun(tunnel), &mut reply);
        run(name, f, v, &reply);
    }

    let mut f = frame.to_vec();
    let v = fullnat_request(&mut f, &fullnat(), &mut reply);
    run("fullnat_request", f, v, &reply);

    let mut f = frame.to_vec();
    let to = FullNatReply {
        virtual_service: SocketAddrV4::new(VIP, 80),
        client: SocketAddrV4::new(CIP, 40000),
        egress: egress(),
    };
    let v = fullnat_reply(&mut f, &to, &mut reply);
    run("fullnat_reply", f, v, &reply);

    let mut f = frame.to_vec();
    let how = IcmpTranslation::nat_from_real_server(SocketAddrV4::new(VIP, 80), egress());
    let v = translate_icmp_error(&mut f, &how);
    reply.clear();
    run("translate_icmp_error", f, v, &reply);

    let v = match tun_decapsulate(frame) {
        Ok(_) => Verdict::Forward,
        Err(reason) => Verdict::Drop(reason),
    };
    run("tun_decapsulate", frame.to_vec(), v, &[]);

    let mut out = Vec::new();
    match arp_reply(frame, &[VIP], lvslab_spec::MacAddr(DIRECTOR_MAC), &mut out) {
        Ok(()) => {
            assert!(parse_frame(&out).is_ok());
            results.push(("arp_reply", Outcome::Forwarded(frame.to_vec())));
        }
        Err(reason) => results.push(("arp_reply", Outcome::Dropped(reason))),
    }
    results
}

fn assert_reply_is_valid_icmp(reply: &[u8]) {
    assert!(parse_frame(reply).is_ok(), "reply parses");
    assert_eq!(reply[23], 1, "reply is ICMP");
    let ip_len = usize::from(reply[14] & 0x0f) * 4;
    assert_eq!(simple_checksum(&reply[14 + ip_len..]), 0, "ICMP checksum");
}

/// Whether an IPv4 frame's TCP, UDP (0 = none is fine) or ICMP checksum verifies, by an
/// independent plain sum; `None` for frames that are not IPv4 or carry another protocol.
fn l4_checksum_verifies(frame: &[u8]) -> Option<bool> {
    let Payload::Ipv4(ip) = parse_frame(frame).ok()?.payload else {
        return None;
    };
    let segment = &frame[ip.transport_offset()..ip.end()];
    match ip.protocol {
        17 if segment.len() >= 8 && segment[6..8] == [0, 0] => Some(true),
        6 | 17 => {
            let mut covered = ip.src.octets().to_vec();
            covered.extend_from_slice(&ip.dst.octets());
            covered.extend_from_slice(&[0, ip.protocol]);
            covered.extend_from_slice(&(segment.len() as u16).to_be_bytes());
            covered.extend_from_slice(segment);
            Some(simple_checksum(&covered) == 0)
        }
        1 => Some(simple_checksum(segment) == 0),
        _ => None,
    }
}

/// Parses and rewrites like the engine, and checks that every frame that is not forwarded is
/// counted under a reason and every forwarded frame is still a valid frame whose checksums
/// verify (the transport's whenever the input's did).
fn process_and_account(frame: &[u8]) {
    let mut counters = DropCounters::default();
    let mut forwarded = 0u64;
    let mut outcomes = 0u64;
    match parse_frame(frame) {
        Ok(_) => forwarded += 1,
        Err(reason) => counters.record(reason),
    }
    outcomes += 1;
    let input_verifies = l4_checksum_verifies(frame) == Some(true);
    for (name, outcome) in every_rewrite(frame) {
        outcomes += 1;
        match outcome {
            Outcome::Forwarded(out) => {
                forwarded += 1;
                let ip_frame = match name {
                    "tun_ipip" | "tun_gre" => {
                        let inner = tun_decapsulate(&out)
                            .unwrap_or_else(|r| panic!("{name} forwarded an invalid frame: {r}"));
                        let mut f = out[..14].to_vec();
                        f.extend_from_slice(inner);
                        f
                    }
                    "tun_decapsulate" | "arp_reply" => continue,
                    _ => out,
                };
                if let Err(r) = parse_frame(&ip_frame) {
                    panic!("{name} forwarded an invalid frame: {r}");
                }
                if input_verifies {
                    assert_eq!(
                        l4_checksum_verifies(&ip_frame),
                        Some(true),
                        "{name} broke a transport checksum that verified"
                    );
                }
            }
            Outcome::Dropped(reason) => counters.record(reason),
        }
    }
    assert_eq!(forwarded + counters.total(), outcomes);
}

fn tcp_or_udp_packet() -> impl Strategy<Value = Pkt> {
    let addresses =
        (any::<u32>(), any::<u32>()).prop_map(|(s, d)| (Ipv4Addr::from(s), Ipv4Addr::from(d)));
    let ip = (
        addresses,
        2u8..=255,
        any::<u8>(),
        any::<bool>(),
        any::<u16>(),
    );
    let options = prop::collection::vec(any::<[u8; 4]>(), 0..=10).prop_map(|w| w.concat());
    let payload = prop::collection::vec(any::<u8>(), 0..300);
    let tcp = (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        options,
        payload.clone(),
    )
        .prop_map(
            |(sport, dport, seq, ack, flags, options, payload)| L4::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                options,
                payload,
            },
        );
    let udp = (any::<u16>(), any::<u16>(), payload, any::<bool>()).prop_map(
        |(sport, dport, payload, zero_checksum)| L4::Udp {
            sport,
            dport,
            payload,
            zero_checksum,
        },
    );
    (ip, prop_oneof![tcp, udp]).prop_map(|(((src, dst), ttl, tos, df, id), l4)| Pkt {
        src_mac: CLIENT_MAC,
        dst_mac: DIRECTOR_MAC,
        src,
        dst,
        ttl,
        tos,
        df,
        id,
        ip_options: Vec::new(),
        l4,
    })
}

/// [`tcp_or_udp_packet`], sometimes with IPv4 options (up to the 40 bytes the header holds).
fn packet_with_ip_options() -> impl Strategy<Value = Pkt> {
    let options = prop::option::of(prop::collection::vec(any::<[u8; 4]>(), 1..=10));
    (tcp_or_udp_packet(), options).prop_map(|(mut p, options)| {
        if let Some(words) = options {
            p.ip_options = words.concat();
        }
        p
    })
}

/// Valid frames of every kind the engine meets, to mutate.
fn valid_frame() -> impl Strategy<Value = Vec<u8>> {
    let icmp_error = tcp_or_udp_packet().prop_map(|quoted| {
        let mut inner = quoted.build().split_off(14);
        inner.truncate(28);
        let mut payload = vec![3, 3, 0, 0, 0, 0, 0, 0];
        payload.extend_from_slice(&inner);
        Pkt {
            l4: L4::Raw {
                protocol: 1,
                payload,
            },
            ..quoted
        }
        .build()
    });
    let arp = any::<[u8; 4]>().prop_map(|target| {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&CLIENT_MAC);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
        f.extend_from_slice(&CLIENT_MAC);
        f.extend_from_slice(&CIP.octets());
        f.extend_from_slice(&[0; 6]);
        let target = if target[0] & 1 == 0 {
            VIP.octets()
        } else {
            target
        };
        f.extend_from_slice(&target);
        f
    });
    let tunnelled = (tcp_or_udp_packet(), any::<bool>()).prop_map(|(p, gre)| {
        let mut f = p.build();
        let mut r = Vec::new();
        let tunnel = if gre { Encap::Gre } else { Encap::Ipip };
        let _ = tun_request(&mut f, &tun(tunnel), &mut r);
        f
    });
    prop_oneof![
        packet_with_ip_options().prop_map(|p| p.build()),
        icmp_error,
        arp,
        tunnelled
    ]
}

/// Random damage: byte flips, optionally a truncation, optionally an extension (bytes
/// appended, counted in the IPv4 total length or left as Ethernet padding), optionally a
/// repaired IP header checksum so the damage reaches past the header check.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        valid_frame(),
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        prop::option::of(any::<prop::sample::Index>()),
        prop::option::of((prop::collection::vec(any::<u8>(), 1..64), any::<bool>())),
        any::<bool>(),
    )
        .prop_map(|(mut frame, flips, cut, extension, repair)| {
            for (index, xor) in flips {
                let i = index.index(frame.len());
                frame[i] ^= xor;
            }
            if let Some(cut) = cut {
                frame.truncate(cut.index(frame.len() + 1));
            }
            if let Some((bytes, in_total_length)) = extension {
                frame.extend_from_slice(&bytes);
                if in_total_length && frame.len() >= 18 {
                    let total = u16::from_be_bytes([frame[16], frame[17]]);
                    let grown = total.wrapping_add(bytes.len() as u16);
                    frame[16..18].copy_from_slice(&grown.to_be_bytes());
                }
            }
            let header_len = frame.get(14).map_or(0, |b| usize::from(b & 0x0f) * 4);
            if repair && header_len >= 20 && frame.len() >= 14 + header_len {
                frame[24..26].fill(0);
                let sum = simple_checksum(&frame[14..14 + header_len]);
                frame[24..26].copy_from_slice(&sum.to_be_bytes());
            }
            frame
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_and_every_drop_is_counted(frame in prop::collection::vec(any::<u8>(), 0..200)) {
        process_and_account(&frame);
    }

    #[test]
    fn mutated_frames_never_panic_and_every_drop_is_counted(frame in mutated_frame()) {
        process_and_account(&frame);
    }

    #[test]
    fn incremental_checksums_equal_full_recompute(pkt in tcp_or_udp_packet()) {
        let udp_without_checksum = matches!(pkt.l4, L4::Udp { zero_checksum: true, .. });
        let frame = pkt.build();
        for (name, outcome) in every_rewrite(&frame) {
            let out = match (name, outcome) {
                ("translate_icmp_error" | "tun_decapsulate" | "arp_reply", _) => continue,
                (_, Outcome::Dropped(reason)) => {
                    // Only the TOA/MTU-free paths are expected here: 1500 fits every packet.
                    return Err(TestCaseError::fail(format!("{name} dropped a valid packet: {reason}")));
                }
                (_, Outcome::Forwarded(out)) => out,
            };
            let ip_frame = match name {
                "tun_ipip" | "tun_gre" => {
                    let inner = tun_decapsulate(&out).map_err(|r| TestCaseError::fail(r.to_string()))?;
                    let mut f = out[..14].to_vec();
                    f.extend_from_slice(inner);
                    f
                }
                _ => out,
            };
            prop_assert!(parse_ipv4(&ip_frame, 14).is_ok());
            prop_assert_eq!(ip_frame[22], pkt.ttl - 1, "{} decrements the TTL", name);
            let leaves_l4_alone = matches!(name, "dr_request" | "tun_ipip" | "tun_gre");
            if udp_without_checksum && leaves_l4_alone {
                let at = transport_checksum_at(&ip_frame).expect("udp");
                prop_assert_eq!(be16(&ip_frame, at), 0);
                prop_assert_eq!(be16(&ip_frame, 24), reference_checksums(&ip_frame).ip);
            } else {
                assert_checksums_equal_full_recompute(&ip_frame);
            }
        }
    }
}
