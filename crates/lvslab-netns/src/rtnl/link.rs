//! `ip link`: creating, changing, deleting and listing interfaces.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkLayerType,
    LinkMessage, State as LinkState,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkBridge, LinkGre, LinkIpIp, LinkMessageBuilder, LinkUnspec};

use super::NsHandle;
use crate::dump::LinkInfo;
use crate::error::{Error, Result};
use crate::mac::MacAddr;
use crate::netlink::NlError;
use crate::ns::Netns;

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

    pub(super) fn raw_links(&self, op: &str) -> Result<Vec<LinkMessage>> {
        let dump = self.dump(op, RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    pub(super) fn link_names(&self, op: &str) -> Result<HashMap<u32, String>> {
        Ok(self
            .raw_links(op)?
            .iter()
            .filter_map(|m| link_name(m).map(|n| (m.header.index, n.to_string())))
            .collect())
    }

    pub(super) fn link_index_for(&self, op: &str, name: &str) -> Result<u32> {
        self.raw_links(op)?
            .iter()
            .find(|m| link_name(m) == Some(name))
            .map(|m| m.header.index)
            .ok_or_else(|| self.no_such_interface(op, name))
    }
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
}
