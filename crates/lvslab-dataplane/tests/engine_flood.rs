//! A bounded SYN flood against the NAT lab's virtual service (root: anonymous namespaces).
//!
//! 20,000 SYNs from random addresses and ports of the client's subnet, paced over 5 s
//! through an AF_PACKET socket in the client's namespace (the flood stops by itself),
//! while the real client makes 50 sequential HTTP requests once the director's table is
//! at its bound. What must hold: the table never holds more than its bound, every
//! legitimate request is answered, the half-open entries are listed in SYN_RECV with the
//! kernel's 60 s timeout and counted as the kernel counts them (active since ~4.7), and
//! the entries given up to make room are counted as drops. The measured figures are
//! printed (`--nocapture`).

mod engine_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine_support::{Running, GET_TIMEOUT};
use lvslab_dataplane::conn::{ConnState, TcpState};
use lvslab_dataplane::engine::sys::ETH_P_ALL;
use lvslab_dataplane::engine::{render_drops, EngineOptions, PacketSocket};
use lvslab_dataplane::packet::checksum::{checksum, transport_checksum};
use lvslab_dataplane::packet::DropReason;
use lvslab_netns::traffic::http_get;
use lvslab_spec::lb::LoadBalancer;

const FLOOD_SYNS: usize = 20_000;
const FLOOD_BATCHES: usize = 200;
const BATCH_EVERY: Duration = Duration::from_millis(25);
const TABLE_LIMIT: usize = 5_000;
const LEGIT_REQUESTS: usize = 50;

/// xorshift64*: a fixed, reproducible stream of flood addresses and ports.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// An Ethernet/IPv4/TCP SYN with correct checksums.
fn syn_frame(
    macs: ([u8; 6], [u8; 6]),
    src: Ipv4Addr,
    sport: u16,
    dst: SocketAddr,
    seq: u32,
) -> Vec<u8> {
    let IpAddr::V4(daddr) = dst.ip() else {
        panic!("the lab's service is IPv4");
    };
    let mut tcp = sport.to_be_bytes().to_vec();
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
    let sum = transport_checksum(src, daddr, 6, &tcp, 16);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&daddr.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut f = macs.0.to_vec();
    f.extend_from_slice(&macs.1);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f
}

#[test]
fn syn_flood_is_absorbed_within_the_table_bound_and_clients_are_served() {
    let options = EngineOptions {
        max_conns: TABLE_LIMIT,
        ..EngineOptions::default()
    };
    let lab = Running::start_with("nat", &[], "e-flood", options);
    let inst = lab.inst.as_ref().expect("running");
    let traffic = lab.lab.traffic.as_ref().expect("the nat lab has [traffic]");
    let client_ns = inst.ns(&traffic.from).expect("client namespace");
    let client = client_ns
        .netlink()
        .and_then(|h| h.link("eth0"))
        .expect("client eth0");
    let gateway_mac = inst
        .ns("isp")
        .expect("isp namespace")
        .netlink()
        .and_then(|h| h.link("eth0"))
        .expect("isp eth0")
        .mac
        .expect("isp eth0 has a MAC")
        .octets();
    let client_mac = client.mac.expect("client eth0 has a MAC").octets();
    let sock = client_ns
        .run(|| PacketSocket::open(client.ifindex, ETH_P_ALL))
        .expect("enter the client namespace")
        .expect("AF_PACKET socket in the client");
    let service = SocketAddr::new(traffic.to, traffic.port);

    // 192.168.10.2 ..= .253: the client's subnet without the client (.1) and the ISP (.254).
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let flooding = flooding.clone();
        std::thread::spawn(move || {
            let mut rng = Rng(0x5eed_f100d);
            let start = Instant::now();
            let (mut sent, mut refused) = (0usize, 0usize);
            for batch in 0..FLOOD_BATCHES {
                for _ in 0..FLOOD_SYNS / FLOOD_BATCHES {
                    let r = rng.next();
                    let src = Ipv4Addr::new(192, 168, 10, 2 + (r % 252) as u8);
                    let sport = 1024 + ((r >> 8) % 64_000) as u16;
                    let frame = syn_frame(
                        (gateway_mac, client_mac),
                        src,
                        sport,
                        service,
                        (r >> 32) as u32,
                    );
                    match sock.send(&frame) {
                        Ok(()) => sent += 1,
                        Err(_) => refused += 1,
                    }
                }
                let due = BATCH_EVERY * (batch as u32 + 1);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            flooding.store(false, Ordering::SeqCst);
            (sent, refused, start.elapsed())
        })
    };

    // Legitimate requests once the flood has filled the table (bounded by the flood).
    while flooding.load(Ordering::SeqCst)
        && lab.dp().stats().engines[0].1.conn_table.entries < TABLE_LIMIT
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let table_full_first = !flooding.load(Ordering::SeqCst);
    let (mut ok, mut failed, mut during_flood) = (0, Vec::new(), 0);
    for k in 0..LEGIT_REQUESTS {
        match http_get(client_ns, &traffic.from, service, GET_TIMEOUT) {
            Ok(_) => ok += 1,
            Err(e) => failed.push(format!("request {k}: {e}")),
        }
        if flooding.load(Ordering::SeqCst) {
            during_flood += 1;
        }
    }
    let (sent, refused, took) = flood.join().expect("the flood thread");
    assert!(lab.dp().sync(Duration::from_secs(5)), "engine ticks");

    let stats = lab.dp().stats();
    let engine = &stats.engines[0].1;
    let director = lab.director();
    let (made, evicted, listing, states) = lab
        .dp()
        .with_director(&director, |d| {
            let states: Vec<(ConnState, u64)> =
                d.conns().iter().map(|c| (c.state, c.timeout_ms)).collect();
            (
                d.total_stats().conns,
                d.half_open_evicted(),
                d.list().expect("list"),
                states,
            )
        })
        .expect("director exists");
    let half_open: Vec<u64> = states
        .iter()
        .filter(|(s, _)| *s == ConnState::Tcp(TcpState::SynRecv))
        .map(|(_, t)| *t)
        .collect();
    let active_states = states
        .iter()
        .filter(|(s, _)| matches!(s, ConnState::Tcp(t) if t.is_active()))
        .count();
    let (listed_active, listed_inactive): (u64, u64) = listing
        .iter()
        .flat_map(|s| &s.dests)
        .map(|d| (u64::from(d.active_conns), u64::from(d.inactive_conns)))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));

    println!(
        "flood: {sent} SYNs sent in {took:.1?} ({refused} refused by the socket); \
         director made {made} connections; table peak {} of limit {} (now {}); \
         {evicted} half-open entries evicted, {} new connections refused; \
         legitimate requests: {ok} ok, {} failed, {during_flood} of them finished while \
         the flood ran; half-open entries listed: {} (SYN_RECV); ActiveConn {listed_active}, \
         InActConn {listed_inactive}",
        engine.conn_table.peak,
        engine.conn_table.limit,
        engine.conn_table.entries,
        engine.drops.get(DropReason::ConnTableFull),
        failed.len(),
        half_open.len(),
    );
    println!("{}", render_drops(&stats));

    assert_eq!(sent, FLOOD_SYNS, "the flood could not be sent as planned");
    assert!(
        !table_full_first,
        "the table never reached its bound of {TABLE_LIMIT} during the flood: nothing was \
         tested (peak {})",
        engine.conn_table.peak
    );
    assert_eq!(engine.conn_table.limit, TABLE_LIMIT);
    assert!(
        engine.conn_table.peak <= TABLE_LIMIT,
        "the table held {} entries, its bound is {TABLE_LIMIT}",
        engine.conn_table.peak
    );
    assert!(
        failed.is_empty(),
        "{} of {LEGIT_REQUESTS} legitimate requests failed during the flood:\n  {}",
        failed.len(),
        failed.join("\n  ")
    );
    assert!(evicted > 0, "a full table made no room: {engine:#?}");
    assert_eq!(
        engine.drops.get(DropReason::HalfOpenEvicted),
        evicted,
        "evictions counted as drops"
    );
    assert!(!half_open.is_empty(), "no half-open entry listed");
    assert!(
        half_open.iter().all(|&t| t == 60_000),
        "half-open entries must carry the kernel's SYN_RECV timeout (60 s)"
    );
    // Listed as the kernel lists them: pre-established states count in ActiveConn
    // (kernels >= 4.7, ipvs-spec §3.3), everything else in InActConn.
    assert_eq!(listed_active, active_states as u64, "ActiveConn");
    assert_eq!(
        listed_inactive,
        (states.len() - active_states) as u64,
        "InActConn"
    );
}
