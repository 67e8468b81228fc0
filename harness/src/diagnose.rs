//! Diagnosis of a failing lab: read what every node really has (addresses, routes,
//! neighbours, the sysctls LVS cares about, link state), optionally with decoded captures,
//! and match it against the classic LVS mistakes to name the likely cause.
//!
//! Every rule is derived from the lab model (roles, services, forwarding methods, switches
//! and links), never from fixed addresses, so it applies to any lab. The rules follow the
//! real-server requirements of VS/NAT, VS/DR and VS/TUN: a NAT real server routes its
//! replies through the director; DR and TUN real servers hold the VIP without answering
//! ARP for it, and accept packets whose reverse path is not the interface they arrived on;
//! a DR real server shares a segment with the director; routers forward.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use lvslab_netns::apply::LabInstance;
use lvslab_netns::{AddressInfo, LinkInfo, NeighbourInfo, RouteInfo};
use lvslab_pcap::decode::PacketSummary;
use lvslab_spec::lb::{ForwardMethod, Protocol, ServiceKey};
use lvslab_spec::model::{Endpoint, Lab, NatRule, Prefix, Role};

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
    fn sysctl(&self, key: &str) -> Option<i64> {
        self.sysctls.get(key).and_then(|v| v.trim().parse().ok())
    }

    /// `net.ipv4.conf.<iface>.<name>`.
    fn conf(&self, iface: &str, name: &str) -> Option<i64> {
        self.sysctl(&format!("net.ipv4.conf.{iface}.{name}"))
    }

    /// The value the kernel acts on for settings where the larger of `all` and the
    /// interface wins (rp_filter, arp_ignore, arp_announce).
    fn effective_max(&self, iface: &str, name: &str) -> Option<i64> {
        match (self.conf("all", name), self.conf(iface, name)) {
            (Some(a), Some(i)) => Some(a.max(i)),
            (a, i) => a.or(i),
        }
    }

    fn holds(&self, ip: &IpAddr) -> bool {
        self.addresses.iter().any(|a| a.addr == *ip)
    }

    fn ifaces_holding(&self, ip: &IpAddr) -> Vec<&str> {
        self.addresses
            .iter()
            .filter(|a| a.addr == *ip)
            .map(|a| a.iface.as_str())
            .collect()
    }

    fn link(&self, name: &str) -> Option<&LinkInfo> {
        self.links.iter().find(|l| l.name == name)
    }

    /// Prefixes reachable without a gateway: the node's own non-host addresses.
    fn on_link_prefixes(&self) -> Vec<(Prefix, &str)> {
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
    fn route_to(&self, ip: &IpAddr) -> Option<&RouteInfo> {
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
    fn owner_of_mac(&self, mac: &str) -> Option<(String, String)> {
        self.nodes.iter().find_map(|n| {
            n.links
                .iter()
                .find(|l| l.mac.is_some_and(|m| m.to_string() == mac))
                .map(|l| (n.node.clone(), l.name.clone()))
        })
    }

    /// The node holding `ip` on an interface other than `lo` (for naming gateways).
    fn owner_of_ip(&self, ip: &IpAddr) -> Option<&str> {
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

/// One likely cause of a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// Stable identifier, e.g. `dr.rs-answers-arp-for-vip`.
    pub cause_id: &'static str,
    /// The node at fault.
    pub node: String,
    /// One sentence for a person: node, interface, address and the fix.
    pub summary: String,
    /// The facts that led here.
    pub evidence: Vec<String>,
    /// 0–100: how likely this is the cause; diagnoses come sorted by it.
    pub likelihood: u8,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "likely cause [{}]: {}", self.cause_id, self.summary)?;
        for e in &self.evidence {
            write!(f, "\n    evidence: {e}")?;
        }
        Ok(())
    }
}

/// The diagnoses as text, most likely first, or a line saying none matched.
pub fn render(diagnoses: &[Diagnosis]) -> String {
    if diagnoses.is_empty() {
        return "likely cause: none of the classic LVS mistakes matched the nodes' state".into();
    }
    diagnoses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Gathers evidence, diagnoses it and appends the result to a failure message. This is
/// what a failing trial calls before tearing the lab down.
pub fn explain_failure(
    lab: &Lab,
    inst: &LabInstance,
    dataplane: Dataplane,
    packets: Option<&[PacketSummary]>,
    failure: String,
) -> String {
    let mut ev = gather(lab, inst).with_dataplane(dataplane);
    if let Some(p) = packets {
        ev = ev.with_packets(p);
    }
    let d = diagnose(lab, &ev);
    format!("{failure}\n{}", indent(&render(&d)))
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// "the director" or "the director dir2", so a node named `director` is not named twice.
fn director_label(name: &str) -> String {
    if name == "director" {
        "the director".into()
    } else {
        format!("the director {name}")
    }
}

/// A real server of a service, with what the rules need.
struct RsRef<'a> {
    node: &'a str,
    rip: IpAddr,
    method: ForwardMethod,
    vip: Option<IpAddr>,
    director: &'a str,
}

fn real_servers(lab: &Lab) -> Vec<RsRef<'_>> {
    let mut out = Vec::new();
    for svc in &lab.services {
        let vip = match svc.config.key {
            ServiceKey::Addr { addr, .. } => Some(addr),
            ServiceKey::Fwmark { .. } => None,
        };
        for rs in &svc.real_servers {
            let Some(node) = rs.node.as_deref() else {
                continue;
            };
            out.push(RsRef {
                node,
                rip: rs.config.addr,
                method: rs.config.method,
                vip,
                director: &svc.director,
            });
        }
    }
    out
}

fn vips(lab: &Lab) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = lab
        .services
        .iter()
        .filter_map(|s| match s.config.key {
            ServiceKey::Addr { addr, .. } => Some(addr),
            ServiceKey::Fwmark { .. } => None,
        })
        .collect();
    out.dedup();
    out
}

/// The addresses real servers and directors send replies to, most telling first: every
/// address a source-NAT rule on the way rewrites clients to (what the servers really see),
/// then the traffic source's own addresses.
fn reply_destinations(lab: &Lab) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for n in &lab.nodes {
        for rule in &n.nat {
            match rule {
                NatRule::Masquerade { out: Some(i), .. } => {
                    out.extend(n.interfaces.get(i).into_iter().flatten().map(|p| p.addr));
                }
                NatRule::Masquerade { out: None, .. } => {}
                NatRule::Snat { to, .. } => out.push(*to),
                NatRule::Dnat { .. } => {}
            }
        }
    }
    if let Some(t) = &lab.traffic {
        if let Some(n) = lab.node(&t.from) {
            out.extend(
                n.interfaces
                    .iter()
                    .filter(|(i, _)| i.as_str() != "lo")
                    .flat_map(|(_, p)| p.iter().map(|p| p.addr)),
            );
        }
    }
    let mut seen = Vec::new();
    out.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    out
}

/// Every endpoint sharing an Ethernet segment with `ep` (same switch, or the other end of
/// a link).
fn l2_peers(lab: &Lab, ep: &Endpoint) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for s in &lab.switches {
        if s.ports.contains(ep) {
            out.extend(s.ports.iter().filter(|p| *p != ep).cloned());
        }
    }
    for l in &lab.links {
        if &l.a == ep {
            out.push(l.b.clone());
        } else if &l.b == ep {
            out.push(l.a.clone());
        }
    }
    out
}

fn segment_name(lab: &Lab, ep: &Endpoint) -> String {
    if let Some(s) = lab.switches.iter().find(|s| s.ports.contains(ep)) {
        return format!("switch {}", s.name);
    }
    if let Some(l) = lab.links.iter().find(|l| &l.a == ep || &l.b == ep) {
        return format!("a link {} ↔ {}", l.a, l.b);
    }
    "no segment".into()
}

/// Matches the evidence against the classic LVS mistakes; most likely first.
pub fn diagnose(lab: &Lab, ev: &Evidence) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    let replies = reply_destinations(lab);
    rs_missing_vip(lab, ev, &mut out);
    rs_answers_arp(lab, ev, &mut out);
    nat_gateway(lab, ev, &replies, &mut out);
    forwarding_off(lab, ev, &mut out);
    rp_filter(lab, ev, &replies, &mut out);
    dr_segment(lab, ev, &mut out);
    director_vip(lab, ev, &mut out);
    no_route_back(lab, ev, &replies, &mut out);
    dr_gateway_is_director(lab, ev, &replies, &mut out);
    dnat_target(lab, &mut out);
    links_down(lab, ev, &mut out);
    captured_requests_unanswered(lab, ev, &mut out);
    // One report per (cause, node), keeping the most likely.
    out.sort_by_key(|d| std::cmp::Reverse(d.likelihood));
    let mut seen = Vec::new();
    out.retain(|d| {
        let key = (d.cause_id, d.node.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    out
}

fn rs_missing_vip(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
    for rs in real_servers(lab) {
        let (cause, mode) = match rs.method {
            ForwardMethod::Dr => ("dr.rs-missing-vip", "DR"),
            ForwardMethod::Tunnel => ("tun.rs-missing-vip", "TUN"),
            _ => continue,
        };
        let (Some(vip), Some(n)) = (rs.vip, ev.node(rs.node)) else {
            continue;
        };
        if n.holds(&vip) || n.addresses.is_empty() {
            continue;
        }
        // Where it belongs: the lab's choice if it made one, else lo for DR and the
        // decapsulation device for TUN.
        let model = lab.node(rs.node);
        let dev = model
            .and_then(|m| {
                m.interfaces
                    .iter()
                    .find(|(_, p)| p.iter().any(|p| p.addr == vip))
                    .map(|(i, _)| i.clone())
            })
            .or_else(|| {
                (rs.method == ForwardMethod::Tunnel)
                    .then(|| {
                        model
                            .and_then(|m| m.decap.as_ref())
                            .map(|d| d.device.clone())
                    })
                    .flatten()
            })
            .unwrap_or_else(|| "lo".into());
        let plen = Prefix::max_len(&vip);
        out.push(Diagnosis {
            cause_id: cause,
            node: rs.node.into(),
            summary: format!(
                "{} is a {mode} real server but does not hold the VIP {vip}: it drops the requests \
                 the director forwards to it unchanged (destination {vip}); add it as a host \
                 address without ARP (`ip addr add {vip}/{plen} dev {dev}`, with arp_ignore=1 and arp_announce=2)",
                rs.node
            ),
            evidence: vec![format!(
                "{} addresses: {}",
                rs.node,
                n.addresses
                    .iter()
                    .filter(|a| a.iface != "lo" || !a.addr.is_loopback())
                    .map(|a| format!("{}/{} on {}", a.addr, a.prefix, a.iface))
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            likelihood: 92,
        });
    }
}

fn rs_answers_arp(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
    for rs in real_servers(lab) {
        if !matches!(rs.method, ForwardMethod::Dr | ForwardMethod::Tunnel) {
            continue;
        }
        let (Some(vip), Some(n)) = (rs.vip, ev.node(rs.node)) else {
            continue;
        };
        if !n.holds(&vip) {
            continue;
        }
        let mut facts = Vec::new();
        let mut likelihood = 0u8;
        let mut summary = None;
        // Neighbours elsewhere that resolved the VIP to one of this server's MACs.
        for other in ev.nodes.iter().filter(|o| o.node != rs.node) {
            for nb in other.neighbours.iter().filter(|nb| nb.ip == vip) {
                let Some(mac) = nb.mac else { continue };
                if let Some((owner, iface)) = ev.owner_of_mac(&mac.to_string()) {
                    if owner == rs.node {
                        facts.push(format!(
                            "{} maps the VIP {vip} to {mac}, which is {owner}:{iface} ({})",
                            other.node, nb.state
                        ));
                        likelihood = likelihood.max(95);
                    }
                }
            }
        }
        for p in &ev.packets {
            let Some(arp) = &p.arp else { continue };
            if arp.operation == 2 && IpAddr::V4(arp.sender_ip) == vip {
                if let Some((owner, iface)) = ev.owner_of_mac(&arp.sender_mac.to_string()) {
                    if owner == rs.node {
                        facts.push(format!(
                            "captured at {}: ARP reply {vip} is-at {} from {owner}:{iface}",
                            p.point, arp.sender_mac
                        ));
                        likelihood = likelihood.max(95);
                    }
                }
            }
        }
        let held_on = n.ifaces_holding(&vip);
        let ethernet: Vec<&LinkInfo> = n
            .links
            .iter()
            .filter(|l| l.mac.is_some() && l.name != "lo" && l.kind != "loopback")
            .collect();
        if let Some(l) = ethernet.iter().find(|l| held_on.contains(&l.name.as_str())) {
            likelihood = likelihood.max(85);
            facts.push(format!("{} holds {vip} on {} (Ethernet)", rs.node, l.name));
            summary = Some(format!(
                "{} holds the VIP {vip} on its Ethernet interface {} and answers ARP for it, so \
                 routers send clients' packets straight to it, bypassing the director; move the \
                 VIP to lo as a /{} and set arp_ignore=1, arp_announce=2",
                rs.node,
                l.name,
                Prefix::max_len(&vip)
            ));
        }
        for l in &ethernet {
            let Some(ign) = n.effective_max(&l.name, "arp_ignore") else {
                continue;
            };
            if ign == 0 && !held_on.contains(&l.name.as_str()) {
                likelihood = likelihood.max(if facts.is_empty() { 70 } else { 95 });
                facts.push(format!(
                    "{}: arp_ignore = max(all {}, {} {}) = 0, VIP {vip} on {}",
                    rs.node,
                    n.conf("all", "arp_ignore").unwrap_or(0),
                    l.name,
                    n.conf(&l.name, "arp_ignore").unwrap_or(0),
                    held_on.join(", ")
                ));
                summary.get_or_insert_with(|| {
                    format!(
                        "{} answers ARP for the VIP {vip} on {} (arp_ignore 0 there, VIP on {}), \
                         so the router in front can send clients straight to it, bypassing the \
                         director; set net.ipv4.conf.all.arp_ignore=1 and \
                         net.ipv4.conf.all.arp_announce=2 (and the same on {})",
                        rs.node,
                        l.name,
                        held_on.join(", "),
                        held_on.join(", ")
                    )
                });
            }
        }
        if likelihood == 0 {
            continue;
        }
        let summary = summary.unwrap_or_else(|| {
            format!(
                "{} answers ARP for the VIP {vip}, so the router in front sends clients straight \
                 to it, bypassing the director; set arp_ignore=1 and arp_announce=2 on all and \
                 its interfaces",
                rs.node
            )
        });
        out.push(Diagnosis {
            cause_id: "dr.rs-answers-arp-for-vip",
            node: rs.node.into(),
            summary,
            evidence: facts,
            likelihood,
        });
    }
}

fn nat_gateway(lab: &Lab, ev: &Evidence, replies: &[IpAddr], out: &mut Vec<Diagnosis>) {
    for rs in real_servers(lab) {
        if !matches!(rs.method, ForwardMethod::Nat) {
            continue;
        }
        let (Some(n), Some(dir)) = (ev.node(rs.node), ev.node(rs.director)) else {
            continue;
        };
        for dst in replies {
            if n.on_link_prefixes().iter().any(|(p, _)| p.contains(dst)) {
                continue;
            }
            let Some(r) = n.route_to(dst) else { continue };
            let Some(gw) = r.gateway else { continue };
            if dir.holds(&gw) {
                continue;
            }
            let owner = ev.owner_of_ip(&gw).unwrap_or("an unknown host");
            let director_addr = dir
                .addresses
                .iter()
                .filter(|a| a.iface != "lo")
                .find(|a| {
                    n.on_link_prefixes()
                        .iter()
                        .any(|(p, _)| p.contains(&a.addr))
                })
                .map(|a| a.addr.to_string())
                .unwrap_or_else(|| "the director's inside address".into());
            out.push(Diagnosis {
                cause_id: "nat.rs-gateway-not-director",
                node: rs.node.into(),
                summary: format!(
                    "NAT real server {} sends replies to {dst} via {gw} ({owner}), not via {}, \
                     so they are never rewritten back to the VIP and the client drops them; \
                     route them through the director (`ip route replace default via {director_addr}`)",
                    rs.node,
                    director_label(rs.director)
                ),
                evidence: vec![format!("{}: {r}", rs.node)],
                likelihood: 90,
            });
            break;
        }
    }
}

fn forwarding_off(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
    let nat_directors: Vec<&str> = lab
        .services
        .iter()
        .filter(|s| {
            s.real_servers
                .iter()
                .any(|r| matches!(r.config.method, ForwardMethod::Nat))
        })
        .map(|s| s.director.as_str())
        .collect();
    for node in &lab.nodes {
        let Some(n) = ev.node(&node.name) else {
            continue;
        };
        if n.sysctl("net.ipv4.ip_forward") != Some(0) {
            continue;
        }
        let (why, likelihood) = match node.role {
            Role::Router | Role::Firewall => (
                format!(
                    "{} is the lab's {} and must forward between its interfaces",
                    node.name,
                    if node.role == Role::Router {
                        "router"
                    } else {
                        "firewall"
                    }
                ),
                88,
            ),
            Role::Director if nat_directors.contains(&node.name.as_str()) => match ev.dataplane {
                Some(Dataplane::Userspace) => (
                    format!(
                        "{} is a NAT director: kernel IPVS needs forwarding to carry the real \
                         servers' replies (the userspace director forwards them itself, so this \
                         matters only on the kernel dataplane)",
                        node.name
                    ),
                    25,
                ),
                _ => (
                    format!(
                        "{} is a NAT director: the real servers' replies are forwarded (and \
                         rewritten) by it",
                        node.name
                    ),
                    88,
                ),
            },
            _ => continue,
        };
        out.push(Diagnosis {
            cause_id: "forwarding-off",
            node: node.name.clone(),
            summary: format!(
                "IP forwarding is off on {}: {why}; set net.ipv4.ip_forward=1 there",
                node.name
            ),
            evidence: vec![format!("{}: net.ipv4.ip_forward = 0", node.name)],
            likelihood,
        });
    }
}

fn rp_filter(lab: &Lab, ev: &Evidence, replies: &[IpAddr], out: &mut Vec<Diagnosis>) {
    for rs in real_servers(lab) {
        if !matches!(rs.method, ForwardMethod::Dr | ForwardMethod::Tunnel) {
            continue;
        }
        let Some(n) = ev.node(rs.node) else { continue };
        let decap = lab
            .node(rs.node)
            .and_then(|m| m.decap.as_ref())
            .map(|d| d.device.clone());
        // Interfaces requests arrive on: the one holding the RIP, and for TUN the
        // decapsulation device the inner packet appears on.
        let mut ingress: Vec<(String, bool)> = n
            .ifaces_holding(&rs.rip)
            .into_iter()
            .map(|i| (i.to_string(), false))
            .collect();
        if rs.method == ForwardMethod::Tunnel {
            if let Some(d) = &decap {
                ingress.push((d.clone(), true));
            }
        }
        for (iface, decapsulated) in ingress {
            let Some(rp) = n.effective_max(&iface, "rp_filter") else {
                continue;
            };
            if rp == 0 {
                continue;
            }
            // Strict mode drops a packet whose source is not routed back out of the
            // interface it came in on; loose mode only when there is no route at all.
            let bad_src = replies.iter().find(|src| match n.route_to(src) {
                None => true,
                Some(r) => rp == 1 && r.oif.as_deref() != Some(iface.as_str()),
            });
            let Some(src) = bad_src else { continue };
            let route = n
                .route_to(src)
                .map(|r| r.to_string())
                .unwrap_or_else(|| "no route".into());
            let (cause, likelihood, what) = if decapsulated {
                (
                    "tun.rp-filter-drops-decapsulated",
                    90,
                    format!(
                        "decapsulated requests from {src} arrive on {iface} but are routed back \
                         via another interface"
                    ),
                )
            } else {
                (
                    "rs.rp-filter-drops-requests",
                    60,
                    format!(
                        "requests from {src} arrive on {iface} but the reverse route is not \
                         through {iface}"
                    ),
                )
            };
            out.push(Diagnosis {
                cause_id: cause,
                node: rs.node.into(),
                summary: format!(
                    "reverse-path filtering on {}:{iface} (rp_filter {rp}) drops the requests: \
                     {what}; set net.ipv4.conf.all.rp_filter=0 and net.ipv4.conf.{iface}.rp_filter=0",
                    rs.node
                ),
                evidence: vec![
                    format!(
                        "{}: rp_filter = max(all {}, {iface} {}) = {rp}",
                        rs.node,
                        n.conf("all", "rp_filter").unwrap_or(0),
                        n.conf(&iface, "rp_filter").unwrap_or(0)
                    ),
                    format!("{}: reverse route to {src}: {route}", rs.node),
                ],
                likelihood,
            });
        }
    }
}

fn dr_segment(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
    for rs in real_servers(lab) {
        if rs.method != ForwardMethod::Dr {
            continue;
        }
        let (Some(n), Some(dir)) = (ev.node(rs.node), ev.node(rs.director)) else {
            continue;
        };
        let mut facts = Vec::new();
        let on_link: Vec<(Prefix, &str)> = dir.on_link_prefixes();
        let rip_on_link = on_link.iter().any(|(p, _)| p.contains(&rs.rip));
        if !rip_on_link {
            facts.push(format!(
                "the RIP {} is in none of {}'s on-link prefixes ({})",
                rs.rip,
                rs.director,
                on_link
                    .iter()
                    .map(|(p, i)| format!("{}/{} on {i}", p.network(), p.len))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // The model's wiring: does the interface holding the RIP share a segment with any
        // director interface?
        let rs_ifaces = n.ifaces_holding(&rs.rip);
        let mut shares = false;
        let mut where_rs = Vec::new();
        for i in &rs_ifaces {
            let ep = Endpoint {
                node: rs.node.into(),
                iface: (*i).into(),
            };
            where_rs.push(format!("{ep} is on {}", segment_name(lab, &ep)));
            if l2_peers(lab, &ep).iter().any(|p| p.node == rs.director) {
                shares = true;
            }
        }
        if !shares && !rs_ifaces.is_empty() {
            facts.extend(where_rs);
        }
        if rip_on_link && shares {
            continue;
        }
        let director_segments: Vec<String> = lab
            .node_interfaces(rs.director)
            .into_iter()
            .map(|i| {
                let ep = Endpoint {
                    node: rs.director.into(),
                    iface: i,
                };
                format!("{ep} ({})", segment_name(lab, &ep))
            })
            .collect();
        out.push(Diagnosis {
            cause_id: "dr.rs-not-on-director-segment",
            node: rs.node.into(),
            summary: format!(
                "DR real server {} ({}) is not on the director's L2 segment: the director can \
                 only hand it a frame by rewriting the destination MAC, so the request never \
                 reaches it; attach it to the director's segment ({}) with an address in its \
                 prefix, or use TUN",
                rs.node,
                rs.rip,
                director_segments.join(", ")
            ),
            evidence: facts,
            likelihood: if !shares && !rip_on_link { 90 } else { 75 },
        });
    }
}

fn director_vip(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
    for svc in &lab.services {
        let ServiceKey::Addr { addr: vip, .. } = svc.config.key else {
            continue;
        };
        let Some(dir) = ev.node(&svc.director) else {
            continue;
        };
        if dir.holds(&vip) || dir.addresses.is_empty() {
            continue;
        }
        let (likelihood, note) = match ev.dataplane {
            // The userspace engine answers ARP for its VIPs itself: not a fault there.
            Some(Dataplane::Userspace) => (
                15,
                "the userspace director answers ARP for the VIP itself, but kernel IPVS only \
                 sees packets delivered locally (LOCAL_IN)",
            ),
            _ => (
                85,
                "kernel IPVS only sees packets delivered locally (LOCAL_IN)",
            ),
        };
        out.push(Diagnosis {
            cause_id: "director.vip-not-local",
            node: svc.director.clone(),
            summary: format!(
                "the director {} does not hold the VIP {vip}: {note}; add {vip} to one of its \
                 interfaces (on lo as a /{} for DR/TUN)",
                svc.director,
                Prefix::max_len(&vip)
            ),
            evidence: vec![format!(
                "{} addresses: {}",
                svc.director,
                dir.addresses
                    .iter()
                    .map(|a| format!("{}/{} on {}", a.addr, a.prefix, a.iface))
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            likelihood,
        });
    }
}

fn no_route_back(lab: &Lab, ev: &Evidence, replies: &[IpAddr], out: &mut Vec<Diagnosis>) {
    let mut reply_path: Vec<(&str, &str)> = real_servers(lab)
        .iter()
        .map(|r| (r.node, "a real server"))
        .collect();
    for s in &lab.services {
        reply_path.push((s.director.as_str(), "the director"));
    }
    reply_path.dedup();
    for (node, what) in reply_path {
        let Some(n) = ev.node(node) else { continue };
        if n.routes.is_empty() {
            continue;
        }
        for dst in replies {
            if n.route_to(dst).is_some() || n.holds(dst) {
                continue;
            }
            out.push(Diagnosis {
                cause_id: "no-route-to-client",
                node: node.into(),
                summary: format!(
                    "{node} ({what}) has no route to {dst}, where its replies go; add a route \
                     (usually a default route via the next router towards the client)"
                ),
                evidence: vec![format!(
                    "{node} routes: {}",
                    n.routes
                        .iter()
                        .filter(|r| r.family == "inet")
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                )],
                likelihood: 85,
            });
            break;
        }
    }
}

fn dr_gateway_is_director(lab: &Lab, ev: &Evidence, replies: &[IpAddr], out: &mut Vec<Diagnosis>) {
    for rs in real_servers(lab) {
        if !matches!(rs.method, ForwardMethod::Dr | ForwardMethod::Tunnel) {
            continue;
        }
        let (Some(n), Some(dir)) = (ev.node(rs.node), ev.node(rs.director)) else {
            continue;
        };
        let Some((dst, r, gw)) = replies.iter().find_map(|d| {
            let r = n.route_to(d)?;
            let gw = r.gateway?;
            dir.holds(&gw).then_some((d, r, gw))
        }) else {
            continue;
        };
        out.push(Diagnosis {
            cause_id: "dr.rs-gateway-is-director",
            node: rs.node.into(),
            summary: format!(
                "{} sends its replies to {dst} via {} ({gw}); in DR/TUN the replies carry the \
                 director's own VIP as source and are dropped there as martians; route them via \
                 the router instead",
                rs.node,
                director_label(rs.director)
            ),
            evidence: vec![format!("{}: {r}", rs.node)],
            likelihood: 70,
        });
    }
}

fn dnat_target(lab: &Lab, out: &mut Vec<Diagnosis>) {
    // Only the DNAT that carries the lab's own traffic is judged: a lab may forward other
    // ports for services a user adds by hand later.
    let Some(t) = &lab.traffic else { return };
    let services: Vec<(Protocol, IpAddr, u16)> = lab
        .services
        .iter()
        .filter_map(|s| match s.config.key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => Some((protocol, addr, port)),
            ServiceKey::Fwmark { .. } => None,
        })
        .collect();
    let vips = vips(lab);
    let listing = services
        .iter()
        .map(|(p, a, port)| format!("{} {a}:{port}", p.listing_name()))
        .collect::<Vec<_>>()
        .join(", ");
    for node in &lab.nodes {
        for rule in &node.nat {
            let NatRule::Dnat {
                protocol,
                destination,
                port,
                to,
                to_port,
            } = rule
            else {
                continue;
            };
            if !(*protocol == t.protocol && *destination == t.to && *port == t.port) {
                continue;
            }
            let rewrite = format!(
                "{}: dnat {} {destination}:{port} → {to}:{to_port}; services: {listing}",
                node.name,
                protocol.listing_name()
            );
            if !vips.contains(to) {
                let owner = lab.label_of(to).unwrap_or_else(|| "no node".into());
                out.push(Diagnosis {
                    cause_id: "fw.dnat-not-vip",
                    node: node.name.clone(),
                    summary: format!(
                        "{} rewrites {destination}:{port} to {to}:{to_port} ({owner}), which is \
                         not a virtual service address, so the director never balances the \
                         traffic; DNAT to the VIP ({})",
                        node.name,
                        vips.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    evidence: vec![rewrite],
                    likelihood: 88,
                });
            } else if !services.contains(&(*protocol, *to, *to_port)) {
                out.push(Diagnosis {
                    cause_id: "fw.dnat-wrong-port",
                    node: node.name.clone(),
                    summary: format!(
                        "{} rewrites {destination}:{port} to {to}:{to_port}, a port the virtual \
                         service on {to} does not listen on; DNAT to the service's port",
                        node.name
                    ),
                    evidence: vec![rewrite],
                    likelihood: 80,
                });
            }
        }
    }
}

fn links_down(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
    for node in &lab.nodes {
        let Some(n) = ev.node(&node.name) else {
            continue;
        };
        if n.links.is_empty() {
            continue;
        }
        for iface in lab.node_interfaces(&node.name) {
            let (cause, summary, fact) = match n.link(&iface) {
                None => (
                    "link-missing",
                    format!(
                        "{} has no interface {iface}, which the lab wires; create it",
                        node.name
                    ),
                    format!("{}: no link named {iface}", node.name),
                ),
                Some(l) if !l.up => (
                    "link-down",
                    format!(
                        "{}:{iface} is down; bring it up (`ip link set {iface} up`)",
                        node.name
                    ),
                    format!("{}: {l}", node.name),
                ),
                Some(_) => continue,
            };
            out.push(Diagnosis {
                cause_id: cause,
                node: node.name.clone(),
                summary,
                evidence: vec![fact],
                likelihood: 80,
            });
        }
    }
}

/// From captures: a real server that received requests for the service but sent nothing
/// back. It confirms a fault on that server without saying which; the other rules say.
fn captured_requests_unanswered(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
    if ev.packets.is_empty() {
        return;
    }
    for rs in real_servers(lab) {
        let prefix = format!("{}:", rs.node);
        let at_rs: Vec<&PacketSummary> = ev
            .packets
            .iter()
            .filter(|p| p.point.starts_with(&prefix))
            .collect();
        if at_rs.is_empty() {
            continue;
        }
        let service_dst = rs.vip.unwrap_or(rs.rip);
        let is_syn_to = |p: &&&PacketSummary, dst: IpAddr| {
            p.inner().is_some_and(|ip| IpAddr::V4(ip.dst) == dst)
                && matches!(p.l4, Some(lvslab_pcap::decode::L4Summary::Tcp(t))
                    if t.flags.has(lvslab_pcap::decode::TcpFlags::SYN)
                        && !t.flags.has(lvslab_pcap::decode::TcpFlags::ACK))
        };
        let syns = at_rs
            .iter()
            .filter(|p| is_syn_to(p, service_dst) || is_syn_to(p, rs.rip))
            .count();
        let answers = at_rs
            .iter()
            .filter(|p| {
                p.inner().is_some_and(|ip| {
                    let s = IpAddr::V4(ip.src);
                    s == service_dst || s == rs.rip
                }) && matches!(p.l4, Some(lvslab_pcap::decode::L4Summary::Tcp(t))
                    if t.flags.has(lvslab_pcap::decode::TcpFlags::SYN)
                        && t.flags.has(lvslab_pcap::decode::TcpFlags::ACK))
            })
            .count();
        if syns > 0 && answers == 0 {
            out.push(Diagnosis {
                cause_id: "rs.requests-unanswered",
                node: rs.node.into(),
                summary: format!(
                    "{} received {syns} connection requests but answered none: its stack drops \
                     them (check the VIP, rp_filter and its routes, as the other causes say)",
                    rs.node
                ),
                evidence: vec![format!(
                    "captured at {}: {syns} SYNs in, no SYN-ACK out",
                    rs.node
                )],
                likelihood: 50,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvslab_netns::MacAddr;

    fn lab(name: &str) -> Lab {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../labs")
            .join(name)
            .join("lab.toml");
        lvslab_spec::load_lab(&path, &[]).expect("shipped lab loads")
    }

    /// Evidence as the lab model says the kernel state should be: what a healthy build
    /// reads back (addresses, on-link and configured routes, sysctls, links up).
    fn model_evidence(lab: &Lab) -> Evidence {
        let mut nodes = Vec::new();
        let mut mac_seq = 1u8;
        for n in &lab.nodes {
            let mut ev = NodeEvidence {
                node: n.name.clone(),
                ..NodeEvidence::default()
            };
            ev.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
            for iface in lab.node_interfaces(&n.name) {
                let tunnel = n.decap.as_ref().is_some_and(|d| d.device == iface);
                ev.links.push(LinkInfo {
                    name: iface.clone(),
                    ifindex: 0,
                    kind: if tunnel { "tun" } else { "veth" }.into(),
                    mac: (!tunnel).then_some(MacAddr([2, 0, 0, 0, 0, mac_seq])),
                    mtu: 1500,
                    up: true,
                    master: None,
                });
                mac_seq += 1;
            }
            for (iface, prefixes) in &n.interfaces {
                for p in prefixes {
                    ev.addresses.push(AddressInfo {
                        iface: iface.clone(),
                        addr: p.addr,
                        prefix: p.len,
                        scope: "universe".into(),
                    });
                    if p.len < 32 && iface != "lo" {
                        ev.routes.push(route(Some(p.network()), p.len, None, iface));
                    }
                }
            }
            for r in &n.routes {
                let oif = r.dev.clone().unwrap_or_else(|| {
                    r.via
                        .and_then(|gw| {
                            ev.addresses
                                .iter()
                                .find(|a| {
                                    Prefix {
                                        addr: a.addr,
                                        len: a.prefix,
                                    }
                                    .contains(&gw)
                                        && a.prefix < 32
                                })
                                .map(|a| a.iface.clone())
                        })
                        .unwrap_or_default()
                });
                ev.routes.push(route(
                    r.dest.map(|d| d.network()),
                    r.dest.map_or(0, |d| d.len),
                    r.via,
                    &oif,
                ));
            }
            for (k, v) in &n.sysctls {
                ev.sysctls.insert(k.clone(), v.clone());
            }
            nodes.push(ev);
        }
        Evidence {
            nodes,
            packets: Vec::new(),
            dataplane: Some(Dataplane::Kernel),
        }
    }

    fn route(dst: Option<IpAddr>, prefix: u8, gw: Option<IpAddr>, oif: &str) -> RouteInfo {
        RouteInfo {
            table: 254,
            family: "inet".into(),
            kind: "unicast".into(),
            dst,
            prefix,
            gateway: gw,
            oif: Some(oif.into()),
            prefsrc: None,
            scope: "universe".into(),
            protocol: "static".into(),
            metric: None,
        }
    }

    fn node_mut<'a>(ev: &'a mut Evidence, name: &str) -> &'a mut NodeEvidence {
        ev.nodes
            .iter_mut()
            .find(|n| n.node == name)
            .expect("node in evidence")
    }

    fn causes(d: &[Diagnosis]) -> Vec<(&'static str, &str)> {
        d.iter().map(|d| (d.cause_id, d.node.as_str())).collect()
    }

    #[test]
    fn healthy_shipped_labs_have_no_diagnosis() {
        for name in ["nat", "dr", "tun", "fullnat"] {
            let l = lab(name);
            let d = diagnose(&l, &model_evidence(&l));
            assert!(d.is_empty(), "{name}: {}", render(&d));
        }
    }

    #[test]
    fn dr_vip_missing_on_a_real_server() {
        let l = lab("dr");
        let mut ev = model_evidence(&l);
        let vip = vips(&l)[0];
        node_mut(&mut ev, "rs1").addresses.retain(|a| a.addr != vip);
        let d = diagnose(&l, &ev);
        assert_eq!(
            causes(&d)[0],
            ("dr.rs-missing-vip", "rs1"),
            "{}",
            render(&d)
        );
        assert!(d[0].summary.contains(&format!("{vip}/32 dev lo")));
    }

    #[test]
    fn dr_arp_ignore_zero_is_found_and_confirmed_by_a_neighbour_entry() {
        let l = lab("dr");
        let mut ev = model_evidence(&l);
        let vip = vips(&l)[0];
        let rs1 = node_mut(&mut ev, "rs1");
        for k in ["all", "lo"] {
            rs1.sysctls
                .insert(format!("net.ipv4.conf.{k}.arp_ignore"), "0".into());
        }
        let d = diagnose(&l, &ev);
        assert_eq!(causes(&d)[0], ("dr.rs-answers-arp-for-vip", "rs1"));
        assert_eq!(d[0].likelihood, 70);
        let mac = ev.node("rs1").expect("rs1").links[0].mac;
        node_mut(&mut ev, "firewall")
            .neighbours
            .push(NeighbourInfo {
                iface: "eth1".into(),
                ip: vip,
                mac,
                state: "reachable".into(),
            });
        let d = diagnose(&l, &ev);
        assert_eq!(d[0].likelihood, 95);
        assert!(d[0].evidence.iter().any(|e| e.contains("firewall maps")));
    }

    #[test]
    fn nat_real_server_routing_around_the_director() {
        let l = lab("nat");
        let mut ev = model_evidence(&l);
        let fw = l.node("firewall").and_then(|n| n.first_address("eth1"));
        let rs2 = node_mut(&mut ev, "rs2");
        for r in rs2.routes.iter_mut().filter(|r| r.dst.is_none()) {
            r.gateway = fw;
        }
        let d = diagnose(&l, &ev);
        assert_eq!(causes(&d)[0], ("nat.rs-gateway-not-director", "rs2"));
        assert!(d[0].summary.contains("firewall"), "{}", d[0].summary);
    }

    #[test]
    fn forwarding_off_on_the_nat_director_depends_on_the_dataplane() {
        let l = lab("nat");
        let mut ev = model_evidence(&l);
        node_mut(&mut ev, "director")
            .sysctls
            .insert("net.ipv4.ip_forward".into(), "0".into());
        let d = diagnose(&l, &ev);
        assert_eq!(causes(&d)[0], ("forwarding-off", "director"));
        assert_eq!(d[0].likelihood, 88);
        let d = diagnose(&l, &ev.with_dataplane(Dataplane::Userspace));
        assert_eq!(d[0].likelihood, 25);
    }

    #[test]
    fn tun_rp_filter_on_the_decapsulation_device() {
        let l = lab("tun");
        let mut ev = model_evidence(&l);
        node_mut(&mut ev, "rs2")
            .sysctls
            .insert("net.ipv4.conf.all.rp_filter".into(), "1".into());
        let d = diagnose(&l, &ev);
        assert_eq!(
            causes(&d)[0],
            ("tun.rp-filter-drops-decapsulated", "rs2"),
            "{}",
            render(&d)
        );
        // Loose mode passes: the default route leads back.
        node_mut(&mut ev, "rs2")
            .sysctls
            .insert("net.ipv4.conf.all.rp_filter".into(), "2".into());
        assert!(diagnose(&l, &ev).is_empty());
    }

    #[test]
    fn dnat_to_the_director_instead_of_the_vip() {
        let mut l = lab("dr");
        let dip = l.node("director").and_then(|n| n.first_address("eth0"));
        let fw = l
            .nodes
            .iter_mut()
            .find(|n| n.name == "firewall")
            .expect("firewall");
        for r in &mut fw.nat {
            if let NatRule::Dnat { to, .. } = r {
                *to = dip.expect("director address");
            }
        }
        let d = diagnose(&l, &model_evidence(&l));
        assert_eq!(causes(&d)[0], ("fw.dnat-not-vip", "firewall"));
    }

    #[test]
    fn director_without_the_vip_matters_on_the_kernel_dataplane() {
        let l = lab("dr");
        let mut ev = model_evidence(&l);
        let vip = vips(&l)[0];
        node_mut(&mut ev, "director")
            .addresses
            .retain(|a| a.addr != vip);
        let d = diagnose(&l, &ev);
        assert_eq!(causes(&d)[0], ("director.vip-not-local", "director"));
        assert_eq!(d[0].likelihood, 85);
        let d = diagnose(&l, &ev.with_dataplane(Dataplane::Userspace));
        assert_eq!(d[0].likelihood, 15);
    }

    #[test]
    fn render_names_cause_and_evidence_or_says_none_matched() {
        let d = Diagnosis {
            cause_id: "forwarding-off",
            node: "isp".into(),
            summary: "IP forwarding is off on isp".into(),
            evidence: vec!["isp: net.ipv4.ip_forward = 0".into()],
            likelihood: 88,
        };
        assert_eq!(
            render(&[d]),
            "likely cause [forwarding-off]: IP forwarding is off on isp\n    evidence: isp: \
             net.ipv4.ip_forward = 0"
        );
        assert!(render(&[]).contains("none of the classic LVS mistakes"));
    }

    #[test]
    fn dnat_of_other_ports_is_not_judged() {
        let mut l = lab("nat");
        let fw = l
            .nodes
            .iter_mut()
            .find(|n| n.name == "firewall")
            .expect("firewall");
        let Some(NatRule::Dnat {
            destination, to, ..
        }) = fw.nat.first().cloned()
        else {
            panic!("the nat lab's firewall DNATs");
        };
        fw.nat.push(NatRule::Dnat {
            protocol: Protocol::Udp,
            destination,
            port: 53,
            to,
            to_port: 53,
        });
        assert!(diagnose(&l, &model_evidence(&l)).is_empty());
    }

    #[test]
    fn captured_arp_reply_from_a_real_server_names_it() {
        let l = lab("dr");
        let ev = model_evidence(&l);
        let vip = match vips(&l)[0] {
            IpAddr::V4(v) => v,
            IpAddr::V6(_) => unreachable!("the dr lab is IPv4"),
        };
        let rs_mac = ev.node("rs3").expect("rs3").links[0].mac.expect("mac").0;
        let reply = PacketSummary {
            point: "firewall:eth1".into(),
            frame: 1,
            ts_ns: 0,
            len: 42,
            direction: None,
            eth: None,
            arp: Some(lvslab_pcap::decode::ArpSummary {
                operation: 2,
                sender_mac: lvslab_spec::MacAddr(rs_mac),
                sender_ip: vip,
                target_mac: lvslab_spec::MacAddr([0; 6]),
                target_ip: vip,
            }),
            ip: Vec::new(),
            l4: None,
            csum_not_ready: false,
            malformed: None,
        };
        let d = diagnose(&l, &ev.with_packets(&[reply]));
        assert_eq!(causes(&d)[0], ("dr.rs-answers-arp-for-vip", "rs3"));
    }
}
