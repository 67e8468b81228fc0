//! Counters and rates: the kernel's rate estimator, the per-packet byte and packet
//! counters, and the listing (`ipvsadm -L`) and zeroing of them.

use lvslab_spec::lb::{LbError, ServiceKey, ServiceStatus, Stats};

use super::destinations::Dest;
use super::{lerr_svc, Director};

/// Rate estimator state (kernel `ip_vs_est`): EWMA over 2-second samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Estimator {
    pub(super) last: Stats,
    pub(super) cps: i64,
    pub(super) inpps: i64,
    pub(super) outpps: i64,
    pub(super) inbps: i64,
    pub(super) outbps: i64,
}

/// Sampling period of the rate estimator.
pub(super) const EST_PERIOD_MS: u64 = 2_000;

impl Estimator {
    /// One 2-second sample: packets/conns are kept as rate·2^10, bytes as rate·2^5, each
    /// moving a quarter of the way to the new sample.
    pub(super) fn sample(&mut self, now: &Stats) {
        fn step(e: &mut i64, cur: u64, last: u64, shift: u32) {
            let delta = i64::try_from(cur.wrapping_sub(last)).unwrap_or(i64::MAX);
            let sample = delta.saturating_mul(1 << shift);
            *e = e.saturating_add(sample.saturating_sub(*e) >> 2);
        }
        step(&mut self.cps, now.conns, self.last.conns, 9);
        step(&mut self.inpps, now.inpkts, self.last.inpkts, 9);
        step(&mut self.outpps, now.outpkts, self.last.outpkts, 9);
        step(&mut self.inbps, now.inbytes, self.last.inbytes, 4);
        step(&mut self.outbps, now.outbytes, self.last.outbytes, 4);
        self.last = *now;
    }

    /// Copies the rounded rates into `stats`.
    pub(super) fn report(&self, stats: &mut Stats) {
        let r = |e: i64, add: i64, shift: u32| u64::try_from((e + add) >> shift).unwrap_or(0);
        stats.cps = r(self.cps, 0x1ff, 10);
        stats.inpps = r(self.inpps, 0x1ff, 10);
        stats.outpps = r(self.outpps, 0x1ff, 10);
        stats.inbps = r(self.inbps, 0xf, 5);
        stats.outbps = r(self.outbps, 0xf, 5);
    }
}

pub(super) fn add_in(stats: &mut Stats, len: u32) {
    stats.inpkts += 1;
    stats.inbytes += u64::from(len);
}

pub(super) fn add_out(stats: &mut Stats, len: u32) {
    stats.outpkts += 1;
    stats.outbytes += u64::from(len);
}

impl Director {
    /// Takes every 2-second estimator sample due by `now_ms` (at most 64: after that many
    /// idle samples every rate has decayed to 0, so a longer gap skips ahead).
    pub(super) fn run_estimators(&mut self, now_ms: u64) {
        let mut samples = 0;
        while self.est_next_ms <= now_ms {
            samples += 1;
            for s in self.services.values_mut() {
                s.est.sample(&s.stats);
                s.est.report(&mut s.stats);
            }
            for d in self.dests.values_mut() {
                d.est.sample(&d.stats);
                d.est.report(&mut d.stats);
            }
            self.total_est.sample(&self.total);
            self.total_est.report(&mut self.total);
            if samples >= 64 {
                self.est_next_ms = now_ms.saturating_add(EST_PERIOD_MS);
                break;
            }
            self.est_next_ms = self.est_next_ms.saturating_add(EST_PERIOD_MS);
        }
    }

    /// Every service with its destinations, newest first (the listing's order).
    pub(super) fn listing(&self) -> Vec<ServiceStatus> {
        self.services
            .values()
            .map(|s| ServiceStatus {
                config: s.config.clone(),
                stats: s.stats,
                dests: s
                    .order
                    .iter()
                    .filter_map(|id| self.dests.get(id))
                    .map(Dest::status)
                    .collect(),
            })
            .collect()
    }

    /// Zeroes the counters of one service (and its destinations) or of everything.
    pub(super) fn zero_counters(&mut self, svc: Option<&ServiceKey>) -> Result<(), LbError> {
        let keys: Vec<ServiceKey> = match svc {
            Some(k) if !self.services.contains_key(k) => return Err(lerr_svc(k)),
            Some(k) => vec![*k],
            None => {
                self.total = Stats::default();
                self.total_est = Estimator::default();
                self.services.keys().copied().collect()
            }
        };
        for k in keys {
            let order = match self.services.get_mut(&k) {
                Some(s) => {
                    s.stats = Stats::default();
                    s.est = Estimator::default();
                    s.order.clone()
                }
                None => continue,
            };
            for id in order {
                if let Some(d) = self.dests.get_mut(&id) {
                    d.stats = Stats::default();
                    d.est = Estimator::default();
                }
            }
        }
        Ok(())
    }
}
