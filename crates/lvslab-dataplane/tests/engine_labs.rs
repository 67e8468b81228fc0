//! The userspace dataplane end to end on every shipped lab (root: builds namespaces).
//!
//! Each test builds the lab in anonymous namespaces (nothing outlives the test process),
//! starts the lab's servers and the dataplane, sends HTTP GETs from the lab's traffic source
//! and checks who answered against the scheduler's rule: rr and wrr hand out new
//! connections in exact proportion to the weights over every whole cycle, so N requests
//! (N a multiple of the cycle) give each destination N·w/Σw.

mod engine_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use engine_support::{udp_dport, wait_for_rule, Running, GET_TIMEOUT};
use lvslab_dataplane::engine::sys::ETH_P_ALL;
use lvslab_dataplane::engine::{EngineOptions, PacketSocket};
use lvslab_dataplane::packet::{parse_frame, Payload, Transport};
use lvslab_netns::nft::{self, Family, Match, PayloadBase};
use lvslab_spec::lb::{LoadBalancer, Scheduler};

const REQUESTS: usize = 60;

fn balanced_run(name: &str, params: &[(&str, &str)], instance: &str, then_rr: bool) {
    let lab = Running::start(name, params, instance);
    let scheduler = lab.lab.services[0].config.scheduler;
    let got = lab.gets(REQUESTS);
    assert_eq!(
        got,
        lab.expected(scheduler, REQUESTS),
        "{name}: who answered"
    );
    lab.assert_conns(REQUESTS as u64);
    let stats = lab.dp().stats();
    let engine = &stats.engines[0].1;
    assert!(engine.requests > 0 && engine.tx_frames > 0, "{engine:#?}");
    if then_rr {
        let mut cfg = lab.lab.services[0].config.clone();
        cfg.scheduler = Scheduler::Rr;
        lab.dp()
            .with_director(&lab.director(), |d| d.edit_service(&cfg))
            .expect("director exists")
            .expect("edit service to rr");
        let got = lab.gets(REQUESTS);
        assert_eq!(
            got,
            lab.expected(Scheduler::Rr, REQUESTS),
            "{name} after -E -s rr"
        );
        lab.assert_conns(2 * REQUESTS as u64);
        assert_nft_follows_services(&lab);
    }
    eprintln!("{name}: {:?}", lab.dp().stats());
    let mut lab = lab;
    let director_ns = lab
        .inst
        .as_ref()
        .and_then(|i| i.ns(&lab.director()))
        .expect("director namespace")
        .try_clone()
        .expect("clone director namespace");
    lab.dp.take().expect("dataplane running").stop();
    let listing = nft::list(&director_ns).expect("nft list ruleset");
    assert!(
        listing.table(Family::Netdev, "lvslab_engine").is_none(),
        "nft table left after stop:\n{listing}"
    );
}

/// A service added at run time gets its nft drop rule within a few ticks; deleting it
/// removes the rule again.
fn assert_nft_follows_services(lab: &Running) {
    let inst = lab.inst.as_ref().expect("running");
    let ns = inst.ns(&lab.director()).expect("director namespace");
    let mut cfg = lab.lab.services[0].config.clone();
    let lvslab_spec::lb::ServiceKey::Addr { addr, .. } = cfg.key else {
        panic!("lab service is not address-based");
    };
    cfg.key = lvslab_spec::lb::ServiceKey::Addr {
        protocol: lvslab_spec::lb::Protocol::Udp,
        addr,
        port: 5353,
    };
    let udp_5353 = udp_dport(5353);
    let wait_for = |want: bool| {
        for _ in 0..20 {
            let rules = nft::list(ns).expect("nft list ruleset").to_string();
            if rules.contains(&udp_5353) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "udp dport 5353 rule ({udp_5353}) present should be {want}:\n{}",
            nft::list(ns).map(|l| l.to_string()).unwrap_or_default()
        );
    };
    let dp = lab.dp();
    dp.with_director(&lab.director(), |d| d.add_service(&cfg))
        .expect("director exists")
        .expect("add udp service");
    wait_for(true);
    dp.with_director(&lab.director(), |d| d.delete_service(&cfg.key))
        .expect("director exists")
        .expect("delete udp service");
    wait_for(false);
}

#[test]
fn engine_nat_wrr_then_rr() {
    balanced_run("nat", &[], "e-nat", true);
}

#[test]
fn engine_dr_wrr_then_rr() {
    balanced_run("dr", &[], "e-dr", true);
}

#[test]
fn engine_tun_gre() {
    balanced_run("tun", &[("encap", "gre")], "e-tungre", false);
}

#[test]
fn engine_tun_ipip() {
    balanced_run("tun", &[("encap", "ipip")], "e-tunipip", false);
}

#[test]
fn engine_fullnat() {
    balanced_run("fullnat", &[], "e-fnat", false);
}

/// With tx checksumming on at the client (the veth default the labs turn off), frames reach
/// the director with only the pseudo-header sum in the TCP checksum (`TP_STATUS_CSUMNOTREADY`);
/// the engine must complete it before rewriting, or the real servers drop every segment.
#[test]
fn engine_completes_pending_checksums() {
    let lab = Running::start("fullnat", &[], "e-csum");
    let inst = lab.inst.as_ref().expect("running");
    let client = inst.ns("client").expect("client namespace");
    client
        .netlink()
        .and_then(|h| h.set_tx_checksumming("eth0", true))
        .expect("turn tx checksumming on at client eth0");
    let got = lab.gets(10);
    assert_eq!(got, lab.expected(Scheduler::Rr, 10), "who answered");
    std::thread::sleep(Duration::from_millis(200));
    let engine = lab.dp().stats().engines[0].1.clone();
    assert!(
        engine.checksums_completed > 0,
        "no frame arrived with a pending checksum: {engine:?}"
    );
}

/// A UDP service added at run time forwards (NAT) to a real-server port where nothing
/// listens: the real server's kernel answers ICMP port unreachable about the request it got
/// (`CIP:cport → RIP:rport`). The director must hand it back as the kernel's
/// `ip_vs_out_icmp` does (outer source VIP, quoted destination `VIP:vport`), or the
/// firewall's DNAT and the ISP's masquerade cannot relate it to the client's flow and the
/// client never learns: only then does the client's connected UDP socket fail with
/// ECONNREFUSED.
#[test]
fn engine_nat_relays_port_unreachable_to_the_client() {
    let lab = Running::start("nat", &[], "e-icmp");
    let inst = lab.inst.as_ref().expect("running");
    let director_ns = inst.ns(&lab.director()).expect("director namespace");
    let svc = &lab.lab.services[0];
    let vip = match svc.config.key {
        lvslab_spec::lb::ServiceKey::Addr { addr, .. } => addr,
        ref other => panic!("unexpected service {other}"),
    };
    // The firewall DNATs UDP 53 to the director; the real servers listen on 5353 only.
    let closed_port = 5354;
    let rip = svc.real_servers[0].config.addr;
    let key = lvslab_spec::lb::ServiceKey::Addr {
        protocol: lvslab_spec::lb::Protocol::Udp,
        addr: vip,
        port: 53,
    };
    let mut dest = lvslab_spec::lb::DestConfig::new(rip, closed_port);
    dest.method = lvslab_spec::lb::ForwardMethod::Nat;
    lab.dp()
        .with_director(&lab.director(), |d| {
            d.add_service(&lvslab_spec::lb::ServiceConfig::new(key, Scheduler::Rr))?;
            d.add_dest(&key, &dest)
        })
        .expect("director exists")
        .expect("add udp service and its destination");
    wait_for_rule(director_ns, &udp_dport(53));
    // The ICMP rule's quoted real-server port (`@th,240,16 5354`).
    let quoted_port = Match::raw(PayloadBase::Transport, 240, 16, u64::from(closed_port))
        .expect("a port fits 16 bits");
    wait_for_rule(
        director_ns,
        &nft::matches_text(Family::Netdev, &[quoted_port]),
    );

    let t = lab.lab.traffic.as_ref().expect("lab has [traffic]");
    let client = inst.ns(&t.from).expect("traffic source namespace");
    let target = SocketAddr::new(t.to, 53);
    let sock = client
        .run(|| {
            let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
            s.connect(target)?;
            s.set_read_timeout(Some(Duration::from_secs(1)))?;
            Ok::<_, std::io::Error>(s)
        })
        .expect("enter client namespace")
        .expect("connected UDP socket in the client");
    // The client keeps asking until it learns: on a slow machine the first error may come
    // after the second request went out, and then each request earns its own error.
    let mut outcome = None;
    let mut sent = 0u64;
    for _ in 0..3 {
        if let Err(e) = sock.send(b"anyone there?") {
            outcome = Some(e);
            break;
        }
        sent += 1;
        let mut buf = [0u8; 64];
        match sock.recv(&mut buf) {
            Ok(n) => panic!("an answer from a closed port: {:?}", &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                outcome = Some(e);
                break;
            }
        }
    }
    let stats = lab.dp().stats();
    let err = outcome
        .unwrap_or_else(|| panic!("the client's socket saw no error in 3 s\nengine: {stats:#?}"));
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ECONNREFUSED),
        "client socket error {err}; engine: {stats:#?}"
    );
    // The engine publishes its counters after sending, so the client may be faster; every
    // request gets at most one error, so the count settles at no more than `sent`.
    let mut engine = stats.engines[0].1.clone();
    for _ in 0..20 {
        if engine.icmp_errors_relayed >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
        engine = lab.dp().stats().engines[0].1.clone();
    }
    assert!(
        engine.icmp_errors_relayed >= 1,
        "the client saw ECONNREFUSED but the engine counted no relayed error: {engine:#?}"
    );
    assert!(
        engine.icmp_errors_relayed <= sent,
        "{} errors relayed for {sent} requests: {engine:#?}",
        engine.icmp_errors_relayed
    );
}

/// A TOA option's client port and address.
type Toa = Option<(u16, Ipv4Addr)>;

/// The TOA option (kind 254, length 8, port then IPv4 address) of a TCP segment (`None`
/// for frames that are not TCP).
fn toa_of(frame: &[u8]) -> Option<Toa> {
    let info = parse_frame(frame).ok()?;
    let Payload::Ipv4(ip) = info.payload else {
        return None;
    };
    let Transport::Tcp(tcp) = ip.transport else {
        return None;
    };
    let start = ip.transport_offset() + 20;
    let options = &frame[start..ip.transport_offset() + tcp.header_len];
    let mut k = 0;
    while k < options.len() {
        match options[k] {
            0 => break,
            1 => k += 1,
            kind => {
                let len = usize::from(*options.get(k + 1)?);
                if len < 2 || k + len > options.len() {
                    return Some(None);
                }
                if kind == 254 && len == 8 {
                    let port = u16::from_be_bytes([options[k + 2], options[k + 3]]);
                    let addr = Ipv4Addr::new(
                        options[k + 4],
                        options[k + 5],
                        options[k + 6],
                        options[k + 7],
                    );
                    return Some(Some((port, addr)));
                }
                k += len;
            }
        }
    }
    Some(None)
}

/// TCP segments to the real servers' service port seen on their interfaces during one
/// HTTP exchange from the client: (flags, TOA option) in arrival order, and the client's
/// own address and port.
fn segments_at_real_servers(lab: &Running) -> (Vec<(u8, Toa)>, SocketAddr) {
    let inst = lab.inst.as_ref().expect("running");
    let svc = &lab.lab.services[0];
    let rport = svc.real_servers[0].config.port;
    let socks: Vec<PacketSocket> = svc
        .real_servers
        .iter()
        .map(|r| {
            let node = r.node.as_deref().expect("lab real servers name their node");
            let ns = inst.ns(node).expect("real server namespace");
            let link = ns
                .netlink()
                .and_then(|h| h.link("eth0"))
                .expect("real server eth0");
            ns.run(|| PacketSocket::open(link.ifindex, ETH_P_ALL))
                .expect("enter real server")
                .expect("AF_PACKET socket on the real server")
        })
        .collect();
    let t = lab.lab.traffic.as_ref().expect("lab has [traffic]");
    let client = inst.ns(&t.from).expect("traffic source namespace");
    let to = SocketAddr::new(t.to, t.port);
    let local = client
        .run(|| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect_timeout(&to, GET_TIMEOUT)?;
            s.set_read_timeout(Some(GET_TIMEOUT))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut body = Vec::new();
            s.read_to_end(&mut body)?;
            assert!(!body.is_empty(), "empty HTTP answer");
            s.local_addr()
        })
        .expect("enter client namespace")
        .unwrap_or_else(|e| panic!("HTTP exchange with {to}: {e}\n{:#?}", lab.dp().stats()));
    std::thread::sleep(Duration::from_millis(200));
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 65_536];
    for sock in &socks {
        while let Some(rx) = sock.recv(&mut buf).expect("receive on the real server") {
            if rx.outgoing {
                continue;
            }
            let frame = &buf[..rx.len.min(buf.len())];
            let Ok(info) = parse_frame(frame) else {
                continue;
            };
            let Payload::Ipv4(ip) = info.payload else {
                continue;
            };
            let Transport::Tcp(tcp) = ip.transport else {
                continue;
            };
            if tcp.dst_port != rport {
                continue;
            }
            seen.push((tcp.flags, toa_of(frame).flatten()));
        }
    }
    (seen, local)
}

/// With TOA on, the FullNAT SYN and the handshake's final ACK reach the real server with
/// the client's address and port in option 254 (the real server only sees the director's
/// local address otherwise), later segments do not carry it; with TOA off no segment does.
#[test]
fn engine_fullnat_toa() {
    let options = EngineOptions {
        toa: true,
        ..EngineOptions::default()
    };
    let lab = Running::start_with("fullnat", &[], "e-toa", options);
    let (seen, client) = segments_at_real_servers(&lab);
    let IpAddr::V4(caddr) = client.ip() else {
        panic!("client address {client} is not IPv4");
    };
    let want = Some((client.port(), caddr));
    let syn = seen
        .iter()
        .find(|(flags, _)| flags & 0x02 != 0)
        .unwrap_or_else(|| panic!("no SYN reached a real server: {seen:?}"));
    assert_eq!(syn.1, want, "TOA of the SYN; segments {seen:?}");
    let after: Vec<_> = seen.iter().filter(|(flags, _)| flags & 0x02 == 0).collect();
    assert!(after.len() >= 2, "too few segments after the SYN: {seen:?}");
    assert_eq!(after[0].1, want, "TOA of the first ACK; segments {seen:?}");
    assert!(
        after[1..].iter().all(|(_, toa)| toa.is_none()),
        "TOA after the first ACK: {seen:?}"
    );
    drop(lab);

    let lab = Running::start("fullnat", &[], "e-notoa");
    let (seen, _) = segments_at_real_servers(&lab);
    assert!(seen.len() >= 3, "too few segments seen: {seen:?}");
    assert!(
        seen.iter().all(|(_, toa)| toa.is_none()),
        "TOA with TOA off: {seen:?}"
    );
}

/// The other direction (`ip_vs_in_icmp`): a NAT real server's UDP answer reaches a client
/// port that was closed in between, and the client's kernel answers port unreachable about
/// the reply it got (`VIP:vport → CIP:cport` once the firewall has undone its DNAT). The
/// director must pass it to the real server as an error about the packet that server sent:
/// outer destination the RIP, quoted source `RIP:rport`.
#[test]
fn engine_nat_relays_client_port_unreachable_to_the_real_server() {
    let lab = Running::start("nat", &[], "e-icmpin");
    let inst = lab.inst.as_ref().expect("running");
    let director_ns = inst.ns(&lab.director()).expect("director namespace");
    let svc = &lab.lab.services[0];
    let vip = match svc.config.key {
        lvslab_spec::lb::ServiceKey::Addr { addr, .. } => addr,
        ref other => panic!("unexpected service {other}"),
    };
    let rs = &svc.real_servers[0];
    let IpAddr::V4(rip) = rs.config.addr else {
        panic!("real server address is not IPv4");
    };
    // The lab's real servers run a udp-echo server on 5353.
    let echo_port = 5353;
    let key = lvslab_spec::lb::ServiceKey::Addr {
        protocol: lvslab_spec::lb::Protocol::Udp,
        addr: vip,
        port: 53,
    };
    let mut dest = lvslab_spec::lb::DestConfig::new(rs.config.addr, echo_port);
    dest.method = lvslab_spec::lb::ForwardMethod::Nat;
    lab.dp()
        .with_director(&lab.director(), |d| {
            d.add_service(&lvslab_spec::lb::ServiceConfig::new(key, Scheduler::Rr))?;
            d.add_dest(&key, &dest)
        })
        .expect("director exists")
        .expect("add udp service and its destination");
    wait_for_rule(director_ns, &udp_dport(53));
    // The ICMP rule's quoted service port (`@th,224,16 53`).
    let quoted_port = Match::raw(PayloadBase::Transport, 224, 16, 53).expect("a port fits 16 bits");
    wait_for_rule(
        director_ns,
        &nft::matches_text(Family::Netdev, &[quoted_port]),
    );

    let rs_node = rs
        .node
        .as_deref()
        .expect("lab real servers name their node");
    let rs_ns = inst.ns(rs_node).expect("real server namespace");
    let link = rs_ns
        .netlink()
        .and_then(|h| h.link("eth0"))
        .expect("real server eth0");
    let capture = rs_ns
        .run(|| PacketSocket::open(link.ifindex, ETH_P_ALL))
        .expect("enter real server")
        .expect("AF_PACKET socket on the real server");

    let t = lab.lab.traffic.as_ref().expect("lab has [traffic]");
    let client = inst.ns(&t.from).expect("traffic source namespace");
    let target = SocketAddr::new(t.to, 53);
    client
        .run(|| {
            // Closed right after sending: the echo comes back to a port nobody holds.
            let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
            s.send_to(b"echo me", target).map(|_| ())
        })
        .expect("enter client namespace")
        .expect("send from the client");

    let mut found = None;
    let mut buf = vec![0u8; 65_536];
    for _ in 0..60 {
        while let Some(rx) = capture.recv(&mut buf).expect("receive on the real server") {
            if rx.outgoing {
                continue;
            }
            let Ok(info) = parse_frame(&buf[..rx.len.min(buf.len())]) else {
                continue;
            };
            let Payload::Ipv4(ip) = info.payload else {
                continue;
            };
            if let Transport::Icmp(icmp) = ip.transport {
                if icmp.ty == 3 && icmp.code == 3 {
                    found = Some((ip.dst, icmp.quoted));
                }
            }
        }
        if found.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = lab.dp().stats();
    let (outer_dst, quoted) = found
        .unwrap_or_else(|| panic!("no port unreachable reached {rs_node}\nengine: {stats:#?}"));
    let quoted = quoted.expect("the error quotes a packet");
    assert_eq!(outer_dst, rip, "outer destination");
    assert_eq!(quoted.protocol, 17);
    assert_eq!(quoted.src, rip, "quoted source: {quoted:?}");
    assert_eq!(
        quoted.ports.map(|(sport, _)| sport),
        Some(echo_port),
        "quoted source port: {quoted:?}"
    );
}
