//! The userspace dataplane end to end on every shipped lab (root: builds namespaces).
//!
//! Each test builds the lab in anonymous namespaces (nothing outlives the test process),
//! starts the lab's servers and the dataplane, sends HTTP GETs from the lab's traffic source
//! and checks who answered against the scheduler's rule: rr and wrr hand out new
//! connections in exact proportion to the weights over every whole cycle, so N requests
//! (N a multiple of the cycle) give each destination N·w/Σw.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use lvslab_dataplane::engine::sys::ETH_P_ALL;
use lvslab_dataplane::engine::{
    start_for_lab_with, EngineOptions, PacketSocket, UserspaceDataplane,
};
use lvslab_dataplane::packet::checksum::checksum;
use lvslab_dataplane::packet::{parse_frame, DropReason, Payload, Transport};
use lvslab_netns::apply::{build, LabInstance, Naming};
use lvslab_netns::nft::{self, Family, Match, PayloadBase, PortField};
use lvslab_netns::plan::{plan, DecapImpl, PlanOptions};
use lvslab_netns::traffic::{http_get, start_server, ServerHandle};
use lvslab_spec::lab_path;
use lvslab_spec::lb::{LoadBalancer, Scheduler, ServiceStatus};
use lvslab_spec::model::Lab;

const REQUESTS: usize = 60;
const GET_TIMEOUT: Duration = Duration::from_secs(3);

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the engine lab tests build network namespaces and must run as root (euid 0); \
         run `sudo -E cargo test -p lvslab-dataplane --test engine_labs`"
    );
}

fn labs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../labs")
}

/// A running lab with its servers and dataplane; torn down in the right order on drop.
struct Running {
    lab: Lab,
    dp: Option<UserspaceDataplane>,
    servers: Vec<ServerHandle>,
    inst: Option<LabInstance>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.dp.take();
        self.servers.clear();
        if let Some(inst) = self.inst.take() {
            let errors = inst.teardown();
            assert!(errors.ok(), "teardown: {errors:?}");
        }
    }
}

impl Running {
    fn start(name: &str, params: &[(&str, &str)], instance: &str) -> Running {
        Running::start_with(name, params, instance, EngineOptions::default())
    }

    fn start_with(
        name: &str,
        params: &[(&str, &str)],
        instance: &str,
        options: EngineOptions,
    ) -> Running {
        require_root();
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lab = lvslab_spec::load_lab(&lab_path(&labs_dir(), name), &params)
            .unwrap_or_else(|e| panic!("load lab {name}: {e:?}"));
        let p = plan(
            &lab,
            &PlanOptions {
                instance: instance.to_string(),
                decap: DecapImpl::Userspace,
                run: None,
            },
        )
        .unwrap_or_else(|e| panic!("plan lab {name}: {e}"));
        let inst = build(&p, Naming::Anonymous, &AtomicBool::new(false))
            .unwrap_or_else(|e| panic!("build lab {name}: {e}"));
        let mut running = Running {
            lab,
            dp: None,
            servers: Vec::new(),
            inst: Some(inst),
        };
        let inst = running.inst.as_ref().expect("just set");
        for node in &running.lab.nodes {
            let ns = inst.ns(&node.name).expect("every node has a namespace");
            for s in &node.servers {
                let h = start_server(ns, &node.name, s)
                    .unwrap_or_else(|e| panic!("start server on {}: {e}", node.name));
                running.servers.push(h);
            }
        }
        let dp = start_for_lab_with(&running.lab, inst, options)
            .unwrap_or_else(|e| panic!("start the userspace dataplane for {name}: {e}"));
        running.dp = Some(dp);
        running
    }

    fn dp(&self) -> &UserspaceDataplane {
        self.dp.as_ref().expect("dataplane running")
    }

    fn director(&self) -> String {
        self.lab.services[0].director.clone()
    }

    fn list(&self) -> Vec<ServiceStatus> {
        self.dp()
            .with_director(&self.director(), |d| d.list())
            .expect("director exists")
            .expect("list services")
    }

    /// `n` GETs from the lab's traffic source; the answering node of each.
    fn gets(&self, n: usize) -> BTreeMap<String, usize> {
        let t = self.lab.traffic.as_ref().expect("lab has [traffic]");
        let inst = self.inst.as_ref().expect("running");
        let ns = inst.ns(&t.from).expect("traffic source namespace");
        let to = SocketAddr::new(t.to, t.port);
        let mut counts = BTreeMap::new();
        for k in 0..n {
            match http_get(ns, &t.from, to, GET_TIMEOUT) {
                Ok(body) => *counts.entry(body).or_insert(0) += 1,
                Err(e) => panic!(
                    "GET {k} of {n} from {} to {to} failed: {e}\nengine: {:#?}\nservices: {:#?}",
                    t.from,
                    self.dp().stats(),
                    self.list()
                ),
            }
        }
        counts
    }

    /// What rr/wrr must give over `n` new connections, per real-server node.
    fn expected(&self, scheduler: Scheduler, n: usize) -> BTreeMap<String, usize> {
        let svc = &self.lab.services[0];
        let weight = |w: u32| match scheduler {
            Scheduler::Rr => 1,
            Scheduler::Wrr => w as usize,
            other => panic!("no closed-form expectation for {other}"),
        };
        let total: usize = svc
            .real_servers
            .iter()
            .map(|r| weight(r.config.weight))
            .sum();
        assert_eq!(
            n % total,
            0,
            "{n} requests are not whole {scheduler} cycles"
        );
        svc.real_servers
            .iter()
            .map(|r| {
                let node = r.node.clone().expect("lab real servers name their node");
                (node, n / total * weight(r.config.weight))
            })
            .collect()
    }

    fn assert_conns(&self, want: u64) {
        let list = self.list();
        let conns: u64 = list.iter().map(|s| s.stats.conns).sum();
        assert_eq!(conns, want, "director connection counter: {list:#?}");
        let dest_conns: u64 = list
            .iter()
            .flat_map(|s| &s.dests)
            .map(|d| d.stats.conns)
            .sum();
        assert_eq!(
            dest_conns, want,
            "destination connection counters: {list:#?}"
        );
    }
}

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

#[test]
fn engine_survives_malformed_frames() {
    // The fullnat lab links the client straight to the director: a bridge in between (with
    // the host's br_netfilter) would already drop frames with broken IPv4 headers.
    let lab = Running::start("fullnat", &[], "e-bad");
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
    let eth = |ethertype: u16| {
        let mut f = director_mac.to_vec();
        f.extend_from_slice(&client_mac);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    };
    let tcp_syn = |sport: u16| {
        let mut t = sport.to_be_bytes().to_vec();
        t.extend_from_slice(&80u16.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        t
    };
    let before = lab.dp().stats().engines[0].1.drops.clone();

    let mut cases: Vec<(DropReason, Vec<u8>)> = Vec::new();
    // Cut inside the IPv4 header.
    let mut f = eth(0x0800);
    f.extend_from_slice(&ipv4_header(40, 0, 6, src, vip)[..10]);
    cases.push((DropReason::Truncated, f));
    // Total length beyond the frame.
    let mut f = eth(0x0800);
    f.extend_from_slice(&ipv4_header(400, 0, 6, src, vip));
    f.extend_from_slice(&tcp_syn(40001));
    cases.push((DropReason::Truncated, f));
    // Total length shorter than the header.
    let mut f = eth(0x0800);
    f.extend_from_slice(&ipv4_header(12, 0, 6, src, vip));
    f.extend_from_slice(&tcp_syn(40002));
    cases.push((DropReason::BadTotalLength, f));
    // IHL 4.
    let mut f = eth(0x0800);
    let mut h = ipv4_header(40, 0, 6, src, vip);
    h[0] = 0x44;
    f.extend_from_slice(&h);
    f.extend_from_slice(&tcp_syn(40003));
    cases.push((DropReason::BadHeaderLength, f));
    // Version 6 in an IPv4 EtherType.
    let mut f = eth(0x0800);
    let mut h = ipv4_header(40, 0, 6, src, vip);
    h[0] = 0x65;
    f.extend_from_slice(&h);
    f.extend_from_slice(&tcp_syn(40004));
    cases.push((DropReason::BadIpVersion, f));
    // Wrong header checksum.
    let mut f = eth(0x0800);
    let mut h = ipv4_header(40, 0, 6, src, vip);
    h[10] ^= 0xff;
    f.extend_from_slice(&h);
    f.extend_from_slice(&tcp_syn(40005));
    cases.push((DropReason::BadIpChecksum, f));
    // First fragment (MF) and a later fragment.
    let mut f = eth(0x0800);
    f.extend_from_slice(&ipv4_header(40, 0x2000, 6, src, vip));
    f.extend_from_slice(&tcp_syn(40006));
    cases.push((DropReason::Fragment, f));
    let mut f = eth(0x0800);
    f.extend_from_slice(&ipv4_header(40, 0x0010, 6, src, vip));
    f.extend_from_slice(&[0; 20]);
    cases.push((DropReason::Fragment, f));
    // TCP data offset past the packet.
    let mut f = eth(0x0800);
    f.extend_from_slice(&ipv4_header(40, 0, 6, src, vip));
    let mut t = tcp_syn(40007);
    t[12] = 0xf0;
    f.extend_from_slice(&t);
    cases.push((DropReason::BadTransportHeader, f));
    // An IP protocol without ports (SCTP-like number 253) to the VIP.
    let mut f = eth(0x0800);
    f.extend_from_slice(&ipv4_header(28, 0, 253, src, vip));
    f.extend_from_slice(&[0; 8]);
    cases.push((DropReason::UnknownProtocol, f));
    // ARP cut short.
    let mut f = eth(0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    cases.push((DropReason::MalformedArp, f));
    // Only an Ethernet header's worth of bytes, claiming IPv4.
    cases.push((DropReason::Truncated, eth(0x0800)));

    for (_, frame) in &cases {
        sock.send(frame).expect("inject frame from the client");
    }
    std::thread::sleep(Duration::from_millis(600));
    let after = lab.dp().stats().engines[0].1.drops.clone();
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for (reason, _) in &cases {
        *want.entry(reason.label()).or_insert(0) += 1;
    }
    for (reason, _) in &cases {
        let grew = after.get(*reason) - before.get(*reason);
        assert!(
            grew >= want[reason.label()],
            "{reason}: {grew} new drops counted, {} frames sent; drops now {:?}",
            want[reason.label()],
            after.nonzero().collect::<Vec<_>>()
        );
    }
    // The engine is still there and balances as before.
    let got = lab.gets(6);
    assert_eq!(got.values().sum::<usize>(), 6, "{got:?}");
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

/// The expressions of `udp dport PORT` in the engine's netdev table.
fn udp_dport(port: u16) -> String {
    let m = Match::Port {
        protocol: lvslab_spec::lb::Protocol::Udp,
        field: PortField::Dport,
        port,
    };
    nft::matches_text(Family::Netdev, &[m])
}

/// Waits until a rule of the namespace's ruleset holds `needle` (expressions as
/// [`nft::matches_text`] writes them).
fn wait_for_rule(ns: &lvslab_netns::Netns, needle: &str) {
    for _ in 0..40 {
        let rules = nft::list(ns).expect("nft list ruleset").to_string();
        if rules
            .lines()
            .any(|l| l.starts_with("rule ") && l.contains(needle))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "no nft rule with {needle:?}:\n{}",
        nft::list(ns).map(|l| l.to_string()).unwrap_or_default()
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
    let mut outcome = None;
    for _ in 0..3 {
        if let Err(e) = sock.send(b"anyone there?") {
            outcome = Some(e);
            break;
        }
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
    // The engine publishes its counters after sending, so the client may be faster.
    let mut engine = stats.engines[0].1.clone();
    for _ in 0..20 {
        if engine.icmp_errors_relayed >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
        engine = lab.dp().stats().engines[0].1.clone();
    }
    assert_eq!(engine.icmp_errors_relayed, 1, "{engine:#?}");
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
    let lab = Running::start_with("fullnat", &[], "e-toa", EngineOptions { toa: true });
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
