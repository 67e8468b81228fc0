//! Capture benchmark (needs root): what one AF_PACKET capture point sustains, and what armed
//! captures cost a trial. Plain `main`, bounded in packets and time; results on stdout.
//!
//! Run: `cargo bench -p lvslab-netns --bench capture`.
//!
//! 1. Rate sweep: namespaces `a`,`b` joined by a veth pair; one capture point on `a:eth0`
//!    (outbound, so the point is offered every frame the sender emits and kept + dropped is
//!    exact). UDP datagrams making 64-byte frames are paced at each rate for one second
//!    (bounded by count); per step: achieved rate, frames kept, kernel drops.
//! 2. Trial-like traffic: sequential TCP connections a → b (connect, 16-byte request,
//!    1000-byte answer, close), timed with no capture and with captures armed on `a:eth0`
//!    and `b:eth0`, alternating, median of several rounds; arm and drain are timed apart.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use lvslab_netns::capture::{CaptureOptions, CaptureSet};
use lvslab_netns::{set_sysctl, MacAddr, Netns};

const A_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const UDP_PORT: u16 = 40_000;
const TCP_PORT: u16 = 40_080;

fn build_pair() -> (Netns, Netns) {
    let a = Netns::new_anonymous().expect("namespace a");
    let b = Netns::new_anonymous().expect("namespace b");
    for ns in [&a, &b] {
        for key in [
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.default.disable_ipv6",
        ] {
            set_sysctl(ns, key, "1").expect("disable IPv6");
        }
    }
    let mac_a = MacAddr::local_from_key("bench/a/eth0");
    let mac_b = MacAddr::local_from_key("bench/b/eth0");
    let ha = a.netlink().expect("netlink a");
    let hb = b.netlink().expect("netlink b");
    ha.add_veth("eth0", mac_a, &b, "eth0", mac_b).expect("veth");
    ha.add_address("eth0", IpAddr::V4(A_IP), 24)
        .expect("addr a");
    hb.add_address("eth0", IpAddr::V4(B_IP), 24)
        .expect("addr b");
    ha.add_neighbour("eth0", IpAddr::V4(B_IP), mac_b)
        .expect("neigh a");
    hb.add_neighbour("eth0", IpAddr::V4(A_IP), mac_a)
        .expect("neigh b");
    ha.set_up("eth0").expect("up a");
    hb.set_up("eth0").expect("up b");
    (a, b)
}

struct Step {
    target: Option<u64>,
    sent: u64,
    secs: f64,
    kept: u64,
    drops: u64,
}

/// Sends `count` datagrams at `rate` per second (as fast as possible when `None`).
fn paced_send(sock: &UdpSocket, rate: Option<u64>, count: u64) -> (u64, f64) {
    let payload = [0x5au8; 22];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < count && start.elapsed() < Duration::from_secs(5) {
        if let Some(r) = rate {
            let due = Duration::from_secs_f64(sent as f64 / r as f64);
            while start.elapsed() < due {
                std::hint::spin_loop();
            }
        }
        match sock.send_to(&payload, (B_IP, UDP_PORT)) {
            Ok(_) => sent += 1,
            Err(_) => thread::yield_now(),
        }
    }
    (sent, start.elapsed().as_secs_f64())
}

fn rate_sweep(a: &Netns, b: &Netns) -> Vec<Step> {
    let sender = a
        .run(|| UdpSocket::bind((A_IP, 0)))
        .expect("enter a")
        .expect("udp a");
    let _sink = b
        .run(|| UdpSocket::bind((B_IP, UDP_PORT)))
        .expect("enter b")
        .expect("udp b");
    let opts = CaptureOptions {
        max_frames_per_point: 2_000_000,
        ..CaptureOptions::default()
    };
    let mut steps = Vec::new();
    for target in [
        Some(25_000),
        Some(50_000),
        Some(100_000),
        Some(200_000),
        Some(400_000),
        None,
    ] {
        let set = CaptureSet::arm_with(&[(a, "a:eth0".to_string())], &opts).expect("arm");
        let count = target.unwrap_or(1_000_000);
        let (sent, secs) = paced_send(&sender, target, count);
        let captured = set.drain(Duration::from_millis(200)).expect("drain");
        let s = &captured.stats[0];
        steps.push(Step {
            target,
            sent,
            secs,
            kept: s.packets,
            drops: s.drops + s.over_cap,
        });
    }
    steps
}

/// A server in `b` answering each connection with 1000 bytes; runs `conns` connections.
fn tcp_round(a: &Netns, listener: &TcpListener, conns: usize) -> Duration {
    let server = listener.try_clone().expect("clone listener");
    let serve = thread::spawn(move || {
        for _ in 0..conns {
            let (mut s, _) = server.accept().expect("accept");
            let mut req = [0u8; 16];
            s.read_exact(&mut req).expect("request");
            s.write_all(&[0x41; 1000]).expect("answer");
        }
    });
    let start = Instant::now();
    for _ in 0..conns {
        let mut c = a
            .run(|| TcpStream::connect(SocketAddr::from((B_IP, TCP_PORT))))
            .expect("enter a")
            .expect("connect");
        c.write_all(b"GET / HTTP/1.0\r\n").expect("send request");
        let mut answer = Vec::with_capacity(1000);
        c.read_to_end(&mut answer).expect("read answer");
        assert_eq!(answer.len(), 1000);
    }
    let took = start.elapsed();
    serve.join().expect("server thread");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("capture bench: needs root (network namespaces, AF_PACKET); not run");
        std::process::exit(1);
    }
    let (a, b) = build_pair();

    println!("## capture rate sweep: one point (a:eth0, outbound), 64-byte UDP frames over veth");
    println!(
        "{:>10} {:>10} {:>10} {:>10} {:>8}",
        "target/s", "sent", "sent/s", "kept", "lost"
    );
    let steps = rate_sweep(&a, &b);
    let mut best = 0.0f64;
    for s in &steps {
        let rate = s.sent as f64 / s.secs;
        let target = s.target.map_or("max".to_string(), |t| t.to_string());
        println!(
            "{target:>10} {:>10} {rate:>10.0} {:>10} {:>8}",
            s.sent, s.kept, s.drops
        );
        if s.drops == 0 && s.kept == s.sent {
            best = best.max(rate);
        }
    }
    println!("highest rate with zero loss: {best:.0} frames/s");

    const CONNS: usize = 300;
    const ROUNDS: usize = 9;
    let listener = b
        .run(|| TcpListener::bind((B_IP, TCP_PORT)))
        .expect("enter b")
        .expect("listen");
    // Warm-up (first connections pay for route and socket caches).
    tcp_round(&a, &listener, 50);
    let points = [(&a, "a:eth0".to_string()), (&b, "b:eth0".to_string())];
    let (mut plain, mut armed, mut arm_t, mut drain_t) = (vec![], vec![], vec![], vec![]);
    let mut frames = 0;
    let mut lost = 0;
    for round in 0..ROUNDS {
        // Alternate which goes first, so a load change on the shared machine hits both.
        if round % 2 == 0 {
            plain.push(tcp_round(&a, &listener, CONNS));
        }
        let t = Instant::now();
        let set = CaptureSet::arm(&points).expect("arm");
        arm_t.push(t.elapsed());
        armed.push(tcp_round(&a, &listener, CONNS));
        let t = Instant::now();
        let captured = set.drain(Duration::ZERO).expect("drain");
        drain_t.push(t.elapsed());
        frames = captured.capture.frames.len();
        lost += captured.lost();
        if round % 2 == 1 {
            plain.push(tcp_round(&a, &listener, CONNS));
        }
    }
    let (p, c) = (median(plain), median(armed));
    println!(
        "## trial-like traffic: {CONNS} sequential TCP connections (16 B request, 1000 B answer), median of {ROUNDS}"
    );
    println!("without capture: {p:?}");
    println!("with 2 points armed: {c:?} ({frames} frames captured per round, {lost} lost in all rounds)");
    println!(
        "ratio armed/plain: {:.3}",
        c.as_secs_f64() / p.as_secs_f64()
    );
    println!(
        "arm (2 points, marker round trip): {:?}; drain (settle 0): {:?}",
        median(arm_t),
        median(drain_t)
    );
}
