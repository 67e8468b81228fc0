//! Links, addresses, routes, neighbours and rules of one namespace, over route netlink.
//!
//! One module per `ip` subcommand, each adding its methods to [`NsHandle`]: `link`
//! (`ip link`), `address` (`ip addr`), `route` (`ip route`), `neighbour` (`ip neigh`),
//! `rule` (`ip rule`), and `ethtool` for the one offload switch a lab needs. Every method's doc names the command it equals; the same text is the `op` of
//! any error it returns. This module holds the handle, its socket and the shared helpers.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use nix::sys::socket::{self, AddressFamily as SockFamily, SockFlag, SockType};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{Error, Result};
use crate::netlink::{NlError, RouteSocket};
use crate::ns::Netns;

mod address;
mod ethtool;
mod link;
mod neighbour;
mod route;
mod rule;

pub use link::check_ifname;
pub use route::TABLE_MAIN;

/// A route-netlink socket (and an ioctl socket) opened inside one namespace. Usable from
/// any thread; requests are serialised internally.
#[derive(Debug)]
pub struct NsHandle {
    socket: Mutex<RouteSocket>,
    ioctl: OwnedFd,
    ns_fd: OwnedFd,
    label: String,
    read_only: bool,
}

impl NsHandle {
    /// Opens the sockets on a short-lived thread inside `ns`.
    pub fn open(ns: &Netns) -> Result<NsHandle> {
        let label = ns.label().to_string();
        let (socket, ioctl) = ns
            .run(|| -> io::Result<(RouteSocket, OwnedFd)> {
                let route = RouteSocket::open()?;
                let ioctl = socket::socket(
                    SockFamily::Inet,
                    SockType::Datagram,
                    SockFlag::SOCK_CLOEXEC,
                    None,
                )?;
                Ok((route, ioctl))
            })?
            .map_err(|source| Error::Namespace {
                op: "open netlink socket".into(),
                ns: label.clone(),
                source,
            })?;
        let ns_fd = ns
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::Namespace {
                op: "dup namespace fd".into(),
                ns: label.clone(),
                source,
            })?;
        Ok(NsHandle {
            socket: Mutex::new(socket),
            ioctl,
            ns_fd,
            label,
            read_only: ns.is_read_only(),
        })
    }

    /// The namespace label used in errors.
    pub fn label(&self) -> &str {
        &self.label
    }

    // ----- shared by every subcommand ------------------------------------------------

    fn writable(&self, op: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::RootIsReadOnly { op: op.to_string() });
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, RouteSocket> {
        // A panic while holding the lock leaves the socket usable: every request
        // carries its own sequence number and stale replies are skipped.
        self.socket.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ack(
        &self,
        op: &str,
        iface: Option<&str>,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<()> {
        self.lock()
            .ack(message, flags)
            .map_err(|e| self.nl_error(op, iface, e))
    }

    fn dump(&self, op: &str, message: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        self.lock()
            .dump(&message)
            .map_err(|e| self.nl_error(op, None, e))
    }

    fn nl_error(&self, op: &str, iface: Option<&str>, e: NlError) -> Error {
        match e {
            NlError::Kernel { source, ext_ack } => Error::Netlink {
                op: op.to_string(),
                ns: self.label.clone(),
                iface: iface.map(str::to_string),
                ext_ack,
                source,
            },
            NlError::Io(source) => Error::Netlink {
                op: op.to_string(),
                ns: self.label.clone(),
                iface: iface.map(str::to_string),
                ext_ack: None,
                source,
            },
            NlError::Protocol(detail) => Error::Protocol {
                op: op.to_string(),
                ns: self.label.clone(),
                detail,
            },
        }
    }

    fn no_such_interface(&self, op: &str, iface: &str) -> Error {
        Error::NoSuchInterface {
            op: op.to_string(),
            ns: self.label.clone(),
            iface: iface.to_string(),
        }
    }
}

fn check_prefix(op: &str, ip: IpAddr, prefix_len: u8) -> Result<()> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(Error::InvalidArgument {
            op: op.to_string(),
            detail: format!("prefix length {prefix_len} is longer than {max} for {ip}"),
        });
    }
    Ok(())
}

fn family_of(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn family_name(family: AddressFamily) -> String {
    match family {
        AddressFamily::Inet => "inet".into(),
        AddressFamily::Inet6 => "inet6".into(),
        // Multicast-routing rule families (RTNL_FAMILY_IPMR / RTNL_FAMILY_IP6MR).
        AddressFamily::Other(128) => "ipmr".into(),
        AddressFamily::Other(129) => "ip6mr".into(),
        other => lower_debug(other),
    }
}

fn lower_debug(value: impl std::fmt::Debug) -> String {
    format!("{value:?}").to_lowercase()
}

fn iface_name(names: &HashMap<u32, String>, index: u32) -> String {
    names
        .get(&index)
        .cloned()
        .unwrap_or_else(|| format!("if{index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_lengths_are_bounded_by_family() {
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert!(check_prefix("t", v4, 32).is_ok());
        assert!(check_prefix("t", v4, 33).is_err());
        assert!(check_prefix("t", v6, 128).is_ok());
        assert!(check_prefix("t", v6, 129).is_err());
    }
}
