//! The kernel IPVS schedulers, decision for decision.
//!
//! Every scheduler sees the service's destination list in kernel order: **newest first** (a new
//! or revived destination is linked at the head). Ties, cursors and hash-table layouts all follow
//! that order, so callers must hand the list over exactly as the director keeps it.
//!
//! Schedulers never own destinations: they see [`DestView`] snapshots and remember
//! destinations by [`DestId`]. Stateful ones (rr, wrr, dh, sh, mh, lblc, lblcr) get the
//! configuration hooks of `docs/ipvs-behaviour.md` (init, add, delete, edit) through
//! [`SchedState`].

use std::net::IpAddr;

use lvslab_spec::lb::{Protocol, Scheduler, ServiceFlags};

pub mod dh;
pub mod hash;
pub mod lblc;
pub mod lblcr;
pub mod leastconn;
pub mod mh;
pub mod rr;
pub mod sh;
pub mod twos;
pub mod wrr;

/// Which kernel generation's counting and overload rules to follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Kernels before the 2026 "totalconns / overload hysteresis" series: overhead is
    /// `256·active + inactive`, the overload flag is re-tested on every bind/unbind.
    Classic,
    /// Kernels with that series (Debian 6.1.192, 6.12.117, mainline ≥ ≈7.2): overhead is
    /// `256·active + total`, the overload flag has explicit hysteresis, LBLC/LBLCR caches are
    /// bounded at 1.5 × 16384 entries.
    #[default]
    P2026,
}

/// Stable identity of a destination object for the lifetime of the director (survives the
/// trash and revival, never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId(pub u32);

/// What a scheduler may read about one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestView {
    /// Stable identity.
    pub id: DestId,
    /// Real-server address.
    pub addr: IpAddr,
    /// Real-server port (0 = same as the packet's port).
    pub port: u16,
    /// Current weight (0 = quiesced).
    pub weight: i32,
    /// Last non-zero weight (what mh builds its table from).
    pub last_weight: i32,
    /// Active connections.
    pub active: u32,
    /// Connection overhead under the director's profile (see [`overhead`]).
    pub overhead: u32,
    /// The generic OVERLOAD flag (thresholds).
    pub overloaded: bool,
    /// Linked into its service (false while in the trash).
    pub available: bool,
}

/// The connection overhead lc, wlc, lblc, lblcr and twos compare.
///
/// Classic kernels add the inactive count, 2026 kernels the total count; the 32-bit wrap is
/// the kernel's (unsigned arithmetic).
pub fn overhead(profile: Profile, active: u32, total: u32) -> u32 {
    let rest = match profile {
        Profile::Classic => total.saturating_sub(active),
        Profile::P2026 => total,
    };
    (active << 8).wrapping_add(rest)
}

/// The parts of a packet the schedulers look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedPacket {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Client address (source of the request).
    pub saddr: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Destination address (the VIP for ordinary services).
    pub daddr: IpAddr,
    /// Destination port.
    pub dport: u16,
}

/// Source of the random numbers `twos` draws. Injected so tests are deterministic.
pub trait RandomSource {
    /// A uniformly distributed integer in `0..n` (`n > 0`).
    fn below(&mut self, n: u32) -> u32;
}

/// A small seeded generator (SplitMix64) good enough for scheduling draws.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRng { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl RandomSource for SeededRng {
    fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift keeps the draw unbiased enough for n far below 2^32 (the kernel's
        // get_random_u32_below is exact; only the distribution matters here).
        ((self.next_u64() >> 32).wrapping_mul(u64::from(n)) >> 32) as u32
    }
}

/// Everything a scheduler gets for one decision.
pub struct SchedInput<'a> {
    /// The service's destination list, newest first.
    pub dests: &'a [DestView],
    /// Destinations of this service that sit in the trash but may still be referenced by a
    /// cache (lblc/lblcr); they are never available.
    pub trashed: &'a [DestView],
    /// The packet being scheduled.
    pub pkt: &'a SchedPacket,
    /// Service flags (`sh-port`, `sh-fallback`, …).
    pub flags: ServiceFlags,
    /// Time now, in milliseconds.
    pub now_ms: u64,
    /// Behaviour profile.
    pub profile: Profile,
    /// `lblc_expiration` / `lblcr_expiration` sysctl, in milliseconds.
    pub cache_expiration_ms: u64,
}

impl SchedInput<'_> {
    /// Looks a destination up by id, linked or trashed.
    pub fn find(&self, id: DestId) -> Option<&DestView> {
        self.dests
            .iter()
            .chain(self.trashed.iter())
            .find(|d| d.id == id)
    }

    /// The destination at position `i` of the linked list followed by the trashed ones.
    fn at(&self, i: usize) -> Option<&DestView> {
        match i.checked_sub(self.dests.len()) {
            None => self.dests.get(i),
            Some(t) => self.trashed.get(t),
        }
    }

    /// [`find`](Self::find) starting from `hint`, the position the id had last time, which
    /// is updated: O(1) while the list is unchanged. Ids are unique across both lists, so
    /// the result is the same as `find`'s.
    pub(crate) fn find_near(&self, id: DestId, hint: &mut usize) -> Option<&DestView> {
        if let Some(d) = self.at(*hint).filter(|d| d.id == id) {
            return Some(d);
        }
        let total = self.dests.len() + self.trashed.len();
        let i = (0..total).find(|&i| self.at(i).is_some_and(|d| d.id == id))?;
        *hint = i;
        self.at(i)
    }
}

/// Errors of scheduler configuration hooks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// mh cannot build a table for more destinations than it has slots (kernel: EINVAL).
    #[error("mh scheduler: {count} destinations exceed the {slots}-slot lookup table")]
    TooManyDests {
        /// Destinations in the service.
        count: usize,
        /// Table size.
        slots: usize,
    },
}

/// A service's bound scheduler with its private state.
#[derive(Debug, Clone)]
pub enum SchedState {
    /// Round robin.
    Rr(rr::Rr),
    /// Weighted round robin.
    Wrr(wrr::Wrr),
    /// Least connection.
    Lc,
    /// Weighted least connection.
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Weighted random two choices.
    Twos,
    /// Destination hashing.
    Dh(dh::Dh),
    /// Source hashing.
    Sh(sh::Sh),
    /// Maglev hashing.
    Mh(Box<mh::Mh>),
    /// Locality-based least connection.
    Lblc(Box<lblc::Lblc>),
    /// LBLC with replication.
    Lblcr(Box<lblcr::Lblcr>),
    /// No scheduler bound: nothing new is ever scheduled.
    None,
}

impl SchedState {
    /// Binds `kind` to a service whose destination list is `dests` (service creation or a
    /// scheduler switch).
    pub fn init(kind: Scheduler, dests: &[DestView], now_ms: u64) -> Result<Self, SchedError> {
        Ok(match kind {
            Scheduler::Rr => SchedState::Rr(rr::Rr::default()),
            Scheduler::Wrr => SchedState::Wrr(wrr::Wrr::init(dests)),
            Scheduler::Lc => SchedState::Lc,
            Scheduler::Wlc => SchedState::Wlc,
            Scheduler::Sed => SchedState::Sed,
            Scheduler::Nq => SchedState::Nq,
            Scheduler::Fo => SchedState::Fo,
            Scheduler::Ovf => SchedState::Ovf,
            Scheduler::Twos => SchedState::Twos,
            Scheduler::Dh => SchedState::Dh(dh::Dh::build(dests)),
            Scheduler::Sh => SchedState::Sh(sh::Sh::build(dests)),
            Scheduler::Mh => SchedState::Mh(Box::new(mh::Mh::build(dests)?)),
            Scheduler::Lblc => SchedState::Lblc(Box::new(lblc::Lblc::new(now_ms))),
            Scheduler::Lblcr => SchedState::Lblcr(Box::new(lblcr::Lblcr::new(now_ms))),
            Scheduler::None => SchedState::None,
        })
    }

    /// Which scheduler this is.
    pub fn kind(&self) -> Scheduler {
        match self {
            SchedState::Rr(_) => Scheduler::Rr,
            SchedState::Wrr(_) => Scheduler::Wrr,
            SchedState::Lc => Scheduler::Lc,
            SchedState::Wlc => Scheduler::Wlc,
            SchedState::Sed => Scheduler::Sed,
            SchedState::Nq => Scheduler::Nq,
            SchedState::Fo => Scheduler::Fo,
            SchedState::Ovf => Scheduler::Ovf,
            SchedState::Twos => Scheduler::Twos,
            SchedState::Dh(_) => Scheduler::Dh,
            SchedState::Sh(_) => Scheduler::Sh,
            SchedState::Mh(_) => Scheduler::Mh,
            SchedState::Lblc(_) => Scheduler::Lblc,
            SchedState::Lblcr(_) => Scheduler::Lblcr,
            SchedState::None => Scheduler::None,
        }
    }

    /// A destination was linked at the head; `dests` is the list after the change.
    pub fn on_add(&mut self, dests: &[DestView]) -> Result<(), SchedError> {
        match self {
            SchedState::Wrr(w) => w.dests_changed(dests),
            SchedState::Dh(d) => *d = dh::Dh::build(dests),
            SchedState::Sh(s) => *s = sh::Sh::build(dests),
            SchedState::Mh(m) => **m = mh::Mh::build(dests)?,
            _ => {}
        }
        Ok(())
    }

    /// `removed` was unlinked; `before` is the list as it was before the removal, `after`
    /// the list without it.
    pub fn on_del(
        &mut self,
        before: &[DestView],
        after: &[DestView],
        removed: DestId,
    ) -> Result<(), SchedError> {
        match self {
            SchedState::Rr(r) => r.on_del(before, removed),
            SchedState::Wrr(w) => w.dests_changed(after),
            SchedState::Dh(d) => *d = dh::Dh::build(after),
            SchedState::Sh(s) => *s = sh::Sh::build(after),
            SchedState::Mh(m) => **m = mh::Mh::build(after)?,
            _ => {}
        }
        Ok(())
    }

    /// A destination's weight, thresholds or method were edited (dh is deliberately not
    /// rebuilt: the kernel has no edit hook for it).
    pub fn on_edit(&mut self, dests: &[DestView]) -> Result<(), SchedError> {
        match self {
            SchedState::Wrr(w) => w.dests_changed(dests),
            SchedState::Sh(s) => *s = sh::Sh::build(dests),
            SchedState::Mh(m) => **m = mh::Mh::build(dests)?,
            _ => {}
        }
        Ok(())
    }

    /// Picks a destination for a new connection, or `None` (no destination available).
    pub fn schedule(
        &mut self,
        input: &SchedInput<'_>,
        rng: &mut dyn RandomSource,
    ) -> Option<DestId> {
        match self {
            SchedState::Rr(r) => r.schedule(input.dests),
            SchedState::Wrr(w) => w.schedule(input.dests),
            SchedState::Lc => leastconn::lc(input.dests),
            SchedState::Wlc => leastconn::wlc(input.dests),
            SchedState::Sed => leastconn::sed(input.dests),
            SchedState::Nq => leastconn::nq(input.dests),
            SchedState::Fo => leastconn::fo(input.dests),
            SchedState::Ovf => leastconn::ovf(input.dests),
            SchedState::Twos => twos::schedule(input.dests, rng),
            SchedState::Dh(d) => d.schedule(input),
            SchedState::Sh(s) => s.schedule(input),
            SchedState::Mh(m) => m.schedule(input),
            SchedState::Lblc(l) => l.schedule(input),
            SchedState::Lblcr(l) => l.schedule(input),
            SchedState::None => None,
        }
    }

    /// Runs periodic work due by `now_ms` (the lblc/lblcr 60-second cache GC).
    pub fn tick(&mut self, now_ms: u64, cache_expiration_ms: u64) {
        match self {
            SchedState::Lblc(l) => l.tick(now_ms, cache_expiration_ms),
            SchedState::Lblcr(l) => l.tick(now_ms, cache_expiration_ms),
            _ => {}
        }
    }
}

/// Usable for the plain least-connection family: weight > 0 and not OVERLOAD.
pub(crate) fn eligible(d: &DestView) -> bool {
    d.weight > 0 && !d.overloaded
}
