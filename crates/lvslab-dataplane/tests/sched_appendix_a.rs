//! Appendix A of the IPVS notes: deterministic scheduling sequences. Destinations are added
//! A, B, C, so the kernel list is [C, B, A]. The expectations come from the kernel rules by
//! re-implementation; kernel confirmation is pending (VM differential test).

#[path = "sched_util.rs"]
mod util;

use lvslab_dataplane::director::Verdict;
use lvslab_spec::lb::{LoadBalancer, Protocol, Scheduler, ServiceConfig};
use util::*;

fn abc(
    sched: Scheduler,
    protocol: Protocol,
    wa: u32,
    wb: u32,
    wc: u32,
) -> (
    lvslab_dataplane::director::Director,
    lvslab_spec::lb::ServiceKey,
) {
    let (mut d, k) = with_service(protocol, sched);
    add(&mut d, &k, A, wa);
    add(&mut d, &k, B, wb);
    add(&mut d, &k, C, wc);
    (d, k)
}

#[test]
fn appendix_a_rr_cycles_newest_first() {
    let (mut d, _) = abc(Scheduler::Rr, Protocol::Tcp, 1, 1, 1);
    assert_eq!(picks_tcp(&mut d, 6, 1000), ["C", "B", "A", "C", "B", "A"]);
}

#[test]
fn appendix_a_rr_delete_cursor_then_next_is_a() {
    let (mut d, k) = abc(Scheduler::Rr, Protocol::Tcp, 1, 1, 1);
    assert_eq!(picks_tcp(&mut d, 2, 1000), ["C", "B"]);
    d.delete_dest(&k, ip(B), 80).expect("delete B");
    assert_eq!(picks_tcp(&mut d, 1, 2000), ["A"]);
}

#[test]
fn appendix_a_wrr_incremental_4_3_2() {
    let (mut d, _) = abc(Scheduler::Wrr, Protocol::Tcp, 4, 3, 2);
    let want = "C B A A B A C B A C B A A B A C B A";
    assert_eq!(picks_tcp(&mut d, 18, 1000).join(" "), want);
}

#[test]
fn appendix_a_wrr_after_scheduler_switch_4_3_2() {
    let (mut d, k) = abc(Scheduler::Rr, Protocol::Tcp, 4, 3, 2);
    d.edit_service(&ServiceConfig::new(k, Scheduler::Wrr))
        .expect("switch to wrr");
    let want = "A B A C B A C B A A B A C B A C B A";
    assert_eq!(picks_tcp(&mut d, 18, 1000).join(" "), want);
}

#[test]
fn appendix_a_wrr_100_200_incremental() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Wrr);
    add(&mut d, &k, A, 100);
    add(&mut d, &k, B, 200);
    assert_eq!(picks_tcp(&mut d, 9, 1000).join(" "), "B A B B A B B A B");
}

#[test]
fn appendix_a_wlc_idle_picks_newest_whatever_weights() {
    let (mut d, _) = abc(Scheduler::Wlc, Protocol::Tcp, 5, 3, 1);
    assert_eq!(picks_tcp(&mut d, 1, 1000), ["C"]);
}

#[test]
fn appendix_a_lc_idle_picks_newest() {
    let (mut d, _) = abc(Scheduler::Lc, Protocol::Tcp, 5, 3, 1);
    assert_eq!(picks_tcp(&mut d, 1, 1000), ["C"]);
}

#[test]
fn appendix_a_sed_idle_picks_heaviest() {
    let (mut d, _) = abc(Scheduler::Sed, Protocol::Tcp, 1, 3, 2);
    assert_eq!(picks_tcp(&mut d, 1, 1000), ["B"]);
}

#[test]
fn appendix_a_sed_idle_tie_picks_newest() {
    let (mut d, _) = abc(Scheduler::Sed, Protocol::Tcp, 2, 2, 2);
    assert_eq!(picks_tcp(&mut d, 1, 1000), ["C"]);
}

#[test]
fn appendix_a_nq_udp_all_flows_to_first() {
    let (mut d, _) = abc(Scheduler::Nq, Protocol::Udp, 1, 1, 1);
    assert_eq!(picks_udp(&mut d, 5, 1000), ["C"; 5]);
}

#[test]
fn appendix_a_dh_selftest_vip_goes_to_c() {
    let mut d = director();
    let k = lvslab_spec::lb::ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip("207.175.44.110"),
        port: 80,
    };
    d.add_service(&ServiceConfig::new(k, Scheduler::Dh))
        .expect("svc");
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    add(&mut d, &k, C, 1);
    for (i, client) in ["10.0.0.1", "10.0.0.2", "10.9.8.7"].iter().enumerate() {
        let mut p = syn(client, 1000 + i as u16);
        p.daddr = ip("207.175.44.110");
        assert_eq!(name(fwd(&mut d, 0, &p)), "C", "client {client}");
    }
}

#[test]
fn appendix_a_sh_three_clients() {
    let (mut d, _) = abc(Scheduler::Sh, Protocol::Tcp, 1, 1, 1);
    assert_eq!(name(fwd(&mut d, 0, &syn("10.0.0.1", 1000))), "C");
    assert_eq!(name(fwd(&mut d, 0, &syn("10.0.0.2", 1000))), "A");
    assert_eq!(name(fwd(&mut d, 0, &syn("10.0.0.3", 1000))), "B");
}

#[test]
fn appendix_a_mh_three_servers_through_director() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Mh);
    for a in ["10.0.0.11", "10.0.0.12", "10.0.0.13"] {
        add(&mut d, &k, a, 1);
    }
    for (client, want) in [
        ("192.168.0.1", "10.0.0.12"),
        ("192.168.0.2", "10.0.0.12"),
        ("10.1.2.3", "10.0.0.11"),
    ] {
        assert_eq!(
            fwd(&mut d, 0, &syn(client, 4321)),
            ip(want),
            "client {client}"
        );
    }
}

#[test]
fn appendix_a_lblc_sticks_until_lblc_overloaded() {
    let (mut d, _) = abc(Scheduler::Lblc, Protocol::Tcp, 1, 1, 1);
    assert_eq!(
        picks_tcp(&mut d, 8, 1000),
        ["C", "C", "B", "B", "A", "A", "A", "A"]
    );
}

#[test]
fn appendix_a_none_scheduler_rejects() {
    let (mut d, _) = abc(Scheduler::None, Protocol::Tcp, 1, 1, 1);
    assert_eq!(
        d.lookup_or_schedule(0, &syn("10.0.0.1", 1000)),
        Verdict::Reject
    );
}
