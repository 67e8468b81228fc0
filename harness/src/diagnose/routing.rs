//! Routing and forwarding mistakes: gateways, forwarding, reverse-path filters, segments,
//! the VIP on the director, routes back, DNAT targets and links down.

use std::net::IpAddr;

use lvslab_spec::lb::{ForwardMethod, Protocol, ServiceKey};
use lvslab_spec::model::{Endpoint, Lab, NatRule, Prefix, Role};
use lvslab_spec::Dataplane;

use super::*;

pub(super) fn nat_gateway(lab: &Lab, ev: &Evidence, replies: &[IpAddr], out: &mut Vec<Diagnosis>) {
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
                cause_id: "nat.rs-gateway-not-director".into(),
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

pub(super) fn forwarding_off(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
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
            cause_id: "forwarding-off".into(),
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

pub(super) fn rp_filter(lab: &Lab, ev: &Evidence, replies: &[IpAddr], out: &mut Vec<Diagnosis>) {
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
                cause_id: cause.into(),
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

pub(super) fn dr_segment(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
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
            cause_id: "dr.rs-not-on-director-segment".into(),
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

pub(super) fn director_vip(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
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
            cause_id: "director.vip-not-local".into(),
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

pub(super) fn no_route_back(
    lab: &Lab,
    ev: &Evidence,
    replies: &[IpAddr],
    out: &mut Vec<Diagnosis>,
) {
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
                cause_id: "no-route-to-client".into(),
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

pub(super) fn dr_gateway_is_director(
    lab: &Lab,
    ev: &Evidence,
    replies: &[IpAddr],
    out: &mut Vec<Diagnosis>,
) {
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
            cause_id: "dr.rs-gateway-is-director".into(),
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

pub(super) fn dnat_target(lab: &Lab, out: &mut Vec<Diagnosis>) {
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
                    cause_id: "fw.dnat-not-vip".into(),
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
                    cause_id: "fw.dnat-wrong-port".into(),
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

pub(super) fn links_down(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
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
                cause_id: cause.into(),
                node: node.name.clone(),
                summary,
                evidence: vec![fact],
                likelihood: 80,
            });
        }
    }
}
