//! The load-balancer model shared by both dataplanes (kernel IPVS and the userspace engine),
//! the lab files and `lvslab ipvsadm`.
//!
//! Field meanings follow the kernel's IPVS objects (see `docs/ipvs-behaviour.md`): a virtual
//! service is keyed by protocol + address + port or by firewall mark, and owns an ordered
//! list of destinations (real servers). Numbers use the kernel's units: timeouts in seconds,
//! weights as non-negative integers, thresholds as connection counts (0 = off).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use crate::vocab::Encap;
use serde::{Deserialize, Serialize};

/// Transport protocol of a virtual service (`-t`, `-u`, `--sctp-service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// IANA protocol number, as IPVS stores it.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name ipvsadm prints in listings (`TCP`, `UDP`, `SCTP`).
    pub fn listing_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// Address family of a firewall-mark service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    Inet,
    Inet6,
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServiceKey {
    /// `-t/-u VIP:PORT`
    Addr {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    /// `-f MARK`
    Fwmark { family: Family, mark: u32 },
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr: IpAddr::V6(a),
                port,
            } => write!(f, "{} [{}]:{}", protocol.listing_name(), a, port),
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "{} {}:{}", protocol.listing_name(), addr, port),
            ServiceKey::Fwmark { family, mark } => match family {
                Family::Inet => write!(f, "FWM {mark}"),
                Family::Inet6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}

/// The kernel's in-tree schedulers (plus `none`). Names are what `-s` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sed,
    Nq,
    Fo,
    Ovf,
    Twos,
    Dh,
    Sh,
    Mh,
    Lblc,
    Lblcr,
    None,
}

impl Scheduler {
    pub const ALL: [Scheduler; 15] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Twos,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Mh,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Twos => "twos",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Mh => "mh",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::None => "none",
        }
    }

    /// Whether the same inputs always give the same pick (everything but `twos`).
    pub fn is_deterministic(self) -> bool {
        !matches!(self, Scheduler::Twos)
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown scheduler name; lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheduler `{0}`: expected one of rr, wrr, lc, wlc, sed, nq, fo, ovf, twos, dh, sh, mh, lblc, lblcr, none")]
pub struct UnknownScheduler(pub String);

impl FromStr for Scheduler {
    type Err = UnknownScheduler;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheduler::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownScheduler(s.to_string()))
    }
}

/// Service flags (`IP_VS_SVC_F_*`). `HASHED` is internal to the kernel and not modelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceFlags {
    /// `-p`: persistence templates.
    pub persistent: bool,
    /// `-O` / `--ops`: one-packet scheduling (UDP only).
    pub one_packet: bool,
    /// `-b sh-fallback` / `mh-fallback` (SCHED1).
    pub sched1: bool,
    /// `-b sh-port` / `mh-port` (SCHED2).
    pub sched2: bool,
    /// SCHED3: unused by in-tree schedulers, carried for fidelity.
    pub sched3: bool,
}

impl ServiceFlags {
    pub const PERSISTENT: u32 = 0x0001;
    pub const HASHED: u32 = 0x0002;
    pub const ONEPACKET: u32 = 0x0004;
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;

    pub fn bits(self) -> u32 {
        let mut b = 0;
        if self.persistent {
            b |= Self::PERSISTENT;
        }
        if self.one_packet {
            b |= Self::ONEPACKET;
        }
        if self.sched1 {
            b |= Self::SCHED1;
        }
        if self.sched2 {
            b |= Self::SCHED2;
        }
        if self.sched3 {
            b |= Self::SCHED3;
        }
        b
    }

    /// Reads kernel flag bits; `HASHED` and unknown bits are ignored.
    pub fn from_bits(b: u32) -> Self {
        ServiceFlags {
            persistent: b & Self::PERSISTENT != 0,
            one_packet: b & Self::ONEPACKET != 0,
            sched1: b & Self::SCHED1 != 0,
            sched2: b & Self::SCHED2 != 0,
            sched3: b & Self::SCHED3 != 0,
        }
    }
}

/// A virtual service's configuration, as `-A`/`-E` set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub key: ServiceKey,
    pub scheduler: Scheduler,
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (`-p [timeout]`; ipvsadm sends 360 when none is given, whatever its man page says).
    pub timeout: u32,
    /// Persistence netmask: for IPv4 a dotted mask as u32 in host order
    /// (e.g. `0xffff_ffff`); for IPv6 a prefix length.
    pub netmask: u32,
    /// Persistence engine name (`--pe sip`), if any.
    pub pe_name: Option<String>,
    /// FullNAT local-address pool (userspace dataplane; `--laddr`). Empty for other modes.
    pub local_addresses: Vec<IpAddr>,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults for everything but the key and scheduler.
    pub fn new(key: ServiceKey, scheduler: Scheduler) -> Self {
        ServiceConfig {
            key,
            scheduler,
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: None,
            local_addresses: Vec::new(),
        }
    }
}

/// Packet forwarding method of a destination (`conn_flags & 7`, plus FullNAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMethod {
    /// `-m`: masquerading (VS/NAT).
    Nat,
    /// Local node (the director is the real server).
    Local,
    /// `-i`: IP tunnelling (VS/TUN).
    Tunnel,
    /// `-g`: direct routing (VS/DR), ipvsadm's default.
    Dr,
    /// FullNAT (Alibaba/DPVS value 5; not in mainline — on the kernel dataplane it is
    /// realised as NAT plus an nft SNAT rule).
    FullNat,
}

impl ForwardMethod {
    /// The value stored in `conn_flags & IP_VS_CONN_F_FWD_MASK`.
    pub fn conn_flags(self) -> u32 {
        match self {
            ForwardMethod::Nat => 0,
            ForwardMethod::Local => 1,
            ForwardMethod::Tunnel => 2,
            ForwardMethod::Dr => 3,
            ForwardMethod::FullNat => 5,
        }
    }

    pub fn from_conn_flags(f: u32) -> Option<Self> {
        match f & 7 {
            0 => Some(ForwardMethod::Nat),
            1 => Some(ForwardMethod::Local),
            2 => Some(ForwardMethod::Tunnel),
            3 => Some(ForwardMethod::Dr),
            5 => Some(ForwardMethod::FullNat),
            _ => None,
        }
    }

    /// ipvsadm's listing column (`Masq`, `Local`, `Tunnel`, `Route`, `FullNat`).
    pub fn listing_name(self) -> &'static str {
        match self {
            ForwardMethod::Nat => "Masq",
            ForwardMethod::Local => "Local",
            ForwardMethod::Tunnel => "Tunnel",
            ForwardMethod::Dr => "Route",
            ForwardMethod::FullNat => "FullNat",
        }
    }
}

/// A destination's configuration, as `-a`/`-e` set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestConfig {
    pub addr: IpAddr,
    pub port: u16,
    pub method: ForwardMethod,
    /// 0 = quiesced; the kernel accepts 0..=i32::MAX.
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub tun_type: Encap,
    /// GUE destination port (network order on the wire; host order here).
    pub tun_port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` (csum, remcsum).
    pub tun_flags: u16,
}

impl DestConfig {
    /// A destination with ipvsadm's defaults (DR, weight 1, no thresholds).
    pub fn new(addr: IpAddr, port: u16) -> Self {
        DestConfig {
            addr,
            port,
            method: ForwardMethod::Dr,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: Encap::Ipip,
            tun_port: 0,
            tun_flags: 0,
        }
    }
}

/// Traffic counters with rates, as `ipvsadm --stats/--rate` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// A destination as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestStatus {
    pub config: DestConfig,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persist_conns: u32,
    pub stats: Stats,
}

/// A service as a listing reports it, destinations in the dataplane's own order
/// (kernel list order: newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub config: ServiceConfig,
    pub stats: Stats,
    pub dests: Vec<DestStatus>,
}

/// `IPVS_CMD_GET_INFO`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbInfo {
    /// e.g. `1.2.1` for the kernel.
    pub version: String,
    pub conn_table_size: u32,
    pub dataplane: String,
}

/// TCP, TCP-FIN and UDP timeouts in seconds (`--set`), 0 = leave unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// Errors a dataplane reports, mirroring the kernel's errnos so both backends agree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LbError {
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("value out of range: {0}")]
    Range(String),
    #[error("scheduler not found: {0}")]
    NoScheduler(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{op}: {detail}")]
    Io { op: String, detail: String },
}

impl LbError {
    /// The errno the kernel would return for this error.
    pub fn errno(&self) -> i32 {
        match self {
            LbError::Exists(_) => 17,      // EEXIST
            LbError::NotFound(_) => 3,     // ESRCH
            LbError::Invalid(_) => 22,     // EINVAL
            LbError::Range(_) => 34,       // ERANGE
            LbError::NoScheduler(_) => 2,  // ENOENT
            LbError::Unavailable(_) => 95, // EOPNOTSUPP
            LbError::Io { .. } => 5,       // EIO
        }
    }
}

/// What both dataplanes implement: the ipvsadm control surface.
pub trait LoadBalancer {
    fn info(&mut self) -> Result<LbInfo, LbError>;
    fn add_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError>;
    fn edit_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError>;
    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), LbError>;
    fn add_dest(&mut self, svc: &ServiceKey, dest: &DestConfig) -> Result<(), LbError>;
    fn edit_dest(&mut self, svc: &ServiceKey, dest: &DestConfig) -> Result<(), LbError>;
    fn delete_dest(&mut self, svc: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), LbError>;
    /// Every service with its destinations and counters.
    fn list(&mut self) -> Result<Vec<ServiceStatus>, LbError>;
    /// `-Z`: zero counters of one service, or of all.
    fn zero(&mut self, svc: Option<&ServiceKey>) -> Result<(), LbError>;
    /// `-C`: remove every service.
    fn flush(&mut self) -> Result<(), LbError>;
    fn timeouts(&mut self) -> Result<Timeouts, LbError>;
    fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), LbError>;
}
