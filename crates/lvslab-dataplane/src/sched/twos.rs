//! twos — weighted random two choices (Linux 6.1+).
//!
//! Kernel rule (`ip_vs_twos.c`): `W` = sum of weights of non-OVERLOAD destinations with
//! positive weight (none → fail). Two independent draws `r1, r2` uniform in `0..=W`. Walking the list over
//! those destinations, each weight is subtracted from both draws; the first destination where a
//! draw becomes ≤ 0 is that draw's choice (so the first listed one owns `w + 1` of the `W + 1`
//! outcomes). Choice 2 wins when `w2·oh1 > w1·oh2`, else choice 1.

use super::{eligible, DestId, DestView, RandomSource};

/// Picks a destination with two weighted random draws from `rng`.
pub fn schedule(dests: &[DestView], rng: &mut dyn RandomSource) -> Option<DestId> {
    let total: i64 = dests
        .iter()
        .filter(|d| eligible(d))
        .map(|d| i64::from(d.weight))
        .sum();
    if total == 0 {
        return None;
    }
    // The kernel sums in an int and draws below total + 1; clamp so the draw stays defined.
    let span = u32::try_from(total + 1).unwrap_or(u32::MAX);
    let mut r1 = i64::from(rng.below(span));
    let mut r2 = i64::from(rng.below(span));
    let mut c1: Option<&DestView> = None;
    let mut c2: Option<&DestView> = None;
    for d in dests.iter().filter(|d| eligible(d)) {
        r1 -= i64::from(d.weight);
        r2 -= i64::from(d.weight);
        if r1 <= 0 && c1.is_none() {
            c1 = Some(d);
        }
        if r2 <= 0 && c2.is_none() {
            c2 = Some(d);
        }
        if c1.is_some() && c2.is_some() {
            break;
        }
    }
    match (c1, c2) {
        (Some(a), Some(b)) => {
            let lhs = i64::from(b.weight) * i64::from(a.overhead);
            let rhs = i64::from(a.weight) * i64::from(b.overhead);
            Some(if lhs > rhs { b.id } else { a.id })
        }
        (Some(a), None) => Some(a.id),
        (None, Some(b)) => Some(b.id),
        (None, None) => None,
    }
}
