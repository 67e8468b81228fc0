//! Mode rules on synthetic captures: one correct flow and several wrong ones per mode, with
//! the exact findings (as a person reads them) derived from the IPVS rules in `rules.rs`.

mod common;

use std::collections::BTreeMap;

use common::*;
use lvslab_pcap::{
    check, check_distribution, correlate, decode_capture, ladder, CheckOutcome, CorrelateOptions,
    Director, Encap, Flow, Mode, RealServer, Roles,
};

const C: ([u8; 4], u16) = (CLIENT, 40000);
const CISN: u32 = 1000;
const SISN: u32 = 5000;

fn roles(mode: Mode, rs_port: u16) -> Roles {
    let mut macs = BTreeMap::new();
    macs.insert("director:eth0".to_string(), mac(MAC_DIR0));
    macs.insert("director:eth1".to_string(), mac(MAC_DIR1));
    Roles {
        mode,
        tun_encap: Encap::Ipip,
        proto: 6,
        vip: ip(VIP),
        vport: 80,
        director: Director {
            node: "director".into(),
            dip: ip(DIP),
            macs,
        },
        real_servers: vec![
            RealServer {
                name: "rs1".into(),
                point: "rs1:eth0".into(),
                rip: ip(RIP1),
                port: rs_port,
                mac: Some(mac(MAC_RS1)),
                tunnel_src: None,
            },
            RealServer {
                name: "rs2".into(),
                point: "rs2:eth0".into(),
                rip: ip(RIP2),
                port: rs_port,
                mac: Some(mac(MAC_RS2)),
                tunnel_src: None,
            },
        ],
        local_addrs: vec![ip(LIP)],
        client_addrs: vec![ip(CLIENT)],
    }
}

fn run(steps: &[(&str, Pkt)], roles: &Roles) -> (Vec<Flow>, CheckOutcome) {
    let cap = Cap::see_all(steps).cap;
    // Through the file format, as the harness will do it.
    let bytes = cap.to_pcapng().expect("encode");
    let back = lvslab_pcap::Capture::from_pcapng(&bytes).expect("decode");
    let flows = correlate(&decode_capture(&back), &CorrelateOptions::default());
    let out = check(&flows, roles);
    (flows, out)
}

fn rendered(out: &CheckOutcome) -> String {
    out.findings
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------- DR

/// DR, one-armed director: the request enters and leaves director:eth0.
fn dr_steps(
    cport: u16,
    cisn: u32,
    rs_mac: [u8; 6],
    rs_point: &'static str,
) -> Vec<(&'static str, Pkt)> {
    let c = (CLIENT, cport);
    let syn = Pkt::tcp(c, (VIP, 80), cisn).syn().ttl(63).id(100);
    let syn_out = syn.clone().macs(MAC_DIR0, rs_mac).ttl(62);
    let synack = Pkt::tcp((VIP, 80), c, SISN + cisn)
        .syn()
        .ack(cisn + 1)
        .id(200)
        .macs(rs_mac, MAC_ROUTER);
    let data = Pkt::tcp(c, (VIP, 80), cisn + 1)
        .ack(SISN + cisn + 1)
        .data(b"GET / HTTP/1.0\r\n\r\n")
        .ttl(63)
        .id(101);
    let data_out = data.clone().macs(MAC_DIR0, rs_mac).ttl(62);
    vec![
        ("firewall:eth1", syn.clone()),
        ("director:eth0", syn),
        ("director:eth0", syn_out.clone()),
        (rs_point, syn_out),
        (rs_point, synack.clone()),
        ("firewall:eth1", synack),
        ("firewall:eth1", data.clone()),
        ("director:eth0", data),
        ("director:eth0", data_out.clone()),
        (rs_point, data_out),
    ]
}

#[test]
fn dr_correct_flow_has_no_findings() {
    let (flows, out) = run(
        &dr_steps(40000, CISN, MAC_RS1, "rs1:eth0"),
        &roles(Mode::Dr, 80),
    );
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].packets().len(), 3);
    assert_eq!(rendered(&out), "");
    assert_eq!(out.hops_checked, 3);
    assert_eq!(out.flows_checked, 1);
    assert_eq!(out.assignments.get(&1), Some(&Some("rs1".to_string())));
}

#[test]
fn dr_ladder_text_shows_only_mac_and_ttl_changes() {
    let (flows, _) = run(
        &dr_steps(40000, CISN, MAC_RS1, "rs1:eth0"),
        &roles(Mode::Dr, 80),
    );
    let text = ladder::render_text(&flows[0]);
    let expected_head = "\
flow 1: tcp 198.51.100.7:40000 → 192.168.80.66:80
  packet 1 (request)
    firewall:eth1 #1     +0µs 198.51.100.7:40000 > 192.168.80.66:80 tcp [S] seq 1000 ack 0 len 0 ttl 63 id 100
    director:eth0 #2     +10µs 198.51.100.7:40000 > 192.168.80.66:80 tcp [S] seq 1000 ack 0 len 0 ttl 63 id 100
    director:eth0 #3     +20µs 198.51.100.7:40000 > 192.168.80.66:80 tcp [S] seq 1000 ack 0 len 0 ttl 62 id 100
                  changed: eth.src 02:00:00:00:00:fe → 02:00:00:00:00:10, eth.dst 02:00:00:00:00:10 → 02:00:00:00:00:11, ipv4.ttl 63 → 62
    rs1:eth0      #4     +30µs 198.51.100.7:40000 > 192.168.80.66:80 tcp [S] seq 1000 ack 0 len 0 ttl 62 id 100
  packet 2 (reply)
    rs1:eth0      #5     +40µs 192.168.80.66:80 > 198.51.100.7:40000 tcp [S.] seq 6000 ack 1001 len 0 ttl 64 id 200
    firewall:eth1 #6     +50µs 192.168.80.66:80 > 198.51.100.7:40000 tcp [S.] seq 6000 ack 1001 len 0 ttl 64 id 200
  packet 3 (request)
";
    assert!(
        text.starts_with(expected_head),
        "ladder differs:\n{text}\nexpected to start with:\n{expected_head}"
    );
}

#[test]
fn dr_that_rewrites_ip_dst_is_reported() {
    let mut steps = dr_steps(40000, CISN, MAC_RS1, "rs1:eth0");
    for i in [2, 3] {
        steps[i].1 = steps[i].1.clone().dst(RIP1, 80);
    }
    let (_, out) = run(&steps, &roles(Mode::Dr, 80));
    assert_eq!(
        rendered(&out),
        "dr.request at director:eth0 (flow 1, packet 1, frames 2, 3): DR rewrites only the MACs and decrements the TTL\n  \
         ipv4.dst: expected 192.168.80.66 (unchanged), got 192.168.80.11"
    );
}

#[test]
fn dr_with_wrong_mac_and_no_ttl_decrement_is_reported() {
    let mut steps = dr_steps(40000, CISN, MAC_RS1, "rs1:eth0");
    for i in [2, 3] {
        steps[i].1 = steps[i].1.clone().macs(MAC_DIR0, MAC_RS2).ttl(63);
    }
    let (_, out) = run(&steps, &roles(Mode::Dr, 80));
    assert_eq!(
        rendered(&out),
        "dr.request at director:eth0 (flow 1, packet 1, frames 2, 3): DR rewrites only the MACs and decrements the TTL\n  \
         ipv4.ttl: expected 62 (ingress ttl - 1), got 63\n  \
         eth.dst: expected 02:00:00:00:00:11 (rs1:eth0), got 02:00:00:00:00:12"
    );
}

#[test]
fn dr_reply_through_director_is_reported() {
    let mut steps = dr_steps(40000, CISN, MAC_RS1, "rs1:eth0");
    // The reply detours through the director before reaching the firewall.
    let synack = steps[4].1.clone();
    steps.insert(5, ("director:eth0", synack));
    let (_, out) = run(&steps, &roles(Mode::Dr, 80));
    assert_eq!(
        rendered(&out),
        "dr.reply at director:eth0 (flow 1, packet 2, frames 5, 6): the reply leaves the real server with the VIP as source and does not cross the director\n  \
         route: expected bypasses the director, got via director:eth0 (frame 6)"
    );
}

// ---------------------------------------------------------------- NAT

/// NAT, two-armed director: eth0 faces the clients, eth1 the real servers (port 80 → 8080).
fn nat_steps() -> Vec<(&'static str, Pkt)> {
    let syn = Pkt::tcp(C, (VIP, 80), CISN).syn().ttl(63).id(100);
    let syn_out = syn.clone().dst(RIP1, 8080).ttl(62).macs(MAC_DIR1, MAC_RS1);
    let synack_rs = Pkt::tcp((RIP1, 8080), C, SISN)
        .syn()
        .ack(CISN + 1)
        .id(200)
        .macs(MAC_RS1, MAC_DIR1);
    let synack_out = synack_rs
        .clone()
        .src(VIP, 80)
        .ttl(63)
        .macs(MAC_DIR0, MAC_ROUTER);
    vec![
        ("director:eth0", syn),
        ("director:eth1", syn_out.clone()),
        ("rs1:eth0", syn_out),
        ("rs1:eth0", synack_rs.clone()),
        ("director:eth1", synack_rs),
        ("director:eth0", synack_out),
    ]
}

#[test]
fn nat_correct_flow_has_no_findings() {
    let (flows, out) = run(&nat_steps(), &roles(Mode::Nat, 8080));
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].packets().len(), 2);
    assert_eq!(rendered(&out), "");
    assert_eq!(out.hops_checked, 2);
}

#[test]
fn nat_without_destination_rewrite_is_reported() {
    let mut steps = nat_steps();
    for i in [1, 2] {
        steps[i].1 = steps[i].1.clone().dst(VIP, 8080);
    }
    let (_, out) = run(&steps, &roles(Mode::Nat, 8080));
    assert_eq!(
        rendered(&out),
        "nat.request at director:eth1 (flow 1, packet 1, frames 1, 2): NAT rewrites the destination to the real server and decrements the TTL\n  \
         ipv4.dst: expected 192.168.80.11 (rs1:eth0), got 192.168.80.66"
    );
}

#[test]
fn nat_reply_not_crossing_director_is_reported() {
    let mut steps = nat_steps();
    steps.truncate(4);
    let direct = steps[3].1.clone().macs(MAC_RS1, MAC_ROUTER);
    steps[3].1 = direct.clone();
    steps.push(("router:eth0", direct));
    let (_, out) = run(&steps, &roles(Mode::Nat, 8080));
    assert_eq!(
        rendered(&out),
        "nat.reply at rs1:eth0 (flow 1, packet 2, frames 4): the reply crosses the director, which restores the VIP:port as source\n  \
         route: expected via director, got rs1:eth0 → router:eth0"
    );
}

#[test]
fn nat_reply_without_source_restore_is_reported() {
    let mut steps = nat_steps();
    steps[5].1 = steps[5].1.clone().src(RIP1, 8080);
    let (_, out) = run(&steps, &roles(Mode::Nat, 8080));
    assert_eq!(
        rendered(&out),
        "nat.reply at director:eth0 (flow 1, packet 2, frames 4, 5, 6): the reply crosses the director, which restores the VIP:port as source\n  \
         ipv4.src: expected 192.168.80.66 (VIP), got 192.168.80.11\n  \
         tcp.sport: expected 80 (VIP port), got 8080"
    );
}

// ---------------------------------------------------------------- TUN

fn tun_steps(kind: OuterKind) -> Vec<(&'static str, Pkt)> {
    let syn = Pkt::tcp(C, (VIP, 80), CISN).syn().ttl(63).id(100);
    let syn_out = syn.clone().ttl(62).macs(MAC_DIR0, MAC_RS1).encap(Outer {
        src: DIP,
        dst: RIP1,
        ttl: 62,
        id: 7,
        kind,
    });
    let synack = Pkt::tcp((VIP, 80), C, SISN)
        .syn()
        .ack(CISN + 1)
        .id(200)
        .macs(MAC_RS1, MAC_ROUTER);
    vec![
        ("director:eth0", syn),
        ("director:eth0", syn_out.clone()),
        ("rs1:eth0", syn_out),
        ("rs1:eth0", synack.clone()),
        ("router:eth0", synack),
    ]
}

#[test]
fn tun_ipip_correct_flow_has_no_findings() {
    let (flows, out) = run(&tun_steps(OuterKind::Ipip), &roles(Mode::Tun, 80));
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].packets().len(), 2);
    assert_eq!(rendered(&out), "");
}

#[test]
fn tun_gre_correct_when_gre_is_expected() {
    let mut r = roles(Mode::Tun, 80);
    r.tun_encap = Encap::Gre;
    let (_, out) = run(&tun_steps(OuterKind::Gre), &r);
    assert_eq!(rendered(&out), "");
}

#[test]
fn tun_with_wrong_outer_protocol_is_reported() {
    let (_, out) = run(&tun_steps(OuterKind::Gre), &roles(Mode::Tun, 80));
    assert_eq!(
        rendered(&out),
        "tun.request at director:eth0 (flow 1, packet 1, frames 1, 2): TUN adds an outer header director → real server and leaves the inner packet untouched except its TTL\n  \
         outer.ipv4.proto: expected 4, got 47"
    );
}

#[test]
fn tun_without_encapsulation_is_reported() {
    let mut steps = tun_steps(OuterKind::Ipip);
    for i in [1, 2] {
        steps[i].1.outer.clear();
    }
    let (_, out) = run(&steps, &roles(Mode::Tun, 80));
    assert_eq!(
        rendered(&out),
        "tun.request at director:eth0 (flow 1, packet 1, frames 1, 2): TUN adds an outer header director → real server and leaves the inner packet untouched except its TTL\n  \
         outer.ipv4: expected ipip header, got none"
    );
}

// ---------------------------------------------------------------- FullNAT

fn fullnat_steps() -> Vec<(&'static str, Pkt)> {
    // The director re-bases the client's sequence numbers (delta = 776000).
    const DELTA: u32 = 776_000;
    let syn = Pkt::tcp(C, (VIP, 80), CISN).syn().ttl(63).id(100);
    let syn_out = syn
        .clone()
        .src(LIP, 5000)
        .dst(RIP1, 8080)
        .ttl(62)
        .macs(MAC_DIR1, MAC_RS1);
    let mut syn_out = syn_out;
    syn_out.seq = CISN + DELTA;
    let synack_rs = Pkt::tcp((RIP1, 8080), (LIP, 5000), SISN)
        .syn()
        .ack(CISN + DELTA + 1)
        .id(200)
        .macs(MAC_RS1, MAC_DIR1);
    let synack_out = Pkt::tcp((VIP, 80), C, SISN)
        .syn()
        .ack(CISN + 1)
        .id(200)
        .ttl(63)
        .macs(MAC_DIR0, MAC_ROUTER);
    vec![
        ("director:eth0", syn),
        ("director:eth1", syn_out.clone()),
        ("rs1:eth0", syn_out),
        ("rs1:eth0", synack_rs.clone()),
        ("director:eth1", synack_rs),
        ("director:eth0", synack_out),
    ]
}

#[test]
fn fullnat_correct_flow_has_no_findings() {
    let (flows, out) = run(&fullnat_steps(), &roles(Mode::FullNat, 8080));
    assert_eq!(flows.len(), 1, "{flows:#?}");
    assert_eq!(flows[0].packets().len(), 2);
    assert_eq!(rendered(&out), "");
}

#[test]
fn fullnat_without_source_rewrite_is_reported() {
    let mut steps = fullnat_steps();
    for i in [1, 2] {
        steps[i].1 = steps[i].1.clone().src(CLIENT, 5000);
    }
    // The real server answers the address it was given, so only the request is wrong.
    for i in [3, 4] {
        steps[i].1 = steps[i].1.clone().dst(CLIENT, 5000);
    }
    let (_, out) = run(&steps, &roles(Mode::FullNat, 8080));
    assert_eq!(
        rendered(&out),
        "fullnat.request at director:eth1 (flow 1, packet 1, frames 1, 2): FullNAT rewrites the source to a local address and the destination to the real server\n  \
         ipv4.src: expected 192.168.80.10 (local address), got 198.51.100.7"
    );
}

// ---------------------------------------------------------------- scheduler

#[test]
fn distribution_counts_flows_per_real_server() {
    let mut steps = dr_steps(40001, 11_000, MAC_RS1, "rs1:eth0");
    steps.extend(dr_steps(40002, 22_000, MAC_RS2, "rs2:eth0"));
    steps.extend(dr_steps(40003, 33_000, MAC_RS1, "rs1:eth0"));
    let r = roles(Mode::Dr, 80);
    let (flows, out) = run(&steps, &r);
    assert_eq!(flows.len(), 3);
    assert_eq!(rendered(&out), "");
    let good: BTreeMap<String, u64> = [("rs1".to_string(), 2), ("rs2".to_string(), 1)].into();
    assert_eq!(check_distribution(&out, &good, &r), None);
    let bad: BTreeMap<String, u64> = [("rs1".to_string(), 1), ("rs2".to_string(), 2)].into();
    let f = check_distribution(&out, &bad, &r).expect("counts differ");
    assert_eq!(
        f.to_string(),
        "scheduler.distribution at director: flows per real server differ from the scheduler's expected counts\n  \
         flows.rs1: expected 1, got 2\n  \
         flows.rs2: expected 2, got 1"
    );
}

#[test]
fn request_that_never_reaches_the_director_is_reported() {
    let steps = vec![("firewall:eth1", Pkt::tcp(C, (VIP, 80), CISN).syn().ttl(63))];
    let (_, out) = run(&steps, &roles(Mode::Dr, 80));
    assert_eq!(
        rendered(&out),
        "director.reached at firewall:eth1 (flow 1, packet 1, frames 1): request addressed to the service never reached the director\n  \
         route: expected via director, got firewall:eth1"
    );
}

#[test]
fn corrupted_checksum_is_a_finding_but_offload_pending_is_not() {
    let mut cap = Cap::see_all(&dr_steps(40000, CISN, MAC_RS1, "rs1:eth0")).cap;
    // Frame 4 (rs1:eth0, the SYN): TCP checksum at 14 + 20 + 16.
    let at = 14 + 20 + 16;
    let original = u16::from_be_bytes([cap.frames[3].data[at], cap.frames[3].data[at + 1]]);
    cap.frames[3].data[at] ^= 0xff;
    let corrupted = u16::from_be_bytes([cap.frames[3].data[at], cap.frames[3].data[at + 1]]);
    let r = roles(Mode::Dr, 80);
    let a = lvslab_pcap::analyse(std::slice::from_ref(&cap), &r, &CorrelateOptions::default());
    assert_eq!(
        rendered(&a.outcome),
        format!(
            "checksum at rs1:eth0 (flow 1, packet 1, frames 4): checksum does not match the packet (offload-pending frames are not counted)\n  \
             tcp.checksum: expected {original:#06x}, got {corrupted:#06x}"
        )
    );
    // The same frame flagged by the capture side as not yet checksummed is not corruption.
    cap.frames[3]
        .comments
        .push(lvslab_pcap::pcapng::CSUM_NOT_READY_COMMENT.into());
    let a = lvslab_pcap::analyse(&[cap], &r, &CorrelateOptions::default());
    assert_eq!(rendered(&a.outcome), "");
}

/// A machine that pauses (a busy host, a VM losing its CPU) can put 150 ms between two
/// sightings of one datagram; the same IP ID keeps them one packet, so the director is not
/// blamed for a request it did forward.
#[test]
fn a_pause_between_hops_does_not_split_a_packet() {
    let mut cap = Cap::see_all(&dr_steps(40000, CISN, MAC_RS1, "rs1:eth0"));
    // Frame 4 is the SYN at rs1:eth0; it and everything after arrive 150 ms late.
    for f in cap.cap.frames.iter_mut().skip(3) {
        f.ts_ns += 150_000_000;
    }
    let flows = correlate(&decode_capture(&cap.cap), &CorrelateOptions::default());
    let out = check(&flows, &roles(Mode::Dr, 80));
    assert_eq!(rendered(&out), "");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].packets().len(), 3);
    assert_eq!(out.assignments.get(&1), Some(&Some("rs1".to_string())));
    // Without the same-ID allowance the request would look stuck in the director.
    let strict = CorrelateOptions {
        same_id_gap_ns: 100_000_000,
        ..CorrelateOptions::default()
    };
    let flows = correlate(&decode_capture(&cap.cap), &strict);
    assert!(!rendered(&check(&flows, &roles(Mode::Dr, 80))).is_empty());
}
