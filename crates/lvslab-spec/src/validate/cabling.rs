//! Cables and segments: links, switch ports and tunnel devices. Every node interface is
//! plugged in at most once.

use std::collections::{HashMap, HashSet};

use super::refs::{known, Resolver};
use super::{names, Ctx};
use crate::file::{LabFile, SpannedStr};
use crate::model::{Encap, Endpoint, Link, Switch, Tunnel};

/// The encapsulations a lab's devices can have: the kernel offers ipip and gre devices
/// (GUE exists only as an IPVS destination setting).
pub(crate) fn device_encap(s: &str) -> Option<Encap> {
    Encap::parse(s).filter(|e| *e != Encap::Gue)
}

/// MTUs a veth accepts (ETH_MIN_MTU to ETH_MAX_MTU).
const VETH_MTU: std::ops::RangeInclusive<u32> = 68..=65535;

/// Devices the kernel makes in every namespace: a tunnel of that name cannot be created.
const FALLBACK_DEVICES: &[&str] = &["lo", "tunl0", "gre0", "gretap0", "erspan0"];

pub(crate) struct Cabled {
    /// `(node, iface)` → field path of the link end or switch port that plugs it in.
    pub plugged: HashMap<(String, String), String>,
    pub links: Vec<Link>,
    pub switches: Vec<Switch>,
}

pub(crate) fn cable(cx: &mut Ctx<'_>, file: &LabFile, node_names: &HashSet<String>) -> Cabled {
    let mut plugged: HashMap<(String, String), String> = HashMap::new();
    let mut links = Vec::new();
    for (i, l) in file.links.iter().enumerate() {
        let mut ends = Vec::new();
        for (k, e) in l.ends.iter().enumerate() {
            let p = format!("link[{i}].ends[{k}]");
            if let Some(ep) = plug(cx, &mut plugged, e, &p, node_names) {
                ends.push(ep);
            }
        }
        if let [a, b] = ends.as_slice() {
            if a.node == b.node {
                cx.err(
                    &l.ends[1],
                    &format!("link[{i}].ends"),
                    "both ends are on the same node",
                    "a link joins two different nodes".to_string(),
                );
            }
            if let Some(m) = &l.mtu {
                if !VETH_MTU.contains(m.get_ref()) {
                    cx.err(
                        m,
                        &format!("link[{i}].mtu"),
                        format!(
                            "a veth takes an MTU from {} to {}, not {}",
                            VETH_MTU.start(),
                            VETH_MTU.end(),
                            m.get_ref()
                        ),
                        "1500 is Ethernet's; leave `mtu` out for the default".to_string(),
                    );
                }
            }
            links.push(Link {
                a: a.clone(),
                b: b.clone(),
                mtu: l.mtu.as_ref().map(|m| *m.get_ref()),
            });
        }
    }
    let mut switches = Vec::new();
    for (i, s) in file.switches.iter().enumerate() {
        let mut ports = Vec::new();
        for (k, e) in s.ports.iter().enumerate() {
            let p = format!("switch[{i}].ports[{k}]");
            if let Some(ep) = plug(cx, &mut plugged, e, &p, node_names) {
                ports.push(ep);
            }
        }
        switches.push(Switch {
            name: s.name.get_ref().clone(),
            ports,
        });
    }
    Cabled {
        plugged,
        links,
        switches,
    }
}

/// A cable end or switch port: a valid `node:iface` not plugged in anywhere else.
fn plug(
    cx: &mut Ctx<'_>,
    plugged: &mut HashMap<(String, String), String>,
    e: &SpannedStr,
    path: &str,
    nodes: &HashSet<String>,
) -> Option<Endpoint> {
    let ep = endpoint(cx, e, path, nodes)?;
    if let Some(prev) = plugged.insert((ep.node.clone(), ep.iface.clone()), path.to_string()) {
        cx.err(
            e,
            path,
            format!("`{ep}` is already plugged in at {prev}"),
            "each interface connects to one link or switch port".to_string(),
        );
    }
    Some(ep)
}

fn endpoint(
    cx: &mut Ctx<'_>,
    e: &SpannedStr,
    path: &str,
    nodes: &HashSet<String>,
) -> Option<Endpoint> {
    let Some((node, iface)) = e.get_ref().split_once(':') else {
        cx.err(
            e,
            path,
            format!("`{}` is not `node:iface`", e.get_ref()),
            "write the node and its interface, e.g. `rs1:eth0`".to_string(),
        );
        return None;
    };
    let mut ok = true;
    if !nodes.contains(node) {
        cx.err(e, path, format!("unknown node `{node}`"), known(nodes));
        ok = false;
    }
    if let Err(r) = names::ifname(iface) {
        cx.err(e, path, r.message, r.help);
        ok = false;
    }
    if iface == "lo" {
        cx.err(
            e,
            path,
            "`lo` cannot be cabled",
            "name the node's Ethernet interface, e.g. `eth0`".to_string(),
        );
        ok = false;
    }
    ok.then(|| Endpoint {
        node: node.to_string(),
        iface: iface.to_string(),
    })
}

pub(crate) fn tunnels(
    cx: &mut Ctx<'_>,
    resolver: &Resolver<'_>,
    file: &LabFile,
    plugged: &HashMap<(String, String), String>,
) -> Vec<Tunnel> {
    let mut tunnels = Vec::new();
    let mut seen_tunnels = HashSet::new();
    for (i, t) in file.tunnels.iter().enumerate() {
        let p = format!("tunnel[{i}]");
        if !resolver.nodes.contains(t.node.get_ref()) {
            cx.err(
                &t.node,
                &format!("{p}.node"),
                format!("unknown node `{}`", t.node.get_ref()),
                known(resolver.nodes),
            );
        }
        if let Err(r) = names::ifname(t.name.get_ref()) {
            cx.err(&t.name, &format!("{p}.name"), r.message, r.help);
        } else if FALLBACK_DEVICES.contains(&t.name.get_ref().as_str()) {
            cx.err(
                &t.name,
                &format!("{p}.name"),
                format!("`{}` is a device the kernel creates itself in every namespace (loopback, or the ipip/gre modules' fallback device)", t.name.get_ref()),
                "give the tunnel its own name, e.g. `tun1`".to_string(),
            );
        } else if plugged.contains_key(&(t.node.get_ref().clone(), t.name.get_ref().clone()))
            || !seen_tunnels.insert((t.node.get_ref().clone(), t.name.get_ref().clone()))
        {
            cx.err(
                &t.name,
                &format!("{p}.name"),
                format!(
                    "`{}:{}` is already an interface",
                    t.node.get_ref(),
                    t.name.get_ref()
                ),
                "give the tunnel its own name".to_string(),
            );
        }
        let kind = device_encap(t.kind.get_ref());
        if kind.is_none() {
            cx.err(
                &t.kind,
                &format!("{p}.kind"),
                format!("unknown tunnel kind `{}`", t.kind.get_ref()),
                "one of gre, ipip".to_string(),
            );
        }
        let local = resolver.addr(cx, &t.local, &format!("{p}.local"));
        let remote = resolver.addr(cx, &t.remote, &format!("{p}.remote"));
        if let (Some(kind), Some(local), Some(remote)) = (kind, local, remote) {
            tunnels.push(Tunnel {
                node: t.node.get_ref().clone(),
                name: t.name.get_ref().clone(),
                kind,
                local,
                remote,
            });
        }
    }
    tunnels
}
