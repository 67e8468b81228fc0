//! Persistent TUN devices: the decapsulation device (`tunl0`) of a TUN-mode real server on
//! a kernel without ipip/gre, later fed by the userspace tunnel endpoint.

use std::os::fd::AsFd;

use crate::error::{Error, Result};
use crate::ns::Netns;
use crate::sys;

/// `ip tuntap add dev NAME mode tun` inside `ns`: a TUN device (no packet-info header)
/// that outlives the descriptor that created it, so addresses and sysctls can be set on
/// it now and the tunnel endpoint can attach to it later.
pub fn create_persistent_tun(ns: &Netns, name: &str) -> Result<()> {
    let op = format!("ip tuntap add dev {name} mode tun");
    let label = ns.label().to_string();
    ns.run(|| -> std::io::Result<()> {
        let dev = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        sys::tun_set_iff(dev.as_fd(), name, sys::IFF_TUN | sys::IFF_NO_PI)?;
        sys::tun_set_persist(dev.as_fd(), true)
    })?
    .map_err(|source| Error::Namespace {
        op,
        ns: label,
        source,
    })
}

/// Opens an existing TUN device for reading and writing packets (the tunnel endpoint).
pub fn open_tun(ns: &Netns, name: &str) -> Result<std::fs::File> {
    let op = format!("open TUN device {name}");
    let label = ns.label().to_string();
    ns.run(|| -> std::io::Result<std::fs::File> {
        let dev = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        sys::tun_set_iff(dev.as_fd(), name, sys::IFF_TUN | sys::IFF_NO_PI)?;
        Ok(dev)
    })?
    .map_err(|source| Error::Namespace {
        op,
        ns: label,
        source,
    })
}
