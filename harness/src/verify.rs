//! Reads a built lab back from the kernel and compares it with the model: every link,
//! MAC, address, route, sysctl and nft rule the plan asked for must be there.

use lvslab_netns::apply::LabInstance;
use lvslab_netns::plan::Step;
use lvslab_netns::NsHandle;

/// Every difference between the plan and the kernel, one readable line each; empty when
/// the lab is exactly what the plan says.
pub fn verify_state(lab: &LabInstance) -> Vec<String> {
    let mut out = Vec::new();
    let plan = &lab.plan;
    let mut handles: std::collections::HashMap<&str, NsHandle> = std::collections::HashMap::new();
    for (name, ns) in lab.namespaces() {
        match ns.netlink() {
            Ok(h) => {
                handles.insert(name, h);
            }
            Err(e) => out.push(format!("{name}: cannot open netlink: {e}")),
        }
    }
    let label = |n: &str| plan.netns_name(n);
    for step in &plan.steps {
        let ns = step.ns();
        let Some(h) = handles.get(ns) else { continue };
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
                    let Some(hh) = handles.get(n) else { continue };
                    match hh.link(iface) {
                        Ok(l) => {
                            if l.kind != "veth" {
                                out.push(format!(
                                    "{}: {iface} is a {} link, expected veth",
                                    label(n),
                                    l.kind
                                ));
                            }
                            if l.mac != Some(*want) {
                                out.push(format!(
                                    "{}: {iface} has MAC {:?}, expected {want}",
                                    label(n),
                                    l.mac
                                ));
                            }
                            if !l.up {
                                out.push(format!("{}: {iface} is down", label(n)));
                            }
                            if let Some(m) = mtu {
                                if l.mtu != *m {
                                    out.push(format!(
                                        "{}: {iface} has MTU {}, expected {m}",
                                        label(n),
                                        l.mtu
                                    ));
                                }
                            }
                        }
                        Err(e) => out.push(format!("{}: {iface} missing: {e}", label(n))),
                    }
                }
            }
            Step::Bridge { name, .. } => match h.link(name) {
                Ok(l) if l.kind == "bridge" && l.up => {}
                Ok(l) => out.push(format!(
                    "{}: {name} is {l}, expected an up bridge",
                    label(ns)
                )),
                Err(e) => out.push(format!("{}: bridge {name} missing: {e}", label(ns))),
            },
            Step::Master { iface, master, .. } => match h.link(iface) {
                Ok(l) if l.master.as_deref() == Some(master.as_str()) => {}
                Ok(l) => out.push(format!(
                    "{}: {iface} has master {:?}, expected {master}",
                    label(ns),
                    l.master
                )),
                Err(e) => out.push(format!("{}: {iface} missing: {e}", label(ns))),
            },
            Step::TxChecksumOff { iface, .. } => match h.tx_checksumming(iface) {
                Ok(false) => {}
                Ok(true) => out.push(format!(
                    "{}: {iface} still has tx checksumming on",
                    label(ns)
                )),
                Err(e) => out.push(format!("{}: {iface}: {e}", label(ns))),
            },
            Step::Address { iface, prefix, .. } => match h.addresses() {
                Ok(list) => {
                    if !list.iter().any(|a| {
                        &a.iface == iface && a.addr == prefix.addr && a.prefix == prefix.len
                    }) {
                        out.push(format!(
                            "{}: address {prefix} missing on {iface}",
                            label(ns)
                        ));
                    }
                }
                Err(e) => out.push(format!("{}: cannot list addresses: {e}", label(ns))),
            },
            Step::Route { dest, via, dev, .. } => match h.routes() {
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
                            "{}: route {} missing",
                            label(ns),
                            lvslab_netns::plan::render_step(plan, step)
                        ));
                    }
                }
                Err(e) => out.push(format!("{}: cannot list routes: {e}", label(ns))),
            },
            Step::Sysctl { key, value, .. } => {
                if let Some((_, netns)) = lab.namespaces().find(|(n, _)| *n == ns) {
                    match lvslab_netns::get_sysctl(netns, key) {
                        Ok(v) if v.trim() == value => {}
                        Ok(v) => out.push(format!(
                            "{}: sysctl {key} = {}, expected {value}",
                            label(ns),
                            v.trim()
                        )),
                        Err(e) => out.push(format!("{}: sysctl {key}: {e}", label(ns))),
                    }
                }
            }
            Step::Nft { table, .. } => {
                if let Some((_, netns)) = lab.namespaces().find(|(n, _)| *n == ns) {
                    match lvslab_netns::nft::list(netns) {
                        Ok(listing) => {
                            let want = lvslab_netns::nft::expected(table);
                            let got = listing.table(table.family(), table.name().as_str());
                            if got != Some(&want) {
                                out.push(format!(
                                    "{}: nft table {} {} differs from the plan:\n  want: {}\n  have: {}",
                                    label(ns),
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
                        Err(e) => out.push(format!("{}: nft list ruleset: {e}", label(ns))),
                    }
                }
            }
            Step::Up { iface, .. } => match h.link(iface) {
                Ok(l) if l.up => {}
                Ok(_) => out.push(format!("{}: {iface} is down", label(ns))),
                Err(e) => out.push(format!("{}: {iface} missing: {e}", label(ns))),
            },
            Step::Namespace { .. } | Step::Tunnel { .. } | Step::DecapDevice { .. } => {
                if let Step::Tunnel { name, .. } | Step::DecapDevice { name, .. } = step {
                    if let Err(e) = h.link(name) {
                        out.push(format!("{}: {name} missing: {e}", label(ns)));
                    }
                }
            }
        }
    }
    out
}
