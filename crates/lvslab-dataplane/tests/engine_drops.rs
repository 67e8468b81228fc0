//! Frames sent straight at the director that the engine refuses are counted by reason,
//! per engine and per interface, shown by the drop table, and never stop it (root:
//! builds the fullnat lab in anonymous namespaces).

mod engine_support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use engine_support::Running;
use lvslab_dataplane::engine::sys::ETH_P_ALL;
use lvslab_dataplane::engine::{render_drops, EngineStats, PacketSocket};
use lvslab_dataplane::packet::checksum::checksum;
use lvslab_dataplane::packet::DropReason;

/// An option-less IPv4 header with a correct checksum.
fn ipv4_header(
    total_len: u16,
    flags_frag: u16,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total_len.to_be_bytes());
    h.extend_from_slice(&[0, 7]);
    h.extend_from_slice(&flags_frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// Sets the IPv4 header checksum of `h` again after a change.
fn refresh_checksum(h: &mut [u8]) {
    h[10..12].copy_from_slice(&[0, 0]);
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let sum = checksum(&h[..ihl]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// A 20-byte TCP header to port 80 with `flags` (checksum left 0: the engine forwards
/// what it gets, as IPVS does).
fn tcp(sport: u16, flags: u8) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&80u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

fn drops_delta(before: &EngineStats, after: &EngineStats) -> BTreeMap<&'static str, u64> {
    DropReason::ALL
        .iter()
        .map(|&r| (r.label(), after.drops.get(r) - before.drops.get(r)))
        .filter(|&(_, n)| n > 0)
        .collect()
}

#[test]
fn engine_counts_every_refused_frame_by_reason() {
    // The fullnat lab links the client straight to the director: a bridge in between (with
    // the host's br_netfilter) would already drop frames with broken IPv4 headers.
    let lab = Running::start("fullnat", &[], "e-drops");
    let inst = lab.inst.as_ref().expect("running");
    let director_ns = inst.ns("director").expect("director namespace");
    let client_ns = inst.ns("client").expect("client namespace");
    let director_mac = director_ns
        .netlink()
        .and_then(|h| h.link("eth0"))
        .expect("director eth0")
        .mac
        .expect("director eth0 has a MAC")
        .octets();
    let client = client_ns
        .netlink()
        .and_then(|h| h.link("eth0"))
        .expect("client eth0");
    let client_mac = client.mac.expect("client eth0 has a MAC").octets();
    let sock = client_ns
        .run(|| PacketSocket::open(client.ifindex, ETH_P_ALL))
        .expect("enter client")
        .expect("AF_PACKET socket in client");
    let vip = match lab.lab.services[0].config.key {
        lvslab_spec::lb::ServiceKey::Addr {
            addr: IpAddr::V4(a),
            ..
        } => a,
        ref other => panic!("unexpected service {other}"),
    };
    let src = Ipv4Addr::new(198, 51, 100, 10);
    let frame_to = |dst_mac: [u8; 6], ethertype: u16| {
        let mut f = dst_mac.to_vec();
        f.extend_from_slice(&client_mac);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    };
    let eth = |ethertype: u16| frame_to(director_mac, ethertype);
    let packet = |h: Vec<u8>, l4: Vec<u8>| {
        let mut f = eth(0x0800);
        f.extend_from_slice(&h);
        f.extend_from_slice(&l4);
        f
    };

    let mut cases: Vec<(Option<DropReason>, &str, Vec<u8>)> = Vec::new();
    let mut f = eth(0x0800);
    f.extend_from_slice(&ipv4_header(40, 0, 6, src, vip)[..10]);
    cases.push((Some(DropReason::Truncated), "cut inside the IPv4 header", f));
    cases.push((
        Some(DropReason::Truncated),
        "only an Ethernet header",
        eth(0x0800),
    ));
    cases.push((
        Some(DropReason::Truncated),
        "total length beyond the frame",
        packet(ipv4_header(400, 0, 6, src, vip), tcp(40001, 0x02)),
    ));
    cases.push((
        Some(DropReason::BadTotalLength),
        "total length below the header",
        packet(ipv4_header(12, 0, 6, src, vip), tcp(40002, 0x02)),
    ));
    let mut h = ipv4_header(40, 0, 6, src, vip);
    h[0] = 0x44;
    cases.push((
        Some(DropReason::BadHeaderLength),
        "IHL 4",
        packet(h, tcp(40003, 0x02)),
    ));
    let mut h = ipv4_header(40, 0, 6, src, vip);
    h[0] = 0x65;
    cases.push((
        Some(DropReason::BadIpVersion),
        "version 6 under the IPv4 EtherType",
        packet(h, tcp(40004, 0x02)),
    ));
    let mut h = ipv4_header(40, 0, 6, src, vip);
    h[10] ^= 0xff;
    cases.push((
        Some(DropReason::BadIpChecksum),
        "wrong header checksum",
        packet(h, tcp(40005, 0x02)),
    ));
    cases.push((
        Some(DropReason::Fragment),
        "first fragment (MF)",
        packet(ipv4_header(40, 0x2000, 6, src, vip), tcp(40006, 0x02)),
    ));
    cases.push((
        Some(DropReason::Fragment),
        "later fragment",
        packet(ipv4_header(40, 0x0010, 6, src, vip), vec![0; 20]),
    ));
    let mut t = tcp(40007, 0x02);
    t[12] = 0xf0;
    cases.push((
        Some(DropReason::BadTransportHeader),
        "TCP data offset past the packet",
        packet(ipv4_header(40, 0, 6, src, vip), t),
    ));
    let mut udp = 40008u16.to_be_bytes().to_vec();
    udp.extend_from_slice(&[0, 80, 0, 99, 0, 0]);
    cases.push((
        Some(DropReason::BadTransportHeader),
        "UDP length unlike the packet's",
        packet(ipv4_header(28, 0, 17, src, vip), udp),
    ));
    cases.push((
        Some(DropReason::UnknownProtocol),
        "an IP protocol without ports to the VIP",
        packet(ipv4_header(28, 0, 253, src, vip), vec![0; 8]),
    ));
    let mut f = eth(0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    cases.push((Some(DropReason::MalformedArp), "ARP cut short", f));
    let mut f = eth(0x88b5);
    f.extend_from_slice(&[0; 46]);
    cases.push((
        Some(DropReason::UnsupportedEthertype),
        "local experimental EtherType",
        f,
    ));
    cases.push((
        Some(DropReason::NoConnection),
        "a bare ACK with no connection",
        packet(ipv4_header(40, 0, 6, src, vip), tcp(40009, 0x10)),
    ));
    let mut h = ipv4_header(40, 0, 6, src, vip);
    h[8] = 1;
    refresh_checksum(&mut h);
    cases.push((
        Some(DropReason::TtlExpired),
        "a SYN with TTL 1",
        packet(h, tcp(40010, 0x02)),
    ));
    // Addressed to another host's MAC: the director's kernel ignores it, so does the engine.
    let mut f = frame_to([0x02, 0, 0, 0, 0, 0x99], 0x0800);
    let mut h = ipv4_header(40, 0, 6, src, vip);
    h[10] ^= 0xff;
    f.extend_from_slice(&h);
    f.extend_from_slice(&tcp(40011, 0x02));
    cases.push((None, "a broken frame for another MAC", f));
    // IPv4 options are legal: a SYN with two NOPs and an end-of-options is balanced.
    let mut h = ipv4_header(44, 0, 6, src, vip);
    h[0] = 0x46;
    h.extend_from_slice(&[1, 1, 0, 0]);
    refresh_checksum(&mut h);
    cases.push((None, "a SYN with IPv4 options", packet(h, tcp(40012, 0x02))));

    let before = lab.dp().stats().engines[0].1.clone();
    for (_, what, frame) in &cases {
        sock.send(frame)
            .unwrap_or_else(|e| panic!("inject {what} from the client: {e}"));
    }
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for (reason, _, _) in &cases {
        if let Some(r) = reason {
            *want.entry(r.label()).or_insert(0) += 1;
        }
    }
    let want_total: u64 = want.values().sum();
    // Counters are published after each batch and every tick: wait until all are in.
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let now = lab.dp().stats().engines[0].1.clone();
        let counted = now.drops.total() - before.drops.total();
        if counted >= want_total || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A little longer, so a frame counted twice or under a second reason would show.
    std::thread::sleep(Duration::from_millis(300));
    let after = EngineStats {
        drops: lab.dp().stats().engines[0].1.drops.clone(),
        interface_drops: lab.dp().stats().engines[0].1.interface_drops.clone(),
        ..after
    };
    let got = drops_delta(&before, &after);
    let cases_text: Vec<String> = cases
        .iter()
        .map(|(r, what, _)| format!("{what}: {}", r.map_or("not a drop", |r| r.label())))
        .collect();
    assert_eq!(
        got,
        want,
        "drops counted by reason (left) differ from the frames sent (right):\n  {}",
        cases_text.join("\n  ")
    );
    // All arrived on the director's eth0, and are counted there.
    let eth0 = |s: &EngineStats| {
        s.interface_drops
            .iter()
            .find(|(n, _)| n == "eth0")
            .map(|(_, d)| d.clone())
            .expect("eth0 has drop counters")
    };
    for (label, n) in &want {
        let r = *DropReason::ALL
            .iter()
            .find(|r| r.label() == *label)
            .expect("a known reason");
        assert_eq!(
            eth0(&after).get(r) - eth0(&before).get(r),
            *n,
            "{label} at eth0"
        );
    }
    let table = render_drops(&lab.dp().stats());
    for label in want.keys() {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("director") && l.contains(" eth0 ") && l.contains(label)),
            "no eth0 row for {label} in\n{table}"
        );
    }
    println!("{table}");
    // The engine is still there and balances as before.
    let got = lab.gets(6);
    assert_eq!(got.values().sum::<usize>(), 6, "{got:?}");
}
