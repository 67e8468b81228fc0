//! Shared helpers for the `sched_*` integration tests (included with `#[path]`).
#![allow(dead_code)]

use std::net::IpAddr;

use lvslab_dataplane::conn::TcpFlags;
use lvslab_dataplane::director::{Director, DirectorConfig, FlowKey, Verdict};
use lvslab_spec::lb::{
    DestConfig, DestStatus, ForwardMethod, LoadBalancer, Protocol, Scheduler, ServiceConfig,
    ServiceKey,
};

pub const VIP: &str = "192.0.2.10";
pub const A: &str = "198.51.100.1";
pub const B: &str = "198.51.100.2";
pub const C: &str = "198.51.100.3";
pub const D: &str = "198.51.100.4";

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address literal")
}

pub fn key(protocol: Protocol, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol,
        addr: ip(VIP),
        port,
    }
}

pub fn director() -> Director {
    Director::new(DirectorConfig::default())
}

/// A director with one service on VIP:80.
pub fn with_service(protocol: Protocol, sched: Scheduler) -> (Director, ServiceKey) {
    let mut d = director();
    let k = key(protocol, 80);
    d.add_service(&ServiceConfig::new(k, sched))
        .expect("fresh service");
    (d, k)
}

pub fn dest(addr: &str, weight: u32) -> DestConfig {
    let mut c = DestConfig::new(ip(addr), 80);
    c.weight = weight;
    c
}

pub fn add(d: &mut Director, k: &ServiceKey, addr: &str, weight: u32) {
    d.add_dest(k, &dest(addr, weight)).expect("add dest");
}

pub fn add_m(d: &mut Director, k: &ServiceKey, addr: &str, weight: u32, m: ForwardMethod) {
    let mut c = dest(addr, weight);
    c.method = m;
    d.add_dest(k, &c).expect("add dest");
}

pub fn pkt(protocol: Protocol, client: &str, sport: u16, flags: u8) -> FlowKey {
    FlowKey {
        protocol,
        saddr: ip(client),
        sport,
        daddr: ip(VIP),
        dport: 80,
        tcp_flags: TcpFlags(flags),
        fwmark: 0,
        len: 60,
    }
}

pub fn syn(client: &str, sport: u16) -> FlowKey {
    pkt(Protocol::Tcp, client, sport, TcpFlags::SYN)
}

pub fn udp(client: &str, sport: u16) -> FlowKey {
    pkt(Protocol::Udp, client, sport, 0)
}

/// The real server a packet went to; panics on any other verdict.
pub fn fwd(d: &mut Director, now: u64, p: &FlowKey) -> IpAddr {
    match d.lookup_or_schedule(now, p) {
        Verdict::Forward(f) => f.daddr,
        v => panic!("expected Forward for {p:?}, got {v:?}"),
    }
}

/// Letter name (A..D) of a test real server.
pub fn name(a: IpAddr) -> &'static str {
    match a.to_string().as_str() {
        A => "A",
        B => "B",
        C => "C",
        D => "D",
        _ => "?",
    }
}

/// Picks `n` new TCP connections from distinct client ports (kept open), returning letters.
pub fn picks_tcp(d: &mut Director, n: u16, first_port: u16) -> Vec<&'static str> {
    (0..n)
        .map(|i| name(fwd(d, 0, &syn("203.0.113.7", first_port + i))))
        .collect()
}

/// Picks `n` new UDP flows.
pub fn picks_udp(d: &mut Director, n: u16, first_port: u16) -> Vec<&'static str> {
    (0..n)
        .map(|i| name(fwd(d, 0, &udp("203.0.113.7", first_port + i))))
        .collect()
}

pub fn dest_status(d: &mut Director, k: &ServiceKey, addr: &str) -> DestStatus {
    let list = d.list().expect("list");
    let svc = list
        .into_iter()
        .find(|s| s.config.key == *k)
        .expect("service listed");
    svc.dests
        .into_iter()
        .find(|x| x.config.addr == ip(addr))
        .expect("dest listed")
}

pub fn order(d: &mut Director, k: &ServiceKey) -> Vec<&'static str> {
    let list = d.list().expect("list");
    let svc = list
        .into_iter()
        .find(|s| s.config.key == *k)
        .expect("service listed");
    svc.dests.iter().map(|x| name(x.config.addr)).collect()
}
