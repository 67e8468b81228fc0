//! The per-packet path: request lookups (with SYN rescheduling and unavailable
//! destinations), the TCP state machine and the active/inactive counters, replies, and
//! the timers.

use std::net::IpAddr;

use lvslab_spec::lb::{ForwardMethod, Protocol, Scheduler, ServiceKey};

use crate::conn::tcp::next_state;
use crate::conn::{Conn, ConnId, ConnKey, ConnState, ReplyKey, TableDir, TcpFlags, TcpState};

use super::destinations::DEST_TRASH_PERIOD_MS;
use super::scheduling::SchedOutcome;
use super::stats::{add_in, add_out};
use super::{Director, DropReason, FlowKey, Forward, ReplyVerdict, Verdict, FTP_PORT};

impl Director {
    fn assure_control(&mut self, id: ConnId) {
        if let Some(t) = self.conns.get(id).and_then(|c| c.control) {
            if let Some(tc) = self.conns.get_mut(t) {
                tc.assured = true;
            }
        }
    }

    /// Applies the protocol state machine to entry `id` for a packet in direction `output`.
    fn set_state(&mut self, id: ConnId, output: bool, flags: TcpFlags) {
        let secure = self.cfg.secure_tcp == 3;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        match c.state {
            ConnState::Tcp(cur) => {
                let mut dir = if output {
                    TableDir::Output
                } else {
                    TableDir::Input
                };
                if c.flags.no_output {
                    if output {
                        c.flags.no_output = false;
                    } else {
                        dir = TableDir::InputOnly;
                    }
                }
                let new = next_state(secure, dir, flags, cur);
                let mut became = None;
                if new != cur {
                    if !c.flags.inactive && !new.is_active() {
                        c.flags.inactive = true;
                        became = Some(false);
                    } else if c.flags.inactive && new.is_active() {
                        c.flags.inactive = false;
                        became = Some(true);
                    }
                }
                c.state = ConnState::Tcp(new);
                c.timeout_ms = self.timeouts.tcp[new.index()];
                if new != cur {
                    if matches!(new, TcpState::SynRecv | TcpState::SynAck) {
                        self.half_open.insert(id);
                    } else {
                        self.half_open.remove(&id);
                    }
                }
                let dest = c.dest;
                if let Some(d) = self.dests.get_mut(&dest) {
                    match became {
                        Some(true) => d.active += 1,
                        Some(false) => d.active = d.active.saturating_sub(1),
                        None => {}
                    }
                }
                if became.is_some() {
                    self.sync_view(dest);
                }
                if new != cur && new == TcpState::Established {
                    self.assure_control(id);
                }
            }
            ConnState::Udp => {
                c.timeout_ms = self.timeouts.udp;
                if output {
                    self.assure_control(id);
                }
            }
            ConnState::Template => {}
        }
    }

    fn is_new_conn_expected(&self, c: &Conn) -> bool {
        if c.control.is_some() {
            return false;
        }
        match c.state {
            ConnState::Tcp(s) => {
                s == TcpState::TimeWait
                    || s == TcpState::Close
                    || (self.cfg.conn_reuse_mode & 2 != 0
                        && s == TcpState::FinWait
                        && c.flags.no_output)
            }
            _ => false,
        }
    }

    /// Handles a packet addressed to the director (client → virtual service): finds or creates
    /// the connection entry, updates its state and counters, and says where it goes.
    pub fn lookup_or_schedule(&mut self, now_ms: u64, pkt: &FlowKey) -> Verdict {
        self.set_now(now_ms);
        let is_tcp = pkt.protocol == Protocol::Tcp;
        let key = ConnKey {
            proto: pkt.protocol.number(),
            caddr: pkt.saddr,
            cport: pkt.sport,
            vaddr: pkt.daddr,
            vport: pkt.dport,
        };
        let mut reap_after = Vec::new();
        let mut cp = self.conns.lookup_in(&key);

        if let Some(id) = cp {
            if self.cfg.conn_reuse_mode != 0 && is_tcp && pkt.tcp_flags.syn() {
                if let Some(c) = self.conns.get(id) {
                    let weight0 = self.dests.get(&c.dest).is_some_and(|d| d.weight() == 0);
                    let resched =
                        (self.cfg.expire_nodest_conn && weight0) || self.is_new_conn_expected(c);
                    if resched {
                        if c.n_control == 0 {
                            self.conns.expire_now(id, now_ms);
                            reap_after.push(id);
                        }
                        cp = None;
                    }
                }
            }
        }
        if let Some(id) = cp {
            let available = self
                .conns
                .get(id)
                .and_then(|c| self.dests.get(&c.dest))
                .is_some_and(|d| d.available);
            if !available {
                if self.cfg.expire_nodest_conn {
                    self.conns.expire_now(id, now_ms);
                    reap_after.push(id);
                    cp = None;
                } else {
                    return Verdict::Drop(DropReason::DestUnavailable);
                }
            }
        }

        let verdict = match cp {
            Some(id) => self.forward_on(now_ms, id, pkt),
            None => {
                let may_create = !is_tcp
                    || ((self.cfg.sloppy_tcp || pkt.tcp_flags.syn()) && !pkt.tcp_flags.rst());
                match self.find_service(pkt).filter(|_| may_create) {
                    None => Verdict::NotOurs,
                    Some(skey) => match self.schedule_new(now_ms, skey, pkt) {
                        SchedOutcome::Conn(id) => self.forward_on(now_ms, id, pkt),
                        SchedOutcome::Ignored => Verdict::NotOurs,
                        SchedOutcome::Drop(r) => Verdict::Drop(r),
                        SchedOutcome::Leave => {
                            let ftp_capture = matches!(skey, ServiceKey::Addr { port, .. } if port == FTP_PORT)
                                && pkt.dport != FTP_PORT;
                            if ftp_capture {
                                Verdict::NotOurs
                            } else {
                                Verdict::Reject
                            }
                        }
                    },
                }
            }
        };
        for id in reap_after {
            self.reap(id);
        }
        verdict
    }

    fn forward_on(&mut self, now_ms: u64, id: ConnId, pkt: &FlowKey) -> Verdict {
        let Some(c) = self.conns.get_mut(id) else {
            return Verdict::Drop(DropReason::DestUnavailable);
        };
        c.in_pkts += 1;
        let dest = c.dest;
        let one_packet = c.flags.one_packet;
        let (daddr, dport, method, local) = (c.daddr, c.dport, c.method, c.local);
        if let Some(d) = self.dests.get_mut(&dest) {
            if d.available {
                add_in(&mut d.stats, pkt.len);
                let svc = d.svc;
                if let Some(s) = self.services.get_mut(&svc) {
                    add_in(&mut s.stats, pkt.len);
                }
                add_in(&mut self.total, pkt.len);
            }
        }
        self.set_state(id, false, pkt.tcp_flags);
        self.conns.rearm(id, now_ms);
        let (tun_type, tun_port, tun_flags) = self
            .dests
            .get(&dest)
            .map(|d| (d.config.tun_type, d.config.tun_port, d.config.tun_flags))
            .unwrap_or_default();
        if one_packet {
            self.reap(id);
        }
        Verdict::Forward(Forward {
            conn: id,
            daddr,
            dport,
            method,
            tun_type,
            tun_port,
            tun_flags,
            fullnat: local,
            one_packet,
        })
    }

    /// Handles a packet coming from a real server (NAT/FullNAT reply path). `pkt` carries the
    /// packet's own addresses: source = real server, destination = client (NAT) or the
    /// director's local address (FullNAT).
    pub fn lookup_reply(&mut self, now_ms: u64, pkt: &FlowKey) -> ReplyVerdict {
        self.set_now(now_ms);
        let key = ReplyKey {
            proto: pkt.protocol.number(),
            saddr: pkt.saddr,
            sport: pkt.sport,
            daddr: pkt.daddr,
            dport: pkt.dport,
        };
        let Some(id) = self.conns.lookup_reply(&key) else {
            let rst = pkt.protocol == Protocol::Tcp && pkt.tcp_flags.rst();
            if self.cfg.nat_icmp_send && !rst && self.is_nat_real_server(pkt.saddr, pkt.sport) {
                return ReplyVerdict::Reject;
            }
            return ReplyVerdict::NoConn;
        };
        let Some(c) = self.conns.get(id) else {
            return ReplyVerdict::NoConn;
        };
        let (vaddr, vport, caddr, cport, method, dest) = (
            c.key.vaddr,
            c.key.vport,
            c.key.caddr,
            c.key.cport,
            c.method,
            c.dest,
        );
        if let Some(d) = self.dests.get_mut(&dest) {
            if d.available {
                add_out(&mut d.stats, pkt.len);
                let svc = d.svc;
                if let Some(s) = self.services.get_mut(&svc) {
                    add_out(&mut s.stats, pkt.len);
                }
                add_out(&mut self.total, pkt.len);
            }
        }
        self.set_state(id, true, pkt.tcp_flags);
        self.conns.rearm(id, now_ms);
        ReplyVerdict::Reply {
            conn: id,
            src: (vaddr, vport),
            dst: (method == ForwardMethod::FullNat).then_some((caddr, cport)),
        }
    }

    fn is_nat_real_server(&self, addr: IpAddr, port: u16) -> bool {
        self.services.values().any(|s| {
            s.order.iter().filter_map(|id| self.dests.get(id)).any(|d| {
                d.config.method == ForwardMethod::Nat
                    && d.config.addr == addr
                    && d.config.port == port
            })
        })
    }

    /// Runs every timer due by `now_ms`: connection expiry, lblc/lblcr cache GC, trash sweep.
    pub fn expire(&mut self, now_ms: u64) {
        self.set_now(now_ms);
        for c in self.conns.expire(now_ms) {
            self.unbind(&c);
        }
        let (lblc, lblcr) = (
            u64::from(self.cfg.lblc_expiration_s) * 1000,
            u64::from(self.cfg.lblcr_expiration_s) * 1000,
        );
        for s in self.services.values_mut() {
            let exp = if s.sched.kind() == Scheduler::Lblcr {
                lblcr
            } else {
                lblc
            };
            s.sched.tick(now_ms, exp);
        }
        self.run_estimators(now_ms);
        let mut sweeps = 0;
        while let Some(t) = self.trash_timer_ms.filter(|&t| t <= now_ms) {
            self.sweep_trash(t);
            sweeps += 1;
            let base = if sweeps >= 3 { now_ms } else { t };
            self.trash_timer_ms =
                (!self.trash.is_empty()).then_some(base.saturating_add(DEST_TRASH_PERIOD_MS / 2));
            // Three sweeps free anything idle; skip the rest of a long gap.
            if sweeps >= 3 {
                break;
            }
        }
    }
}
