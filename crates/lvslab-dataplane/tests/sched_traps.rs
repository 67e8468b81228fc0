//! Traps 1–14 of the IPVS notes (ordering, counters/overload, hashing), one test each.
//! Expectations derive from the kernel rules; those marked so await kernel confirmation in the
//! VM differential test.

#[path = "sched_util.rs"]
mod util;

use lvslab_dataplane::conn::TcpFlags;
use lvslab_dataplane::director::{Director, DirectorConfig, Verdict};
use lvslab_dataplane::sched::{Profile, RandomSource};
use lvslab_spec::lb::{DestConfig, LbError, LoadBalancer, Protocol, Scheduler, ServiceConfig};
use util::*;

#[test]
fn trap01_list_is_newest_first_and_revived_dest_goes_to_front() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    add(&mut d, &k, C, 1);
    assert_eq!(order(&mut d, &k), ["C", "B", "A"]);
    // Edit never moves.
    d.edit_dest(&k, &dest(A, 5)).expect("edit");
    assert_eq!(order(&mut d, &k), ["C", "B", "A"]);
    d.delete_dest(&k, ip(A), 80).expect("delete");
    add(&mut d, &k, A, 1);
    assert_eq!(order(&mut d, &k), ["A", "C", "B"]);
}

#[test]
fn trap02_least_conn_family_keeps_earliest_on_ties() {
    for s in [
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
    ] {
        let (mut d, k) = with_service(Protocol::Tcp, s);
        add(&mut d, &k, A, 2);
        add(&mut d, &k, B, 2);
        add(&mut d, &k, C, 2);
        assert_eq!(picks_tcp(&mut d, 1, 1000), ["C"], "{s}");
    }
    // sed's overhead is active+1: idle servers → heaviest.
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Sed);
    add(&mut d, &k, A, 3);
    add(&mut d, &k, B, 1);
    add(&mut d, &k, C, 1);
    assert_eq!(picks_tcp(&mut d, 1, 1000), ["A"]);
}

#[test]
fn trap03_wrr_incremental_phase_differs_from_switch() {
    let (mut inc, _) = with_service(Protocol::Tcp, Scheduler::Wrr);
    let (mut sw, ks) = with_service(Protocol::Tcp, Scheduler::Rr);
    let ki = lvslab_spec::lb::ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(VIP),
        port: 80,
    };
    for (a, w) in [(A, 4), (B, 3), (C, 2)] {
        add(&mut inc, &ki, a, w);
        add(&mut sw, &ks, a, w);
    }
    sw.edit_service(&ServiceConfig::new(ks, Scheduler::Wrr))
        .expect("switch");
    let a = picks_tcp(&mut inc, 3, 1000);
    let b = picks_tcp(&mut sw, 3, 1000);
    assert_eq!(a, ["C", "B", "A"]);
    assert_eq!(b, ["A", "B", "A"]);
    // Re-sending the same scheduler name keeps the state (cursor and cw).
    sw.edit_service(&ServiceConfig::new(ks, Scheduler::Wrr))
        .expect("same name");
    assert_eq!(picks_tcp(&mut sw, 3, 2000), ["C", "B", "A"]);
}

#[test]
fn trap04_rr_delete_under_cursor_no_skip_and_add_keeps_cursor() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    add(&mut d, &k, C, 1);
    assert_eq!(picks_tcp(&mut d, 1, 1000), ["C"]);
    d.delete_dest(&k, ip(C), 80).expect("delete C");
    assert_eq!(picks_tcp(&mut d, 1, 1100), ["B"], "element after C");
    add(&mut d, &k, D, 1); // list [D, B, A], cursor on B
    assert_eq!(picks_tcp(&mut d, 3, 1200), ["A", "D", "B"]);
}

#[test]
fn trap05_syn_makes_active_udp_never_active() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    add(&mut d, &k, A, 1);
    fwd(&mut d, 0, &syn("203.0.113.1", 1000));
    let s = dest_status(&mut d, &k, A);
    assert_eq!(
        (s.active_conns, s.inactive_conns),
        (1, 0),
        "SYN_RECV is active"
    );

    let (mut u, ku) = with_service(Protocol::Udp, Scheduler::Rr);
    add(&mut u, &ku, A, 1);
    fwd(&mut u, 0, &udp("203.0.113.1", 1000));
    fwd(&mut u, 5, &udp("203.0.113.1", 1000));
    let s = dest_status(&mut u, &ku, A);
    assert_eq!((s.active_conns, s.inactive_conns), (0, 1));
}

/// Y gets 256 closed (inactive) connections, X one active one; with equal weights, classic
/// overhead ties (256 vs 256 → earliest, X) while P-2026 counts X as 257 (→ Y).
fn profile_pick(profile: Profile) -> &'static str {
    let mut d = Director::new(DirectorConfig {
        profile,
        ..DirectorConfig::default()
    });
    let k = key(Protocol::Tcp, 80);
    d.add_service(&ServiceConfig::new(k, Scheduler::Wlc))
        .expect("svc");
    add(&mut d, &k, B, 1); // "Y"
    for p in 0..256u16 {
        let client = "203.0.113.9";
        assert_eq!(name(fwd(&mut d, 0, &syn(client, 2000 + p))), "B");
        // SYN_RECV + FIN → TIME_WAIT (DR input-only table): inactive.
        fwd(
            &mut d,
            0,
            &pkt(
                Protocol::Tcp,
                client,
                2000 + p,
                TcpFlags::FIN | TcpFlags::ACK,
            ),
        );
    }
    let s = dest_status(&mut d, &k, B);
    assert_eq!((s.active_conns, s.inactive_conns), (0, 256));
    add(&mut d, &k, A, 1); // "X", list [A, B]
    assert_eq!(name(fwd(&mut d, 0, &syn("203.0.113.10", 1))), "A");
    name(fwd(&mut d, 0, &syn("203.0.113.10", 2)))
}

#[test]
fn trap06_overhead_profile_changes_tie_decisions() {
    assert_eq!(profile_pick(Profile::Classic), "A");
    assert_eq!(profile_pick(Profile::P2026), "B");
}

#[test]
fn trap07_closed_dr_conn_stays_inactive_in_fin_wait_120s() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    add(&mut d, &k, A, 1);
    let c = "203.0.113.1";
    fwd(&mut d, 0, &syn(c, 1000));
    fwd(&mut d, 10, &pkt(Protocol::Tcp, c, 1000, TcpFlags::ACK));
    fwd(
        &mut d,
        20,
        &pkt(Protocol::Tcp, c, 1000, TcpFlags::FIN | TcpFlags::ACK),
    );
    let s = dest_status(&mut d, &k, A);
    assert_eq!((s.active_conns, s.inactive_conns), (0, 1));
    d.expire(20 + 119_999);
    assert_eq!(dest_status(&mut d, &k, A).inactive_conns, 1);
    d.expire(20 + 120_000);
    assert_eq!(dest_status(&mut d, &k, A).inactive_conns, 0);
    assert!(d.conns().is_empty());
}

#[test]
fn trap08_overload_threshold_with_quarter_low_water() {
    // fo sends everything to the heaviest non-overloaded server.
    let (mut d, k) = with_service(Protocol::Udp, Scheduler::Fo);
    add(&mut d, &k, B, 1);
    let mut a = dest(A, 10);
    a.u_threshold = 4; // low water u − u/4 = 3
    d.add_dest(&k, &a).expect("A");
    let got = picks_udp(&mut d, 5, 1000);
    assert_eq!(got, ["A", "A", "A", "A", "B"]);
    assert_eq!(d.dest_overloaded(&k, ip(A), 80), Some(true));
    // UDP flows of A (ports 1000..1003) all expire at 300 s; the flag clears when the total
    // falls from 3 to 2.
    d.expire(300_000);
    assert_eq!(d.dest_overloaded(&k, ip(A), 80), Some(false));
    assert_eq!(picks_udp(&mut d, 1, 3000), ["A"]);
}

#[test]
fn trap08_l_above_u_rejected_even_when_u_is_zero() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    let mut c = dest(A, 1);
    c.l_threshold = 1;
    c.u_threshold = 0;
    let e = d.add_dest(&k, &c).expect_err("l > u");
    assert!(matches!(e, LbError::Range(_)));
    assert_eq!(e.errno(), 34);
}

#[test]
fn trap09_lblc_cached_dest_ignores_overload_flag() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Lblc);
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    let mut c = dest(C, 1);
    c.u_threshold = 1;
    d.add_dest(&k, &c).expect("C");
    assert_eq!(picks_tcp(&mut d, 1, 1000), ["C"]);
    assert_eq!(d.dest_overloaded(&k, ip(C), 80), Some(true));
    // C has 1 active = weight: not lblc-overloaded, so the cache keeps it.
    assert_eq!(picks_tcp(&mut d, 1, 1001), ["C"]);
}

#[test]
fn trap10_dh_sends_every_client_to_one_server() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Dh);
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    add(&mut d, &k, C, 1);
    let first = fwd(&mut d, 0, &syn("203.0.113.1", 1000));
    for i in 2..40u8 {
        let client = format!("203.0.113.{i}");
        assert_eq!(fwd(&mut d, 0, &syn(&client, 1000)), first);
    }
}

#[test]
fn trap11_dh_not_rebuilt_on_edit_sh_is() {
    let vip = "207.175.44.110";
    let mut d = director();
    let k = lvslab_spec::lb::ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(vip),
        port: 80,
    };
    d.add_service(&ServiceConfig::new(k, Scheduler::Dh))
        .expect("svc");
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    add(&mut d, &k, C, 1);
    let mut p = syn("10.0.0.1", 1000);
    p.daddr = ip(vip);
    assert_eq!(name(fwd(&mut d, 0, &p)), "C");
    // Weight 0 on C: dh keeps its table and has no fallback → no destination.
    d.edit_dest(&k, &dest(C, 0)).expect("edit");
    p.sport = 1001;
    assert_eq!(d.lookup_or_schedule(0, &p), Verdict::Reject);

    let (mut s, ks) = with_service(Protocol::Tcp, Scheduler::Sh);
    add(&mut s, &ks, A, 1);
    add(&mut s, &ks, B, 1);
    add(&mut s, &ks, C, 1);
    assert_eq!(name(fwd(&mut s, 0, &syn("10.0.0.1", 1000))), "C");
    // Table [C B A A A] repeating: bucket 39 → 39 mod 5 = 4 → A.
    s.edit_dest(&ks, &dest(A, 3)).expect("edit");
    assert_eq!(name(fwd(&mut s, 0, &syn("10.0.0.1", 1001))), "A");
}

#[test]
fn trap12_sh_weight0_keeps_bucket_and_fallback_probes_from_twice_ihash() {
    // List [D, C, B, A], weights 1 except A = 0; bucket i → i mod 4.
    // 10.0.0.1: ihash 39 → A (weight 0). Fallback probes 78 (B), not 40 (D).
    let build = |fallback: bool| {
        let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Sh);
        let mut cfg = ServiceConfig::new(k, Scheduler::Sh);
        cfg.flags.sched1 = fallback;
        d.edit_service(&cfg).expect("flags");
        add(&mut d, &k, A, 0);
        add(&mut d, &k, B, 1);
        add(&mut d, &k, C, 1);
        add(&mut d, &k, D, 1);
        d
    };
    let mut plain = build(false);
    assert_eq!(
        plain.lookup_or_schedule(0, &syn("10.0.0.1", 1000)),
        Verdict::Reject
    );
    let mut fb = build(true);
    assert_eq!(name(fwd(&mut fb, 0, &syn("10.0.0.1", 1000))), "B");
}

#[test]
fn trap13_mh_keeps_slots_of_quiesced_server() {
    let build = |fallback: bool| {
        let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Mh);
        let mut cfg = ServiceConfig::new(k, Scheduler::Mh);
        cfg.flags.sched1 = fallback;
        d.edit_service(&cfg).expect("flags");
        for a in ["10.0.0.11", "10.0.0.12", "10.0.0.13"] {
            d.add_dest(&k, &DestConfig::new(ip(a), 80)).expect("add");
        }
        let mut z = DestConfig::new(ip("10.0.0.12"), 80);
        z.weight = 0;
        d.edit_dest(&k, &z).expect("quiesce .12");
        d
    };
    let mut plain = build(false);
    // 192.168.0.1 maps to .12's slot: without fallback no destination.
    assert_eq!(
        plain.lookup_or_schedule(0, &syn("192.168.0.1", 1)),
        Verdict::Reject
    );
    // Other clients keep their servers (table built from last_weight, unchanged).
    assert_eq!(fwd(&mut plain, 0, &syn("10.1.2.3", 1)), ip("10.0.0.11"));
    let mut fb = build(true);
    let got = fwd(&mut fb, 0, &syn("192.168.0.1", 1));
    assert_ne!(got, ip("10.0.0.12"));
}

/// Replays a fixed list of draws.
struct Script(Vec<u32>);
impl RandomSource for Script {
    fn below(&mut self, n: u32) -> u32 {
        let v = self.0.remove(0);
        assert!(v < n, "scripted draw {v} outside 0..{n}");
        v
    }
}

#[test]
fn trap14_twos_first_server_has_an_extra_ticket() {
    let (mut d, k) = with_service(Protocol::Udp, Scheduler::Twos);
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    add(&mut d, &k, C, 1);
    // W = 3, draws in 0..=3: 0 and 1 → C (first listed, w+1 tickets), 2 → B, 3 → A.
    d.set_rng(Box::new(Script(vec![0, 1, 2, 3, 3, 2])));
    assert_eq!(picks_udp(&mut d, 1, 1000), ["C"]);
    // Idle tie → choice 1.
    assert_eq!(picks_udp(&mut d, 1, 1001), ["B"]);
    // B now has a flow (overhead 1); A idle wins as choice 2 over B.
    assert_eq!(picks_udp(&mut d, 1, 1002), ["A"]);
}

#[test]
fn trap14_twos_distribution_with_seeded_rng() {
    let mut cfg = ServiceConfig::new(key(Protocol::Udp, 80), Scheduler::Twos);
    cfg.flags.one_packet = true; // entries die at once: overheads stay 0, choice 1 decides
    let mut d = director();
    d.add_service(&cfg).expect("svc");
    let k = cfg.key;
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    add(&mut d, &k, C, 1);
    let mut n = [0u32; 3];
    for i in 0..4000u16 {
        // Client ports from 1000: source port 20 (FTP data) is never scheduled.
        match name(fwd(&mut d, 0, &udp("203.0.113.1", 1000 + i))) {
            "C" => n[0] += 1,
            "B" => n[1] += 1,
            _ => n[2] += 1,
        }
    }
    // Expected 2000 / 1000 / 1000; ±5 sigma bounds.
    assert!((1850..=2150).contains(&n[0]), "{n:?}");
    assert!((880..=1120).contains(&n[1]), "{n:?}");
    assert!((880..=1120).contains(&n[2]), "{n:?}");
}

/// Three flows on A, then A gets `u_threshold = 2`: P-2026 re-evaluates the flag on the edit,
/// classic only on the next bind. Returns the next two picks.
fn threshold_edit_picks(profile: Profile) -> Vec<&'static str> {
    let mut d = Director::new(DirectorConfig {
        profile,
        ..DirectorConfig::default()
    });
    let k = key(Protocol::Udp, 80);
    d.add_service(&ServiceConfig::new(k, Scheduler::Fo))
        .expect("svc");
    add(&mut d, &k, B, 1);
    add(&mut d, &k, A, 10);
    assert_eq!(picks_udp(&mut d, 3, 1000), ["A", "A", "A"]);
    let mut a = dest(A, 10);
    a.u_threshold = 2;
    d.edit_dest(&k, &a).expect("edit thresholds");
    picks_udp(&mut d, 2, 2000)
}

#[test]
fn trap08_threshold_edit_reevaluated_only_in_p2026() {
    assert_eq!(threshold_edit_picks(Profile::P2026), ["B", "B"]);
    assert_eq!(threshold_edit_picks(Profile::Classic), ["A", "B"]);
}
