//! Real-server mistakes: the VIP missing where DR/TUN need it, or answered in ARP.
use std::net::IpAddr;

use lvslab_netns::LinkInfo;
use lvslab_spec::lb::ForwardMethod;
use lvslab_spec::model::{Lab, Prefix};

use super::*;

pub(super) fn rs_missing_vip(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
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
            cause_id: cause.into(),
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

pub(super) fn rs_answers_arp(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
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
            cause_id: "dr.rs-answers-arp-for-vip".into(),
            node: rs.node.into(),
            summary,
            evidence: facts,
            likelihood,
        });
    }
}
