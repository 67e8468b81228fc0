//! Scheduling a new connection: which service a packet is for, the scheduler's pick,
//! FullNAT local ports, and the new entry (with its persistence template when the service
//! is persistent).

use std::net::IpAddr;

use lvslab_spec::lb::{Family, ForwardMethod, Protocol, Scheduler, ServiceKey};

use crate::conn::{
    Conn, ConnFlags, ConnId, ConnKey, ConnState, ReplyKey, TcpState, INITIAL_TIMEOUT_MS,
};
use crate::sched::{DestId, DestView, SchedInput, SchedPacket};

use super::service_table::SvcParams;
use super::{
    family_of, mark_addr, mask_addr, Director, DropReason, FlowKey, FTP_DATA_PORT, FTP_PORT,
    UNPRIVILEGED_PORT_START,
};

pub(super) enum SchedOutcome {
    Conn(ConnId),
    Leave,
    Ignored,
    Drop(DropReason),
}

/// Whether a scheduler keeps destination ids across decisions (tables, caches) and so may
/// look up one that has since gone to the trash.
fn remembers_dest_ids(kind: Scheduler) -> bool {
    matches!(
        kind,
        Scheduler::Dh | Scheduler::Sh | Scheduler::Mh | Scheduler::Lblc | Scheduler::Lblcr
    )
}

impl Director {
    // ---- service lookup and scheduling ------------------------------------------------

    pub(super) fn find_service(&self, pkt: &FlowKey) -> Option<ServiceKey> {
        if pkt.fwmark != 0 {
            let k = ServiceKey::Fwmark {
                family: family_of(pkt.daddr),
                mark: pkt.fwmark,
            };
            if self.services.contains_key(&k) {
                return Some(k);
            }
        }
        let exact = ServiceKey::Addr {
            protocol: pkt.protocol,
            addr: pkt.daddr,
            port: pkt.dport,
        };
        if self.services.contains_key(&exact) {
            return Some(exact);
        }
        let ftp_ports = pkt.dport == FTP_DATA_PORT || pkt.dport >= UNPRIVILEGED_PORT_START;
        if pkt.protocol == Protocol::Tcp && ftp_ports {
            let ftp = ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: pkt.daddr,
                port: FTP_PORT,
            };
            if self.services.contains_key(&ftp) {
                return Some(ftp);
            }
        }
        let zero = ServiceKey::Addr {
            protocol: pkt.protocol,
            addr: pkt.daddr,
            port: 0,
        };
        self.services.contains_key(&zero).then_some(zero)
    }

    pub(super) fn run_scheduler(
        &mut self,
        key: &ServiceKey,
        pkt: &FlowKey,
        now_ms: u64,
    ) -> Option<DestId> {
        if self.services.get(key)?.views_profile != self.cfg.profile {
            self.refresh_views(key);
        }
        // Only schedulers that remember destinations by id can meet a trashed one; the list
        // scanners never look, so they skip the walk over the trash.
        let trashed = if remembers_dest_ids(self.services.get(key)?.sched.kind()) {
            self.trashed_views(key)
        } else {
            Vec::new()
        };
        let svc = self.services.get_mut(key)?;
        #[cfg(debug_assertions)]
        {
            // Every debug test run checks the cache against the slow, obviously right list.
            let fresh: Vec<DestView> = svc
                .order
                .iter()
                .filter_map(|id| self.dests.get(id).map(|d| d.view(*id, self.cfg.profile)))
                .collect();
            debug_assert_eq!(svc.views, fresh, "cached destination views went stale");
        }
        let sp = SchedPacket {
            protocol: pkt.protocol,
            saddr: pkt.saddr,
            sport: pkt.sport,
            daddr: pkt.daddr,
            dport: pkt.dport,
        };
        let exp_s = match svc.sched.kind() {
            Scheduler::Lblcr => self.cfg.lblcr_expiration_s,
            _ => self.cfg.lblc_expiration_s,
        };
        let input = SchedInput {
            dests: &svc.views,
            trashed: &trashed,
            pkt: &sp,
            flags: svc.config.flags,
            now_ms,
            profile: self.cfg.profile,
            cache_expiration_ms: u64::from(exp_s) * 1000,
        };
        svc.sched.schedule(&input, &mut *self.rng)
    }

    pub(super) fn alloc_local(
        &mut self,
        locals: &[IpAddr],
        proto: u8,
        daddr: IpAddr,
        dport: u16,
    ) -> Option<(IpAddr, u16)> {
        let (lo, hi) = self.cfg.fullnat_ports;
        if lo > hi {
            return None;
        }
        let span = u32::from(hi) - u32::from(lo) + 1;
        let fam = family_of(daddr);
        for n in 0..span {
            let port = (u32::from(lo) + (self.fullnat_cursor + n) % span) as u16;
            for &laddr in locals.iter().filter(|a| family_of(**a) == fam) {
                let rk = ReplyKey {
                    proto,
                    saddr: daddr,
                    sport: dport,
                    daddr: laddr,
                    dport: port,
                };
                if !self.conns.reply_key_in_use(&rk) {
                    self.fullnat_cursor = (self.fullnat_cursor + n + 1) % span;
                    return Some((laddr, port));
                }
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_conn(
        &mut self,
        now_ms: u64,
        key: ConnKey,
        dest: DestId,
        dport: u16,
        template: bool,
        one_packet: bool,
        control: Option<ConnId>,
        timeout_ms: u64,
        fullnat_svc: Option<&ServiceKey>,
    ) -> Result<ConnId, DropReason> {
        let Some(d) = self.dests.get(&dest) else {
            return Err(DropReason::DestUnavailable);
        };
        let method = d.config.method;
        let daddr = d.config.addr;
        let local = match fullnat_svc {
            Some(svc) if method == ForwardMethod::FullNat && !template => {
                // Borrowed out and put back so the pool is neither cloned per connection nor
                // aliased while the allocator mutates the director.
                let locals = self
                    .services
                    .get_mut(svc)
                    .map(|s| std::mem::take(&mut s.config.local_addresses))
                    .unwrap_or_default();
                let got = self.alloc_local(&locals, key.proto, daddr, dport);
                if let Some(s) = self.services.get_mut(svc) {
                    s.config.local_addresses = locals;
                }
                Some(got.ok_or(DropReason::NoLocalPort)?)
            }
            _ => None,
        };
        let state = if template {
            ConnState::Template
        } else if key.proto == Protocol::Tcp.number() {
            ConnState::Tcp(TcpState::None)
        } else {
            ConnState::Udp
        };
        let conn = Conn {
            id: ConnId(0),
            key,
            daddr,
            dport,
            local,
            method,
            flags: ConnFlags {
                inactive: true,
                no_output: !matches!(method, ForwardMethod::Nat | ForwardMethod::FullNat),
                template,
                one_packet,
            },
            state,
            timeout_ms,
            expires_ms: 0,
            control,
            n_control: 0,
            dest,
            assured: false,
            in_pkts: 0,
        };
        self.make_room();
        let id = self
            .conns
            .insert(conn, now_ms)
            .map_err(|_| DropReason::TableFull)?;
        self.bind(dest, template);
        Ok(id)
    }

    /// Applies the configured bound and, when the table is at it (or above it, after the
    /// bound was lowered), drops the oldest half-open entries, if allowed and there are
    /// any, until a new entry fits.
    fn make_room(&mut self) {
        self.conns.set_max_entries(self.cfg.max_conns);
        if !self.cfg.drop_half_open_when_full {
            return;
        }
        while self.conns.len() >= self.cfg.max_conns {
            let Some(victim) = self.half_open.pop_first() else {
                return;
            };
            self.reap(victim);
            self.half_open_evicted += 1;
        }
    }

    pub(super) fn conn_stats(&mut self, key: &ServiceKey, dest: DestId) {
        if let Some(s) = self.services.get_mut(key) {
            s.stats.conns += 1;
        }
        if let Some(d) = self.dests.get_mut(&dest) {
            d.stats.conns += 1;
        }
        self.total.conns += 1;
    }

    pub(super) fn schedule_new(
        &mut self,
        now_ms: u64,
        key: ServiceKey,
        pkt: &FlowKey,
    ) -> SchedOutcome {
        let Some(svc) = self.services.get(&key) else {
            return SchedOutcome::Ignored;
        };
        if pkt.sport == FTP_DATA_PORT {
            return SchedOutcome::Ignored;
        }
        let cfg = SvcParams::of(&svc.config);
        let (svc_port, fwmark) = match cfg.key {
            ServiceKey::Addr { port, .. } => (port, None),
            ServiceKey::Fwmark { family, mark } => (0, Some((family, mark))),
        };
        let one_packet = cfg.flags.one_packet && pkt.protocol == Protocol::Udp;
        let proto = pkt.protocol.number();
        let conn_key = ConnKey {
            proto,
            caddr: pkt.saddr,
            cport: pkt.sport,
            vaddr: pkt.daddr,
            vport: pkt.dport,
        };
        if cfg.flags.persistent {
            return self
                .schedule_persistent(now_ms, &cfg, svc_port, fwmark, pkt, conn_key, one_packet);
        }
        if fwmark.is_none() && pkt.dport != svc_port {
            // Port-zero (and FTP-captured) services only work when persistent.
            return SchedOutcome::Leave;
        }
        let Some(dest) = self.run_scheduler(&key, pkt, now_ms) else {
            return SchedOutcome::Leave;
        };
        let dport = match self.dests.get(&dest) {
            Some(d) if d.config.port != 0 => d.config.port,
            _ => pkt.dport,
        };
        match self.new_conn(
            now_ms,
            conn_key,
            dest,
            dport,
            false,
            one_packet,
            None,
            INITIAL_TIMEOUT_MS,
            Some(&key),
        ) {
            Ok(id) => {
                self.conn_stats(&key, dest);
                SchedOutcome::Conn(id)
            }
            Err(r) => SchedOutcome::Drop(r),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn schedule_persistent(
        &mut self,
        now_ms: u64,
        cfg: &SvcParams,
        svc_port: u16,
        fwmark: Option<(Family, u32)>,
        pkt: &FlowKey,
        conn_key: ConnKey,
        one_packet: bool,
    ) -> SchedOutcome {
        let snet = mask_addr(pkt.saddr, cfg.netmask);
        let exact_port = fwmark.is_none() && pkt.dport == svc_port;
        let tkey = match fwmark {
            Some((family, mark)) => ConnKey {
                proto: 0,
                caddr: snet,
                cport: 0,
                vaddr: mark_addr(family, mark),
                vport: 0,
            },
            None => ConnKey {
                proto: conn_key.proto,
                caddr: snet,
                cport: 0,
                vaddr: pkt.daddr,
                vport: if exact_port && svc_port != FTP_PORT {
                    svc_port
                } else {
                    0
                },
            },
        };
        let mut template = self.conns.lookup_template(&tkey);
        if let Some(t) = template {
            let usable = self
                .conns
                .get(t)
                .and_then(|c| self.dests.get(&c.dest))
                .is_some_and(|d| {
                    d.available && !(self.cfg.expire_quiescent_template && d.weight() == 0)
                });
            if !usable {
                self.conns.invalidate_template(t);
                template = None;
            }
        }
        let (tid, dest) = match template {
            Some(t) => match self.conns.get(t) {
                Some(c) => (t, c.dest),
                None => return SchedOutcome::Leave,
            },
            None => {
                let Some(dest) = self.run_scheduler(&cfg.key, pkt, now_ms) else {
                    return SchedOutcome::Leave;
                };
                let tport = match self.dests.get(&dest) {
                    Some(d) if exact_port && svc_port != FTP_PORT => d.config.port,
                    _ => 0,
                };
                let timeout = u64::from(cfg.timeout) * 1000;
                match self.new_conn(now_ms, tkey, dest, tport, true, false, None, timeout, None) {
                    Ok(t) => (t, dest),
                    Err(r) => return SchedOutcome::Drop(r),
                }
            }
        };
        let dport = match self.dests.get(&dest) {
            Some(d) if pkt.dport == svc_port && d.config.port != 0 => d.config.port,
            _ => pkt.dport,
        };
        let res = self.new_conn(
            now_ms,
            conn_key,
            dest,
            dport,
            false,
            one_packet,
            Some(tid),
            INITIAL_TIMEOUT_MS,
            Some(&cfg.key),
        );
        // Releasing the template re-arms it: templates live per new connection, not per packet.
        self.conns.rearm(tid, now_ms);
        match res {
            Ok(id) => {
                self.conn_stats(&cfg.key, dest);
                SchedOutcome::Conn(id)
            }
            Err(r) => SchedOutcome::Drop(r),
        }
    }
}
