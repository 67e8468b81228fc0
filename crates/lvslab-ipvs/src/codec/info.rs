//! The IPVS version and connection table size (GET_INFO), and the TCP/TCP-FIN/UDP
//! timeouts (GET_CONFIG/SET_CONFIG, `ipvsadm --set` and `-L --timeout`).

use lvslab_spec::lb::{LbInfo, Timeouts};

use super::common::{cmd_attr, expect_cmd};
use super::{Command, DecodeError, Request};
use crate::wire::{AttrWriter, GenlMessage};

/// Info attributes (`IPVS_INFO_ATTR_*`).
pub mod info_attr {
    /// u32 `0x00MMmmpp`.
    pub const VERSION: u16 = 1;
    /// u32.
    pub const CONN_TAB_SIZE: u16 = 2;
}

impl Request {
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

#[cfg(test)]
#[rustfmt::skip]
#[path = "info_tests.rs"]
mod tests;
