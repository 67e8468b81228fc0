//! IPVS generic netlink messages: the model turned into the exact attribute layout ipvsadm
//! 1.31 (libipvs) sends, and kernel replies turned back into the model.
//!
//! Byte orders are mixed on purpose, because the kernel reads them that way: address
//! family, protocol, fwmark, flags, weight, thresholds, timeouts and counters are in host
//! order; ports, the GUE tunnel port, addresses and the IPv4 persistence netmask are in
//! network order; the IPv6 netmask is a plain prefix length.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_spec::lb::{
    DestConfig, DestStatus, Encap, Family, ForwardMethod, LbInfo, Protocol, Scheduler,
    ServiceConfig, ServiceFlags, ServiceKey, ServiceStatus, Stats, Timeouts,
};

use crate::wire::{
    genl_message, Attr, AttrWriter, GenlMessage, WireError, GENL_ID_CTRL, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};

/// Name of the generic netlink family.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// Version carried in every genl header.
pub const IPVS_GENL_VERSION: u8 = 1;

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// Longest scheduler / persistence-engine name the kernel accepts (16 with the NUL).
pub const NAME_MAX: usize = 15;

/// `IPVS_CMD_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    /// Add a service.
    NewService = 1,
    /// Edit a service (also the reply to nothing; GET_SERVICE replies use `NewService`).
    SetService = 2,
    /// Delete a service.
    DelService = 3,
    /// Get one service or dump all.
    GetService = 4,
    /// Add a destination (also the command number of GET_DEST replies).
    NewDest = 5,
    /// Edit a destination.
    SetDest = 6,
    /// Delete a destination.
    DelDest = 7,
    /// Dump a service's destinations.
    GetDest = 8,
    /// Set timeouts (also the command number of GET_CONFIG replies).
    SetConfig = 12,
    /// Get timeouts.
    GetConfig = 13,
    /// Reply to GET_INFO.
    SetInfo = 14,
    /// Version and connection table size.
    GetInfo = 15,
    /// Zero counters.
    Zero = 16,
    /// Delete every service.
    Flush = 17,
}

/// Top-level attributes (`IPVS_CMD_ATTR_*`).
pub mod cmd_attr {
    /// Nested service.
    pub const SERVICE: u16 = 1;
    /// Nested destination.
    pub const DEST: u16 = 2;
    /// TCP timeout (u32 seconds).
    pub const TIMEOUT_TCP: u16 = 4;
    /// TCP FIN_WAIT timeout (u32 seconds).
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    /// UDP timeout (u32 seconds).
    pub const TIMEOUT_UDP: u16 = 6;
}

/// Service attributes (`IPVS_SVC_ATTR_*`).
pub mod svc_attr {
    /// u16 host order.
    pub const AF: u16 = 1;
    /// u16 host order.
    pub const PROTOCOL: u16 = 2;
    /// 16 bytes, network order.
    pub const ADDR: u16 = 3;
    /// u16 network order.
    pub const PORT: u16 = 4;
    /// u32 host order.
    pub const FWMARK: u16 = 5;
    /// NUL-terminated string.
    pub const SCHED_NAME: u16 = 6;
    /// `{u32 flags; u32 mask}` host order.
    pub const FLAGS: u16 = 7;
    /// u32 seconds.
    pub const TIMEOUT: u16 = 8;
    /// u32: IPv4 mask in network order, IPv6 prefix length.
    pub const NETMASK: u16 = 9;
    /// Nested 32-bit stats.
    pub const STATS: u16 = 10;
    /// NUL-terminated string.
    pub const PE_NAME: u16 = 11;
    /// Nested 64-bit stats.
    pub const STATS64: u16 = 12;
}

/// Destination attributes (`IPVS_DEST_ATTR_*`).
pub mod dest_attr {
    /// 16 bytes, network order.
    pub const ADDR: u16 = 1;
    /// u16 network order.
    pub const PORT: u16 = 2;
    /// u32 (`conn_flags & 7`).
    pub const FWD_METHOD: u16 = 3;
    /// u32 host order.
    pub const WEIGHT: u16 = 4;
    /// u32 host order.
    pub const U_THRESH: u16 = 5;
    /// u32 host order.
    pub const L_THRESH: u16 = 6;
    /// u32 (reply only).
    pub const ACTIVE_CONNS: u16 = 7;
    /// u32 (reply only).
    pub const INACT_CONNS: u16 = 8;
    /// u32 (reply only).
    pub const PERSIST_CONNS: u16 = 9;
    /// Nested 32-bit stats (reply only).
    pub const STATS: u16 = 10;
    /// u16 host order.
    pub const ADDR_FAMILY: u16 = 11;
    /// Nested 64-bit stats (reply only).
    pub const STATS64: u16 = 12;
    /// u8.
    pub const TUN_TYPE: u16 = 13;
    /// u16 network order.
    pub const TUN_PORT: u16 = 14;
    /// u16 host order.
    pub const TUN_FLAGS: u16 = 15;
}

/// Stats attributes (`IPVS_STATS_ATTR_*`), nested in service/dest STATS and STATS64.
pub mod stats_attr {
    /// New connections.
    pub const CONNS: u16 = 1;
    /// Packets in.
    pub const INPKTS: u16 = 2;
    /// Packets out.
    pub const OUTPKTS: u16 = 3;
    /// Bytes in (always 64-bit).
    pub const INBYTES: u16 = 4;
    /// Bytes out (always 64-bit).
    pub const OUTBYTES: u16 = 5;
    /// Connections per second.
    pub const CPS: u16 = 6;
    /// Packets in per second.
    pub const INPPS: u16 = 7;
    /// Packets out per second.
    pub const OUTPPS: u16 = 8;
    /// Bytes in per second.
    pub const INBPS: u16 = 9;
    /// Bytes out per second.
    pub const OUTBPS: u16 = 10;
    /// Alignment padding before 64-bit values; skipped.
    pub const PAD: u16 = 11;
}

/// Info attributes (`IPVS_INFO_ATTR_*`).
pub mod info_attr {
    /// u32 `0x00MMmmpp`.
    pub const VERSION: u16 = 1;
    /// u32.
    pub const CONN_TAB_SIZE: u16 = 2;
}

/// Controller (`CTRL_*`) numbers used to resolve the family id.
pub mod ctrl {
    /// `CTRL_CMD_NEWFAMILY` (the reply).
    pub const CMD_NEWFAMILY: u8 = 1;
    /// `CTRL_CMD_GETFAMILY`.
    pub const CMD_GETFAMILY: u8 = 3;
    /// `CTRL_ATTR_FAMILY_ID` (u16).
    pub const ATTR_FAMILY_ID: u16 = 1;
    /// `CTRL_ATTR_FAMILY_NAME` (string).
    pub const ATTR_FAMILY_NAME: u16 = 2;
}

/// A request the model cannot express on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// FullNAT has no kernel forwarding method.
    #[error(
        "destination {dest}: the kernel IPVS has no FullNAT forwarding method; the kernel \
         dataplane realises FullNAT as masquerading (NAT) plus an nft SNAT rule toward the \
         real servers, set up by the provisioner"
    )]
    FullNat {
        /// `addr:port` of the destination.
        dest: String,
    },
    /// Scheduler or persistence-engine name longer than the kernel's limit.
    #[error("{what} name `{name}` is longer than {NAME_MAX} bytes")]
    NameTooLong {
        /// "persistence engine" or "scheduler".
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// Persistence netmask that the kernel rejects.
    #[error("IPv6 service {service}: persistence netmask must be a prefix length 1..=128, got {netmask}")]
    Ipv6Netmask {
        /// The service.
        service: String,
        /// The value given.
        netmask: u32,
    },
}

/// A reply that does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Broken framing.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A mandatory attribute was absent.
    #[error("{object} reply lacks attribute {attr}")]
    Missing {
        /// "service", "destination", ….
        object: &'static str,
        /// Attribute name.
        attr: &'static str,
    },
    /// An attribute had a value the model cannot hold.
    #[error("{object} reply: {detail}")]
    Value {
        /// "service", "destination", ….
        object: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The reply used another command number than the request's reply command.
    #[error("expected reply command {expected}, got {got}")]
    Command {
        /// Expected command number.
        expected: u8,
        /// Received command number.
        got: u8,
    },
}

/// An encoded IPVS request: command, whether it is a dump, and its top-level attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command.
    pub cmd: Command,
    /// Sent with `NLM_F_DUMP`.
    pub dump: bool,
    /// Top-level attribute bytes.
    pub attrs: Vec<u8>,
}

impl Request {
    fn bare(cmd: Command) -> Self {
        Request {
            cmd,
            dump: false,
            attrs: Vec::new(),
        }
    }

    fn with_service(cmd: Command, svc: &ServiceConfig) -> Result<Self, EncodeError> {
        let mut w = AttrWriter::new();
        put_service(&mut w, svc)?;
        Ok(Request {
            cmd,
            dump: false,
            attrs: w.finish(),
        })
    }

    fn with_dest(
        cmd: Command,
        svc: &ServiceConfig,
        dest: &DestConfig,
    ) -> Result<Self, EncodeError> {
        let mut w = AttrWriter::new();
        put_service(&mut w, svc)?;
        put_dest(&mut w, dest)?;
        Ok(Request {
            cmd,
            dump: false,
            attrs: w.finish(),
        })
    }

    /// `ipvsadm -A`: NEW_SERVICE with the complete service nest.
    pub fn new_service(svc: &ServiceConfig) -> Result<Self, EncodeError> {
        Self::with_service(Command::NewService, svc)
    }

    /// `ipvsadm -E`: SET_SERVICE with the complete service nest.
    pub fn set_service(svc: &ServiceConfig) -> Result<Self, EncodeError> {
        Self::with_service(Command::SetService, svc)
    }

    /// `ipvsadm -D`: DEL_SERVICE. ipvsadm sends a complete nest with its defaults even
    /// for a delete, so this does too (see [`key_only_service`]).
    pub fn del_service(key: &ServiceKey) -> Result<Self, EncodeError> {
        Self::with_service(Command::DelService, &key_only_service(key))
    }

    /// `ipvsadm -L -t VIP:PORT`: GET_SERVICE for one service.
    pub fn get_service(key: &ServiceKey) -> Result<Self, EncodeError> {
        Self::with_service(Command::GetService, &key_only_service(key))
    }

    /// `ipvsadm -L`: GET_SERVICE dump.
    pub fn dump_services() -> Self {
        Request {
            dump: true,
            ..Self::bare(Command::GetService)
        }
    }

    /// `ipvsadm -a`: NEW_DEST with complete service and destination nests.
    pub fn new_dest(svc: &ServiceConfig, dest: &DestConfig) -> Result<Self, EncodeError> {
        Self::with_dest(Command::NewDest, svc, dest)
    }

    /// `ipvsadm -e`: SET_DEST.
    pub fn set_dest(svc: &ServiceConfig, dest: &DestConfig) -> Result<Self, EncodeError> {
        Self::with_dest(Command::SetDest, svc, dest)
    }

    /// `ipvsadm -d`: DEL_DEST; the destination nest carries ipvsadm's defaults besides
    /// address and port.
    pub fn del_dest(svc: &ServiceConfig, addr: IpAddr, port: u16) -> Result<Self, EncodeError> {
        Self::with_dest(Command::DelDest, svc, &DestConfig::new(addr, port))
    }

    /// GET_DEST dump for one service (the kernel only supports it as a dump).
    pub fn dump_dests(svc: &ServiceConfig) -> Result<Self, EncodeError> {
        let mut r = Self::with_service(Command::GetDest, svc)?;
        r.dump = true;
        Ok(r)
    }

    /// `ipvsadm -Z [service]`.
    pub fn zero(key: Option<&ServiceKey>) -> Result<Self, EncodeError> {
        match key {
            Some(k) => Self::with_service(Command::Zero, &key_only_service(k)),
            None => Ok(Self::bare(Command::Zero)),
        }
    }

    /// `ipvsadm -C`.
    pub fn flush() -> Self {
        Self::bare(Command::Flush)
    }

    /// `ipvsadm --set tcp tcpfin udp`: all three attributes, 0 = unchanged.
    pub fn set_timeouts(t: &Timeouts) -> Self {
        let mut w = AttrWriter::new();
        w.put_u32(cmd_attr::TIMEOUT_TCP, t.tcp)
            .put_u32(cmd_attr::TIMEOUT_TCP_FIN, t.tcp_fin)
            .put_u32(cmd_attr::TIMEOUT_UDP, t.udp);
        Request {
            attrs: w.finish(),
            ..Self::bare(Command::SetConfig)
        }
    }

    /// `ipvsadm -L --timeout`.
    pub fn get_timeouts() -> Self {
        Self::bare(Command::GetConfig)
    }

    /// GET_INFO (what ipvsadm sends first on every run).
    pub fn get_info() -> Self {
        Self::bare(Command::GetInfo)
    }

    /// The command number the kernel uses in its data replies to this request.
    pub fn reply_cmd(&self) -> Option<Command> {
        match self.cmd {
            Command::GetService => Some(Command::NewService),
            Command::GetDest => Some(Command::NewDest),
            Command::GetConfig => Some(Command::SetConfig),
            Command::GetInfo => Some(Command::SetInfo),
            _ => None,
        }
    }

    /// `nlmsg_flags`: REQUEST|ACK, plus DUMP for dumps (libnl adds ACK to everything).
    pub fn nl_flags(&self) -> u16 {
        let base = NLM_F_REQUEST | NLM_F_ACK;
        if self.dump {
            base | NLM_F_DUMP
        } else {
            base
        }
    }

    /// The complete netlink message for the resolved family id.
    pub fn to_message(&self, family: u16, seq: u32) -> Vec<u8> {
        genl_message(
            family,
            self.nl_flags(),
            seq,
            self.cmd as u8,
            IPVS_GENL_VERSION,
            &self.attrs,
        )
    }
}

/// CTRL_CMD_GETFAMILY for "IPVS" (REQUEST|ACK), as libnl's `genl_ctrl_resolve` sends it.
pub fn resolve_family_message(seq: u32) -> Vec<u8> {
    let mut w = AttrWriter::new();
    w.put_str(ctrl::ATTR_FAMILY_NAME, IPVS_GENL_NAME);
    genl_message(
        GENL_ID_CTRL,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        ctrl::CMD_GETFAMILY,
        1,
        &w.finish(),
    )
}

/// Reads the family id from a controller NEWFAMILY reply.
pub fn parse_family_id(msg: &GenlMessage<'_>) -> Result<u16, DecodeError> {
    expect_cmd(msg, ctrl::CMD_NEWFAMILY)?;
    for a in msg.attrs() {
        let a = a?;
        if a.ty == ctrl::ATTR_FAMILY_ID {
            return Ok(a.u16("CTRL_ATTR_FAMILY_ID")?);
        }
    }
    Err(DecodeError::Missing {
        object: "generic netlink family",
        attr: "CTRL_ATTR_FAMILY_ID",
    })
}

/// The service nest ipvsadm builds when only a key was given: its defaults for every
/// other field (scheduler wlc, no flags, timeout 0, whole-address netmask).
pub fn key_only_service(key: &ServiceKey) -> ServiceConfig {
    ServiceConfig::new(*key, Scheduler::Wlc)
}

fn family_of_key(key: &ServiceKey) -> u16 {
    match key {
        ServiceKey::Addr {
            addr: IpAddr::V4(_),
            ..
        }
        | ServiceKey::Fwmark {
            family: Family::Inet,
            ..
        } => AF_INET,
        _ => AF_INET6,
    }
}

fn af_of(addr: IpAddr) -> u16 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// `union nf_inet_addr`: IPv4 in the first 4 bytes, the rest zero.
fn addr16(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

fn check_name(what: &'static str, name: &str) -> Result<(), EncodeError> {
    if name.len() > NAME_MAX {
        return Err(EncodeError::NameTooLong {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Writes the complete service nest in libipvs order: AF, key, SCHED_NAME, [PE_NAME],
/// FLAGS {flags, mask all}, TIMEOUT, NETMASK.
pub fn put_service(w: &mut AttrWriter, svc: &ServiceConfig) -> Result<(), EncodeError> {
    let sched = svc.scheduler.name();
    check_name("scheduler", sched)?;
    if let Some(pe) = &svc.pe_name {
        check_name("persistence engine", pe)?;
    }
    let af = family_of_key(&svc.key);
    let netmask_wire = if af == AF_INET6 {
        // The model's default (ServiceConfig::new) is the IPv4 "whole address" mask;
        // for IPv6 ipvsadm sends the equivalent prefix length 128.
        let prefix = if svc.netmask == u32::MAX {
            128
        } else {
            svc.netmask
        };
        if !(1..=128).contains(&prefix) {
            return Err(EncodeError::Ipv6Netmask {
                service: svc.key.to_string(),
                netmask: svc.netmask,
            });
        }
        prefix.to_ne_bytes()
    } else {
        svc.netmask.to_be_bytes()
    };

    let mut flags = [0u8; 8];
    flags[..4].copy_from_slice(&svc.flags.bits().to_ne_bytes());
    flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());

    w.begin_nest(cmd_attr::SERVICE);
    w.put_u16(svc_attr::AF, af);
    match svc.key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            w.put_u16(svc_attr::PROTOCOL, u16::from(protocol.number()))
                .put(svc_attr::ADDR, &addr16(addr))
                .put_be16(svc_attr::PORT, port);
        }
        ServiceKey::Fwmark { mark, .. } => {
            w.put_u32(svc_attr::FWMARK, mark);
        }
    }
    w.put_str(svc_attr::SCHED_NAME, sched);
    if let Some(pe) = &svc.pe_name {
        w.put_str(svc_attr::PE_NAME, pe);
    }
    w.put(svc_attr::FLAGS, &flags)
        .put_u32(svc_attr::TIMEOUT, svc.timeout)
        .put(svc_attr::NETMASK, &netmask_wire);
    w.end_nest();
    Ok(())
}

/// Writes the complete destination nest in libipvs order: ADDR_FAMILY, ADDR, PORT,
/// FWD_METHOD, WEIGHT, TUN_TYPE, TUN_PORT, TUN_FLAGS, U_THRESH, L_THRESH.
pub fn put_dest(w: &mut AttrWriter, dest: &DestConfig) -> Result<(), EncodeError> {
    if dest.method == ForwardMethod::FullNat {
        return Err(EncodeError::FullNat {
            dest: dest_name(dest.addr, dest.port),
        });
    }
    w.begin_nest(cmd_attr::DEST)
        .put_u16(dest_attr::ADDR_FAMILY, af_of(dest.addr))
        .put(dest_attr::ADDR, &addr16(dest.addr))
        .put_be16(dest_attr::PORT, dest.port)
        .put_u32(dest_attr::FWD_METHOD, dest.method.conn_flags())
        .put_u32(dest_attr::WEIGHT, dest.weight)
        .put_u8(dest_attr::TUN_TYPE, dest.tun_type.number())
        .put_be16(dest_attr::TUN_PORT, dest.tun_port)
        .put_u16(dest_attr::TUN_FLAGS, dest.tun_flags)
        .put_u32(dest_attr::U_THRESH, dest.u_threshold)
        .put_u32(dest_attr::L_THRESH, dest.l_threshold)
        .end_nest();
    Ok(())
}

/// `addr:port`, with brackets for IPv6.
pub fn dest_name(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn expect_cmd(msg: &GenlMessage<'_>, expected: u8) -> Result<(), DecodeError> {
    if msg.cmd != expected {
        return Err(DecodeError::Command {
            expected,
            got: msg.cmd,
        });
    }
    Ok(())
}

fn find_nest<'a>(msg: &GenlMessage<'a>, ty: u16) -> Result<Option<Attr<'a>>, DecodeError> {
    for a in msg.attrs() {
        let a = a?;
        if a.ty == ty {
            return Ok(Some(a));
        }
    }
    Ok(None)
}

fn read_addr(a: &Attr<'_>, af: u16, object: &'static str) -> Result<IpAddr, DecodeError> {
    let p = a.payload;
    match af {
        AF_INET if p.len() >= 4 => Ok(IpAddr::V4(Ipv4Addr::new(p[0], p[1], p[2], p[3]))),
        AF_INET6 if p.len() >= 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&p[..16]);
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => Err(DecodeError::Value {
            object,
            detail: format!("address of {} bytes for address family {af}", p.len()),
        }),
    }
}

/// Parses a stats nest (32-bit STATS or 64-bit STATS64), skipping PAD and unknown types.
pub fn parse_stats(nest: &Attr<'_>) -> Result<Stats, DecodeError> {
    let mut s = Stats::default();
    for a in nest.nested() {
        let a = a?;
        let slot = match a.ty {
            stats_attr::CONNS => &mut s.conns,
            stats_attr::INPKTS => &mut s.inpkts,
            stats_attr::OUTPKTS => &mut s.outpkts,
            stats_attr::INBYTES => &mut s.inbytes,
            stats_attr::OUTBYTES => &mut s.outbytes,
            stats_attr::CPS => &mut s.cps,
            stats_attr::INPPS => &mut s.inpps,
            stats_attr::OUTPPS => &mut s.outpps,
            stats_attr::INBPS => &mut s.inbps,
            stats_attr::OUTBPS => &mut s.outbps,
            _ => continue,
        };
        *slot = a.counter("stats counter")?;
    }
    Ok(s)
}

/// Parses the attributes inside a service nest into a configuration plus its counters
/// (STATS64 preferred over STATS, as ipvsadm does). Works on request nests too.
pub fn parse_service_nest(nest: &Attr<'_>) -> Result<(ServiceConfig, Stats), DecodeError> {
    const OBJ: &str = "service";
    let mut af = None;
    let mut protocol = None;
    let mut addr_attr = None;
    let mut port = None;
    let mut fwmark = None;
    let mut sched = None;
    let mut pe_name = None;
    let mut flags = 0u32;
    let mut timeout = 0;
    let mut netmask_attr = None;
    let mut stats32 = None;
    let mut stats64 = None;
    for a in nest.nested() {
        let a = a?;
        match a.ty {
            svc_attr::AF => af = Some(a.u16("IPVS_SVC_ATTR_AF")?),
            svc_attr::PROTOCOL => protocol = Some(a.u16("IPVS_SVC_ATTR_PROTOCOL")?),
            svc_attr::ADDR => addr_attr = Some(a),
            svc_attr::PORT => port = Some(a.be16("IPVS_SVC_ATTR_PORT")?),
            svc_attr::FWMARK => fwmark = Some(a.u32("IPVS_SVC_ATTR_FWMARK")?),
            svc_attr::SCHED_NAME => sched = Some(a.string("IPVS_SVC_ATTR_SCHED_NAME")?),
            svc_attr::PE_NAME => pe_name = Some(a.string("IPVS_SVC_ATTR_PE_NAME")?),
            svc_attr::FLAGS => {
                let p = a.payload;
                if p.len() < 4 {
                    return Err(WireError {
                        offset: a.offset,
                        what: "IPVS_SVC_ATTR_FLAGS shorter than 4 bytes".into(),
                    }
                    .into());
                }
                flags = u32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
            }
            svc_attr::TIMEOUT => timeout = a.u32("IPVS_SVC_ATTR_TIMEOUT")?,
            svc_attr::NETMASK => netmask_attr = Some(a),
            svc_attr::STATS => stats32 = Some(a),
            svc_attr::STATS64 => stats64 = Some(a),
            _ => {}
        }
    }
    let af = af.ok_or(DecodeError::Missing {
        object: OBJ,
        attr: "AF",
    })?;
    let key = match fwmark {
        Some(mark) if mark != 0 => ServiceKey::Fwmark {
            family: match af {
                AF_INET => Family::Inet,
                AF_INET6 => Family::Inet6,
                other => {
                    return Err(DecodeError::Value {
                        object: OBJ,
                        detail: format!("unknown address family {other}"),
                    })
                }
            },
            mark,
        },
        _ => {
            let number = protocol.ok_or(DecodeError::Missing {
                object: OBJ,
                attr: "PROTOCOL",
            })?;
            let protocol = u8::try_from(number)
                .ok()
                .and_then(Protocol::from_number)
                .ok_or_else(|| DecodeError::Value {
                    object: OBJ,
                    detail: format!("unknown protocol {number}"),
                })?;
            let addr = read_addr(
                &addr_attr.ok_or(DecodeError::Missing {
                    object: OBJ,
                    attr: "ADDR",
                })?,
                af,
                OBJ,
            )?;
            ServiceKey::Addr {
                protocol,
                addr,
                port: port.ok_or(DecodeError::Missing {
                    object: OBJ,
                    attr: "PORT",
                })?,
            }
        }
    };
    let sched = sched.ok_or(DecodeError::Missing {
        object: OBJ,
        attr: "SCHED_NAME",
    })?;
    let scheduler: Scheduler = sched.parse().map_err(|e| DecodeError::Value {
        object: OBJ,
        detail: format!("{e}"),
    })?;
    let netmask = match netmask_attr {
        Some(a) if af == AF_INET6 => a.u32("IPVS_SVC_ATTR_NETMASK")?,
        Some(a) => {
            let b: [u8; 4] = a.payload.try_into().map_err(|_| DecodeError::Value {
                object: OBJ,
                detail: format!("netmask of {} bytes", a.payload.len()),
            })?;
            u32::from_be_bytes(b)
        }
        None => u32::MAX,
    };
    let stats = match (stats64, stats32) {
        (Some(s), _) | (None, Some(s)) => parse_stats(&s)?,
        (None, None) => Stats::default(),
    };
    let mut cfg = ServiceConfig::new(key, scheduler);
    cfg.flags = ServiceFlags::from_bits(flags);
    cfg.timeout = timeout;
    cfg.netmask = netmask;
    cfg.pe_name = pe_name.filter(|p| !p.is_empty());
    Ok((cfg, stats))
}

/// Parses one GET_SERVICE reply (command NEW_SERVICE); the result has no destinations yet.
pub fn parse_service_reply(msg: &GenlMessage<'_>) -> Result<ServiceStatus, DecodeError> {
    expect_cmd(msg, Command::NewService as u8)?;
    let nest = find_nest(msg, cmd_attr::SERVICE)?.ok_or(DecodeError::Missing {
        object: "GET_SERVICE reply",
        attr: "IPVS_CMD_ATTR_SERVICE",
    })?;
    let (config, stats) = parse_service_nest(&nest)?;
    Ok(ServiceStatus {
        config,
        stats,
        dests: Vec::new(),
    })
}

/// Parses the attributes inside a destination nest. `service_af` is used when the nest has
/// no ADDR_FAMILY (kernels before 4.x, as ipvsadm tolerates).
pub fn parse_dest_nest(nest: &Attr<'_>, service_af: u16) -> Result<DestStatus, DecodeError> {
    const OBJ: &str = "destination";
    let mut addr_attr = None;
    let mut af = service_af;
    let mut port = None;
    let mut method = None;
    let mut weight = None;
    let mut status = DestStatus {
        config: DestConfig::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        active_conns: 0,
        inactive_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
    };
    let mut stats32 = None;
    let mut stats64 = None;
    for a in nest.nested() {
        let a = a?;
        let c = &mut status.config;
        match a.ty {
            dest_attr::ADDR => addr_attr = Some(a),
            dest_attr::PORT => port = Some(a.be16("IPVS_DEST_ATTR_PORT")?),
            dest_attr::FWD_METHOD => method = Some(a.u32("IPVS_DEST_ATTR_FWD_METHOD")?),
            dest_attr::WEIGHT => weight = Some(a.u32("IPVS_DEST_ATTR_WEIGHT")?),
            dest_attr::U_THRESH => c.u_threshold = a.u32("IPVS_DEST_ATTR_U_THRESH")?,
            dest_attr::L_THRESH => c.l_threshold = a.u32("IPVS_DEST_ATTR_L_THRESH")?,
            dest_attr::ACTIVE_CONNS => status.active_conns = a.u32("ACTIVE_CONNS")?,
            dest_attr::INACT_CONNS => status.inactive_conns = a.u32("INACT_CONNS")?,
            dest_attr::PERSIST_CONNS => status.persist_conns = a.u32("PERSIST_CONNS")?,
            dest_attr::STATS => stats32 = Some(a),
            dest_attr::STATS64 => stats64 = Some(a),
            dest_attr::ADDR_FAMILY => {
                let v = a.u16("IPVS_DEST_ATTR_ADDR_FAMILY")?;
                if v != 0 {
                    af = v;
                }
            }
            dest_attr::TUN_TYPE => {
                let n = a.u8("IPVS_DEST_ATTR_TUN_TYPE")?;
                c.tun_type = Encap::from_number(n).ok_or_else(|| DecodeError::Value {
                    object: OBJ,
                    detail: format!("unknown tunnel type {n}"),
                })?;
            }
            dest_attr::TUN_PORT => c.tun_port = a.be16("IPVS_DEST_ATTR_TUN_PORT")?,
            dest_attr::TUN_FLAGS => c.tun_flags = a.u16("IPVS_DEST_ATTR_TUN_FLAGS")?,
            _ => {}
        }
    }
    let addr_attr = addr_attr.ok_or(DecodeError::Missing {
        object: OBJ,
        attr: "ADDR",
    })?;
    status.config.addr = read_addr(&addr_attr, af, OBJ)?;
    status.config.port = port.ok_or(DecodeError::Missing {
        object: OBJ,
        attr: "PORT",
    })?;
    let method = method.ok_or(DecodeError::Missing {
        object: OBJ,
        attr: "FWD_METHOD",
    })?;
    status.config.method = match ForwardMethod::from_conn_flags(method) {
        // Value 5 is FullNAT only on Alibaba/DPVS kernels; mainline never reports it.
        Some(m) if m != ForwardMethod::FullNat => m,
        _ => {
            return Err(DecodeError::Value {
                object: OBJ,
                detail: format!("unknown forwarding method {}", method & 7),
            })
        }
    };
    status.config.weight = weight.ok_or(DecodeError::Missing {
        object: OBJ,
        attr: "WEIGHT",
    })?;
    status.stats = match (stats64, stats32) {
        (Some(s), _) | (None, Some(s)) => parse_stats(&s)?,
        (None, None) => Stats::default(),
    };
    Ok(status)
}

/// Parses one GET_DEST dump message (command NEW_DEST).
pub fn parse_dest_reply(msg: &GenlMessage<'_>, service_af: u16) -> Result<DestStatus, DecodeError> {
    expect_cmd(msg, Command::NewDest as u8)?;
    let nest = find_nest(msg, cmd_attr::DEST)?.ok_or(DecodeError::Missing {
        object: "GET_DEST reply",
        attr: "IPVS_CMD_ATTR_DEST",
    })?;
    parse_dest_nest(&nest, service_af)
}

/// The address family number of a service key (for [`parse_dest_reply`]).
pub fn service_af(key: &ServiceKey) -> u16 {
    family_of_key(key)
}

/// `0x010201` → `"1.2.1"`.
pub fn version_string(v: u32) -> String {
    format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
}

/// Parses the GET_INFO reply (command SET_INFO).
pub fn parse_info_reply(msg: &GenlMessage<'_>) -> Result<LbInfo, DecodeError> {
    expect_cmd(msg, Command::SetInfo as u8)?;
    let mut version = None;
    let mut size = None;
    for a in msg.attrs() {
        let a = a?;
        match a.ty {
            info_attr::VERSION => version = Some(a.u32("IPVS_INFO_ATTR_VERSION")?),
            info_attr::CONN_TAB_SIZE => size = Some(a.u32("IPVS_INFO_ATTR_CONN_TAB_SIZE")?),
            _ => {}
        }
    }
    Ok(LbInfo {
        version: version_string(version.ok_or(DecodeError::Missing {
            object: "GET_INFO reply",
            attr: "VERSION",
        })?),
        conn_table_size: size.ok_or(DecodeError::Missing {
            object: "GET_INFO reply",
            attr: "CONN_TAB_SIZE",
        })?,
        dataplane: "kernel".to_string(),
    })
}

/// Parses the GET_CONFIG reply (command SET_CONFIG).
pub fn parse_timeouts_reply(msg: &GenlMessage<'_>) -> Result<Timeouts, DecodeError> {
    expect_cmd(msg, Command::SetConfig as u8)?;
    let mut t = Timeouts::default();
    for a in msg.attrs() {
        let a = a?;
        match a.ty {
            cmd_attr::TIMEOUT_TCP => t.tcp = a.u32("IPVS_CMD_ATTR_TIMEOUT_TCP")?,
            cmd_attr::TIMEOUT_TCP_FIN => t.tcp_fin = a.u32("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")?,
            cmd_attr::TIMEOUT_UDP => t.udp = a.u32("IPVS_CMD_ATTR_TIMEOUT_UDP")?,
            _ => {}
        }
    }
    Ok(t)
}
