//! Real servers: the destination nest (`IPVS_CMD_ATTR_DEST`) both ways, and the requests
//! that carry one (`-a`, `-e`, `-d`, and the GET_DEST dump).

use std::net::{IpAddr, Ipv4Addr};

use lvslab_spec::lb::{DestConfig, DestStatus, Encap, ForwardMethod, ServiceConfig, Stats};

use super::common::{addr16, cmd_attr, expect_cmd, find_nest, parse_stats, read_addr};
use super::service::put_service;
use super::{Command, DecodeError, EncodeError, Request, AF_INET, AF_INET6};
use crate::wire::{Attr, AttrWriter, GenlMessage};

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

impl Request {
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

fn af_of(addr: IpAddr) -> u16 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
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

#[cfg(test)]
#[rustfmt::skip]
#[path = "dest_tests.rs"]
mod tests;
