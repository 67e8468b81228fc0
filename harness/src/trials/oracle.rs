//! The trial oracle: what a scheduler must give, request for request, when the answer is
//! exact.

use std::collections::BTreeMap;

use lvslab_spec::lb::Scheduler;

/// How many requests a dataplane trial sends per phase.
pub const TRIAL_REQUESTS: u64 = 60;

/// Source port of a trial's first request (phases continue 1000 ports further on).
pub const TRIAL_FIRST_PORT: u16 = 20_000;

/// What `count` new connections must give under a round-robin scheduler: weights share
/// them exactly when `count` is a multiple of their sum (a server of weight 0 gets none).
/// `None` for schedulers whose share depends on state the trial does not control (the
/// least-connection family, hashing, locality).
pub fn expected_share(
    scheduler: Scheduler,
    servers: &[(String, u32)],
    count: u64,
) -> Option<BTreeMap<String, u64>> {
    let weights: Vec<(String, u64)> = match scheduler {
        Scheduler::Rr => servers
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(n, _)| (n.clone(), 1))
            .collect(),
        Scheduler::Wrr => servers
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(n, w)| (n.clone(), u64::from(*w)))
            .collect(),
        _ => return None,
    };
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    if total == 0 || count % total != 0 {
        return None;
    }
    Some(
        weights
            .into_iter()
            .map(|(n, w)| (n, count / total * w))
            .collect(),
    )
}

/// The sum of the phases' shares, when every phase has one.
pub fn sum_shares(phases: &[Option<BTreeMap<String, u64>>]) -> Option<BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for p in phases {
        for (k, v) in p.as_ref()? {
            *out.entry(k.clone()).or_default() += v;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(w: &[(&str, u32)]) -> Vec<(String, u32)> {
        w.iter().map(|(n, w)| (n.to_string(), *w)).collect()
    }

    fn share(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn wrr_shares_by_weight_when_the_count_is_a_multiple_of_the_sum() {
        let s = servers(&[("rs1", 3), ("rs2", 2), ("rs3", 1)]);
        assert_eq!(
            expected_share(Scheduler::Wrr, &s, 60),
            Some(share(&[("rs1", 30), ("rs2", 20), ("rs3", 10)]))
        );
        assert_eq!(expected_share(Scheduler::Wrr, &s, 61), None);
        assert_eq!(
            expected_share(Scheduler::Wrr, &s, 0),
            Some(share(&[("rs1", 0), ("rs2", 0), ("rs3", 0)]))
        );
    }

    #[test]
    fn rr_ignores_weights_but_not_quiesced_servers() {
        let s = servers(&[("rs1", 3), ("rs2", 0), ("rs3", 1)]);
        assert_eq!(
            expected_share(Scheduler::Rr, &s, 60),
            Some(share(&[("rs1", 30), ("rs3", 30)]))
        );
        assert_eq!(
            expected_share(Scheduler::Wrr, &s, 60),
            Some(share(&[("rs1", 45), ("rs3", 15)]))
        );
    }

    #[test]
    fn no_exact_share_without_servers_or_for_stateful_schedulers() {
        assert_eq!(
            expected_share(Scheduler::Rr, &servers(&[("a", 0)]), 60),
            None
        );
        assert_eq!(expected_share(Scheduler::Rr, &[], 60), None);
        let s = servers(&[("rs1", 1), ("rs2", 1)]);
        for sched in [
            Scheduler::Lc,
            Scheduler::Wlc,
            Scheduler::Sh,
            Scheduler::Dh,
            Scheduler::Sed,
        ] {
            assert_eq!(expected_share(sched, &s, 60), None, "{sched}");
        }
    }

    #[test]
    fn phases_add_up_only_when_each_has_a_share() {
        let a = Some(share(&[("rs1", 30), ("rs2", 20)]));
        let b = Some(share(&[("rs1", 20), ("rs3", 20)]));
        assert_eq!(
            sum_shares(&[a.clone(), b]),
            Some(share(&[("rs1", 50), ("rs2", 20), ("rs3", 20)]))
        );
        assert_eq!(sum_shares(&[a, None]), None);
        assert_eq!(sum_shares(&[]), Some(BTreeMap::new()));
    }
}
