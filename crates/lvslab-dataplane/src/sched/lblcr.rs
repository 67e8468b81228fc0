//! lblcr — locality-based least connection with replication.
//!
//! Kernel rule (`ip_vs_lblcr.c`): the cache (1024 buckets, key = destination address) maps to a
//! *set* of servers, new members at the front, with a last-modified time. With an entry: the
//! weighted-least member `m` (first non-OVERLOAD available member with weight > 0, then later
//! non-OVERLOAD available members by `oh(m)·w(d) > oh(d)·w(m)`); if the set has more than one
//! member and `lblcr_expiration` passed since the last change, the weighted-most-loaded member
//! (OVERLOAD ignored, weight > 0) is removed; if `m` exists and is not lblc-overloaded it is
//! used, otherwise wlc over the whole service picks a server that joins the set. Without an
//! entry: wlc, then a new one-member set. Cache bound and GC as lblc.

use std::net::IpAddr;

use super::lblc::{lblc_overloaded, lblc_wlc, AddrCache};
use super::{DestId, DestView, SchedInput};

/// A member of a server set, with where it sat in the scheduler input last time so the
/// per-decision lookups are O(1) instead of a scan of the service (sets can grow to every
/// server of the service).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    id: DestId,
    hint: usize,
}

/// A cached address's server set, front first, and when it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerSet {
    set: Vec<Member>,
    lastmod_ms: u64,
}

/// The lblcr cache and its GC state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lblcr {
    cache: AddrCache<ServerSet>,
}

/// The members' views, front first, skipping ids the input no longer has.
fn member_views<'a>(
    set: &'a mut [Member],
    input: &'a SchedInput<'_>,
) -> impl Iterator<Item = &'a DestView> + 'a {
    set.iter_mut()
        .filter_map(move |m| input.find_near(m.id, &mut m.hint))
}

impl Lblcr {
    /// An empty cache whose first GC tick is 60 s after `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Lblcr {
            cache: AddrCache::new(now_ms),
        }
    }

    /// Number of cached addresses.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.cache.len() == 0
    }

    /// The server set cached for `addr`, front first.
    pub fn cached_set(&self, addr: IpAddr) -> Option<Vec<DestId>> {
        self.cache
            .get(addr)
            .map(|e| e.value.set.iter().map(|m| m.id).collect())
    }

    fn set_min(set: &mut [Member], input: &SchedInput<'_>) -> Option<DestId> {
        // The first usable member starts; later ones must also be non-OVERLOAD and available.
        let mut least: Option<(&DestView, i64)> = None;
        for d in member_views(set, input) {
            let doh = i64::from(d.overhead);
            let take = match least {
                None => !d.overloaded && d.weight > 0 && d.available,
                Some((l, loh)) => {
                    !d.overloaded
                        && loh * i64::from(d.weight) > doh * i64::from(l.weight)
                        && d.available
                }
            };
            if take {
                least = Some((d, doh));
            }
        }
        least.map(|(d, _)| d.id)
    }

    fn set_max(set: &mut [Member], input: &SchedInput<'_>) -> Option<DestId> {
        // OVERLOAD is ignored here; only weight 0 members are never picked.
        let mut most: Option<(&DestView, i64)> = None;
        for d in member_views(set, input) {
            let doh = i64::from(d.overhead);
            let take = match most {
                None => d.weight > 0,
                Some((m, moh)) => {
                    moh * i64::from(d.weight) < doh * i64::from(m.weight) && d.weight > 0
                }
            };
            if take {
                most = Some((d, doh));
            }
        }
        most.map(|(d, _)| d.id)
    }

    /// Picks a server for the packet's destination address.
    pub fn schedule(&mut self, input: &SchedInput<'_>) -> Option<DestId> {
        let addr = input.pkt.daddr;
        let now = input.now_ms;
        if let Some(e) = self.cache.get_mut(addr) {
            e.lastuse_ms = now;
            let e = &mut e.value;
            let m = Self::set_min(&mut e.set, input);
            if e.set.len() > 1 && now > e.lastmod_ms.saturating_add(input.cache_expiration_ms) {
                if let Some(most) = Self::set_max(&mut e.set, input) {
                    e.set.retain(|m| m.id != most);
                    e.lastmod_ms = now;
                }
            }
            if let Some(m) = m {
                let not_overloaded = input
                    .find(m)
                    .is_some_and(|d| !lblc_overloaded(d, input.dests));
                if not_overloaded {
                    return Some(m);
                }
            }
            let id = lblc_wlc(input.dests)?;
            if !e.set.iter().any(|m| m.id == id) {
                e.set.insert(0, Member { id, hint: 0 });
                e.lastmod_ms = now;
            }
            return Some(id);
        }
        let id = lblc_wlc(input.dests)?;
        let set = ServerSet {
            set: vec![Member { id, hint: 0 }],
            lastmod_ms: now,
        };
        self.cache.insert_new(input.profile, addr, now, set);
        Some(id)
    }

    /// Runs every GC tick due by `now_ms`.
    pub fn tick(&mut self, now_ms: u64, expiration_ms: u64) {
        self.cache.tick(now_ms, expiration_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::{Profile, RandomSource, SchedPacket, SeededRng};
    use lvslab_spec::lb::{Protocol, ServiceFlags};
    use std::net::Ipv4Addr;

    /// The kernel loops written out plainly (two passes over an id-by-id scan), as the
    /// reference for the single-pass, hinted versions.
    fn plain_min(set: &[DestId], input: &SchedInput<'_>) -> Option<DestId> {
        let views: Vec<_> = set.iter().filter_map(|&id| input.find(id)).collect();
        let first = views
            .iter()
            .position(|d| !d.overloaded && d.weight > 0 && d.available)?;
        let (mut least, mut loh) = (views[first], i64::from(views[first].overhead));
        for d in views[first + 1..].iter().filter(|d| !d.overloaded) {
            let doh = i64::from(d.overhead);
            if loh * i64::from(d.weight) > doh * i64::from(least.weight) && d.available {
                (least, loh) = (d, doh);
            }
        }
        Some(least.id)
    }

    fn plain_max(set: &[DestId], input: &SchedInput<'_>) -> Option<DestId> {
        let views: Vec<_> = set.iter().filter_map(|&id| input.find(id)).collect();
        let first = views.iter().position(|d| d.weight > 0)?;
        let (mut most, mut moh) = (views[first], i64::from(views[first].overhead));
        for d in &views[first + 1..] {
            let doh = i64::from(d.overhead);
            if moh * i64::from(d.weight) < doh * i64::from(most.weight) && d.weight > 0 {
                (most, moh) = (d, doh);
            }
        }
        Some(most.id)
    }

    #[test]
    fn set_min_and_max_match_the_plain_loops() {
        let mut rng = SeededRng::new(11);
        let pkt = SchedPacket {
            protocol: Protocol::Tcp,
            saddr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            sport: 1000,
            daddr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            dport: 80,
        };
        let mut checked = 0;
        for round in 0..2000u32 {
            let n = 1 + rng.below(12);
            let view = |i: u32, rng: &mut SeededRng, available: bool| DestView {
                id: DestId(i),
                addr: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)),
                port: 80,
                weight: rng.below(4) as i32,
                last_weight: 1,
                active: rng.below(4),
                overhead: rng.below(6),
                overloaded: rng.below(5) == 0,
                available,
            };
            let dests: Vec<DestView> = (0..n).map(|i| view(i, &mut rng, true)).collect();
            let trashed: Vec<DestView> = (n..n + rng.below(3))
                .map(|i| view(i, &mut rng, false))
                .collect();
            let input = SchedInput {
                dests: &dests,
                trashed: &trashed,
                pkt: &pkt,
                flags: ServiceFlags::default(),
                now_ms: 0,
                profile: Profile::P2026,
                cache_expiration_ms: 0,
            };
            // Members in random order, some gone from the service, stale hints.
            let ids: Vec<DestId> = (0..1 + rng.below(8))
                .map(|_| DestId(rng.below(n + 4)))
                .collect();
            let mut set: Vec<Member> = ids
                .iter()
                .map(|&id| Member {
                    id,
                    hint: rng.below(20) as usize,
                })
                .collect();
            for _ in 0..2 {
                assert_eq!(
                    Lblcr::set_min(&mut set, &input),
                    plain_min(&ids, &input),
                    "min, round {round}"
                );
                assert_eq!(
                    Lblcr::set_max(&mut set, &input),
                    plain_max(&ids, &input),
                    "max, round {round}"
                );
            }
            checked += usize::from(plain_min(&ids, &input).is_some());
        }
        assert!(
            checked > 500,
            "too few rounds had a usable member: {checked}"
        );
    }
}
