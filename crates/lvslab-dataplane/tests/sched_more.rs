//! Further scheduler and state-table cases beyond Appendix A and the traps: lblcr's set
//! handling, wrr with nothing eligible, the secure_tcp tables. Expectations derive from the
//! kernel rules; kernel confirmation pending (VM differential test).

#[path = "sched_util.rs"]
mod util;

use lvslab_dataplane::conn::{ConnState, TcpFlags, TcpState};
use lvslab_dataplane::director::Verdict;
use lvslab_dataplane::sched::{DestId, SchedState};
use lvslab_spec::lb::{ForwardMethod, LoadBalancer, Protocol, Scheduler};
use util::*;

#[test]
fn lblcr_grows_set_then_drops_most_loaded_after_expiration() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Lblcr);
    d.config_mut().lblcr_expiration_s = 10;
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 1);
    add(&mut d, &k, C, 1);
    // Like lblc for the first seven picks; the eighth differs: lblcr takes the least loaded
    // *member* (A has 3 active, B and C 2 → B, the earlier of the tie in the set [A, B, C]),
    // which is not lblc-overloaded since every server already has a connection.
    assert_eq!(
        picks_tcp(&mut d, 8, 1000),
        ["C", "C", "B", "B", "A", "A", "A", "B"]
    );
    let set = |d: &lvslab_dataplane::director::Director| match d.sched_state(&k) {
        Some(SchedState::Lblcr(l)) => l.cached_set(ip(VIP)).expect("entry"),
        other => panic!("{other:?}"),
    };
    // Ids are assigned in add order: A=1, B=2, C=3; new members go to the front.
    assert_eq!(set(&d), [DestId(1), DestId(2), DestId(3)]);
    // 20 s later (> 10 s since the last change): the least loaded member is picked first
    // (A 3, B 3, C 2 active → C), then the most loaded (A, first of the 3-3 tie) leaves.
    assert_eq!(name(fwd(&mut d, 20_000, &syn("203.0.113.7", 2000))), "C");
    assert_eq!(set(&d), [DestId(2), DestId(3)]);
}
#[test]
fn wrr_with_all_weights_zero_rejects() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Wrr);
    add(&mut d, &k, A, 0);
    add(&mut d, &k, B, 0);
    assert_eq!(
        d.lookup_or_schedule(0, &syn("203.0.113.1", 1000)),
        Verdict::Reject
    );
}

#[test]
fn rr_skips_weight0_and_overloaded() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    add(&mut d, &k, A, 1);
    add(&mut d, &k, B, 0);
    let mut c = dest(C, 1);
    c.u_threshold = 1;
    d.add_dest(&k, &c).expect("C");
    assert_eq!(picks_tcp(&mut d, 4, 1000), ["C", "A", "A", "A"]);
}

fn only_state(d: &lvslab_dataplane::director::Director) -> ConnState {
    d.conns().iter().next().expect("entry").state
}

#[test]
fn secure_tcp_input_only_syn_enters_synack() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    d.config_mut().secure_tcp = 3;
    add(&mut d, &k, A, 1);
    fwd(&mut d, 0, &syn("203.0.113.1", 1000));
    assert_eq!(only_state(&d), ConnState::Tcp(TcpState::SynAck));
    assert_eq!(
        dest_status(&mut d, &k, A).active_conns,
        1,
        "SYNACK is active"
    );
}

#[test]
fn secure_tcp_nat_ack_before_reply_stays_syn_recv() {
    let (mut d, k) = with_service(Protocol::Tcp, Scheduler::Rr);
    d.config_mut().secure_tcp = 3;
    add_m(&mut d, &k, A, 1, ForwardMethod::Nat);
    fwd(&mut d, 0, &syn("203.0.113.1", 1000));
    fwd(
        &mut d,
        1,
        &pkt(Protocol::Tcp, "203.0.113.1", 1000, TcpFlags::ACK),
    );
    assert_eq!(only_state(&d), ConnState::Tcp(TcpState::SynRecv));
}
