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
//!
//! The parts, by job: [`service_table`] (the [`LoadBalancer`](lvslab_spec::lb::LoadBalancer) configuration calls and the
//! timeouts), [`destinations`] (destination lists, counters and the OVERLOAD flag, the
//! trash), [`scheduling`] (service lookup, scheduler runs, new entries and persistence
//! templates), [`connections`] (the per-packet path: lookups, the TCP state machine,
//! replies, expiry) and [`stats`] (rate estimation and the listing).

mod connections;
mod destinations;
mod scheduling;
mod service_table;
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_spec::lb::{Encap, Family, ForwardMethod, LbError, Protocol, ServiceKey, Stats};

use crate::conn::fasthash::FastMap;
use crate::conn::{ConnId, ConnTable, TcpFlags};
use crate::sched::{DestId, Profile, RandomSource, SchedState, SeededRng};

use destinations::Dest;
use service_table::{Service, TimeoutTable};
use stats::{Estimator, EST_PERIOD_MS};

/// FTP control port: services on it capture data connections (trap 23).
const FTP_PORT: u16 = 21;
/// FTP active-data source port: never scheduled.
const FTP_DATA_PORT: u16 = 20;
/// First port that needs no privilege (`ip_unprivileged_port_start` default).
const UNPRIVILEGED_PORT_START: u16 = 1024;

/// Default bound on connection entries: 2^18, some 85 MB of entries and their indexes
/// (about 330 bytes each; `conn_entry_size_is_reported` prints the entry's own size).
pub const DEFAULT_MAX_CONNS: usize = 1 << 18;

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
    /// Bound on connection entries (templates included). The kernel's table has no fixed
    /// bound and fails only when memory runs out; here the bound stands in for that, and
    /// a new entry beyond it is refused (`conn_table_full`) unless a half-open one can
    /// make room (see `drop_half_open_when_full`). Default [`DEFAULT_MAX_CONNS`].
    pub max_conns: usize,
    /// Whether a new entry at the bound takes the place of the oldest half-open one
    /// (SYN_RECV/SYNACK), as the kernel's `drop_entry` defence drops half-open entries under
    /// memory pressure (it picks them at random; here the oldest goes, which is the one
    /// least likely to complete). Keeps a SYN flood from locking legitimate clients out.
    /// Default on.
    pub drop_half_open_when_full: bool,
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
            max_conns: DEFAULT_MAX_CONNS,
            drop_half_open_when_full: true,
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

impl From<DropReason> for crate::packet::DropReason {
    fn from(reason: DropReason) -> Self {
        match reason {
            DropReason::DestUnavailable => crate::packet::DropReason::DestUnavailable,
            DropReason::TableFull => crate::packet::DropReason::ConnTableFull,
            DropReason::NoLocalPort => crate::packet::DropReason::NoLocalPort,
        }
    }
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
    /// TCP entries in SYN_RECV or SYNACK, oldest (lowest id) first: what a full table
    /// may drop to make room.
    half_open: BTreeSet<ConnId>,
    /// Half-open entries dropped to make room so far.
    half_open_evicted: u64,
}

impl Default for Director {
    fn default() -> Self {
        Director::new(DirectorConfig::default())
    }
}

fn lerr_svc(key: &ServiceKey) -> LbError {
    LbError::NotFound(format!("service {key}"))
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
            half_open: BTreeSet::new(),
            half_open_evicted: 0,
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

    /// Half-open entries dropped so far to make room in a full table.
    pub fn half_open_evicted(&self) -> u64 {
        self.half_open_evicted
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
}
