//! The roles a capture is checked against ([`Roles`]), derived from the lab model alone:
//! the mode, the VIP, the director's address toward the real servers and its MACs, each
//! real server's node, capture point, address, port and MAC, FullNAT local addresses, and
//! the sources requests may carry when they reach the director.

use std::net::{IpAddr, Ipv4Addr};

use lvslab_spec::lb::ServiceKey;
use lvslab_spec::model::{Lab, NatRule};
use lvslab_spec::MacAddr;

use crate::rules::{Director, RealServer, Roles};

/// Why a lab's roles cannot be derived (the lab cannot be checked packet by packet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RolesError(pub String);

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

fn mac(instance: &str, node: &str, iface: &str) -> MacAddr {
    MacAddr::of_interface(instance, node, iface)
}

/// Which of `node`'s interfaces reaches `to`: the one whose subnet holds it, else the one
/// whose subnet holds the gateway of the node's most specific route covering it.
fn iface_toward(lab: &Lab, node: &str, to: IpAddr) -> Option<String> {
    let n = lab.node(node)?;
    let on_link = |ip: IpAddr| {
        n.interfaces
            .iter()
            .find(|(_, ps)| ps.iter().any(|p| p.len < 32 && p.contains(&ip)))
            .map(|(i, _)| i.clone())
    };
    if let Some(i) = on_link(to) {
        return Some(i);
    }
    let route = n
        .routes
        .iter()
        .filter(|r| r.dest.as_ref().is_none_or(|d| d.contains(&to)))
        .max_by_key(|r| r.dest.as_ref().map_or(0, |d| d.len + 1))?;
    if let Some(dev) = &route.dev {
        return Some(dev.clone());
    }
    on_link(route.via?)
}

/// Node and interface holding `ip`, preferring interfaces other than `lo` and
/// decapsulation devices (a hidden VIP).
fn holder(lab: &Lab, ip: IpAddr) -> Option<(String, String)> {
    let label = lab.label_of(&ip)?;
    let (n, i) = label.split_once(':')?;
    Some((n.to_string(), i.to_string()))
}

/// The role addresses of the lab's first service, all from the lab model: mode, VIP, the
/// director's address toward the real servers and its MACs, each real server's node,
/// capture point, address, port and MAC, FullNAT local addresses, and the addresses
/// requests may carry at the director (the traffic source's, and those of every node that
/// rewrites sources on the way).
pub fn roles_of(lab: &Lab, instance: &str) -> Result<Roles, RolesError> {
    let err = |s: String| RolesError(s);
    let svc = lab
        .services
        .first()
        .ok_or_else(|| err("the lab has no [[service]]".into()))?;
    let ServiceKey::Addr {
        protocol,
        addr,
        port,
    } = svc.config.key
    else {
        return Err(err(
            "firewall-mark services have no VIP to check packets against".into(),
        ));
    };
    let vip = v4(addr).ok_or_else(|| err("IPv6 services are not checked".into()))?;
    let director = lab
        .node(&svc.director)
        .ok_or_else(|| err(format!("director node {} is not in the lab", svc.director)))?;
    let first_rs = svc
        .real_servers
        .first()
        .ok_or_else(|| err("the service has no real server".into()))?;
    let dip = iface_toward(lab, &director.name, first_rs.config.addr)
        .and_then(|i| director.first_address(&i))
        .and_then(v4)
        .ok_or_else(|| {
            err(format!(
                "no address of {} faces real server {}",
                director.name, first_rs.config.addr
            ))
        })?;
    let macs = lab
        .node_interfaces(&director.name)
        .into_iter()
        .map(|i| {
            (
                format!("{}:{i}", director.name),
                mac(instance, &director.name, &i),
            )
        })
        .collect();
    let mut real_servers = Vec::new();
    for rs in &svc.real_servers {
        let rip = v4(rs.config.addr)
            .ok_or_else(|| err(format!("real server {} is not IPv4", rs.config.addr)))?;
        let (node, iface) = match (&rs.node, holder(lab, rs.config.addr)) {
            (Some(n), Some((hn, i))) if &hn == n => (n.clone(), i),
            (Some(n), _) => {
                let i = iface_toward(lab, n, IpAddr::V4(dip))
                    .ok_or_else(|| err(format!("no interface of {n} faces the director")))?;
                (n.clone(), i)
            }
            (None, Some(h)) => h,
            (None, None) => {
                return Err(err(format!(
                    "real server {} is on no node of the lab",
                    rs.config.addr
                )))
            }
        };
        real_servers.push(RealServer {
            name: node.clone(),
            point: format!("{node}:{iface}"),
            rip,
            port: rs.config.port,
            mac: Some(mac(instance, &node, &iface)),
            tunnel_src: None,
        });
    }
    let tun_encap = svc
        .real_servers
        .first()
        .map(|r| r.config.tun_type)
        .unwrap_or_default();
    let mode = lab.mode;
    let local_addrs = svc
        .config
        .local_addresses
        .iter()
        .copied()
        .filter_map(v4)
        .collect();
    Ok(Roles {
        mode,
        tun_encap,
        proto: protocol.number(),
        vip,
        vport: port,
        director: Director {
            node: director.name.clone(),
            dip,
            macs,
        },
        real_servers,
        local_addrs,
        client_addrs: client_addrs(lab),
    })
}

/// Sources a request may carry when it reaches the director: the traffic source's
/// addresses and every address a source-rewriting node puts on packets.
fn client_addrs(lab: &Lab) -> Vec<Ipv4Addr> {
    let Some(t) = &lab.traffic else {
        return Vec::new();
    };
    let mut out: Vec<Ipv4Addr> = lab
        .node(&t.from)
        .map(|n| {
            n.interfaces
                .values()
                .flatten()
                .filter_map(|p| v4(p.addr))
                .collect()
        })
        .unwrap_or_default();
    for n in &lab.nodes {
        for rule in &n.nat {
            let added: Vec<Ipv4Addr> = match rule {
                NatRule::Snat { to, .. } => v4(*to).into_iter().collect(),
                NatRule::Masquerade { out: Some(i), .. } => n
                    .interfaces
                    .get(i)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| v4(p.addr))
                    .collect(),
                NatRule::Masquerade { out: None, .. } => n
                    .interfaces
                    .values()
                    .flatten()
                    .filter_map(|p| v4(p.addr))
                    .collect(),
                NatRule::Dnat { .. } => Vec::new(),
            };
            for a in added {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}
