//! The userspace director's brain: services, destinations (newest first), the trash, scheduler
//! states and the connection table, with the kernel's configuration errors and its per-packet
//! decisions. Pure: no I/O, time is passed in by the caller (milliseconds).
//!
//! Kernel rules followed (see `docs/ipvs-behaviour.md`): service lookup order fwmark → exact →
//! FTP port 21 → port 0; only TCP SYN (not RST) or any UDP datagram creates entries; no
//! destination → ICMP port unreachable (except FTP-captured ports, which go to the local stack);
//! a deleted destination's entries drop packets (or are expired with `expire_nodest_conn`);
//! SYN on a TIME_WAIT/CLOSE entry reschedules (`conn_reuse_mode`); persistence templates are
//! keyed by the masked client address and re-armed per new connection; destination counters and
//! the OVERLOAD flag follow the selected [`Profile`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_spec::lb::{
    DestConfig, DestStatus, Encap, Family, ForwardMethod, LbError, LbInfo, LoadBalancer, Protocol,
    Scheduler, ServiceConfig, ServiceFlags, ServiceKey, ServiceStatus, Stats, Timeouts,
};

use crate::conn::fasthash::FastMap;
use crate::conn::tcp::next_state;
use crate::conn::{
    Conn, ConnFlags, ConnId, ConnKey, ConnState, ConnTable, ReplyKey, TableDir, TcpFlags, TcpState,
    INITIAL_TIMEOUT_MS,
};
use crate::sched::{
    overhead, DestId, DestView, Profile, RandomSource, SchedInput, SchedPacket, SchedState,
    SeededRng,
};

/// FTP control port: services on it capture data connections (trap 23).
const FTP_PORT: u16 = 21;
/// FTP active-data source port: never scheduled.
const FTP_DATA_PORT: u16 = 20;
/// First port that needs no privilege (`ip_unprivileged_port_start` default).
const UNPRIVILEGED_PORT_START: u16 = 1024;
/// The trash is swept every half period; entries go after a full idle period.
const DEST_TRASH_PERIOD_MS: u64 = 120_000;
/// Kernel HZ on Debian amd64: bounds the settable timeouts (`INT_MAX / HZ` seconds).
const HZ: u32 = 250;

/// Director-wide settings: the behaviour profile and the IPVS sysctls that change decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorConfig {
    /// Kernel generation to imitate (default: Debian 6.1.192 = [`Profile::P2026`]).
    pub profile: Profile,
    /// `conn_reuse_mode` (default 1): bit 0x1 reschedules SYN on TIME_WAIT/CLOSE entries,
    /// 0x2 also on FIN_WAIT entries of DR/TUN connections; 0 disables all SYN rescheduling.
    pub conn_reuse_mode: u8,
    /// `expire_nodest_conn` (default off).
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template` (default off).
    pub expire_quiescent_template: bool,
    /// `sloppy_tcp` (default off): any non-RST segment may create an entry.
    pub sloppy_tcp: bool,
    /// `secure_tcp` (0..3); 3 selects the secure state tables (2 would only do so under memory
    /// pressure, which a userspace director does not have).
    pub secure_tcp: u8,
    /// `nat_icmp_send` (default off).
    pub nat_icmp_send: bool,
    /// `lblc_expiration`, seconds (default 24 h).
    pub lblc_expiration_s: u32,
    /// `lblcr_expiration`, seconds (default 24 h).
    pub lblcr_expiration_s: u32,
    /// Bound on connection entries (templates included).
    pub max_conns: usize,
    /// FullNAT local port range, inclusive.
    pub fullnat_ports: (u16, u16),
    /// Seed of the default random source (`twos`).
    pub rng_seed: u64,
}

impl Default for DirectorConfig {
    fn default() -> Self {
        DirectorConfig {
            profile: Profile::P2026,
            conn_reuse_mode: 1,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
            secure_tcp: 0,
            nat_icmp_send: false,
            lblc_expiration_s: 86_400,
            lblcr_expiration_s: 86_400,
            max_conns: 1 << 20,
            fullnat_ports: (1024, 65535),
            rng_seed: 0x1b5_2026,
        }
    }
}

/// The parts of a packet the director decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Source address.
    pub saddr: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub daddr: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// TCP flags (ignored for other protocols).
    pub tcp_flags: TcpFlags,
    /// Firewall mark of the packet (0 = none).
    pub fwmark: u32,
    /// IP length of the packet, for byte counters.
    pub len: u32,
}

/// Where and how to send a request packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The connection entry (already destroyed again for one-packet scheduling).
    pub conn: ConnId,
    /// Real-server address.
    pub daddr: IpAddr,
    /// Real-server port (NAT/FullNAT rewrite the destination port to it).
    pub dport: u16,
    /// Forwarding method.
    pub method: ForwardMethod,
    /// Tunnel encapsulation (TUN only).
    pub tun_type: Encap,
    /// GUE port (TUN/GUE only).
    pub tun_port: u16,
    /// Tunnel flags (checksum options).
    pub tun_flags: u16,
    /// FullNAT source to use toward the real server.
    pub fullnat: Option<(IpAddr, u16)>,
    /// Whether this was a one-packet-scheduling datagram.
    pub one_packet: bool,
}

/// Why the director dropped a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The entry's destination was deleted (in the trash) and `expire_nodest_conn` is off.
    DestUnavailable,
    /// The connection table is full.
    TableFull,
    /// FullNAT: no free local address/port for this real server.
    NoLocalPort,
}

/// The director's answer for a packet sent to a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit to a real server.
    Forward(Forward),
    /// Not IPVS traffic (no service, non-SYN without entry, FTP-captured port): local stack.
    NotOurs,
    /// Answer with ICMP port unreachable (type 3 code 3 / ICMPv6 1/4) and drop.
    Reject,
    /// Drop silently.
    Drop(DropReason),
}

/// The director's answer for a packet coming from a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyVerdict {
    /// Rewrite and send to the client.
    Reply {
        /// The connection entry.
        conn: ConnId,
        /// New source: the virtual address and port.
        src: (IpAddr, u16),
        /// New destination (FullNAT: the client); `None` keeps the destination.
        dst: Option<(IpAddr, u16)>,
    },
    /// No entry: forward untouched.
    NoConn,
    /// No entry and `nat_icmp_send`: answer with ICMP port unreachable and drop.
    Reject,
}

/// Rate estimator state (kernel `ip_vs_est`): EWMA over 2-second samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Estimator {
    last: Stats,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

/// Sampling period of the rate estimator.
const EST_PERIOD_MS: u64 = 2_000;

impl Estimator {
    /// One 2-second sample: packets/conns are kept as rate·2^10, bytes as rate·2^5, each
    /// moving a quarter of the way to the new sample.
    fn sample(&mut self, now: &Stats) {
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
    fn report(&self, stats: &mut Stats) {
        let r = |e: i64, add: i64, shift: u32| u64::try_from((e + add) >> shift).unwrap_or(0);
        stats.cps = r(self.cps, 0x1ff, 10);
        stats.inpps = r(self.inpps, 0x1ff, 10);
        stats.outpps = r(self.outpps, 0x1ff, 10);
        stats.inbps = r(self.inbps, 0xf, 5);
        stats.outbps = r(self.outbps, 0xf, 5);
    }
}

#[derive(Debug, Clone)]
struct Dest {
    svc: ServiceKey,
    config: DestConfig,
    last_weight: i32,
    active: u32,
    total: u32,
    persist: u32,
    overloaded: bool,
    available: bool,
    stats: Stats,
    est: Estimator,
    idle_start_ms: Option<u64>,
    /// Index of this destination's entry in its service's `views` (meaningful only while
    /// linked; checked against the entry's id before use).
    slot: usize,
}

impl Dest {
    /// What a scheduler may see of this destination.
    fn view(&self, id: DestId, profile: Profile) -> DestView {
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

    fn weight(&self) -> i32 {
        i32::try_from(self.config.weight).unwrap_or(i32::MAX)
    }

    fn low_mark(&self) -> u32 {
        let (u, l) = (self.config.u_threshold, self.config.l_threshold);
        if l != 0 {
            l
        } else {
            u - (u >> 2)
        }
    }

    fn status(&self) -> DestStatus {
        DestStatus {
            config: self.config.clone(),
            active_conns: self.active,
            inactive_conns: self.total.saturating_sub(self.active),
            persist_conns: self.persist,
            stats: self.stats,
        }
    }
}

struct Service {
    config: ServiceConfig,
    order: Vec<DestId>,
    /// What the schedulers see, parallel to `order`. Rebuilt on configuration changes and
    /// patched in place whenever a destination's counters or OVERLOAD flag move, so a
    /// decision reads live counters without rebuilding the list.
    views: Vec<DestView>,
    /// Profile the `overhead` figures in `views` were computed under (`config_mut` may
    /// change it at any time).
    views_profile: Profile,
    sched: SchedState,
    stats: Stats,
    est: Estimator,
}

/// Timeouts per state, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeoutTable {
    tcp: [u64; 11],
    udp: u64,
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
struct SvcParams {
    key: ServiceKey,
    flags: ServiceFlags,
    netmask: u32,
    timeout: u32,
}

impl SvcParams {
    fn of(c: &ServiceConfig) -> Self {
        SvcParams {
            key: c.key,
            flags: c.flags,
            netmask: c.netmask,
            timeout: c.timeout,
        }
    }
}

enum SchedOutcome {
    Conn(ConnId),
    Leave,
    Ignored,
    Drop(DropReason),
}

/// The userspace IPVS director.
pub struct Director {
    cfg: DirectorConfig,
    services: BTreeMap<ServiceKey, Service>,
    dests: FastMap<DestId, Dest>,
    trash: Vec<DestId>,
    trash_timer_ms: Option<u64>,
    next_dest: u32,
    conns: ConnTable,
    timeouts: TimeoutTable,
    rng: Box<dyn RandomSource + Send>,
    total: Stats,
    total_est: Estimator,
    est_next_ms: u64,
    now_ms: u64,
    fullnat_cursor: u32,
}

impl Default for Director {
    fn default() -> Self {
        Director::new(DirectorConfig::default())
    }
}

fn lerr_svc(key: &ServiceKey) -> LbError {
    LbError::NotFound(format!("service {key}"))
}

/// Whether a scheduler keeps destination ids across decisions (tables, caches) and so may
/// look up one that has since gone to the trash.
fn remembers_dest_ids(kind: Scheduler) -> bool {
    matches!(
        kind,
        Scheduler::Dh | Scheduler::Sh | Scheduler::Mh | Scheduler::Lblc | Scheduler::Lblcr
    )
}

fn mask_addr(addr: IpAddr, netmask: u32) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & netmask)),
        IpAddr::V6(a) => {
            let bits = netmask.min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

fn mark_addr(family: Family, mark: u32) -> IpAddr {
    match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::from(mark)),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::from(u128::from(mark) << 96)),
    }
}

fn family_of(addr: IpAddr) -> Family {
    if addr.is_ipv4() {
        Family::Inet
    } else {
        Family::Inet6
    }
}

fn service_family(key: &ServiceKey) -> Family {
    match key {
        ServiceKey::Addr { addr, .. } => family_of(*addr),
        ServiceKey::Fwmark { family, .. } => *family,
    }
}

fn add_in(stats: &mut Stats, len: u32) {
    stats.inpkts += 1;
    stats.inbytes += u64::from(len);
}

fn add_out(stats: &mut Stats, len: u32) {
    stats.outpkts += 1;
    stats.outbytes += u64::from(len);
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
    /// A director with no services.
    pub fn new(cfg: DirectorConfig) -> Self {
        let rng = Box::new(SeededRng::new(cfg.rng_seed));
        let conns = ConnTable::new(cfg.max_conns);
        Director {
            cfg,
            services: BTreeMap::new(),
            dests: FastMap::default(),
            trash: Vec::new(),
            trash_timer_ms: None,
            next_dest: 1,
            conns,
            timeouts: TimeoutTable::default(),
            rng,
            total: Stats::default(),
            total_est: Estimator::default(),
            est_next_ms: EST_PERIOD_MS,
            now_ms: 0,
            fullnat_cursor: 0,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &DirectorConfig {
        &self.cfg
    }

    /// Changes sysctl-like settings (the profile should be chosen before any traffic).
    pub fn config_mut(&mut self) -> &mut DirectorConfig {
        &mut self.cfg
    }

    /// Replaces the random source (`twos`), e.g. with a seeded one in tests.
    pub fn set_rng(&mut self, rng: Box<dyn RandomSource + Send>) {
        self.rng = rng;
    }

    /// The connection table (read-only), for listings such as `ipvsadm -Lnc`.
    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    /// Global counters (all services).
    pub fn total_stats(&self) -> Stats {
        self.total
    }

    /// Sets the clock the configuration calls use (lblc timers, trash) without other effect.
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// Destinations in the trash, as (service key, address, port).
    pub fn trash(&self) -> Vec<(ServiceKey, IpAddr, u16)> {
        self.trash
            .iter()
            .filter_map(|id| self.dests.get(id))
            .map(|d| (d.svc, d.config.addr, d.config.port))
            .collect()
    }

    /// Whether the OVERLOAD flag is set on a destination (invisible over netlink; exposed for
    /// tests and diagnostics).
    pub fn dest_overloaded(&self, svc: &ServiceKey, addr: IpAddr, port: u16) -> Option<bool> {
        let s = self.services.get(svc)?;
        s.order
            .iter()
            .filter_map(|id| self.dests.get(id))
            .find(|d| d.config.addr == addr && d.config.port == port)
            .map(|d| d.overloaded)
    }

    /// The scheduler state of a service (for inspection in tests).
    pub fn sched_state(&self, svc: &ServiceKey) -> Option<&SchedState> {
        self.services.get(svc).map(|s| &s.sched)
    }

    fn view(&self, id: DestId) -> Option<DestView> {
        self.dests.get(&id).map(|d| d.view(id, self.cfg.profile))
    }

    /// Recomputes a service's cached views from its destination order (configuration
    /// changes: O(destinations), never per packet).
    fn refresh_views(&mut self, key: &ServiceKey) {
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
    fn sync_view(&mut self, id: DestId) {
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

    fn views(&self, order: &[DestId]) -> Vec<DestView> {
        order.iter().filter_map(|&id| self.view(id)).collect()
    }

    fn trashed_views(&self, key: &ServiceKey) -> Vec<DestView> {
        self.trash
            .iter()
            .filter(|id| self.dests.get(id).is_some_and(|d| d.svc == *key))
            .filter_map(|&id| self.view(id))
            .collect()
    }

    // ---- counters and the OVERLOAD flag -------------------------------------------------

    fn bind(&mut self, id: DestId, template: bool) {
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

    fn unbind(&mut self, c: &Conn) {
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

    fn reap(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(id) {
            self.unbind(&c);
        }
    }

    // ---- service lookup and scheduling ------------------------------------------------

    fn find_service(&self, pkt: &FlowKey) -> Option<ServiceKey> {
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

    fn run_scheduler(&mut self, key: &ServiceKey, pkt: &FlowKey, now_ms: u64) -> Option<DestId> {
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

    fn alloc_local(
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
    fn new_conn(
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
        let id = self
            .conns
            .insert(conn, now_ms)
            .map_err(|_| DropReason::TableFull)?;
        self.bind(dest, template);
        Ok(id)
    }

    fn conn_stats(&mut self, key: &ServiceKey, dest: DestId) {
        if let Some(s) = self.services.get_mut(key) {
            s.stats.conns += 1;
        }
        if let Some(d) = self.dests.get_mut(&dest) {
            d.stats.conns += 1;
        }
        self.total.conns += 1;
    }

    fn schedule_new(&mut self, now_ms: u64, key: ServiceKey, pkt: &FlowKey) -> SchedOutcome {
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
    fn schedule_persistent(
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
        // After 64 idle samples every rate has decayed to 0; a longer gap (clock jump) skips.
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

    fn sweep_trash(&mut self, now_ms: u64) {
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

    fn move_to_trash(&mut self, id: DestId) {
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
    fn flush_nodest(&mut self) {
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

    // ---- configuration helpers ----------------------------------------------------------

    fn validate_dest(&self, svc: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
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

    fn find_dest(&self, svc: &ServiceKey, addr: IpAddr, port: u16) -> Option<DestId> {
        let s = self.services.get(svc)?;
        s.order.iter().copied().find(|id| {
            self.dests
                .get(id)
                .is_some_and(|d| d.config.addr == addr && d.config.port == port)
        })
    }

    fn unlink_dest(&mut self, key: &ServiceKey, id: DestId) {
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

    fn edit_dest(&mut self, svc: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
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

    fn delete_dest(&mut self, svc: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), LbError> {
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

    fn list(&mut self) -> Result<Vec<ServiceStatus>, LbError> {
        Ok(self
            .services
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
            .collect())
    }

    fn zero(&mut self, svc: Option<&ServiceKey>) -> Result<(), LbError> {
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
