//! lc, wlc, sed, nq, fo and ovf — the stateless list scanners.
//!
//! Kernel rules (`ip_vs_{lc,wlc,sed,nq,fo,ovf}.c`), all scanning the list newest first and
//! keeping the *earliest* element on ties (strict comparisons):
//! - lc: skip OVERLOAD and weight 0; smallest overhead (unsigned) wins.
//! - wlc: first element with weight > 0 and no OVERLOAD is the candidate; every later
//!   non-OVERLOAD element replaces it when `oh(m)·w(d) > oh(d)·w(m)` (64-bit signed). All idle
//!   → the newest eligible element, whatever the weights.
//! - sed: wlc with overhead `active + 1`.
//! - nq: skip OVERLOAD and weight 0; the first element with no active connection is returned
//!   at once, otherwise sed's rule.
//! - fo: highest weight among non-OVERLOAD elements (strict `>` from 0).
//! - ovf: highest weight among non-OVERLOAD, weight > 0 elements with `active <= weight`.

use super::{eligible, DestId, DestView};

/// Least connection.
pub fn lc(dests: &[DestView]) -> Option<DestId> {
    let mut least: Option<&DestView> = None;
    for d in dests.iter().filter(|d| !d.overloaded && d.weight != 0) {
        if least.is_none_or(|l| d.overhead < l.overhead) {
            least = Some(d);
        }
    }
    least.map(|d| d.id)
}

/// The weighted-least scan shared by wlc, sed, lblc and lblcr, with a chosen overhead.
pub(crate) fn weighted_least(dests: &[DestView], oh: impl Fn(&DestView) -> i64) -> Option<DestId> {
    let first = dests.iter().position(eligible)?;
    let mut least = &dests[first];
    let mut loh = oh(least);
    for d in dests[first + 1..].iter().filter(|d| !d.overloaded) {
        let doh = oh(d);
        if loh * i64::from(d.weight) > doh * i64::from(least.weight) {
            least = d;
            loh = doh;
        }
    }
    Some(least.id)
}

/// Weighted least connection.
pub fn wlc(dests: &[DestView]) -> Option<DestId> {
    weighted_least(dests, |d| i64::from(d.overhead))
}

fn sed_overhead(d: &DestView) -> i64 {
    i64::from(d.active) + 1
}

/// Shortest expected delay.
pub fn sed(dests: &[DestView]) -> Option<DestId> {
    weighted_least(dests, sed_overhead)
}

/// Never queue.
pub fn nq(dests: &[DestView]) -> Option<DestId> {
    let mut least: Option<(&DestView, i64)> = None;
    for d in dests.iter().filter(|d| !d.overloaded && d.weight != 0) {
        let doh = sed_overhead(d);
        if d.active == 0 {
            return Some(d.id);
        }
        let better = match least {
            None => true,
            Some((l, loh)) => loh * i64::from(d.weight) > doh * i64::from(l.weight),
        };
        if better {
            least = Some((d, doh));
        }
    }
    least.map(|(d, _)| d.id)
}

/// Weighted failover.
pub fn fo(dests: &[DestView]) -> Option<DestId> {
    let mut best: Option<&DestView> = None;
    let mut hw = 0;
    for d in dests.iter().filter(|d| !d.overloaded) {
        if d.weight > hw {
            best = Some(d);
            hw = d.weight;
        }
    }
    best.map(|d| d.id)
}

/// Weighted overflow.
pub fn ovf(dests: &[DestView]) -> Option<DestId> {
    let mut best: Option<&DestView> = None;
    for d in dests.iter() {
        let w = d.weight;
        if d.overloaded || w == 0 || i64::from(d.active) > i64::from(w) {
            continue;
        }
        if best.is_none_or(|b| w > b.weight) {
            best = Some(d);
        }
    }
    best.map(|d| d.id)
}
