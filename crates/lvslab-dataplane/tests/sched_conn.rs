//! Connection table behaviour: TCP states and timeouts, UDP, reuse, deleted destinations,
//! persistence templates, one-packet scheduling, the size bound, FullNAT, and the control-plane
//! errors of the `LoadBalancer` implementation.

#[path = "sched_util.rs"]
mod util;

use lvslab_dataplane::conn::{ConnState, TcpFlags, TcpState};
use lvslab_dataplane::director::{Director, DirectorConfig, DropReason, ReplyVerdict, Verdict};
use lvslab_spec::lb::{
    DestConfig, Encap, Family, ForwardMethod, LbError, LoadBalancer, Protocol, Scheduler,
    ServiceConfig, ServiceKey, Timeouts,
};
use util::*;

const CL: &str = "203.0.113.5";
const S: u8 = TcpFlags::SYN;
const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
const AK: u8 = TcpFlags::ACK;
const FA: u8 = TcpFlags::FIN | TcpFlags::ACK;
const R: u8 = TcpFlags::RST;

fn only_state(d: &Director) -> (ConnState, u64) {
    let c = d
        .conns()
        .iter()
        .find(|c| !c.flags.template)
        .expect("one entry");
    (c.state, c.timeout_ms)
}

fn tcp(d: &mut Director, now: u64, flags: u8) -> Verdict {
    d.lookup_or_schedule(now, &pkt(Protocol::Tcp, CL, 40000, flags))
}

/// A reply from real server A:80 to the client (NAT).
fn reply(d: &mut Director, now: u64, flags: u8) -> ReplyVerdict {
    let mut p = pkt(Protocol::Tcp, A, 80, flags);
    p.daddr = ip(CL);
    p.dport = 40000;
    d.lookup_reply(now, &p)
}

fn nat_director() -> (Director, ServiceKey) {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    add_m(&mut d, &k, A, 1, ForwardMethod::Nat);
    (d, k)
}

#[test]
fn tcp_nat_normal_close_states_and_timeouts() {
    let (mut d, k) = nat_director();
    assert!(matches!(tcp(&mut d, 0, S), Verdict::Forward(_)));
    assert_eq!(only_state(&d), (ConnState::Tcp(TcpState::SynRecv), 60_000));
    assert!(matches!(reply(&mut d, 1, SA), ReplyVerdict::Reply { .. }));
    assert_eq!(only_state(&d).0, ConnState::Tcp(TcpState::SynRecv));
    tcp(&mut d, 2, AK);
    assert_eq!(
        only_state(&d),
        (ConnState::Tcp(TcpState::Established), 900_000)
    );
    assert_eq!(dest_status(&mut d, &k, A).active_conns, 1);
    reply(&mut d, 3, FA);
    assert_eq!(only_state(&d), (ConnState::Tcp(TcpState::FinWait), 120_000));
    let s = dest_status(&mut d, &k, A);
    assert_eq!((s.active_conns, s.inactive_conns), (0, 1));
    tcp(&mut d, 4, AK);
    tcp(&mut d, 5, FA);
    assert_eq!(
        only_state(&d),
        (ConnState::Tcp(TcpState::TimeWait), 120_000)
    );
    d.expire(5 + 119_999);
    assert_eq!(d.conns().len(), 1);
    d.expire(5 + 120_000);
    assert!(d.conns().is_empty());
    assert_eq!(dest_status(&mut d, &k, A).inactive_conns, 0);
}

#[test]
fn tcp_reply_rewrites_source_to_vip() {
    let (mut d, _) = nat_director();
    tcp(&mut d, 0, S);
    match reply(&mut d, 1, SA) {
        ReplyVerdict::Reply { src, dst, .. } => {
            assert_eq!(src, (ip(VIP), 80));
            assert_eq!(dst, None);
        }
        v => panic!("{v:?}"),
    }
    // A reply that matches no entry is forwarded untouched.
    let mut p = pkt(Protocol::Tcp, A, 80, AK);
    p.daddr = ip("203.0.113.99");
    assert_eq!(d.lookup_reply(2, &p), ReplyVerdict::NoConn);
}

#[test]
fn nat_icmp_send_rejects_stray_replies_but_not_rst() {
    let (mut d, _) = nat_director();
    d.config_mut().nat_icmp_send = true;
    assert_eq!(reply(&mut d, 0, AK), ReplyVerdict::Reject);
    assert_eq!(reply(&mut d, 0, R), ReplyVerdict::NoConn);
}

#[test]
fn tcp_client_rst_in_established_closes_10s() {
    let (mut d, _) = nat_director();
    tcp(&mut d, 0, S);
    tcp(&mut d, 1, AK);
    tcp(&mut d, 2, R);
    assert_eq!(only_state(&d), (ConnState::Tcp(TcpState::Close), 10_000));
}

#[test]
fn tcp_segment_without_flags_forces_close() {
    let (mut d, _) = nat_director();
    tcp(&mut d, 0, S);
    tcp(&mut d, 1, AK);
    tcp(&mut d, 2, 0);
    assert_eq!(only_state(&d).0, ConnState::Tcp(TcpState::Close));
}

#[test]
fn tcp_non_syn_without_entry_goes_to_local_stack() {
    let (mut d, _) = nat_director();
    assert_eq!(tcp(&mut d, 0, AK), Verdict::NotOurs);
    assert_eq!(tcp(&mut d, 0, S | R), Verdict::NotOurs);
    assert!(d.conns().is_empty());
}

#[test]
fn sloppy_tcp_creates_on_ack() {
    let (mut d, _) = nat_director();
    d.config_mut().sloppy_tcp = true;
    assert!(matches!(tcp(&mut d, 0, AK), Verdict::Forward(_)));
    assert_eq!(only_state(&d).0, ConnState::Tcp(TcpState::Established));
}

#[test]
fn no_service_is_not_ours() {
    let (mut d, _) = nat_director();
    let mut p = syn(CL, 1000);
    p.dport = 81;
    assert_eq!(d.lookup_or_schedule(0, &p), Verdict::NotOurs);
}

#[test]
fn ftp_data_source_port_is_never_scheduled() {
    let (mut d, _) = nat_director();
    assert_eq!(d.lookup_or_schedule(0, &syn(CL, 20)), Verdict::NotOurs);
}

#[test]
fn idle_timer_rearmed_by_packets_both_directions() {
    let (mut d, _) = nat_director();
    tcp(&mut d, 0, S);
    tcp(&mut d, 1, AK); // ES, 900 s
    reply(&mut d, 800_000, AK);
    d.expire(1_000_000);
    assert_eq!(d.conns().len(), 1, "re-armed at 800 s by the reply");
    d.expire(800_000 + 900_000);
    assert!(d.conns().is_empty());
}

#[test]
fn udp_entry_300s_never_active() {
    let (mut d, k) = with_service(Protocol::Udp, Scheduler::Rr);
    add(&mut d, &k, A, 1);
    fwd(&mut d, 0, &udp(CL, 5353));
    assert_eq!(only_state(&d), (ConnState::Udp, 300_000));
    let s = dest_status(&mut d, &k, A);
    assert_eq!((s.active_conns, s.inactive_conns), (0, 1));
    d.expire(299_999);
    assert_eq!(d.conns().len(), 1);
    d.expire(300_000);
    assert!(d.conns().is_empty());
}

#[test]
fn set_timeouts_affects_later_transitions_and_validates() {
    let (mut d, _) = nat_director();
    tcp(&mut d, 0, S);
    d.set_timeouts(&Timeouts {
        tcp: 100,
        tcp_fin: 0,
        udp: 0,
    })
    .expect("set");
    assert_eq!(only_state(&d).1, 60_000, "current entry unchanged");
    tcp(&mut d, 1, AK);
    assert_eq!(only_state(&d).1, 100_000);
    let t = d.timeouts().expect("get");
    assert_eq!((t.tcp, t.tcp_fin, t.udp), (100, 120, 300));
    let e = d
        .set_timeouts(&Timeouts {
            tcp: u32::MAX,
            tcp_fin: 0,
            udp: 0,
        })
        .expect_err("too large");
    assert_eq!(e.errno(), 22);
}

fn rr_two() -> (Director, ServiceKey) {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    (d, k)
}

#[test]
fn syn_on_established_entry_sticks_to_same_server() {
    let (mut d, _) = rr_two();
    let first = fwd(&mut d, 0, &syn(CL, 1000));
    fwd(&mut d, 1, &pkt(Protocol::Tcp, CL, 1000, AK));
    assert_eq!(fwd(&mut d, 2, &syn(CL, 1000)), first);
}

#[test]
fn syn_on_time_wait_entry_is_rescheduled() {
    let (mut d, k) = rr_two();
    let first = fwd(&mut d, 0, &syn(CL, 1000)); // B (newest)
    fwd(&mut d, 1, &pkt(Protocol::Tcp, CL, 1000, FA)); // SR + FIN → TIME_WAIT
    let second = fwd(&mut d, 2, &syn(CL, 1000));
    assert_ne!(second, first, "rr moved on: the old entry was expired");
    assert_eq!(d.conns().len(), 1);
    assert_eq!(
        dest_status(&mut d, &k, &first.to_string()).inactive_conns,
        0
    );
}

#[test]
fn conn_reuse_mode_zero_glues_syn_to_old_entry() {
    let (mut d, _) = rr_two();
    d.config_mut().conn_reuse_mode = 0;
    let first = fwd(&mut d, 0, &syn(CL, 1000));
    fwd(&mut d, 1, &pkt(Protocol::Tcp, CL, 1000, FA));
    assert_eq!(fwd(&mut d, 2, &syn(CL, 1000)), first);
}

#[test]
fn conn_reuse_mode_bit2_reschedules_dr_fin_wait() {
    let run = |mode: u8| {
        let (mut d, _) = rr_two();
        d.config_mut().conn_reuse_mode = mode;
        let first = fwd(&mut d, 0, &syn(CL, 1000));
        fwd(&mut d, 1, &pkt(Protocol::Tcp, CL, 1000, AK));
        fwd(&mut d, 2, &pkt(Protocol::Tcp, CL, 1000, FA)); // ES + FIN (input only) → FIN_WAIT
        (first, fwd(&mut d, 3, &syn(CL, 1000)))
    };
    let (f1, s1) = run(1);
    assert_eq!(f1, s1);
    let (f3, s3) = run(3);
    assert_ne!(f3, s3);
}

#[test]
fn deleted_dest_drops_packets_without_rearming() {
    let (mut d, k) = rr_two();
    let first = fwd(&mut d, 0, &syn(CL, 1000));
    fwd(&mut d, 1, &pkt(Protocol::Tcp, CL, 1000, AK));
    d.delete_dest(&k, first, 80).expect("delete");
    assert_eq!(
        d.lookup_or_schedule(2, &pkt(Protocol::Tcp, CL, 1000, AK)),
        Verdict::Drop(DropReason::DestUnavailable)
    );
    d.expire(1 + 900_000);
    assert!(
        d.conns().is_empty(),
        "timer was not re-armed by the dropped packet"
    );
}

#[test]
fn expire_nodest_conn_flushes_and_reschedules() {
    let (mut d, k) = rr_two();
    d.config_mut().expire_nodest_conn = true;
    let first = fwd(&mut d, 0, &syn(CL, 1000));
    fwd(&mut d, 1, &syn(CL, 1001));
    d.delete_dest(&k, first, 80).expect("delete");
    assert_eq!(d.conns().len(), 1, "entries of the deleted server flushed");
    let again = fwd(&mut d, 2, &syn(CL, 1000));
    assert_ne!(again, first);
}

#[test]
fn expire_nodest_conn_reschedules_syn_to_weight0_dest() {
    let (mut d, k) = rr_two();
    d.config_mut().expire_nodest_conn = true;
    let first = fwd(&mut d, 0, &syn(CL, 1000));
    fwd(&mut d, 1, &pkt(Protocol::Tcp, CL, 1000, AK));
    d.edit_dest(&k, &dest(&first.to_string(), 0))
        .expect("quiesce");
    assert_ne!(fwd(&mut d, 2, &syn(CL, 1000)), first);
}

#[test]
fn weight0_keeps_existing_entries() {
    let (mut d, k) = rr_two();
    let first = fwd(&mut d, 0, &syn(CL, 1000));
    d.edit_dest(&k, &dest(&first.to_string(), 0))
        .expect("quiesce");
    assert_eq!(fwd(&mut d, 1, &pkt(Protocol::Tcp, CL, 1000, AK)), first);
}

#[test]
fn revived_dest_keeps_counters_and_old_entries_work() {
    let (mut d, k) = rr_two();
    let first = fwd(&mut d, 0, &syn(CL, 1000)); // B
    d.delete_service(&k).expect("delete service");
    assert_eq!(d.trash().len(), 2);
    d.add_service(&ServiceConfig::new(k, Scheduler::Rr))
        .expect("recreate");
    add(&mut d, &k, &first.to_string(), 1);
    let s = dest_status(&mut d, &k, &first.to_string());
    assert_eq!(s.active_conns, 1, "same object, counters intact");
    assert_eq!(fwd(&mut d, 10, &pkt(Protocol::Tcp, CL, 1000, AK)), first);
}

#[test]
fn trash_frees_unreferenced_dest_after_idle_period() {
    let (mut d, k) = rr_two();
    d.delete_dest(&k, ip(A), 80).expect("delete");
    d.expire(59_999);
    assert_eq!(d.trash().len(), 1);
    d.expire(60_000); // first sweep: idle since 60 s
    assert_eq!(d.trash().len(), 1);
    d.expire(120_000);
    assert_eq!(d.trash().len(), 1);
    d.expire(180_000); // 120 s idle
    assert!(d.trash().is_empty());
}

// ---- persistence ------------------------------------------------------------------------

fn persistent(netmask: u32, timeout: u32) -> (Director, ServiceKey) {
    let mut d = director();
    let k = key(Protocol::Tcp, 80);
    let mut cfg = ServiceConfig::new(k, Scheduler::Rr);
    cfg.flags.persistent = true;
    cfg.timeout = timeout;
    cfg.netmask = netmask;
    d.add_service(&cfg).expect("svc");
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    (d, k)
}

#[test]
fn persistence_same_client_same_server() {
    let (mut d, k) = persistent(0xffff_ffff, 300);
    let first = fwd(&mut d, 0, &syn(CL, 1000));
    for p in 1001..1005 {
        assert_eq!(fwd(&mut d, 0, &syn(CL, p)), first);
    }
    // Another client goes elsewhere (rr moved on once, for its template).
    assert_ne!(fwd(&mut d, 0, &syn("203.0.113.6", 1000)), first);
    assert_eq!(dest_status(&mut d, &k, &first.to_string()).persist_conns, 1);
}

#[test]
fn persistence_netmask_groups_clients() {
    let (mut d, _) = persistent(0xffff_ff00, 300);
    let first = fwd(&mut d, 0, &syn("203.0.113.5", 1000));
    assert_eq!(fwd(&mut d, 0, &syn("203.0.113.77", 1000)), first);
    let (mut z, _) = persistent(0, 300);
    let f = fwd(&mut z, 0, &syn("203.0.113.5", 1000));
    assert_eq!(
        fwd(&mut z, 0, &syn("198.51.100.200", 1000)),
        f,
        "netmask 0: one template"
    );
}

#[test]
fn persistence_template_outlives_timeout_while_controlling() {
    let (mut d, _) = persistent(0xffff_ffff, 300);
    fwd(&mut d, 0, &syn(CL, 1000));
    fwd(&mut d, 1, &pkt(Protocol::Tcp, CL, 1000, AK)); // ES 900 s
    let tpl = |d: &Director| d.conns().iter().filter(|c| c.flags.template).count();
    d.expire(300_000);
    assert_eq!(tpl(&d), 1, "re-armed: still controls a connection");
    d.expire(1 + 900_000); // the connection goes
    assert_eq!(tpl(&d), 1);
    d.expire(1_000_000); // next 60 s step after 960 s
    assert_eq!(tpl(&d), 0);
}

#[test]
fn persistence_template_refreshed_per_new_connection_not_per_packet() {
    let (mut d, _) = persistent(0xffff_ffff, 300);
    fwd(&mut d, 0, &syn(CL, 1000));
    let tpl_expiry = |d: &Director| {
        d.conns()
            .iter()
            .find(|c| c.flags.template)
            .map(|c| c.expires_ms)
    };
    assert_eq!(tpl_expiry(&d), Some(300_000));
    fwd(&mut d, 50_000, &pkt(Protocol::Tcp, CL, 1000, AK));
    assert_eq!(tpl_expiry(&d), Some(300_000), "packets do not refresh");
    fwd(&mut d, 100_000, &syn(CL, 1001));
    assert_eq!(tpl_expiry(&d), Some(400_000), "a new connection does");
}

#[test]
fn persistence_weight0_still_used_unless_expire_quiescent_template() {
    let (mut d, k) = persistent(0xffff_ffff, 300);
    let first = fwd(&mut d, 0, &syn(CL, 1000));
    d.edit_dest(&k, &dest(&first.to_string(), 0))
        .expect("quiesce");
    assert_eq!(fwd(&mut d, 1, &syn(CL, 1001)), first);
    d.config_mut().expire_quiescent_template = true;
    assert_ne!(fwd(&mut d, 2, &syn(CL, 1002)), first);
}

#[test]
fn port_zero_service_needs_persistence() {
    let mut d = director();
    let k = key(Protocol::Tcp, 0);
    d.add_service(&ServiceConfig::new(k, Scheduler::Rr))
        .expect("svc");
    add(&mut d, &k, A, 1);
    let mut p = syn(CL, 1000);
    p.dport = 8080;
    assert_eq!(d.lookup_or_schedule(0, &p), Verdict::Reject);
    let mut cfg = ServiceConfig::new(k, Scheduler::Rr);
    cfg.flags.persistent = true;
    cfg.timeout = 300;
    d.edit_service(&cfg).expect("persistent");
    let mut a = dest(A, 1);
    a.port = 0;
    d.delete_dest(&k, ip(A), 80).expect("del");
    d.add_dest(&k, &a).expect("port-0 dest");
    match d.lookup_or_schedule(0, &p) {
        Verdict::Forward(f) => assert_eq!(f.dport, 8080, "client's port kept"),
        v => panic!("{v:?}"),
    }
}

#[test]
fn persistent_ftp_service_captures_high_ports() {
    let mut d = director();
    let k = key(Protocol::Tcp, 21);
    let mut cfg = ServiceConfig::new(k, Scheduler::Rr);
    cfg.flags.persistent = true;
    cfg.timeout = 300;
    d.add_service(&cfg).expect("svc");
    let mut a = dest(A, 1);
    a.port = 21;
    d.add_dest(&k, &a).expect("dest");
    let mut p = syn(CL, 40000);
    p.dport = 21;
    assert!(matches!(d.lookup_or_schedule(0, &p), Verdict::Forward(_)));
    p.dport = 30000;
    p.sport = 40001;
    match d.lookup_or_schedule(0, &p) {
        Verdict::Forward(f) => assert_eq!((f.daddr, f.dport), (ip(A), 30000)),
        v => panic!("{v:?}"),
    }
    p.dport = 80; // privileged, not 20: not captured
    assert_eq!(d.lookup_or_schedule(0, &p), Verdict::NotOurs);
}

#[test]
fn fwmark_service_matches_marked_packets() {
    let mut d = director();
    let k = ServiceKey::Fwmark {
        family: Family::Inet,
        mark: 7,
    };
    d.add_service(&ServiceConfig::new(k, Scheduler::Rr))
        .expect("svc");
    let mut a = dest(A, 1);
    a.port = 0;
    d.add_dest(&k, &a).expect("dest");
    let mut p = syn(CL, 1000);
    p.fwmark = 7;
    p.dport = 443;
    match d.lookup_or_schedule(0, &p) {
        Verdict::Forward(f) => assert_eq!(f.dport, 443),
        v => panic!("{v:?}"),
    }
}

// ---- one-packet, size bound, FullNAT ----------------------------------------------------

#[test]
fn one_packet_scheduling_entry_per_datagram() {
    let mut d = director();
    let k = key(Protocol::Udp, 80);
    let mut cfg = ServiceConfig::new(k, Scheduler::Rr);
    cfg.flags.one_packet = true;
    d.add_service(&cfg).expect("svc");
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    let got: Vec<_> = (0..4)
        .map(|_| name(fwd(&mut d, 0, &udp(CL, 5000))))
        .collect();
    assert_eq!(
        got,
        ["B", "A", "B", "A"],
        "same flow rescheduled per datagram"
    );
    assert!(d.conns().is_empty());
    let list = d.list().expect("list");
    assert_eq!(list[0].stats.conns, 4);
    assert!(list[0].dests.iter().all(|x| x.inactive_conns == 0));
}

#[test]
fn table_full_refuses_and_counts() {
    let mut d = Director::new(DirectorConfig {
        max_conns: 2,
        ..DirectorConfig::default()
    });
    let k = key(Protocol::Udp, 80);
    d.add_service(&ServiceConfig::new(k, Scheduler::Rr))
        .expect("svc");
    add(&mut d, &k, A, 1);
    fwd(&mut d, 0, &udp(CL, 1000));
    fwd(&mut d, 0, &udp(CL, 1001));
    assert_eq!(
        d.lookup_or_schedule(0, &udp(CL, 1002)),
        Verdict::Drop(DropReason::TableFull)
    );
    assert_eq!(d.conns().refused(), 1);
    assert_eq!(dest_status(&mut d, &k, A).inactive_conns, 2);
}

fn fullnat() -> (Director, ServiceKey) {
    let mut d = director();
    let k = key(Protocol::Tcp, 80);
    let mut cfg = ServiceConfig::new(k, Scheduler::Rr);
    cfg.local_addresses = vec![ip("198.51.100.250")];
    d.add_service(&cfg).expect("svc");
    add_m(&mut d, &k, A, 1, ForwardMethod::FullNat);
    (d, k)
}

#[test]
fn fullnat_allocates_local_port_and_reverse_lookup_finds_client() {
    let (mut d, _) = fullnat();
    let f = match d.lookup_or_schedule(0, &syn(CL, 40000)) {
        Verdict::Forward(f) => f,
        v => panic!("{v:?}"),
    };
    let (laddr, lport) = f.fullnat.expect("local endpoint");
    assert_eq!(laddr, ip("198.51.100.250"));
    let mut p = pkt(Protocol::Tcp, A, 80, SA);
    p.daddr = laddr;
    p.dport = lport;
    match d.lookup_reply(1, &p) {
        ReplyVerdict::Reply { conn, src, dst } => {
            assert_eq!(conn, f.conn);
            assert_eq!(src, (ip(VIP), 80));
            assert_eq!(dst, Some((ip(CL), 40000)));
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn fullnat_ports_unique_and_exhaustion_drops() {
    let mut d = Director::new(DirectorConfig {
        fullnat_ports: (5000, 5001),
        ..DirectorConfig::default()
    });
    let k = key(Protocol::Tcp, 80);
    let mut cfg = ServiceConfig::new(k, Scheduler::Rr);
    cfg.local_addresses = vec![ip("198.51.100.250")];
    d.add_service(&cfg).expect("svc");
    add_m(&mut d, &k, A, 1, ForwardMethod::FullNat);
    let port = |v: Verdict| match v {
        Verdict::Forward(f) => f.fullnat.expect("local").1,
        v => panic!("{v:?}"),
    };
    let p1 = port(d.lookup_or_schedule(0, &syn(CL, 1000)));
    let p2 = port(d.lookup_or_schedule(0, &syn("203.0.113.6", 1000)));
    assert_ne!(p1, p2);
    assert_eq!(
        d.lookup_or_schedule(0, &syn("203.0.113.7", 1000)),
        Verdict::Drop(DropReason::NoLocalPort)
    );
}

// ---- control plane errors and counters --------------------------------------------------

#[test]
fn lb_errors_carry_kernel_errnos() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    let dup = d
        .add_service(&ServiceConfig::new(k, Scheduler::Rr))
        .expect_err("dup");
    assert_eq!(dup.errno(), 17);
    let other = key(Protocol::Udp, 53);
    assert_eq!(d.delete_service(&other).expect_err("missing").errno(), 3);
    assert_eq!(
        d.add_dest(&other, &dest(A, 1)).expect_err("no svc").errno(),
        3
    );
    add(&mut d, &k, A, 1);
    assert_eq!(
        d.add_dest(&k, &dest(A, 1)).expect_err("dup dest").errno(),
        17
    );
    // Kernel: ENOENT; mapped to NotFound by both dataplanes (see director/destinations.rs).
    assert!(matches!(
        d.edit_dest(&k, &dest(B, 1)),
        Err(LbError::NotFound(_))
    ));
    assert!(matches!(
        d.delete_dest(&k, ip(B), 80),
        Err(LbError::NotFound(_))
    ));
    let big = dest(B, 0x8000_0000);
    assert_eq!(
        d.add_dest(&k, &big).expect_err("negative weight").errno(),
        34
    );
    let mut gue = dest(B, 1);
    gue.method = ForwardMethod::Tunnel;
    gue.tun_type = Encap::Gue;
    assert_eq!(d.add_dest(&k, &gue).expect_err("gue port 0").errno(), 22);
    let v6 = DestConfig::new(ip("2001:db8::1"), 80);
    assert_eq!(d.add_dest(&k, &v6).expect_err("mixed family").errno(), 22);
    let mut v6t = v6.clone();
    v6t.method = ForwardMethod::Tunnel;
    d.add_dest(&k, &v6t).expect("tunnel may mix families");
    let mut hu = dest(C, 1);
    hu.u_threshold = 0x8000_0000;
    assert!(matches!(d.add_dest(&k, &hu), Err(LbError::Invalid(_))));
    let mc = dest("224.0.0.1", 1);
    assert_eq!(d.add_dest(&k, &mc).expect_err("multicast").errno(), 22);
}

#[test]
fn ipv6_service_netmask_must_be_prefix_length() {
    let mut d = director();
    let k = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("2001:db8::10"),
        port: 80,
    };
    let cfg = ServiceConfig::new(k, Scheduler::Rr); // netmask 0xffffffff
    assert_eq!(d.add_service(&cfg).expect_err("netmask").errno(), 22);
    let mut ok = cfg.clone();
    ok.netmask = 128;
    d.add_service(&ok).expect("prefix 128");
}

#[test]
fn stats_count_conns_packets_bytes_and_zero() {
    let (mut d, k) = nat_director();
    tcp(&mut d, 0, S);
    tcp(&mut d, 1, AK);
    reply(&mut d, 2, SA);
    let list = d.list().expect("list");
    let s = list[0].stats;
    assert_eq!(
        (s.conns, s.inpkts, s.inbytes, s.outpkts, s.outbytes),
        (1, 2, 120, 1, 60)
    );
    assert_eq!(list[0].dests[0].stats.inpkts, 2);
    assert_eq!(d.total_stats().conns, 1);
    d.zero(Some(&k)).expect("zero");
    let list = d.list().expect("list");
    assert_eq!(list[0].stats.inpkts, 0);
    assert_eq!(
        list[0].dests[0].active_conns, 1,
        "counts are not statistics"
    );
}

#[test]
fn flush_moves_everything_to_trash() {
    let (mut d, _) = rr_two();
    d.flush().expect("flush");
    assert!(d.list().expect("list").is_empty());
    assert_eq!(d.trash().len(), 2);
}

#[test]
fn conn_entry_size() {
    // size_of::<Conn>() is 144 bytes on x86-64 (reported here and in conn/mod.rs docs).
    let size = std::mem::size_of::<lvslab_dataplane::conn::Conn>();
    println!("Conn: {size} bytes");
    assert!(size <= 192);
}

#[test]
fn rate_estimator_converges_to_per_second_rates() {
    let (mut d, k) = with_service(Protocol::Udp, Scheduler::Rr);
    add(&mut d, &k, A, 1);
    // 100 datagrams of 60 bytes every 2 s: 50 packets/s, 3000 bytes/s.
    for window in 0..60u64 {
        for i in 0..100u64 {
            fwd(&mut d, window * 2000 + i, &udp(CL, 1000));
        }
        d.expire((window + 1) * 2000);
    }
    let list = d.list().expect("list");
    let s = list[0].stats;
    assert_eq!((s.inpps, s.inbps, s.cps), (50, 3000, 0));
    assert_eq!(list[0].dests[0].stats.inpps, 50);
    assert_eq!(d.total_stats().inpps, 50);
}

#[test]
fn huge_clock_jump_is_handled_quickly() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Lblc);
    add(&mut d, &k, A, 1);
    fwd(&mut d, 0, &syn(CL, 1000));
    d.delete_dest(&k, ip(A), 80).expect("delete");
    let t0 = std::time::Instant::now();
    d.expire(u64::MAX / 2);
    d.expire(u64::MAX);
    assert!(
        t0.elapsed().as_secs() < 2,
        "timers caught up in bounded steps"
    );
    assert!(d.conns().is_empty());
    assert!(d.trash().is_empty());
}
