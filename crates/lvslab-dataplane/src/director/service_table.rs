//! The service table: the [`LoadBalancer`] calls ipvsadm's commands arrive through
//! (services here, destinations delegated to [`super::destinations`], the listing to
//! [`super::stats`]) and the state-timeout table.

use std::net::IpAddr;

use lvslab_spec::lb::{
    DestConfig, Family, LbError, LbInfo, LoadBalancer, ServiceConfig, ServiceFlags, ServiceKey,
    ServiceStatus, Stats, Timeouts,
};

use crate::conn::TcpState;
use crate::sched::{DestId, DestView, Profile, SchedState};

use super::stats::Estimator;
use super::{lerr_svc, service_family, Director};

/// Kernel HZ on Debian amd64: bounds the settable timeouts (`INT_MAX / HZ` seconds).
const HZ: u32 = 250;

pub(super) struct Service {
    pub(super) config: ServiceConfig,
    pub(super) order: Vec<DestId>,
    /// What the schedulers see, parallel to `order`. Rebuilt on configuration changes and
    /// patched in place whenever a destination's counters or OVERLOAD flag move, so a
    /// decision reads live counters without rebuilding the list.
    pub(super) views: Vec<DestView>,
    /// Profile the `overhead` figures in `views` were computed under (`config_mut` may
    /// change it at any time).
    pub(super) views_profile: Profile,
    pub(super) sched: SchedState,
    pub(super) stats: Stats,
    pub(super) est: Estimator,
}

/// Timeouts per state, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TimeoutTable {
    pub(super) tcp: [u64; 11],
    pub(super) udp: u64,
}

impl Default for TimeoutTable {
    fn default() -> Self {
        let mut tcp = [0; 11];
        for s in TcpState::ALL {
            tcp[s.index()] = u64::from(s.default_timeout_s()) * 1000;
        }
        TimeoutTable { tcp, udp: 300_000 }
    }
}

/// The parts of a service's configuration a new connection needs (copied instead of
/// cloning the whole configuration, which owns heap data, per decision).
#[derive(Debug, Clone, Copy)]
pub(super) struct SvcParams {
    pub(super) key: ServiceKey,
    pub(super) flags: ServiceFlags,
    pub(super) netmask: u32,
    pub(super) timeout: u32,
}

impl SvcParams {
    pub(super) fn of(c: &ServiceConfig) -> Self {
        SvcParams {
            key: c.key,
            flags: c.flags,
            netmask: c.netmask,
            timeout: c.timeout,
        }
    }
}

impl Director {
    fn validate_service(&self, svc: &ServiceConfig) -> Result<(), LbError> {
        if service_family(&svc.key) == Family::Inet6 && !(1..=128).contains(&svc.netmask) {
            return Err(LbError::Invalid(format!(
                "service {}: IPv6 persistence netmask must be a prefix length 1..128, got {}",
                svc.key, svc.netmask
            )));
        }
        if let Some(pe) = &svc.pe_name {
            if pe != "sip" {
                return Err(LbError::NoScheduler(format!("persistence engine `{pe}`")));
            }
        }
        Ok(())
    }
}

impl LoadBalancer for Director {
    fn info(&mut self) -> Result<LbInfo, LbError> {
        Ok(LbInfo {
            version: "1.2.1".to_string(),
            conn_table_size: 4096,
            dataplane: "userspace".to_string(),
        })
    }

    fn add_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError> {
        if self.services.contains_key(&svc.key) {
            return Err(LbError::Exists(format!("service {}", svc.key)));
        }
        self.validate_service(svc)?;
        let sched = SchedState::init(svc.scheduler, &[], self.now_ms)
            .map_err(|e| LbError::Invalid(format!("service {}: {e}", svc.key)))?;
        self.services.insert(
            svc.key,
            Service {
                config: svc.clone(),
                order: Vec::new(),
                views: Vec::new(),
                views_profile: self.cfg.profile,
                sched,
                stats: Stats::default(),
                est: Estimator::default(),
            },
        );
        Ok(())
    }

    fn edit_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError> {
        if !self.services.contains_key(&svc.key) {
            return Err(lerr_svc(&svc.key));
        }
        self.validate_service(svc)?;
        let order = self
            .services
            .get(&svc.key)
            .map(|s| s.order.clone())
            .unwrap_or_default();
        let views = self.views(&order);
        let now = self.now_ms;
        let s = self
            .services
            .get_mut(&svc.key)
            .ok_or_else(|| lerr_svc(&svc.key))?;
        if s.sched.kind() != svc.scheduler {
            s.sched = SchedState::init(svc.scheduler, &views, now)
                .map_err(|e| LbError::Invalid(format!("service {}: {e}", svc.key)))?;
        }
        s.config = svc.clone();
        Ok(())
    }

    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), LbError> {
        let s = self.services.remove(key).ok_or_else(|| lerr_svc(key))?;
        for id in s.order {
            self.move_to_trash(id);
        }
        if self.cfg.expire_nodest_conn {
            self.flush_nodest();
        }
        Ok(())
    }

    fn add_dest(&mut self, svc: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
        self.add_dest_to(svc, dest)
    }

    fn edit_dest(&mut self, svc: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
        self.edit_dest_of(svc, dest)
    }

    fn delete_dest(&mut self, svc: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), LbError> {
        self.delete_dest_of(svc, addr, port)
    }

    fn list(&mut self) -> Result<Vec<ServiceStatus>, LbError> {
        Ok(self.listing())
    }

    fn zero(&mut self, svc: Option<&ServiceKey>) -> Result<(), LbError> {
        self.zero_counters(svc)
    }

    fn flush(&mut self) -> Result<(), LbError> {
        let keys: Vec<ServiceKey> = self.services.keys().copied().collect();
        for k in keys {
            self.delete_service(&k)?;
        }
        Ok(())
    }

    fn timeouts(&mut self) -> Result<Timeouts, LbError> {
        let s = |ms: u64| u32::try_from(ms / 1000).unwrap_or(u32::MAX);
        Ok(Timeouts {
            tcp: s(self.timeouts.tcp[TcpState::Established.index()]),
            tcp_fin: s(self.timeouts.tcp[TcpState::FinWait.index()]),
            udp: s(self.timeouts.udp),
        })
    }

    fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), LbError> {
        let max = i32::MAX as u32 / HZ;
        for (name, v) in [("tcp", t.tcp), ("tcpfin", t.tcp_fin), ("udp", t.udp)] {
            if v > max {
                return Err(LbError::Invalid(format!(
                    "timeout {name} {v} s exceeds {max} s"
                )));
            }
        }
        if t.tcp != 0 {
            self.timeouts.tcp[TcpState::Established.index()] = u64::from(t.tcp) * 1000;
        }
        if t.tcp_fin != 0 {
            self.timeouts.tcp[TcpState::FinWait.index()] = u64::from(t.tcp_fin) * 1000;
        }
        if t.udp != 0 {
            self.timeouts.udp = u64::from(t.udp) * 1000;
        }
        Ok(())
    }
}
