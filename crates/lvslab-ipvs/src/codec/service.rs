//! Virtual services: the service nest (`IPVS_CMD_ATTR_SERVICE`) both ways, and the
//! requests that carry only a service (`-A`, `-E`, `-D`, `-L`, `-Z`, `-C`).

use std::net::IpAddr;

use lvslab_spec::lb::{
    Family, Protocol, Scheduler, ServiceConfig, ServiceFlags, ServiceKey, ServiceStatus, Stats,
};

use super::common::{addr16, cmd_attr, expect_cmd, find_nest, parse_stats, read_addr};
use super::{Command, DecodeError, EncodeError, Request, AF_INET, AF_INET6, NAME_MAX};
use crate::wire::{Attr, AttrWriter, GenlMessage, WireError};

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

impl Request {
    pub(super) fn with_service(cmd: Command, svc: &ServiceConfig) -> Result<Self, EncodeError> {
        let mut w = AttrWriter::new();
        put_service(&mut w, svc)?;
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
}

/// The service nest ipvsadm builds when only a key was given: its defaults for every
/// other field (scheduler wlc, no flags, timeout 0, whole-address netmask).
pub fn key_only_service(key: &ServiceKey) -> ServiceConfig {
    ServiceConfig::new(*key, Scheduler::Wlc)
}

/// The address family number of a service key (for [`parse_dest_reply`](super::parse_dest_reply)).
pub fn service_af(key: &ServiceKey) -> u16 {
    family_of_key(key)
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

fn check_name(what: &'static str, name: &str) -> Result<(), EncodeError> {
    if name.len() > NAME_MAX {
        return Err(EncodeError::NameTooLong {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Writes the complete service nest in libipvs order: AF, key, SCHED_NAME, PE_NAME if any,
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

#[cfg(test)]
#[rustfmt::skip]
#[path = "service_tests.rs"]
mod tests;
