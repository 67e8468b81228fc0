//! Nodes and their interfaces: unique node and switch names, which interfaces each node
//! has, the addresses on them, and conflicts between addresses.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use indexmap::IndexMap;

use super::{names, Ctx};
use crate::file::{LabFile, SpannedStr};
use crate::model::Prefix;

/// Node names (switch names are checked against them but are not nodes).
pub(crate) fn node_names(cx: &mut Ctx<'_>, file: &LabFile) -> HashSet<String> {
    let mut node_names: HashSet<String> = HashSet::new();
    for (i, n) in file.nodes.iter().enumerate() {
        let nm = n.name.get_ref();
        let p = format!("node[{i}].name");
        if let Err(r) = names::node_name(nm, "node") {
            cx.err(&n.name, &p, r.message, r.help);
        }
        if !node_names.insert(nm.clone()) {
            cx.err(
                &n.name,
                &p,
                format!("node `{nm}` is declared twice"),
                "give each node a unique name".to_string(),
            );
        }
    }
    let mut switch_names: HashSet<String> = HashSet::new();
    for (i, s) in file.switches.iter().enumerate() {
        let nm = s.name.get_ref();
        let p = format!("switch[{i}].name");
        if let Err(r) = names::node_name(nm, "switch") {
            cx.err(&s.name, &p, r.message, r.help);
        }
        if node_names.contains(nm) || !switch_names.insert(nm.clone()) {
            cx.err(
                &s.name,
                &p,
                format!("`{nm}` is already the name of a node or switch"),
                "switch and node names share one namespace; rename one".to_string(),
            );
        }
    }
    node_names
}

/// What every later check refers to: the nodes, the interfaces each has, their addresses.
pub(crate) struct Topology {
    pub node_names: HashSet<String>,
    /// `(node, iface)` of every interface: link ends, switch ports, tunnels, decap
    /// devices, `lo`.
    ifaces: HashSet<(String, String)>,
    /// Addresses per `(node, iface)` as the nodes' `interfaces` list them.
    pub addrs: IndexMap<(String, String), Vec<Prefix>>,
}

impl Topology {
    pub fn new(
        cx: &mut Ctx<'_>,
        file: &LabFile,
        node_names: HashSet<String>,
        plugged: &HashMap<(String, String), String>,
    ) -> Topology {
        let mut ifaces: HashSet<(String, String)> = plugged.keys().cloned().collect();
        for t in &file.tunnels {
            ifaces.insert((t.node.get_ref().clone(), t.name.get_ref().clone()));
        }
        for n in &file.nodes {
            let node = n.name.get_ref().clone();
            if let Some(d) = &n.decap {
                ifaces.insert((node.clone(), d.device.get_ref().clone()));
            }
            ifaces.insert((node, "lo".to_string()));
        }
        let mut topo = Topology {
            node_names,
            ifaces,
            addrs: IndexMap::new(),
        };
        topo.addrs = addresses(cx, file, &topo);
        check_overlaps(cx, file, &topo.addrs);
        topo
    }

    pub fn has_iface(&self, node: &str, iface: &str) -> bool {
        self.ifaces.contains(&(node.to_string(), iface.to_string()))
    }
}

/// The nodes' `interfaces` tables: each names an existing interface and holds prefixes.
fn addresses(
    cx: &mut Ctx<'_>,
    file: &LabFile,
    topo: &Topology,
) -> IndexMap<(String, String), Vec<Prefix>> {
    let mut addrs: IndexMap<(String, String), Vec<Prefix>> = IndexMap::new();
    for (i, n) in file.nodes.iter().enumerate() {
        let node = n.name.get_ref();
        for (iface, list) in &n.interfaces {
            let ip = format!("node[{i}].interfaces.{}", iface.get_ref());
            if let Err(r) = names::ifname(iface.get_ref()) {
                cx.err(iface, &ip, r.message, r.help);
            } else if !topo.has_iface(node, iface.get_ref()) {
                cx.err(iface, &ip, format!("node `{node}` has no interface `{}`", iface.get_ref()),
                    "an interface exists when it is a link end or switch port (`node:iface`), a [[tunnel]], the node's decap device, or `lo`".to_string());
            }
            let mut prefixes = Vec::new();
            for (k, a) in list.iter().enumerate() {
                match a.get_ref().parse::<Prefix>() {
                    Ok(p) => prefixes.push(p),
                    Err(m) => cx.err(
                        a,
                        &format!("{ip}[{k}]"),
                        m,
                        "write an address with its prefix length, e.g. `192.168.80.11/24`"
                            .to_string(),
                    ),
                }
            }
            addrs.insert((node.clone(), iface.get_ref().clone()), prefixes);
        }
    }
    addrs
}

/// Overlapping subnets on one node make its routing ambiguous; the same address on two
/// nodes is a conflict unless all but one hold it hidden (on `lo` or a decap device) —
/// the VIP of DR and TUN labs.
fn check_overlaps(
    cx: &mut Ctx<'_>,
    file: &LabFile,
    addrs: &IndexMap<(String, String), Vec<Prefix>>,
) {
    for (i, n) in file.nodes.iter().enumerate() {
        let node = n.name.get_ref();
        let mut flat: Vec<(String, &SpannedStr, Prefix)> = Vec::new();
        for (iface, list) in &n.interfaces {
            let parsed = addrs
                .get(&(node.clone(), iface.get_ref().clone()))
                .cloned()
                .unwrap_or_default();
            for (s, p) in list.iter().zip(parsed) {
                flat.push((iface.get_ref().clone(), s, p));
            }
        }
        for a in 0..flat.len() {
            for b in (a + 1)..flat.len() {
                let (ia, _, pa) = &flat[a];
                let (ib, sb, pb) = &flat[b];
                if pa.addr == pb.addr {
                    cx.err(
                        *sb,
                        &format!("node[{i}].interfaces.{ib}"),
                        format!("{} is already on {node}:{ia}", pb.addr),
                        "give each address once per node".to_string(),
                    );
                } else if ia != ib
                    && pa.len < Prefix::max_len(&pa.addr)
                    && pb.len < Prefix::max_len(&pb.addr)
                    && pa.overlaps(pb)
                {
                    cx.err(*sb, &format!("node[{i}].interfaces.{ib}"), format!("{pb} overlaps {pa} on {node}:{ia}"), "subnets on different interfaces of one node must not overlap; use /32 for a single extra address".to_string());
                }
            }
        }
    }
    check_shared_addresses(cx, file, addrs);
}

/// Same address on several nodes.
fn check_shared_addresses(
    cx: &mut Ctx<'_>,
    file: &LabFile,
    addrs: &IndexMap<(String, String), Vec<Prefix>>,
) {
    let mut holders: HashMap<IpAddr, Vec<(usize, String, bool, &SpannedStr)>> = HashMap::new();
    for (i, n) in file.nodes.iter().enumerate() {
        let node = n.name.get_ref();
        let decap = n.decap.as_ref().map(|d| d.device.get_ref().as_str());
        for (iface, list) in &n.interfaces {
            let parsed = addrs
                .get(&(node.clone(), iface.get_ref().clone()))
                .cloned()
                .unwrap_or_default();
            let hidden = iface.get_ref() == "lo" || decap == Some(iface.get_ref().as_str());
            for (s, p) in list.iter().zip(parsed) {
                holders
                    .entry(p.addr)
                    .or_default()
                    .push((i, node.clone(), hidden, s));
            }
        }
    }
    let mut dupes: Vec<_> = holders
        .into_iter()
        .filter(|(_, h)| h.iter().filter(|x| !x.2).count() > 1)
        .collect();
    dupes.sort_by_key(|(a, _)| *a);
    for (addr, h) in dupes {
        let visible: Vec<_> = h.iter().filter(|x| !x.2).collect();
        for (i, node, _, s) in visible.iter().skip(1) {
            cx.err(*s, &format!("node[{i}].interfaces"), format!("{addr} is also on node `{}`", visible[0].1),
                format!("an address may be on one node only, except a VIP hidden on `lo` or a decap device of real servers (node `{node}`)"));
        }
    }
}
