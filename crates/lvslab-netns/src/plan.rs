//! Lab → ordered steps. Pure: nothing here touches the system, so a plan can be printed
//! (`lvslab plan nat`, as replayable `ip`/`sysctl`/`nft` lines), snapshot-tested, and
//! applied step by step by [`crate::apply`].
//!
//! Every value the shell rendering prints goes through [`sh_quote`], so a name from a lab
//! file is always one inert word to the shell, whatever it contains.
//!
//! Order matters and follows what the kernel needs: namespaces; cables (veth pairs,
//! bridges, tunnels, decapsulation devices); sysctls before addresses, so `arp_ignore`
//! and `arp_announce` hold before an address can be announced; addresses; links up;
//! routes (a gateway must be reachable through an address that is up); nft rules last.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use lvslab_spec::model::{Encap, Lab, NatRule, Prefix};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::mac::MacAddr;
use crate::nft;

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

impl DecapImpl {
    /// The decapsulation a dataplane pairs with: kernel IPVS with the kernel's own tunnel
    /// devices, the userspace director with the userspace tunnel endpoint.
    pub fn for_dataplane(d: lvslab_spec::Dataplane) -> DecapImpl {
        match d {
            lvslab_spec::Dataplane::Kernel => DecapImpl::Kernel,
            lvslab_spec::Dataplane::Userspace => DecapImpl::Userspace,
        }
    }
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
    /// A whole nftables table for the namespace, applied as one transaction.
    Nft {
        ns: String,
        table: nft::Table,
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

/// Builds the plan of a validated lab. Fails only on NAT rules nftables cannot hold
/// (IPv6 addresses in the `ip` table, interface names nft cannot quote).
pub fn plan(lab: &Lab, opts: &PlanOptions) -> Result<Plan> {
    let mut steps = Vec::new();
    let namespaces = namespace_steps(lab, &mut steps);
    let ends = cable_steps(lab, opts, &mut steps);
    sysctl_and_address_steps(lab, &mut steps);
    up_steps(lab, &ends, &mut steps);
    route_steps(lab, &mut steps);
    nft_steps(lab, &mut steps)?;
    Ok(Plan {
        instance: opts.instance.clone(),
        run: opts.run.clone(),
        lab: lab.name.clone(),
        namespaces,
        steps,
    })
}

/// One namespace per node and switch, IPv6 off in each.
fn namespace_steps(lab: &Lab, steps: &mut Vec<Step>) -> Vec<NsSpec> {
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
    namespaces
}

/// Veth pairs, bridges with their ports, tunnels and decapsulation devices, then tx
/// checksumming off on every veth end. Returns the veth ends `(node, iface)`.
fn cable_steps(lab: &Lab, opts: &PlanOptions, steps: &mut Vec<Step>) -> Vec<(String, String)> {
    let inst = &opts.instance;
    // Every veth end is brought up and stripped of tx checksumming later.
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
    ends
}

/// The nodes' sysctls, then their addresses (see the module docs for why in this order).
fn sysctl_and_address_steps(lab: &Lab, steps: &mut Vec<Step>) {
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
}

/// Bridges, veth ends, tunnels and decapsulation devices up.
fn up_steps(lab: &Lab, ends: &[(String, String)], steps: &mut Vec<Step>) {
    for s in &lab.switches {
        steps.push(Step::Up {
            ns: s.name.clone(),
            iface: BRIDGE_NAME.into(),
        });
    }
    for (ns, iface) in ends {
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
}

fn route_steps(lab: &Lab, steps: &mut Vec<Step>) {
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
}

/// One NAT table per node that has NAT rules.
fn nft_steps(lab: &Lab, steps: &mut Vec<Step>) -> Result<()> {
    for n in &lab.nodes {
        if !n.nat.is_empty() {
            steps.push(Step::Nft {
                ns: n.name.clone(),
                table: nat_table(&n.name, &n.nat)?,
            });
        }
    }
    Ok(())
}

/// Name of the nftables table lvslab owns in each namespace.
pub const NFT_TABLE: &str = "lvslab";

/// A node's NAT rules as one `ip lvslab` table: a prerouting (dstnat) chain for DNAT and
/// a postrouting (srcnat) chain for masquerade and SNAT; a chain without rules is left
/// out.
pub fn nat_table(node: &str, rules: &[NatRule]) -> Result<nft::Table> {
    let op = format!("nft NAT rules of node {node}");
    let v4 = |k: usize, a: IpAddr| -> Result<Ipv4Addr> {
        match a {
            IpAddr::V4(a) => Ok(a),
            IpAddr::V6(_) => Err(Error::InvalidArgument {
                op: op.clone(),
                detail: format!("rule {}: {a} is IPv6; the NAT table is `ip` (IPv4)", k + 1),
            }),
        }
    };
    let prefix = |k: usize, p: &Prefix| nft::Ipv4Prefix::new(v4(k, p.addr)?, p.len);
    let mut pre = Vec::new();
    let mut post = Vec::new();
    for (k, r) in rules.iter().enumerate() {
        match r {
            NatRule::Masquerade {
                source,
                not_destination,
                out,
            }
            | NatRule::Snat {
                source,
                not_destination,
                out,
                ..
            } => {
                let mut matches = Vec::new();
                if let Some(s) = source {
                    matches.push(nft::Match::Saddr {
                        prefix: prefix(k, s)?,
                        negate: false,
                    });
                }
                if let Some(d) = not_destination {
                    matches.push(nft::Match::Daddr {
                        prefix: prefix(k, d)?,
                        negate: true,
                    });
                }
                if let Some(o) = out {
                    matches.push(nft::Match::Oifname {
                        name: nft::IfName::new(o)?,
                        negate: false,
                    });
                }
                let statement = match r {
                    NatRule::Snat { to, .. } => nft::Statement::Snat(nft::NatTo::addr(v4(k, *to)?)),
                    _ => nft::Statement::Masquerade,
                };
                post.push(nft::Rule::new(matches, statement)?);
            }
            NatRule::Dnat {
                protocol,
                destination,
                port,
                to,
                to_port,
            } => {
                let matches = vec![
                    nft::Match::Daddr {
                        prefix: nft::Ipv4Prefix::host(v4(k, *destination)?),
                        negate: false,
                    },
                    nft::Match::Port {
                        protocol: *protocol,
                        field: nft::PortField::Dport,
                        port: *port,
                    },
                ];
                let to = nft::NatTo::addr(v4(k, *to)?).with_port(*to_port);
                pre.push(nft::Rule::new(matches, nft::Statement::Dnat(to))?);
            }
        }
    }
    let mut chains = Vec::new();
    if !pre.is_empty() {
        chains.push(nft::Chain::new(
            nft::Name::new("prerouting")?,
            Some(nft::BaseChain::dstnat()),
            pre,
        ));
    }
    if !post.is_empty() {
        chains.push(nft::Chain::new(
            nft::Name::new("postrouting")?,
            Some(nft::BaseChain::srcnat()),
            post,
        ));
    }
    nft::Table::new(nft::Family::Ip, nft::Name::new(NFT_TABLE)?, chains)
}

/// One word for a POSIX shell, whatever `value` holds: left bare when it is made only of
/// characters no shell interprets (letters, digits and `_./:=@%+,-`), else single-quoted
/// with each `'` written as `'\''`.
pub fn sh_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-".contains(&b));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// A value inside a `#` comment: quoted like a shell word, and with control characters
/// escaped so that no newline can end the comment.
fn in_comment(value: &str) -> String {
    if value.chars().any(char::is_control) {
        format!("{value:?}")
    } else {
        sh_quote(value)
    }
}

/// The plan as a bash script of `ip`, `sysctl`, `ethtool` and `nft` commands that builds
/// the same topology (`lvslab plan nat | bash`).
pub fn render_shell(p: &Plan) -> String {
    let mut s = String::new();
    let (lab, inst) = (in_comment(&p.lab), in_comment(&p.instance));
    let _ = writeln!(s, "# lvslab plan: lab `{lab}`, instance `{inst}`");
    let _ = writeln!(
        s,
        "# Replays what `lvslab up {lab} --instance {inst}` builds. Undo: `lvslab plan {lab} --instance {inst} --down | bash`."
    );
    let _ = writeln!(s, "set -e");
    for st in &p.steps {
        let _ = writeln!(s, "{}", render_step(p, st));
    }
    s
}

/// One step as the shell command(s) that do the same; every value is quoted.
pub fn render_step(p: &Plan, st: &Step) -> String {
    let q = |v: &str| sh_quote(v);
    let ns = |n: &str| sh_quote(&p.netns_name(n));
    match st {
        Step::Namespace { ns: n } => format!("ip netns add {0}\nip -n {0} link set lo up", ns(n)),
        Step::Veth { ns: n, name, mac, peer_ns, peer_name, peer_mac, mtu } => {
            let mtu = mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
            format!(
                "ip -n {} link add {} address {}{mtu} type veth peer name {} netns {} address {}{mtu}",
                ns(n),
                q(name),
                q(&mac.to_string()),
                q(peer_name),
                ns(peer_ns),
                q(&peer_mac.to_string())
            )
        }
        Step::Bridge { ns: n, name, mac } => {
            format!("ip -n {} link add {} address {} type bridge", ns(n), q(name), q(&mac.to_string()))
        }
        Step::Master { ns: n, iface, master } => {
            format!("ip -n {} link set {} master {}", ns(n), q(iface), q(master))
        }
        Step::TxChecksumOff { ns: n, iface } => {
            format!("ip netns exec {} ethtool -K {} tx off >/dev/null", ns(n), q(iface))
        }
        Step::Tunnel { ns: n, name, kind, local, remote } => format!(
            "ip -n {} link add {} type {} local {} remote {} ttl 64",
            ns(n),
            q(name),
            q(kind.name()),
            q(&local.to_string()),
            q(&remote.to_string())
        ),
        Step::DecapDevice { ns: n, name, encap, via: DecapImpl::Kernel } => match encap {
            Encap::Ipip | Encap::Gue => {
                format!("modprobe ipip; ip -n {} link show {} >/dev/null", ns(n), q(name))
            }
            Encap::Gre => format!(
                "modprobe ipip; modprobe ip_gre; ip -n {0} link show {1} >/dev/null\nip -n {0} link set gre0 up\nip netns exec {0} sysctl -qw net.ipv4.conf.gre0.rp_filter=0",
                ns(n),
                q(name)
            ),
        },
        Step::DecapDevice { ns: n, name, via: DecapImpl::Userspace, .. } => {
            format!("ip -n {} tuntap add dev {} mode tun", ns(n), q(name))
        }
        Step::Sysctl { ns: n, key, value } => {
            format!("ip netns exec {} sysctl -qw {}", ns(n), q(&format!("{key}={value}")))
        }
        Step::Address { ns: n, iface, prefix } => {
            format!("ip -n {} addr add {} dev {}", ns(n), q(&prefix.to_string()), q(iface))
        }
        Step::Up { ns: n, iface } => format!("ip -n {} link set {} up", ns(n), q(iface)),
        Step::Route { ns: n, dest, via, dev } => {
            let dest = dest.map_or("default".to_string(), |d| format!("{}/{}", d.network(), d.len));
            let mut l = format!("ip -n {} route add {}", ns(n), q(&dest));
            if let Some(v) = via {
                let _ = write!(l, " via {}", q(&v.to_string()));
            }
            if let Some(d) = dev {
                let _ = write!(l, " dev {}", q(d));
            }
            l
        }
        Step::Nft { ns: n, table } => {
            // A quoted here-document: the shell expands nothing in it, and the ruleset
            // (names checked by the nft model) reaches nft as written.
            let text = nft::render::table(table);
            let delimiter = here_doc_delimiter(&text);
            format!("ip netns exec {} nft -f - <<'{delimiter}'\n{text}{delimiter}", ns(n))
        }
    }
}

/// `NFT`, or a variant of it that is no line of `text`, to end a here-document.
fn here_doc_delimiter(text: &str) -> String {
    let mut delimiter = "NFT".to_string();
    while text.lines().any(|l| l == delimiter) {
        delimiter.push('_');
    }
    delimiter
}

/// The commands that remove what [`render_shell`] built: deleting a namespace deletes
/// every link, address, route and rule in it.
pub fn render_shell_down(p: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# lvslab plan --down: lab `{}`, instance `{}`",
        in_comment(&p.lab),
        in_comment(&p.instance)
    );
    for n in &p.namespaces {
        let _ = writeln!(
            s,
            "ip netns del {} 2>/dev/null || true",
            sh_quote(&p.netns_name(&n.name))
        );
    }
    s
}
