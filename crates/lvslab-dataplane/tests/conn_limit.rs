//! The connection table's bound: at `max_conns` a new connection takes the place of the
//! oldest half-open entry (the kernel's `drop_entry` defence, made deterministic), or is
//! refused when every entry is past its handshake; half-open entries keep the kernel's
//! SYN_RECV timeout and counting while they last.

#[path = "sched_util.rs"]
mod util;

use lvslab_dataplane::conn::{ConnState, TcpFlags, TcpState};
use lvslab_dataplane::director::{Director, DirectorConfig, DropReason, ReplyVerdict, Verdict};
use lvslab_spec::lb::{ForwardMethod, LoadBalancer, Protocol, Scheduler, ServiceConfig};
use util::*;

const FLOOD: &str = "203.0.113.66";
const LEGIT: &str = "203.0.113.5";

fn bounded(max_conns: usize, drop_half_open_when_full: bool) -> Director {
    let mut d = Director::new(DirectorConfig {
        max_conns,
        drop_half_open_when_full,
        ..DirectorConfig::default()
    });
    let k = key(Protocol::Tcp, 80);
    d.add_service(&ServiceConfig::new(k, Scheduler::Rr))
        .expect("service");
    add_m(&mut d, &k, A, 1, ForwardMethod::Nat);
    d
}

/// A full NAT handshake from `client:sport`: SYN in, SYN-ACK out, ACK in.
fn handshake(d: &mut Director, now: u64, client: &str, sport: u16) {
    fwd(d, now, &syn(client, sport));
    let mut synack = pkt(Protocol::Tcp, A, 80, TcpFlags::SYN | TcpFlags::ACK);
    synack.daddr = ip(client);
    synack.dport = sport;
    assert!(matches!(
        d.lookup_reply(now, &synack),
        ReplyVerdict::Reply { .. }
    ));
    fwd(d, now, &pkt(Protocol::Tcp, client, sport, TcpFlags::ACK));
}

fn sports_in_table(d: &Director, client: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = d
        .conns()
        .iter()
        .filter(|c| c.key.caddr == ip(client))
        .map(|c| c.key.cport)
        .collect();
    ports.sort_unstable();
    ports
}

#[test]
fn full_table_drops_the_oldest_half_open_entry_for_a_new_one() {
    let mut d = bounded(100, true);
    for sport in 1000..1150 {
        fwd(&mut d, 0, &syn(FLOOD, sport));
    }
    assert_eq!(d.conns().len(), 100);
    assert_eq!(d.conns().peak_len(), 100);
    assert_eq!(d.half_open_evicted(), 50);
    assert_eq!(d.conns().refused(), 0);
    // The 50 oldest went.
    assert_eq!(
        sports_in_table(&d, FLOOD),
        (1050..1150).collect::<Vec<u16>>()
    );
    // Every survivor is half-open with the kernel's SYN_RECV timeout, and counts as the
    // kernel (≥ 4.7) counts it: active.
    for c in d.conns().iter() {
        assert_eq!(c.state, ConnState::Tcp(TcpState::SynRecv));
        assert_eq!(c.timeout_ms, 60_000);
    }
    let k = key(Protocol::Tcp, 80);
    let s = dest_status(&mut d, &k, A);
    assert_eq!((s.active_conns, s.inactive_conns), (100, 0));
    // They expire after 60 s without another packet, and the counters with them.
    d.expire(59_999);
    assert_eq!(d.conns().len(), 100);
    d.expire(60_000);
    assert_eq!(d.conns().len(), 0);
    let s = dest_status(&mut d, &k, A);
    assert_eq!((s.active_conns, s.inactive_conns), (0, 0));
    assert_eq!(d.conns().peak_len(), 100);
}

#[test]
fn a_completed_connection_outlives_a_flood_at_the_bound() {
    let mut d = bounded(50, true);
    handshake(&mut d, 0, LEGIT, 40000);
    for sport in 0..1000 {
        fwd(&mut d, 1, &syn(FLOOD, 10_000 + sport));
    }
    assert_eq!(d.conns().len(), 50);
    assert_eq!(d.half_open_evicted(), 1000 - 49);
    assert_eq!(sports_in_table(&d, LEGIT), vec![40000]);
    // The legitimate connection still goes through, on its entry.
    fwd(
        &mut d,
        2,
        &pkt(Protocol::Tcp, LEGIT, 40000, TcpFlags::ACK | 0x08),
    );
    // And a new legitimate client gets in during the flood.
    handshake(&mut d, 3, LEGIT, 40001);
    assert_eq!(sports_in_table(&d, LEGIT), vec![40000, 40001]);
    assert!(d.conns().peak_len() <= 50);
}

#[test]
fn a_table_of_established_connections_refuses_new_ones() {
    let mut d = bounded(10, true);
    for sport in 0..10 {
        handshake(&mut d, 0, LEGIT, 40000 + sport);
    }
    assert_eq!(
        d.lookup_or_schedule(1, &syn(FLOOD, 1)),
        Verdict::Drop(DropReason::TableFull)
    );
    assert_eq!(d.conns().refused(), 1);
    assert_eq!(d.half_open_evicted(), 0);
    assert_eq!(d.conns().len(), 10);
}

#[test]
fn without_dropping_half_open_entries_a_full_table_refuses() {
    let mut d = bounded(10, false);
    for sport in 0..10 {
        fwd(&mut d, 0, &syn(FLOOD, sport));
    }
    assert_eq!(
        d.lookup_or_schedule(0, &syn(LEGIT, 40000)),
        Verdict::Drop(DropReason::TableFull)
    );
    assert_eq!(d.half_open_evicted(), 0);
    assert_eq!(d.conns().refused(), 1);
}

#[test]
fn a_lower_bound_applies_to_the_next_new_connection() {
    let mut d = bounded(100, true);
    for sport in 0..20 {
        fwd(&mut d, 0, &syn(FLOOD, sport));
    }
    d.config_mut().max_conns = 10;
    fwd(&mut d, 0, &syn(LEGIT, 40000));
    // The oldest half-open entries made room down to the new bound.
    assert_eq!(d.half_open_evicted(), 11);
    assert_eq!(d.conns().len(), 10);
    assert_eq!(d.conns().max_entries(), 10);
    assert_eq!(sports_in_table(&d, LEGIT), vec![40000]);
}
