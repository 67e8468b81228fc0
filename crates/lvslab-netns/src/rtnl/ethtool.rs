//! `ethtool -K`/`-k`: the tx checksum offload switch, over the SIOCETHTOOL ioctl.

use std::io;
use std::os::fd::AsFd;

use super::NsHandle;
use crate::error::{Error, Result};
use crate::sys;

impl NsHandle {
    /// `ethtool -K IFACE tx on|off`: tx checksum offload. Turning it off makes the
    /// kernel compute TCP/UDP checksums before a frame leaves a veth, so captures and a
    /// userspace engine on the far end see complete checksums.
    pub fn set_tx_checksumming(&self, iface: &str, on: bool) -> Result<()> {
        let op = format!("ethtool -K {iface} tx {}", if on { "on" } else { "off" });
        self.writable(&op)?;
        sys::ethtool_value(
            self.ioctl.as_fd(),
            iface,
            sys::ETHTOOL_STXCSUM,
            u32::from(on),
        )
        .map(|_| ())
        .map_err(|source| self.ethtool_error(&op, iface, source))
    }

    /// `ethtool -k IFACE | grep tx-checksumming`: whether tx checksum offload is on.
    pub fn tx_checksumming(&self, iface: &str) -> Result<bool> {
        let op = format!("ethtool -k {iface}");
        sys::ethtool_value(self.ioctl.as_fd(), iface, sys::ETHTOOL_GTXCSUM, 0)
            .map(|v| v != 0)
            .map_err(|source| self.ethtool_error(&op, iface, source))
    }

    fn ethtool_error(&self, op: &str, iface: &str, source: io::Error) -> Error {
        Error::Ethtool {
            op: op.to_string(),
            ns: self.label.clone(),
            iface: iface.to_string(),
            source,
        }
    }
}
