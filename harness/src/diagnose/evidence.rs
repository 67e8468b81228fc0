//! The facts a diagnosis reads: what every node of a built lab really has.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lvslab_netns::apply::LabInstance;
use lvslab_netns::{AddressInfo, LinkInfo, NeighbourInfo, RouteInfo};
use lvslab_pcap::decode::PacketSummary;
use lvslab_spec::model::{Lab, Prefix};
use lvslab_spec::Dataplane;

/// Per-interface sysctls (under `net.ipv4.conf.<iface>.`) a diagnosis reads.
const CONF_KEYS: [&str; 6] = [
    "rp_filter",
    "arp_ignore",
    "arp_announce",
    "accept_local",
    "send_redirects",
    "forwarding",
];

/// What one node really has, read from its namespace.
#[derive(Debug, Clone, Default)]
pub struct NodeEvidence {
    /// Node name in the lab.
    pub node: String,
    /// Interfaces with their state and MACs.
    pub links: Vec<LinkInfo>,
    /// Every address.
    pub addresses: Vec<AddressInfo>,
    /// Main-table routes.
    pub routes: Vec<RouteInfo>,
    /// ARP entries (with MACs where resolved).
    pub neighbours: Vec<NeighbourInfo>,
    /// `net.ipv4.ip_forward` and the [`CONF_KEYS`] of `all`, `default`, `lo` and every
    /// interface, by dotted key.
    pub sysctls: BTreeMap<String, String>,
    /// What could not be read, so a missing fact is not taken for a fault.
    pub errors: Vec<String>,
}

impl NodeEvidence {
    pub(super) fn sysctl(&self, key: &str) -> Option<i64> {
        self.sysctls.get(key).and_then(|v| v.trim().parse().ok())
    }

    /// `net.ipv4.conf.<iface>.<name>`.
    pub(super) fn conf(&self, iface: &str, name: &str) -> Option<i64> {
        self.sysctl(&format!("net.ipv4.conf.{iface}.{name}"))
    }

    /// The value the kernel acts on for settings where the larger of `all` and the
    /// interface wins (rp_filter, arp_ignore, arp_announce).
    pub(super) fn effective_max(&self, iface: &str, name: &str) -> Option<i64> {
        match (self.conf("all", name), self.conf(iface, name)) {
            (Some(a), Some(i)) => Some(a.max(i)),
            (a, i) => a.or(i),
        }
    }

    pub(super) fn holds(&self, ip: &IpAddr) -> bool {
        self.addresses.iter().any(|a| a.addr == *ip)
    }

    pub(super) fn ifaces_holding(&self, ip: &IpAddr) -> Vec<&str> {
        self.addresses
            .iter()
            .filter(|a| a.addr == *ip)
            .map(|a| a.iface.as_str())
            .collect()
    }

    pub(super) fn link(&self, name: &str) -> Option<&LinkInfo> {
        self.links.iter().find(|l| l.name == name)
    }

    /// Prefixes reachable without a gateway: the node's own non-host addresses.
    pub(super) fn on_link_prefixes(&self) -> Vec<(Prefix, &str)> {
        self.addresses
            .iter()
            .filter(|a| a.iface != "lo" && a.prefix < Prefix::max_len(&a.addr))
            .map(|a| {
                (
                    Prefix {
                        addr: a.addr,
                        len: a.prefix,
                    },
                    a.iface.as_str(),
                )
            })
            .collect()
    }

    /// The main-table route the kernel would pick for `ip` (longest prefix, lowest metric).
    pub(super) fn route_to(&self, ip: &IpAddr) -> Option<&RouteInfo> {
        self.routes
            .iter()
            .filter(|r| r.kind == "unicast" && (r.family == "inet") == ip.is_ipv4())
            .filter(|r| match r.dst {
                None => true,
                Some(dst) => Prefix {
                    addr: dst,
                    len: r.prefix,
                }
                .contains(ip),
            })
            .max_by_key(|r| (r.prefix, std::cmp::Reverse(r.metric.unwrap_or(0))))
    }
}

/// Everything read from a lab for a diagnosis.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// One entry per lab node that has a namespace.
    pub nodes: Vec<NodeEvidence>,
    /// Decoded captures, if the caller took any.
    pub packets: Vec<PacketSummary>,
    /// The dataplane that balanced the lab, if known: some rules matter only to one.
    pub dataplane: Option<Dataplane>,
}

impl Evidence {
    /// The evidence of one node.
    pub fn node(&self, name: &str) -> Option<&NodeEvidence> {
        self.nodes.iter().find(|n| n.node == name)
    }

    /// Adds decoded captures.
    pub fn with_packets(mut self, packets: &[PacketSummary]) -> Evidence {
        self.packets.extend_from_slice(packets);
        self
    }

    /// Records which dataplane ran.
    pub fn with_dataplane(mut self, d: Dataplane) -> Evidence {
        self.dataplane = Some(d);
        self
    }

    /// `node:iface` of the interface with this MAC, across all nodes.
    pub(super) fn owner_of_mac(&self, mac: &str) -> Option<(String, String)> {
        self.nodes.iter().find_map(|n| {
            n.links
                .iter()
                .find(|l| l.mac.is_some_and(|m| m.to_string() == mac))
                .map(|l| (n.node.clone(), l.name.clone()))
        })
    }

    /// The node holding `ip` on an interface other than `lo` (for naming gateways).
    pub(super) fn owner_of_ip(&self, ip: &IpAddr) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.addresses.iter().any(|a| a.addr == *ip && a.iface != "lo"))
            .map(|n| n.node.as_str())
    }
}

/// Reads the evidence of every node of a built lab. Nothing is changed; what cannot be
/// read is recorded in [`NodeEvidence::errors`].
pub fn gather(lab: &Lab, inst: &LabInstance) -> Evidence {
    let mut nodes = Vec::new();
    for n in &lab.nodes {
        let Some(ns) = inst.ns(&n.name) else { continue };
        let mut ev = NodeEvidence {
            node: n.name.clone(),
            ..NodeEvidence::default()
        };
        match ns.netlink() {
            Ok(h) => {
                match h.links() {
                    Ok(v) => ev.links = v,
                    Err(e) => ev.errors.push(format!("links: {e}")),
                }
                match h.addresses() {
                    Ok(v) => ev.addresses = v,
                    Err(e) => ev.errors.push(format!("addresses: {e}")),
                }
                match h.routes() {
                    Ok(v) => ev.routes = v,
                    Err(e) => ev.errors.push(format!("routes: {e}")),
                }
                match h.neighbours() {
                    Ok(v) => ev.neighbours = v,
                    Err(e) => ev.errors.push(format!("neighbours: {e}")),
                }
            }
            Err(e) => ev.errors.push(format!("netlink: {e}")),
        }
        match lvslab_netns::get_sysctl(ns, "net.ipv4.ip_forward") {
            Ok(v) => {
                ev.sysctls.insert("net.ipv4.ip_forward".into(), v);
            }
            Err(e) => ev.errors.push(e.to_string()),
        }
        match lvslab_netns::sysctl::read_tree(ns, &["net/ipv4/conf"]) {
            Ok(all) => ev.sysctls.extend(all.into_iter().filter(|(k, _)| {
                k.rsplit('.')
                    .next()
                    .is_some_and(|last| CONF_KEYS.contains(&last))
            })),
            Err(e) => ev.errors.push(e.to_string()),
        }
        nodes.push(ev);
    }
    Evidence {
        nodes,
        packets: Vec::new(),
        dataplane: None,
    }
}
