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

mod captured;
mod evidence;
mod routing;
mod servers;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use lvslab_netns::apply::LabInstance;
use lvslab_pcap::decode::PacketSummary;
use lvslab_spec::lb::{ForwardMethod, ServiceKey};
use lvslab_spec::model::{Endpoint, Lab, NatRule};
use lvslab_spec::Dataplane;

pub use evidence::{gather, Evidence, NodeEvidence};

/// One likely cause of a failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnosis {
    /// Stable identifier, e.g. `dr.rs-answers-arp-for-vip`.
    pub cause_id: String,
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

/// What a failing trial calls before tearing its lab down: the nodes' state and the
/// trial's decoded captures, matched against the classic mistakes.
pub fn diagnose_trial(
    lab: &Lab,
    inst: &LabInstance,
    dataplane: Dataplane,
    packets: &[PacketSummary],
) -> Vec<Diagnosis> {
    let ev = gather(lab, inst)
        .with_dataplane(dataplane)
        .with_packets(packets);
    diagnose(lab, &ev)
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
    servers::rs_missing_vip(lab, ev, &mut out);
    servers::rs_answers_arp(lab, ev, &mut out);
    routing::nat_gateway(lab, ev, &replies, &mut out);
    routing::forwarding_off(lab, ev, &mut out);
    routing::rp_filter(lab, ev, &replies, &mut out);
    routing::dr_segment(lab, ev, &mut out);
    routing::director_vip(lab, ev, &mut out);
    routing::no_route_back(lab, ev, &replies, &mut out);
    routing::dr_gateway_is_director(lab, ev, &replies, &mut out);
    routing::dnat_target(lab, &mut out);
    routing::links_down(lab, ev, &mut out);
    captured::captured_requests_unanswered(lab, ev, &mut out);
    // One report per (cause, node), keeping the most likely.
    out.sort_by_key(|d| std::cmp::Reverse(d.likelihood));
    let mut seen = Vec::new();
    out.retain(|d| {
        let key = (d.cause_id.clone(), d.node.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    out
}
