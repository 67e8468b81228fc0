//! Destinations: the per-service lists (newest first) and the cached views schedulers
//! read, the connection counters and the OVERLOAD flag, adding, editing and deleting, and
//! the trash a deleted destination waits in until its connections are gone.

use std::net::IpAddr;

use lvslab_spec::lb::{DestConfig, DestStatus, Encap, ForwardMethod, LbError, ServiceKey, Stats};

use crate::conn::{Conn, ConnId};
use crate::sched::{overhead, DestId, DestView, Profile};

use super::stats::Estimator;
use super::{family_of, lerr_svc, service_family, Director};

/// The trash is swept every half period; entries go after a full idle period.
pub(super) const DEST_TRASH_PERIOD_MS: u64 = 120_000;

#[derive(Debug, Clone)]
pub(super) struct Dest {
    pub(super) svc: ServiceKey,
    pub(super) config: DestConfig,
    pub(super) last_weight: i32,
    pub(super) active: u32,
    pub(super) total: u32,
    pub(super) persist: u32,
    pub(super) overloaded: bool,
    pub(super) available: bool,
    pub(super) stats: Stats,
    pub(super) est: Estimator,
    pub(super) idle_start_ms: Option<u64>,
    /// Index of this destination's entry in its service's `views` (meaningful only while
    /// linked; checked against the entry's id before use).
    pub(super) slot: usize,
}

impl Dest {
    /// What a scheduler may see of this destination.
    pub(super) fn view(&self, id: DestId, profile: Profile) -> DestView {
        DestView {
            id,
            addr: self.config.addr,
            port: self.config.port,
            weight: self.weight(),
            last_weight: self.last_weight,
            active: self.active,
            overhead: overhead(profile, self.active, self.total),
            overloaded: self.overloaded,
            available: self.available,
        }
    }

    pub(super) fn weight(&self) -> i32 {
        i32::try_from(self.config.weight).unwrap_or(i32::MAX)
    }

    pub(super) fn low_mark(&self) -> u32 {
        let (u, l) = (self.config.u_threshold, self.config.l_threshold);
        if l != 0 {
            l
        } else {
            u - (u >> 2)
        }
    }

    pub(super) fn status(&self) -> DestStatus {
        DestStatus {
            config: self.config.clone(),
            active_conns: self.active,
            inactive_conns: self.total.saturating_sub(self.active),
            persist_conns: self.persist,
            stats: self.stats,
        }
    }
}

/// Threshold edit rules for the OVERLOAD flag; `old` = previous (u, l).
fn update_overload_on_edit(profile: Profile, d: &mut Dest, old: (u32, u32)) {
    let (u, l) = (d.config.u_threshold, d.config.l_threshold);
    match profile {
        Profile::Classic => {
            if u == 0 || u > old.0 {
                d.overloaded = false;
            }
        }
        Profile::P2026 => {
            if (u, l) != old {
                if u == 0 {
                    d.overloaded = false;
                } else if d.total >= u {
                    d.overloaded = true;
                } else if d.total < d.low_mark() {
                    d.overloaded = false;
                }
            }
        }
    }
}

impl Director {
    pub(super) fn view(&self, id: DestId) -> Option<DestView> {
        self.dests.get(&id).map(|d| d.view(id, self.cfg.profile))
    }

    /// Recomputes a service's cached views from its destination order (configuration
    /// changes: O(destinations), never per packet).
    pub(super) fn refresh_views(&mut self, key: &ServiceKey) {
        let profile = self.cfg.profile;
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        s.views.clear();
        s.views_profile = profile;
        for &id in &s.order {
            if let Some(d) = self.dests.get_mut(&id) {
                d.slot = s.views.len();
                s.views.push(d.view(id, profile));
            }
        }
    }

    /// Copies destination `id`'s current counters and flags into its service's cached view.
    pub(super) fn sync_view(&mut self, id: DestId) {
        let Some(d) = self.dests.get(&id) else {
            return;
        };
        if !d.available {
            // Trashed: not in any service's list (lblc/lblcr get trashed views fresh).
            return;
        }
        let Some(s) = self.services.get_mut(&d.svc) else {
            return;
        };
        if let Some(v) = s.views.get_mut(d.slot).filter(|v| v.id == id) {
            *v = d.view(id, s.views_profile);
        }
    }

    pub(super) fn views(&self, order: &[DestId]) -> Vec<DestView> {
        order.iter().filter_map(|&id| self.view(id)).collect()
    }

    pub(super) fn trashed_views(&self, key: &ServiceKey) -> Vec<DestView> {
        self.trash
            .iter()
            .filter(|id| self.dests.get(id).is_some_and(|d| d.svc == *key))
            .filter_map(|&id| self.view(id))
            .collect()
    }

    // ---- counters and the OVERLOAD flag -------------------------------------------------

    pub(super) fn bind(&mut self, id: DestId, template: bool) {
        let profile = self.cfg.profile;
        let Some(d) = self.dests.get_mut(&id) else {
            return;
        };
        if template {
            d.persist += 1;
        } else {
            // New entries always start INACTIVE.
            d.total += 1;
        }
        let u = d.config.u_threshold;
        match profile {
            Profile::Classic => {
                if u != 0 && d.total >= u {
                    d.overloaded = true;
                }
            }
            Profile::P2026 => {
                if !template && u != 0 && d.total == u && d.total >= d.low_mark() {
                    d.overloaded = true;
                }
            }
        }
        self.sync_view(id);
    }

    pub(super) fn unbind(&mut self, c: &Conn) {
        self.half_open.remove(&c.id);
        let profile = self.cfg.profile;
        let Some(d) = self.dests.get_mut(&c.dest) else {
            return;
        };
        if c.flags.template {
            d.persist = d.persist.saturating_sub(1);
        } else {
            if !c.flags.inactive {
                d.active = d.active.saturating_sub(1);
            }
            d.total = d.total.saturating_sub(1);
        }
        let (u, l) = (d.config.u_threshold, d.config.l_threshold);
        match profile {
            Profile::Classic => {
                let total = u64::from(d.total);
                if l != 0 {
                    if d.total < l {
                        d.overloaded = false;
                    }
                } else if u != 0 {
                    if total * 4 < u64::from(u) * 3 {
                        d.overloaded = false;
                    }
                } else {
                    d.overloaded = false;
                }
            }
            Profile::P2026 => {
                let low = d.low_mark();
                if !c.flags.template && low != 0 && d.total + 1 == low && d.total < u {
                    d.overloaded = false;
                }
            }
        }
        self.sync_view(c.dest);
    }

    pub(super) fn reap(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(id) {
            self.unbind(&c);
        }
    }

    pub(super) fn sweep_trash(&mut self, now_ms: u64) {
        let mut freed = Vec::new();
        for &id in &self.trash {
            let Some(d) = self.dests.get_mut(&id) else {
                continue;
            };
            if d.total + d.persist > 0 {
                continue;
            }
            match d.idle_start_ms {
                Some(t) if now_ms >= t.saturating_add(DEST_TRASH_PERIOD_MS) => freed.push(id),
                Some(_) => {}
                None => d.idle_start_ms = Some(now_ms),
            }
        }
        for id in freed {
            self.trash.retain(|&t| t != id);
            self.dests.remove(&id);
        }
    }

    pub(super) fn move_to_trash(&mut self, id: DestId) {
        if let Some(d) = self.dests.get_mut(&id) {
            d.available = false;
            d.idle_start_ms = None;
        }
        if self.trash.is_empty() && self.trash_timer_ms.is_none() {
            self.trash_timer_ms = Some(self.now_ms.saturating_add(DEST_TRASH_PERIOD_MS / 2));
        }
        self.trash.push(id);
    }

    /// `expire_nodest_conn` background flush: entries of unavailable destinations go, their
    /// templates with them once nothing else is controlled (the kernel runs this as deferred
    /// work right after the delete; here it runs at once).
    pub(super) fn flush_nodest(&mut self) {
        let victims: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.n_control == 0)
            .filter(|c| self.dests.get(&c.dest).is_none_or(|d| !d.available))
            .map(|c| c.id)
            .collect();
        for id in victims {
            let Some(c) = self.conns.remove(id) else {
                continue;
            };
            self.unbind(&c);
            if let Some(t) = c.control {
                let drop_tpl = self.conns.get(t).is_some_and(|tc| tc.n_control == 0);
                if drop_tpl {
                    self.reap(t);
                }
            }
        }
    }

    pub(super) fn validate_dest(&self, svc: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
        let what = format!("destination {}:{} of {svc}", dest.addr, dest.port);
        if dest.weight > i32::MAX as u32 {
            return Err(LbError::Range(format!(
                "{what}: weight {} is negative as a kernel int",
                dest.weight
            )));
        }
        if dest.l_threshold > dest.u_threshold {
            return Err(LbError::Range(format!(
                "{what}: lower threshold {} is above upper threshold {}",
                dest.l_threshold, dest.u_threshold
            )));
        }
        if self.cfg.profile == Profile::P2026 && dest.u_threshold > i32::MAX as u32 {
            return Err(LbError::Invalid(format!(
                "{what}: upper threshold {} exceeds INT_MAX",
                dest.u_threshold
            )));
        }
        if dest.method == ForwardMethod::Tunnel && dest.tun_type == Encap::Gue && dest.tun_port == 0
        {
            return Err(LbError::Invalid(format!("{what}: GUE tunnel needs a port")));
        }
        if family_of(dest.addr) != service_family(svc) && dest.method != ForwardMethod::Tunnel {
            return Err(LbError::Invalid(format!(
                "{what}: only tunnelling may mix address families"
            )));
        }
        let bad_addr = match dest.addr {
            IpAddr::V4(a) => a.is_unspecified() || a.is_broadcast() || a.is_multicast(),
            IpAddr::V6(a) => {
                a.is_unspecified() || a.is_multicast() || (a.segments()[0] & 0xffc0) == 0xfe80
            }
        };
        if bad_addr {
            return Err(LbError::Invalid(format!("{what}: not a unicast address")));
        }
        Ok(())
    }

    pub(super) fn find_dest(&self, svc: &ServiceKey, addr: IpAddr, port: u16) -> Option<DestId> {
        let s = self.services.get(svc)?;
        s.order.iter().copied().find(|id| {
            self.dests
                .get(id)
                .is_some_and(|d| d.config.addr == addr && d.config.port == port)
        })
    }

    pub(super) fn unlink_dest(&mut self, key: &ServiceKey, id: DestId) {
        let Some(order) = self.services.get(key).map(|s| s.order.clone()) else {
            return;
        };
        let before = self.views(&order);
        let after_order: Vec<DestId> = order.into_iter().filter(|&d| d != id).collect();
        let after = self.views(&after_order);
        if let Some(s) = self.services.get_mut(key) {
            s.order = after_order;
            // The kernel ignores the hook's result; a failed mh rebuild keeps the old table.
            let _ = s.sched.on_del(&before, &after, id);
        }
        self.move_to_trash(id);
        self.refresh_views(key);
    }

    /// Adds a destination (reviving it from the trash if it is there), at the list head.
    pub(super) fn add_dest_to(
        &mut self,
        svc: &ServiceKey,
        dest: &DestConfig,
    ) -> Result<(), LbError> {
        if !self.services.contains_key(svc) {
            return Err(lerr_svc(svc));
        }
        self.validate_dest(svc, dest)?;
        if self.find_dest(svc, dest.addr, dest.port).is_some() {
            return Err(LbError::Exists(format!(
                "destination {}:{} of {svc}",
                dest.addr, dest.port
            )));
        }
        let revived = self.trash.iter().copied().find(|id| {
            self.dests.get(id).is_some_and(|d| {
                d.svc == *svc && d.config.addr == dest.addr && d.config.port == dest.port
            })
        });
        let weight = i32::try_from(dest.weight).unwrap_or(i32::MAX);
        let id = match revived {
            Some(id) => {
                self.trash.retain(|&t| t != id);
                if let Some(d) = self.dests.get_mut(&id) {
                    let old = (d.config.u_threshold, d.config.l_threshold);
                    d.config = dest.clone();
                    if weight != 0 {
                        d.last_weight = weight;
                    }
                    d.available = true;
                    d.idle_start_ms = None;
                    // Revival goes through the same update path as an edit.
                    update_overload_on_edit(self.cfg.profile, d, old);
                }
                id
            }
            None => {
                let id = DestId(self.next_dest);
                self.next_dest += 1;
                self.dests.insert(
                    id,
                    Dest {
                        svc: *svc,
                        config: dest.clone(),
                        last_weight: weight,
                        active: 0,
                        total: 0,
                        persist: 0,
                        overloaded: false,
                        available: true,
                        stats: Stats::default(),
                        est: Estimator::default(),
                        idle_start_ms: None,
                        slot: 0,
                    },
                );
                id
            }
        };
        let order = {
            let s = self.services.get_mut(svc).ok_or_else(|| lerr_svc(svc))?;
            s.order.insert(0, id);
            s.order.clone()
        };
        let views = self.views(&order);
        if let Some(s) = self.services.get_mut(svc) {
            let _ = s.sched.on_add(&views);
        }
        self.refresh_views(svc);
        Ok(())
    }

    /// Edits a destination's weight, thresholds and forwarding settings.
    pub(super) fn edit_dest_of(
        &mut self,
        svc: &ServiceKey,
        dest: &DestConfig,
    ) -> Result<(), LbError> {
        if !self.services.contains_key(svc) {
            return Err(lerr_svc(svc));
        }
        self.validate_dest(svc, dest)?;
        let id = self.find_dest(svc, dest.addr, dest.port).ok_or_else(|| {
            // The kernel says ENOENT here; LbError has no such variant for destinations and
            // the kernel backend maps it to NotFound too, so both dataplanes agree.
            LbError::NotFound(format!("destination {}:{} of {svc}", dest.addr, dest.port))
        })?;
        let profile = self.cfg.profile;
        if let Some(d) = self.dests.get_mut(&id) {
            let old = (d.config.u_threshold, d.config.l_threshold);
            d.config = dest.clone();
            let w = d.weight();
            if w != 0 {
                d.last_weight = w;
            }
            update_overload_on_edit(profile, d, old);
        }
        let order = self
            .services
            .get(svc)
            .map(|s| s.order.clone())
            .unwrap_or_default();
        let views = self.views(&order);
        if let Some(s) = self.services.get_mut(svc) {
            let _ = s.sched.on_edit(&views);
        }
        self.refresh_views(svc);
        Ok(())
    }

    /// Unlinks a destination into the trash.
    pub(super) fn delete_dest_of(
        &mut self,
        svc: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), LbError> {
        if !self.services.contains_key(svc) {
            return Err(lerr_svc(svc));
        }
        let id = self
            .find_dest(svc, addr, port)
            .ok_or_else(|| LbError::NotFound(format!("destination {addr}:{port} of {svc}")))?;
        self.unlink_dest(svc, id);
        if self.cfg.expire_nodest_conn {
            self.flush_nodest();
        }
        Ok(())
    }
}
