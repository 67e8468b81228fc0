//! Links, addresses, routes, neighbours and rules of one namespace, over route netlink.
//!
//! Every method's doc names the `ip` command it equals; the same text is the `op` of any
//! error it returns.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use nix::sys::socket::{self, AddressFamily as SockFamily, SockFlag, SockType};
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkLayerType,
    LinkMessage, State as LinkState,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{RuleAttribute, RuleMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{LinkBridge, LinkGre, LinkIpIp, LinkMessageBuilder, LinkUnspec};

use crate::dump::{AddressInfo, LinkInfo, NeighbourInfo, RouteInfo, RuleInfo};
use crate::error::{Error, Result};
use crate::mac::MacAddr;
use crate::netlink::{NlError, RouteSocket};
use crate::ns::Netns;
use crate::sys;

/// Main routing table id.
pub const TABLE_MAIN: u32 = RouteHeader::RT_TABLE_MAIN as u32;

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

/// Which kernel feature a link kind needs, for [`Error::MissingKernelFeature`].
struct KernelFeature {
    name: &'static str,
    hint: &'static str,
}

const FEATURE_GRE: KernelFeature = KernelFeature {
    name: "GRE tunnels (CONFIG_NET_IPGRE)",
    hint: "use the userspace tunnel endpoint or run kernel trials in the VM (`lvslab vm run`)",
};
const FEATURE_IPIP: KernelFeature = KernelFeature {
    name: "IPIP (CONFIG_NET_IPIP)",
    hint: "use the userspace tunnel endpoint or run kernel trials in the VM (`lvslab vm run`)",
};
const FEATURE_VETH: KernelFeature = KernelFeature {
    name: "veth pairs (CONFIG_VETH)",
    hint: "run the labs in the VM (`lvslab vm run`)",
};
const FEATURE_BRIDGE: KernelFeature = KernelFeature {
    name: "bridges (CONFIG_BRIDGE)",
    hint: "run the labs in the VM (`lvslab vm run`)",
};

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

    // ----- links -------------------------------------------------------------------

    /// `ip link add NAME address MAC netns SELF type veth peer name PEER address PMAC
    /// netns PEER_NS`: both ends are created directly in their namespaces, so neither
    /// name ever exists anywhere else. Both ends start down.
    pub fn add_veth(
        &self,
        name: &str,
        mac: MacAddr,
        peer_ns: &Netns,
        peer_name: &str,
        peer_mac: MacAddr,
    ) -> Result<()> {
        let op = format!(
            "ip link add {name} address {mac} type veth peer name {peer_name} address {peer_mac} netns {}",
            peer_ns.label()
        );
        self.writable(&op)?;
        peer_ns.ensure_writable(&op)?;
        check_ifname(&op, name)?;
        check_ifname(&op, peer_name)?;
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer_name)
            .address(peer_mac.octets().to_vec())
            .setns_by_fd(peer_ns.as_fd().as_raw_fd())
            .build();
        let message = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(name)
            .address(mac.octets().to_vec())
            .setns_by_fd(self.ns_fd.as_raw_fd())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        self.new_link(&op, name, message, &FEATURE_VETH)
    }

    /// `ip link add NAME address MAC type bridge` (starts down).
    pub fn add_bridge(&self, name: &str, mac: MacAddr) -> Result<()> {
        let op = format!("ip link add {name} address {mac} type bridge");
        self.writable(&op)?;
        check_ifname(&op, name)?;
        let message = LinkBridge::new(name).address(mac.octets().to_vec()).build();
        self.new_link(&op, name, message, &FEATURE_BRIDGE)
    }

    /// `ip link add NAME type gre local LOCAL remote REMOTE ttl TTL`. On kernels without
    /// GRE this fails with [`Error::MissingKernelFeature`].
    pub fn add_gre(&self, name: &str, local: Ipv4Addr, remote: Ipv4Addr, ttl: u8) -> Result<()> {
        let op = format!("ip link add {name} type gre local {local} remote {remote} ttl {ttl}");
        self.writable(&op)?;
        check_ifname(&op, name)?;
        let message = LinkGre::new(name)
            .local(local)
            .remote(remote)
            .ttl(ttl)
            .build();
        self.new_link(&op, name, message, &FEATURE_GRE)
    }

    /// `ip link add NAME type ipip local LOCAL remote REMOTE ttl TTL`. On kernels without
    /// IPIP this fails with [`Error::MissingKernelFeature`].
    pub fn add_ipip(&self, name: &str, local: Ipv4Addr, remote: Ipv4Addr, ttl: u8) -> Result<()> {
        let op = format!("ip link add {name} type ipip local {local} remote {remote} ttl {ttl}");
        self.writable(&op)?;
        check_ifname(&op, name)?;
        let message = LinkIpIp::new(name)
            .local(local)
            .remote(remote)
            .ttl(ttl)
            .build();
        self.new_link(&op, name, message, &FEATURE_IPIP)
    }

    /// `ip link del NAME` (a veth's peer goes with it).
    pub fn delete_link(&self, name: &str) -> Result<()> {
        let op = format!("ip link del {name}");
        self.writable(&op)?;
        let index = self.link_index_for(&op, name)?;
        let message = LinkUnspec::new_with_index(index).build();
        self.ack(&op, Some(name), RouteNetlinkMessage::DelLink(message), 0)
    }

    /// `ip link set IFACE up`.
    pub fn set_up(&self, iface: &str) -> Result<()> {
        let op = format!("ip link set {iface} up");
        self.set_link(&op, iface, |b| b.up())
    }

    /// `ip link set IFACE down`.
    pub fn set_down(&self, iface: &str) -> Result<()> {
        let op = format!("ip link set {iface} down");
        self.set_link(&op, iface, |b| b.down())
    }

    /// `ip link set IFACE mtu MTU`.
    pub fn set_mtu(&self, iface: &str, mtu: u32) -> Result<()> {
        let op = format!("ip link set {iface} mtu {mtu}");
        self.set_link(&op, iface, |b| b.mtu(mtu))
    }

    /// `ip link set IFACE master BRIDGE`.
    pub fn set_master(&self, iface: &str, bridge: &str) -> Result<()> {
        let op = format!("ip link set {iface} master {bridge}");
        let bridge_index = self.link_index_for(&op, bridge)?;
        self.set_link(&op, iface, |b| b.controller(bridge_index))
    }

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

    // ----- addresses ---------------------------------------------------------------

    /// `ip addr add IP/PREFIX dev IFACE` (also on `lo`). Scope follows `ip`: host for
    /// loopback addresses, link for IPv6 link-local, universe otherwise.
    pub fn add_address(&self, iface: &str, ip: IpAddr, prefix_len: u8) -> Result<()> {
        let op = format!("ip addr add {ip}/{prefix_len} dev {iface}");
        self.writable(&op)?;
        let message = self.address_message(&op, iface, ip, prefix_len)?;
        self.ack(
            &op,
            Some(iface),
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// `ip addr del IP/PREFIX dev IFACE`.
    pub fn delete_address(&self, iface: &str, ip: IpAddr, prefix_len: u8) -> Result<()> {
        let op = format!("ip addr del {ip}/{prefix_len} dev {iface}");
        self.writable(&op)?;
        let message = self.address_message(&op, iface, ip, prefix_len)?;
        self.ack(
            &op,
            Some(iface),
            RouteNetlinkMessage::DelAddress(message),
            0,
        )
    }

    // ----- routes ------------------------------------------------------------------

    /// `ip route add DEST [via GW] [dev DEV]` in the main table; `dest: None` is the
    /// default route. Without a gateway the route gets link scope, as `ip` does.
    pub fn add_route(
        &self,
        dest: Option<(IpAddr, u8)>,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<()> {
        let op = route_op("add", dest, via, dev);
        self.writable(&op)?;
        let message = self.route_message(&op, dest, via, dev, false)?;
        self.ack(
            &op,
            dev,
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// `ip route del DEST [via GW] [dev DEV]` in the main table.
    pub fn delete_route(
        &self,
        dest: Option<(IpAddr, u8)>,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<()> {
        let op = route_op("del", dest, via, dev);
        self.writable(&op)?;
        let message = self.route_message(&op, dest, via, dev, true)?;
        self.ack(&op, dev, RouteNetlinkMessage::DelRoute(message), 0)
    }

    // ----- neighbours --------------------------------------------------------------

    /// `ip neigh replace IP lladdr MAC dev IFACE nud permanent`.
    pub fn add_neighbour(&self, iface: &str, ip: IpAddr, mac: MacAddr) -> Result<()> {
        let op = format!("ip neigh replace {ip} lladdr {mac} dev {iface} nud permanent");
        self.writable(&op)?;
        let index = self.link_index_for(&op, iface)?;
        let mut message = NeighbourMessage::default();
        message.header.family = family_of(ip);
        message.header.ifindex = index;
        message.header.state = NeighbourState::Permanent;
        message.header.kind = RouteType::Unicast;
        message
            .attributes
            .push(NeighbourAttribute::Destination(match ip {
                IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
                IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
            }));
        message
            .attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()));
        self.ack(
            &op,
            Some(iface),
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_CREATE | rtnetlink::packet_core::NLM_F_REPLACE,
        )
    }

    // ----- read-back ---------------------------------------------------------------

    /// `ip -d link show`.
    pub fn links(&self) -> Result<Vec<LinkInfo>> {
        let raw = self.raw_links("ip link show")?;
        let names: HashMap<u32, String> = raw
            .iter()
            .filter_map(|m| link_name(m).map(|n| (m.header.index, n.to_string())))
            .collect();
        Ok(raw.iter().map(|m| link_info(m, &names)).collect())
    }

    /// `ip link show NAME`.
    pub fn link(&self, name: &str) -> Result<LinkInfo> {
        let op = format!("ip link show {name}");
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| self.no_such_interface(&op, name))
    }

    /// Whether IFACE is operationally up (`ip link show IFACE` says `state UP`): the
    /// kernel's link watcher has seen its carrier, attached its queue and, for a bridge
    /// port, started forwarding through it. Until then frames sent out of it are lost.
    pub fn is_oper_up(&self, iface: &str) -> Result<bool> {
        let op = format!("ip link show {iface}");
        let raw = self.raw_links(&op)?;
        let link = raw
            .iter()
            .find(|m| link_name(m) == Some(iface))
            .ok_or_else(|| self.no_such_interface(&op, iface))?;
        Ok(link
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::OperState(LinkState::Up))))
    }

    /// The interface index of `name` (`ip -o link show NAME | cut -d: -f1`).
    pub fn link_index(&self, name: &str) -> Result<u32> {
        self.link_index_for(&format!("ip link show {name}"), name)
    }

    /// `ip addr show`: every address of both families.
    pub fn addresses(&self) -> Result<Vec<AddressInfo>> {
        let op = "ip addr show";
        let names = self.link_names(op)?;
        let dump = self.dump(
            op,
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        )?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => address_info(&a, &names),
                _ => None,
            })
            .collect())
    }

    /// `ip route show table main` (both families).
    pub fn routes(&self) -> Result<Vec<RouteInfo>> {
        Ok(self
            .all_routes()?
            .into_iter()
            .filter(|r| r.table == TABLE_MAIN)
            .collect())
    }

    /// `ip route show table all` (both families).
    pub fn all_routes(&self) -> Result<Vec<RouteInfo>> {
        let op = "ip route show table all";
        let names = self.link_names(op)?;
        let dump = self.dump(op, RouteNetlinkMessage::GetRoute(RouteMessage::default()))?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(route_info(&r, &names)),
                _ => None,
            })
            .collect())
    }

    /// `ip neigh show` (both families).
    pub fn neighbours(&self) -> Result<Vec<NeighbourInfo>> {
        let op = "ip neigh show";
        let names = self.link_names(op)?;
        let dump = self.dump(
            op,
            RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
        )?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => neighbour_info(&n, &names),
                _ => None,
            })
            .collect())
    }

    /// `ip rule show` and `ip -6 rule show`.
    pub fn rules(&self) -> Result<Vec<RuleInfo>> {
        let op = "ip rule show";
        let dump = self.dump(op, RouteNetlinkMessage::GetRule(RuleMessage::default()))?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => Some(rule_info(&r)),
                _ => None,
            })
            .collect())
    }

    // ----- internals ---------------------------------------------------------------

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

    fn new_link(
        &self,
        op: &str,
        name: &str,
        message: LinkMessage,
        feature: &KernelFeature,
    ) -> Result<()> {
        match self.lock().ack(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(()) => Ok(()),
            Err(NlError::Kernel { source, .. })
                if source.raw_os_error() == Some(libc::EOPNOTSUPP) =>
            {
                Err(Error::MissingKernelFeature {
                    op: op.to_string(),
                    ns: self.label.clone(),
                    iface: name.to_string(),
                    feature: feature.name,
                    hint: feature.hint,
                    source,
                })
            }
            Err(e) => Err(self.nl_error(op, Some(name), e)),
        }
    }

    fn set_link(
        &self,
        op: &str,
        iface: &str,
        change: impl FnOnce(LinkMessageBuilder<LinkUnspec>) -> LinkMessageBuilder<LinkUnspec>,
    ) -> Result<()> {
        self.writable(op)?;
        let index = self.link_index_for(op, iface)?;
        let message = change(LinkUnspec::new_with_index(index)).build();
        self.ack(op, Some(iface), RouteNetlinkMessage::SetLink(message), 0)
    }

    fn raw_links(&self, op: &str) -> Result<Vec<LinkMessage>> {
        let dump = self.dump(op, RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    fn link_names(&self, op: &str) -> Result<HashMap<u32, String>> {
        Ok(self
            .raw_links(op)?
            .iter()
            .filter_map(|m| link_name(m).map(|n| (m.header.index, n.to_string())))
            .collect())
    }

    fn link_index_for(&self, op: &str, name: &str) -> Result<u32> {
        self.raw_links(op)?
            .iter()
            .find(|m| link_name(m) == Some(name))
            .map(|m| m.header.index)
            .ok_or_else(|| self.no_such_interface(op, name))
    }

    fn address_message(
        &self,
        op: &str,
        iface: &str,
        ip: IpAddr,
        prefix_len: u8,
    ) -> Result<AddressMessage> {
        check_prefix(op, ip, prefix_len)?;
        let index = self.link_index_for(op, iface)?;
        let mut message = AddressMessage::default();
        message.header.family = family_of(ip);
        message.header.prefix_len = prefix_len;
        message.header.index = index;
        message.header.scope = default_address_scope(ip);
        message.attributes.push(AddressAttribute::Local(ip));
        message.attributes.push(AddressAttribute::Address(ip));
        if let IpAddr::V4(v4) = ip {
            if prefix_len < 31 {
                let host_bits = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
                let broadcast = Ipv4Addr::from(u32::from(v4) | host_bits);
                message
                    .attributes
                    .push(AddressAttribute::Broadcast(broadcast));
            }
        }
        Ok(message)
    }

    fn route_message(
        &self,
        op: &str,
        dest: Option<(IpAddr, u8)>,
        via: Option<IpAddr>,
        dev: Option<&str>,
        for_delete: bool,
    ) -> Result<RouteMessage> {
        let invalid = |detail: String| Error::InvalidArgument {
            op: op.to_string(),
            detail,
        };
        if via.is_none() && dev.is_none() {
            return Err(invalid(
                "a route needs a gateway (via), a device (dev), or both".into(),
            ));
        }
        let family_ip = dest.map(|(ip, _)| ip).or(via);
        if let (Some((dst, _)), Some(gw)) = (dest, via) {
            if dst.is_ipv4() != gw.is_ipv4() {
                return Err(invalid(format!(
                    "destination {dst} and gateway {gw} are of different IP versions"
                )));
            }
        }
        let mut message = RouteMessage::default();
        message.header.address_family = family_ip.map_or(AddressFamily::Inet, family_of);
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        if for_delete {
            message.header.scope = RouteScope::NoWhere;
        } else {
            message.header.protocol = RouteProtocol::Boot;
            message.header.kind = RouteType::Unicast;
            message.header.scope = if via.is_some() {
                RouteScope::Universe
            } else {
                RouteScope::Link
            };
        }
        if let Some((ip, prefix_len)) = dest {
            check_prefix(op, ip, prefix_len)?;
            message.header.destination_prefix_length = prefix_len;
            message
                .attributes
                .push(RouteAttribute::Destination(RouteAddress::from(ip)));
        }
        if let Some(gw) = via {
            message
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
        }
        if let Some(dev) = dev {
            let index = self.link_index_for(op, dev)?;
            message.attributes.push(RouteAttribute::Oif(index));
        }
        Ok(message)
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

    fn ethtool_error(&self, op: &str, iface: &str, source: io::Error) -> Error {
        Error::Ethtool {
            op: op.to_string(),
            ns: self.label.clone(),
            iface: iface.to_string(),
            source,
        }
    }
}

fn route_op(
    verb: &str,
    dest: Option<(IpAddr, u8)>,
    via: Option<IpAddr>,
    dev: Option<&str>,
) -> String {
    let mut op = format!("ip route {verb}");
    match dest {
        Some((ip, len)) => op.push_str(&format!(" {ip}/{len}")),
        None => op.push_str(" default"),
    }
    if let Some(gw) = via {
        op.push_str(&format!(" via {gw}"));
    }
    if let Some(dev) = dev {
        op.push_str(&format!(" dev {dev}"));
    }
    op
}

/// Interface names: 1–15 bytes, no `/`, whitespace or NUL (the kernel's `dev_valid_name`).
pub fn check_ifname(op: &str, name: &str) -> Result<()> {
    let bad = |why: &str| Error::InvalidArgument {
        op: op.to_string(),
        detail: format!("interface name {name:?} {why}"),
    };
    if name.is_empty() {
        return Err(bad("is empty"));
    }
    if name.len() > 15 {
        return Err(bad("is longer than 15 bytes"));
    }
    if name == "." || name == ".." {
        return Err(bad("is reserved"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        return Err(bad("contains '/', ':', whitespace or NUL"));
    }
    Ok(())
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

/// The scope `ip addr add` picks when none is given.
fn default_address_scope(ip: IpAddr) -> AddressScope {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => AddressScope::Host,
        IpAddr::V6(v6) if v6.is_loopback() => AddressScope::Host,
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => AddressScope::Link,
        _ => AddressScope::Universe,
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

fn link_name(message: &LinkMessage) -> Option<&str> {
    message.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

fn link_info(message: &LinkMessage, names: &HashMap<u32, String>) -> LinkInfo {
    let mut info = LinkInfo {
        name: link_name(message).unwrap_or_default().to_string(),
        ifindex: message.header.index,
        kind: String::new(),
        mac: None,
        mtu: 0,
        up: message.header.flags.contains(LinkFlags::Up),
        master: None,
    };
    for attr in &message.attributes {
        match attr {
            LinkAttribute::Address(bytes) => info.mac = MacAddr::from_slice(bytes),
            LinkAttribute::Mtu(mtu) => info.mtu = *mtu,
            LinkAttribute::Controller(index) => {
                info.master = Some(
                    names
                        .get(index)
                        .cloned()
                        .unwrap_or_else(|| format!("if{index}")),
                )
            }
            LinkAttribute::LinkInfo(infos) => {
                for item in infos {
                    if let NlLinkInfo::Kind(kind) = item {
                        info.kind = kind.to_string();
                    }
                }
            }
            _ => {}
        }
    }
    if info.kind.is_empty() {
        info.kind = if message.header.link_layer_type == LinkLayerType::Loopback {
            "loopback".into()
        } else {
            "device".into()
        };
    }
    info
}

fn address_info(message: &AddressMessage, names: &HashMap<u32, String>) -> Option<AddressInfo> {
    let mut local = None;
    let mut address = None;
    for attr in &message.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    Some(AddressInfo {
        iface: iface_name(names, message.header.index),
        addr: local.or(address)?,
        prefix: message.header.prefix_len,
        scope: lower_debug(message.header.scope),
    })
}

fn route_address(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_info(message: &RouteMessage, names: &HashMap<u32, String>) -> RouteInfo {
    let header = &message.header;
    let mut info = RouteInfo {
        table: u32::from(header.table),
        family: family_name(header.address_family),
        kind: lower_debug(header.kind),
        dst: None,
        prefix: header.destination_prefix_length,
        gateway: None,
        oif: None,
        prefsrc: None,
        scope: lower_debug(header.scope),
        protocol: lower_debug(header.protocol),
        metric: None,
    };
    for attr in &message.attributes {
        match attr {
            RouteAttribute::Table(table) => info.table = *table,
            RouteAttribute::Destination(a) => info.dst = route_address(a),
            RouteAttribute::Gateway(a) => info.gateway = route_address(a),
            RouteAttribute::PrefSource(a) => info.prefsrc = route_address(a),
            RouteAttribute::Oif(index) => info.oif = Some(iface_name(names, *index)),
            RouteAttribute::Priority(metric) => info.metric = Some(*metric),
            _ => {}
        }
    }
    info
}

fn neighbour_info(
    message: &NeighbourMessage,
    names: &HashMap<u32, String>,
) -> Option<NeighbourInfo> {
    let mut ip = None;
    let mut mac = None;
    for attr in &message.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                ip = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                ip = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = MacAddr::from_slice(bytes),
            _ => {}
        }
    }
    Some(NeighbourInfo {
        iface: iface_name(names, message.header.ifindex),
        ip: ip?,
        mac,
        state: lower_debug(message.header.state),
    })
}

fn rule_info(message: &RuleMessage) -> RuleInfo {
    let header = &message.header;
    let mut info = RuleInfo {
        family: family_name(header.family),
        priority: 0,
        action: lower_debug(header.action),
        table: u32::from(header.table),
        src: None,
        dst: None,
        iif: None,
        oif: None,
        fwmark: None,
    };
    for attr in &message.attributes {
        match attr {
            RuleAttribute::Priority(p) => info.priority = *p,
            RuleAttribute::Table(t) => info.table = *t,
            RuleAttribute::Source(ip) => info.src = Some(format!("{ip}/{}", header.src_len)),
            RuleAttribute::Destination(ip) => info.dst = Some(format!("{ip}/{}", header.dst_len)),
            RuleAttribute::Iifname(name) => info.iif = Some(name.clone()),
            RuleAttribute::Oifname(name) => info.oif = Some(name.clone()),
            RuleAttribute::FwMark(mark) => info.fwmark = Some(*mark),
            _ => {}
        }
    }
    info
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
    fn interface_names_follow_kernel_rules() {
        for ok in ["eth0", "veth-dir-rs1", "a", "0123456789abcde"] {
            assert!(check_ifname("t", ok).is_ok(), "{ok}");
        }
        for bad in ["", "0123456789abcdef", "a/b", "a b", ".", "..", "eth0:1"] {
            assert!(check_ifname("t", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefix_lengths_are_bounded_by_family() {
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert!(check_prefix("t", v4, 32).is_ok());
        assert!(check_prefix("t", v4, 33).is_err());
        assert!(check_prefix("t", v6, 128).is_ok());
        assert!(check_prefix("t", v6, 129).is_err());
    }

    #[test]
    fn address_scope_matches_ip_defaults() {
        let scope = |s: &str| default_address_scope(s.parse().expect("ip"));
        assert_eq!(scope("127.0.0.2"), AddressScope::Host);
        assert_eq!(scope("::1"), AddressScope::Host);
        assert_eq!(scope("fe80::1"), AddressScope::Link);
        assert_eq!(scope("192.0.2.10"), AddressScope::Universe);
    }

    #[test]
    fn route_ops_read_like_ip_commands() {
        let gw: IpAddr = "192.0.2.254".parse().expect("ip");
        let net: IpAddr = "198.51.100.0".parse().expect("ip");
        assert_eq!(
            route_op("add", None, Some(gw), None),
            "ip route add default via 192.0.2.254"
        );
        assert_eq!(
            route_op("del", Some((net, 24)), None, Some("eth1")),
            "ip route del 198.51.100.0/24 dev eth1"
        );
    }
}
