//! wrr — weighted round robin.
//!
//! Kernel rule (`ip_vs_wrr.c`): state is a cursor `cl`, current weight `cw`, maximum `mw` and
//! step `di`. `di` = gcd of the positive weights (1 if none), `mw` = max weight − (di − 1).
//! Init (service creation, scheduler switch): `cl` = head, `cw = mw`. On add/delete/edit: `cl`
//! = head, recompute `di`/`mw`, then `cw = mw` only if `cw > mw` or `cw == 0`, else if `di > 1`
//! round `cw` to `(cw / di) · di + 1`, otherwise keep `cw` — so incremental configuration
//! leaves a different phase than a fresh init. A pick sweeps the list from after the cursor for
//! a non-overloaded destination with `weight >= cw`; at the end of a sweep `cw -= di`, wrapping
//! to `mw` with the kernel's last-pass / stop bookkeeping so every destination is tried with
//! `cw = 1` before giving up.

use super::{DestId, DestView};

/// Weighted round-robin state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrr {
    /// Last chosen destination (`None` = list head).
    cl: Option<DestId>,
    cw: i64,
    mw: i64,
    di: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

fn gcd_weight(dests: &[DestView]) -> i64 {
    let g = dests
        .iter()
        .map(|d| i64::from(d.weight))
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g > 0 {
        g
    } else {
        1
    }
}

fn max_weight(dests: &[DestView]) -> i64 {
    dests.iter().map(|d| i64::from(d.weight)).fold(0, i64::max)
}

impl Wrr {
    /// State for a service bound to wrr with `dests` already present.
    pub fn init(dests: &[DestView]) -> Self {
        let di = gcd_weight(dests);
        let mw = max_weight(dests) - (di - 1);
        Wrr {
            cl: None,
            cw: mw,
            mw,
            di,
        }
    }

    /// Current weight threshold (exposed for tests of the phase rules).
    pub fn current_weight(&self) -> i64 {
        self.cw
    }

    /// `(di, mw)`: the weight step and the adjusted maximum.
    pub fn step_and_max(&self) -> (i64, i64) {
        (self.di, self.mw)
    }

    /// The add/delete/edit hook.
    pub fn dests_changed(&mut self, dests: &[DestView]) {
        self.cl = None;
        self.di = gcd_weight(dests);
        self.mw = max_weight(dests) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    /// Picks the next destination.
    pub fn schedule(&mut self, dests: &[DestView]) -> Option<DestId> {
        if self.mw == 0 {
            return None;
        }
        // A cursor that no longer names a listed destination behaves like the head (the
        // kernel resets it on every list change, so this only guards against misuse).
        let last = self.cl.and_then(|c| dests.iter().position(|d| d.id == c));
        let mut pos = last;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            let from = pos.map_or(0, |p| p + 1);
            for (i, d) in dests.iter().enumerate().skip(from) {
                if !d.overloaded && i64::from(d.weight) >= self.cw {
                    self.cl = Some(d.id);
                    return Some(d.id);
                }
                if stop == Some(i) {
                    self.cl = Some(d.id);
                    return None;
                }
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}
