//! Reads a built lab back from the kernel and compares it with the model: every link,
//! MAC, address, route, sysctl and nft rule the plan asked for must be there.

use std::collections::HashMap;

use lvslab_netns::apply::LabInstance;
use lvslab_netns::plan::Step;
use lvslab_netns::{MacAddr, NsHandle};

/// Every difference between the plan and the kernel, one readable line each; empty when
/// the lab is exactly what the plan says.
pub fn verify_state(lab: &LabInstance) -> Vec<String> {
    let mut out = Vec::new();
    let mut handles: HashMap<&str, NsHandle> = HashMap::new();
    for (name, ns) in lab.namespaces() {
        match ns.netlink() {
            Ok(h) => {
                handles.insert(name, h);
            }
            Err(e) => out.push(format!("{name}: cannot open netlink: {e}")),
        }
    }
    let verifier = Verifier { lab, handles };
    for step in &lab.plan.steps {
        verifier.step(step, &mut out);
    }
    out
}

/// A built lab with a netlink handle into each namespace that could be opened.
struct Verifier<'a> {
    lab: &'a LabInstance,
    handles: HashMap<&'a str, NsHandle>,
}

impl Verifier<'_> {
    /// The namespace file name of a node or switch, as messages name it.
    fn label(&self, node: &str) -> String {
        self.lab.plan.netns_name(node)
    }

    /// Appends to `out` every way the kernel differs from what `step` made.
    fn step(&self, step: &Step, out: &mut Vec<String>) {
        let ns = step.ns();
        let Some(h) = self.handles.get(ns) else {
            return;
        };
        let label = self.label(ns);
        match step {
            Step::Veth {
                name,
                mac,
                peer_ns,
                peer_name,
                peer_mac,
                mtu,
                ..
            } => {
                for (n, iface, want) in [(ns, name, mac), (peer_ns.as_str(), peer_name, peer_mac)] {
                    self.veth_end(n, iface, *want, *mtu, out);
                }
            }
            Step::Bridge { name, .. } => match h.link(name) {
                Ok(l) if l.kind == "bridge" && l.up => {}
                Ok(l) => out.push(format!("{label}: {name} is {l}, expected an up bridge")),
                Err(e) => out.push(format!("{label}: bridge {name} missing: {e}")),
            },
            Step::Master { iface, master, .. } => match h.link(iface) {
                Ok(l) if l.master.as_deref() == Some(master.as_str()) => {}
                Ok(l) => out.push(format!(
                    "{label}: {iface} has master {:?}, expected {master}",
                    l.master
                )),
                Err(e) => out.push(format!("{label}: {iface} missing: {e}")),
            },
            Step::TxChecksumOff { iface, .. } => match h.tx_checksumming(iface) {
                Ok(false) => {}
                Ok(true) => out.push(format!("{label}: {iface} still has tx checksumming on")),
                Err(e) => out.push(format!("{label}: {iface}: {e}")),
            },
            Step::Address { iface, prefix, .. } => match h.addresses() {
                Ok(list) => {
                    if !list.iter().any(|a| {
                        &a.iface == iface && a.addr == prefix.addr && a.prefix == prefix.len
                    }) {
                        out.push(format!("{label}: address {prefix} missing on {iface}"));
                    }
                }
                Err(e) => out.push(format!("{label}: cannot list addresses: {e}")),
            },
            Step::Route { .. } => self.route(h, step, &label, out),
            Step::Sysctl { key, value, .. } => self.sysctl(ns, key, value, out),
            Step::Nft { table, .. } => self.nft_table(ns, table, out),
            Step::Up { iface, .. } => match h.link(iface) {
                Ok(l) if l.up => {}
                Ok(_) => out.push(format!("{label}: {iface} is down")),
                Err(e) => out.push(format!("{label}: {iface} missing: {e}")),
            },
            Step::Namespace { .. } | Step::Tunnel { .. } | Step::DecapDevice { .. } => {
                if let Step::Tunnel { name, .. } | Step::DecapDevice { name, .. } = step {
                    if let Err(e) = h.link(name) {
                        out.push(format!("{label}: {name} missing: {e}"));
                    }
                }
            }
        }
    }

    /// One end of a veth pair: kind, MAC, up, and the MTU when the plan set one.
    fn veth_end(
        &self,
        node: &str,
        iface: &str,
        want: MacAddr,
        mtu: Option<u32>,
        out: &mut Vec<String>,
    ) {
        let Some(h) = self.handles.get(node) else {
            return;
        };
        let label = self.label(node);
        let l = match h.link(iface) {
            Ok(l) => l,
            Err(e) => {
                out.push(format!("{label}: {iface} missing: {e}"));
                return;
            }
        };
        if l.kind != "veth" {
            out.push(format!(
                "{label}: {iface} is a {} link, expected veth",
                l.kind
            ));
        }
        if l.mac != Some(want) {
            out.push(format!(
                "{label}: {iface} has MAC {:?}, expected {want}",
                l.mac
            ));
        }
        if !l.up {
            out.push(format!("{label}: {iface} is down"));
        }
        if let Some(m) = mtu {
            if l.mtu != m {
                out.push(format!("{label}: {iface} has MTU {}, expected {m}", l.mtu));
            }
        }
    }

    /// A route step: some route of the main table with its destination, and its gateway
    /// and device where the plan gave them.
    fn route(&self, h: &NsHandle, step: &Step, label: &str, out: &mut Vec<String>) {
        let Step::Route { dest, via, dev, .. } = step else {
            return;
        };
        match h.routes() {
            Ok(list) => {
                let found = list.iter().any(|r| {
                    let dst_ok = match dest {
                        None => r.dst.is_none() || r.prefix == 0,
                        Some(d) => r.dst == Some(d.network()) && r.prefix == d.len,
                    };
                    dst_ok
                        && (via.is_none() || r.gateway == *via)
                        && (dev.is_none() || r.oif.as_deref() == dev.as_deref())
                });
                if !found {
                    out.push(format!(
                        "{label}: route {} missing",
                        lvslab_netns::plan::render_step(&self.lab.plan, step)
                    ));
                }
            }
            Err(e) => out.push(format!("{label}: cannot list routes: {e}")),
        }
    }

    fn sysctl(&self, ns: &str, key: &str, value: &str, out: &mut Vec<String>) {
        let Some((_, netns)) = self.lab.namespaces().find(|(n, _)| *n == ns) else {
            return;
        };
        let label = self.label(ns);
        match lvslab_netns::get_sysctl(netns, key) {
            Ok(v) if v.trim() == value => {}
            Ok(v) => out.push(format!(
                "{label}: sysctl {key} = {}, expected {value}",
                v.trim()
            )),
            Err(e) => out.push(format!("{label}: sysctl {key}: {e}")),
        }
    }

    /// The namespace's table of that family and name, read back, equals the plan's.
    fn nft_table(&self, ns: &str, table: &lvslab_netns::nft::Table, out: &mut Vec<String>) {
        let Some((_, netns)) = self.lab.namespaces().find(|(n, _)| *n == ns) else {
            return;
        };
        let label = self.label(ns);
        match lvslab_netns::nft::list(netns) {
            Ok(listing) => {
                let want = lvslab_netns::nft::expected(table);
                let got = listing.table(table.family(), table.name().as_str());
                if got != Some(&want) {
                    out.push(format!(
                        "{label}: nft table {} {} differs from the plan:\n  want: {}\n  have: {}",
                        table.family(),
                        table.name(),
                        want.lines().join("\n        "),
                        got.map_or_else(
                            || "no such table".to_string(),
                            |t| t.lines().join("\n        ")
                        )
                    ));
                }
            }
            Err(e) => out.push(format!("{label}: nft list ruleset: {e}")),
        }
    }
}
