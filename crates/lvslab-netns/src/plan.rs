//! Lab → ordered steps. Pure: nothing here touches the system, so a plan can be printed
//! (`lvslab plan nat`, as replayable `ip`/`sysctl`/`nft` lines), snapshot-tested, and
//! applied step by step by [`crate::apply`].
//!
//! Order matters and follows what the kernel needs: namespaces; cables (veth pairs,
//! bridges, tunnels, decapsulation devices); sysctls before addresses, so `arp_ignore`
//! and `arp_announce` hold before an address can be announced; addresses; links up;
//! routes (a gateway must be reachable through an address that is up); nft rules last.

use std::fmt::Write as _;
use std::net::IpAddr;

use lvslab_spec::model::{Encap, Lab, NatRule, Prefix};
use serde::Serialize;

use crate::mac::MacAddr;

/// Name of the bridge inside a switch's namespace.
pub const BRIDGE_NAME: &str = "br0";

/// How a real server's decapsulation device is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecapImpl {
    /// The kernel's own fallback device (`tunl0` of the `ipip` module, `gre0` of
    /// `ip_gre`); needs a kernel with those modules.
    Kernel,
    /// A persistent TUN device that the userspace tunnel endpoint feeds.
    Userspace,
}

/// Choices that are not in the lab file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Instance name; namespaces are `lvslab-<instance>-<node>`. MACs derive from it.
    pub instance: String,
    pub decap: DecapImpl,
    /// The test run building the lab, if any: its namespaces are then
    /// `lvslab-<run>-<instance>-<node>`, so two runs on one machine never meet, while MACs
    /// (from the instance alone) stay equal between runs.
    pub run: Option<String>,
}

/// One namespace of the lab: a node, or a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NsSpec {
    /// Node or switch name from the lab file.
    pub name: String,
    pub is_switch: bool,
}

/// One thing to create or set, in a namespace named by its node (or switch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// Create the namespace and bring its `lo` up.
    Namespace {
        ns: String,
    },
    /// A veth pair with each end created directly in its namespace.
    Veth {
        ns: String,
        name: String,
        mac: MacAddr,
        peer_ns: String,
        peer_name: String,
        peer_mac: MacAddr,
        mtu: Option<u32>,
    },
    Bridge {
        ns: String,
        name: String,
        mac: MacAddr,
    },
    Master {
        ns: String,
        iface: String,
        master: String,
    },
    /// Frames leaving a veth carry a not-yet-computed L4 checksum unless tx
    /// checksumming is off; captures and the userspace engine need real checksums.
    TxChecksumOff {
        ns: String,
        iface: String,
    },
    Tunnel {
        ns: String,
        name: String,
        kind: Encap,
        local: IpAddr,
        remote: IpAddr,
    },
    /// The device that receives decapsulated packets on a TUN-mode real server.
    DecapDevice {
        ns: String,
        name: String,
        encap: Encap,
        via: DecapImpl,
    },
    Sysctl {
        ns: String,
        key: String,
        value: String,
    },
    Address {
        ns: String,
        iface: String,
        prefix: Prefix,
    },
    Up {
        ns: String,
        iface: String,
    },
    Route {
        ns: String,
        dest: Option<Prefix>,
        via: Option<IpAddr>,
        dev: Option<String>,
    },
    /// A whole nftables ruleset for the namespace, applied as one transaction.
    Nft {
        ns: String,
        ruleset: String,
    },
}

impl Step {
    /// The node or switch whose namespace the step acts in.
    pub fn ns(&self) -> &str {
        match self {
            Step::Namespace { ns }
            | Step::Veth { ns, .. }
            | Step::Bridge { ns, .. }
            | Step::Master { ns, .. }
            | Step::TxChecksumOff { ns, .. }
            | Step::Tunnel { ns, .. }
            | Step::DecapDevice { ns, .. }
            | Step::Sysctl { ns, .. }
            | Step::Address { ns, .. }
            | Step::Up { ns, .. }
            | Step::Route { ns, .. }
            | Step::Nft { ns, .. } => ns,
        }
    }
}

/// Everything needed to build one lab instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub instance: String,
    /// See [`PlanOptions::run`].
    pub run: Option<String>,
    pub lab: String,
    pub namespaces: Vec<NsSpec>,
    pub steps: Vec<Step>,
}

/// Namespace file name of a node or switch of an instance: `lvslab-<instance>-<name>`.
pub fn netns_name(instance: &str, node: &str) -> String {
    format!("lvslab-{instance}-{node}")
}

impl Plan {
    /// The namespace file name of a node or switch of this plan.
    pub fn netns_name(&self, node: &str) -> String {
        match &self.run {
            Some(run) => netns_name(&format!("{run}-{}", self.instance), node),
            None => netns_name(&self.instance, node),
        }
    }
}

/// Deterministic MAC of a node interface.
pub fn mac_of(instance: &str, node: &str, iface: &str) -> MacAddr {
    MacAddr::of_interface(instance, node, iface)
}

/// Name of the switch-side veth end for a node port: `<node>-<iface>` when it fits the
/// kernel's 15 bytes, else `port<k>`.
pub fn switch_port_name(node: &str, iface: &str, k: usize) -> String {
    let n = format!("{node}-{iface}");
    if n.len() <= lvslab_spec::MAX_IFNAME {
        n
    } else {
        format!("port{k}")
    }
}

/// Builds the plan of a validated lab.
pub fn plan(lab: &Lab, opts: &PlanOptions) -> Plan {
    let inst = &opts.instance;
    let mut steps = Vec::new();
    let mut namespaces = Vec::new();
    for n in &lab.nodes {
        namespaces.push(NsSpec {
            name: n.name.clone(),
            is_switch: false,
        });
    }
    for s in &lab.switches {
        namespaces.push(NsSpec {
            name: s.name.clone(),
            is_switch: true,
        });
    }
    for ns in &namespaces {
        steps.push(Step::Namespace {
            ns: ns.name.clone(),
        });
        // The labs are IPv4. Without IPv6, no link-local addresses appear a moment after
        // a link comes up and no router or multicast-listener chatter fills captures.
        // Set on `default` before any link exists, so every new link inherits it.
        for scope in ["all", "default"] {
            steps.push(Step::Sysctl {
                ns: ns.name.clone(),
                key: format!("net.ipv6.conf.{scope}.disable_ipv6"),
                value: "1".into(),
            });
        }
    }

    // Cables. Every veth end is brought up and stripped of tx checksumming later.
    let mut ends: Vec<(String, String)> = Vec::new();
    for l in &lab.links {
        steps.push(Step::Veth {
            ns: l.a.node.clone(),
            name: l.a.iface.clone(),
            mac: mac_of(inst, &l.a.node, &l.a.iface),
            peer_ns: l.b.node.clone(),
            peer_name: l.b.iface.clone(),
            peer_mac: mac_of(inst, &l.b.node, &l.b.iface),
            mtu: l.mtu,
        });
        ends.push((l.a.node.clone(), l.a.iface.clone()));
        ends.push((l.b.node.clone(), l.b.iface.clone()));
    }
    for s in &lab.switches {
        steps.push(Step::Bridge {
            ns: s.name.clone(),
            name: BRIDGE_NAME.into(),
            mac: mac_of(inst, &s.name, BRIDGE_NAME),
        });
        for (k, p) in s.ports.iter().enumerate() {
            let port = switch_port_name(&p.node, &p.iface, k);
            steps.push(Step::Veth {
                ns: p.node.clone(),
                name: p.iface.clone(),
                mac: mac_of(inst, &p.node, &p.iface),
                peer_ns: s.name.clone(),
                peer_name: port.clone(),
                peer_mac: mac_of(inst, &s.name, &port),
                mtu: None,
            });
            steps.push(Step::Master {
                ns: s.name.clone(),
                iface: port.clone(),
                master: BRIDGE_NAME.into(),
            });
            ends.push((p.node.clone(), p.iface.clone()));
            ends.push((s.name.clone(), port));
        }
    }
    for t in &lab.tunnels {
        steps.push(Step::Tunnel {
            ns: t.node.clone(),
            name: t.name.clone(),
            kind: t.kind,
            local: t.local,
            remote: t.remote,
        });
    }
    for n in &lab.nodes {
        if let Some(d) = &n.decap {
            steps.push(Step::DecapDevice {
                ns: n.name.clone(),
                name: d.device.clone(),
                encap: d.encap,
                via: opts.decap,
            });
        }
    }
    for (ns, iface) in &ends {
        steps.push(Step::TxChecksumOff {
            ns: ns.clone(),
            iface: iface.clone(),
        });
    }

    for n in &lab.nodes {
        for (key, value) in &n.sysctls {
            steps.push(Step::Sysctl {
                ns: n.name.clone(),
                key: key.clone(),
                value: value.clone(),
            });
        }
    }
    for n in &lab.nodes {
        for (iface, prefixes) in &n.interfaces {
            for p in prefixes {
                steps.push(Step::Address {
                    ns: n.name.clone(),
                    iface: iface.clone(),
                    prefix: *p,
                });
            }
        }
    }
    for s in &lab.switches {
        steps.push(Step::Up {
            ns: s.name.clone(),
            iface: BRIDGE_NAME.into(),
        });
    }
    for (ns, iface) in &ends {
        steps.push(Step::Up {
            ns: ns.clone(),
            iface: iface.clone(),
        });
    }
    for t in &lab.tunnels {
        steps.push(Step::Up {
            ns: t.node.clone(),
            iface: t.name.clone(),
        });
    }
    for n in &lab.nodes {
        if let Some(d) = &n.decap {
            steps.push(Step::Up {
                ns: n.name.clone(),
                iface: d.device.clone(),
            });
        }
    }
    for n in &lab.nodes {
        for r in &n.routes {
            steps.push(Step::Route {
                ns: n.name.clone(),
                dest: r.dest,
                via: r.via,
                dev: r.dev.clone(),
            });
        }
    }
    for n in &lab.nodes {
        if !n.nat.is_empty() {
            steps.push(Step::Nft {
                ns: n.name.clone(),
                ruleset: nat_ruleset(&n.nat),
            });
        }
    }
    Plan {
        instance: inst.clone(),
        run: opts.run.clone(),
        lab: lab.name.clone(),
        namespaces,
        steps,
    }
}

/// Name of the nftables table lvslab owns in each namespace.
pub const NFT_TABLE: &str = "lvslab";

/// The nftables text of a node's NAT rules: one `ip lvslab` table with a prerouting
/// (dstnat) and a postrouting (srcnat) chain.
pub fn nat_ruleset(rules: &[NatRule]) -> String {
    let mut pre = Vec::new();
    let mut post = Vec::new();
    for r in rules {
        match r {
            NatRule::Masquerade {
                source,
                not_destination,
                out,
            } => {
                post.push(format!(
                    "{}masquerade",
                    matches(source, not_destination, out)
                ));
            }
            NatRule::Snat {
                source,
                not_destination,
                out,
                to,
            } => {
                post.push(format!(
                    "{}snat to {to}",
                    matches(source, not_destination, out)
                ));
            }
            NatRule::Dnat {
                protocol,
                destination,
                port,
                to,
                to_port,
            } => {
                pre.push(format!(
                    "ip daddr {destination} {protocol} dport {port} dnat to {to}:{to_port}"
                ));
            }
        }
    }
    let mut s = String::new();
    let _ = writeln!(s, "table ip {NFT_TABLE} {{");
    if !pre.is_empty() {
        let _ = writeln!(
            s,
            "\tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;"
        );
        for r in &pre {
            let _ = writeln!(s, "\t\t{r}");
        }
        let _ = writeln!(s, "\t}}");
    }
    if !post.is_empty() {
        let _ = writeln!(
            s,
            "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;"
        );
        for r in &post {
            let _ = writeln!(s, "\t\t{r}");
        }
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "}}");
    s
}

fn matches(
    source: &Option<Prefix>,
    not_destination: &Option<Prefix>,
    out: &Option<String>,
) -> String {
    let mut m = String::new();
    if let Some(s) = source {
        let _ = write!(m, "ip saddr {}/{} ", s.network(), s.len);
    }
    if let Some(d) = not_destination {
        let _ = write!(m, "ip daddr != {}/{} ", d.network(), d.len);
    }
    if let Some(o) = out {
        let _ = write!(m, "oifname \"{o}\" ");
    }
    m
}

/// The plan as a bash script of `ip`, `sysctl`, `ethtool` and `nft` commands that builds
/// the same topology (`lvslab plan nat | bash`).
pub fn render_shell(p: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# lvslab plan: lab `{}`, instance `{}`",
        p.lab, p.instance
    );
    let _ = writeln!(
        s,
        "# Replays what `lvslab up {} --instance {}` builds. Undo: `lvslab plan {} --instance {} --down | bash`.",
        p.lab, p.instance, p.lab, p.instance
    );
    let _ = writeln!(s, "set -e");
    for st in &p.steps {
        let _ = writeln!(s, "{}", render_step(p, st));
    }
    s
}

/// One step as the shell command(s) that do the same.
pub fn render_step(p: &Plan, st: &Step) -> String {
    let ns = |n: &str| p.netns_name(n);
    match st {
        Step::Namespace { ns: n } => format!("ip netns add {0}\nip -n {0} link set lo up", ns(n)),
        Step::Veth { ns: n, name, mac, peer_ns, peer_name, peer_mac, mtu } => {
            let mtu = mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
            format!(
                "ip -n {} link add {name} address {mac}{mtu} type veth peer name {peer_name} netns {} address {peer_mac}{mtu}",
                ns(n),
                ns(peer_ns)
            )
        }
        Step::Bridge { ns: n, name, mac } => format!("ip -n {} link add {name} address {mac} type bridge", ns(n)),
        Step::Master { ns: n, iface, master } => format!("ip -n {} link set {iface} master {master}", ns(n)),
        Step::TxChecksumOff { ns: n, iface } => format!("ip netns exec {} ethtool -K {iface} tx off >/dev/null", ns(n)),
        Step::Tunnel { ns: n, name, kind, local, remote } => {
            format!("ip -n {} link add {name} type {} local {local} remote {remote} ttl 64", ns(n), kind.name())
        }
        Step::DecapDevice { ns: n, name, encap, via: DecapImpl::Kernel } => match encap {
            Encap::Ipip | Encap::Gue => format!("modprobe ipip; ip -n {} link show {name} >/dev/null", ns(n)),
            Encap::Gre => format!(
                "modprobe ipip; modprobe ip_gre; ip -n {0} link show {name} >/dev/null\nip -n {0} link set gre0 up\nip netns exec {0} sysctl -qw net.ipv4.conf.gre0.rp_filter=0",
                ns(n)
            ),
        },
        Step::DecapDevice { ns: n, name, via: DecapImpl::Userspace, .. } => {
            format!("ip -n {} tuntap add dev {name} mode tun", ns(n))
        }
        Step::Sysctl { ns: n, key, value } => format!("ip netns exec {} sysctl -qw {key}={value}", ns(n)),
        Step::Address { ns: n, iface, prefix } => format!("ip -n {} addr add {prefix} dev {iface}", ns(n)),
        Step::Up { ns: n, iface } => format!("ip -n {} link set {iface} up", ns(n)),
        Step::Route { ns: n, dest, via, dev } => {
            let mut l = format!(
                "ip -n {} route add {}",
                ns(n),
                dest.map_or("default".to_string(), |d| format!("{}/{}", d.network(), d.len))
            );
            if let Some(v) = via {
                let _ = write!(l, " via {v}");
            }
            if let Some(d) = dev {
                let _ = write!(l, " dev {d}");
            }
            l
        }
        Step::Nft { ns: n, ruleset } => format!("ip netns exec {} nft -f - <<'NFT'\n{}NFT", ns(n), ruleset),
    }
}

/// The commands that remove what [`render_shell`] built: deleting a namespace deletes
/// every link, address, route and rule in it.
pub fn render_shell_down(p: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# lvslab plan --down: lab `{}`, instance `{}`",
        p.lab, p.instance
    );
    for n in &p.namespaces {
        let _ = writeln!(
            s,
            "ip netns del {} 2>/dev/null || true",
            p.netns_name(&n.name)
        );
    }
    s
}
