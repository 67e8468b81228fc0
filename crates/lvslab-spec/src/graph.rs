//! Topology drawings for slides and lab READMEs: Mermaid and Graphviz dot.
//!
//! Nodes show their role and addresses, switches are drawn as their own boxes, cables are
//! solid edges labelled with interface names, and each real server gets a dashed edge to
//! the node its replies leave through (its default gateway) — the one picture that tells
//! NAT (replies cross the director) from DR and TUN (they do not).

use std::fmt::Write as _;

use crate::lb::ServiceKey;
use crate::model::{Lab, Role};

/// Output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

struct Edge {
    a: String,
    b: String,
    label: String,
    reply: bool,
}

fn node_label(lab: &Lab, name: &str) -> String {
    let Some(n) = lab.node(name) else {
        return name.to_string();
    };
    let role = match n.role {
        Role::Client => "client",
        Role::Router => "router",
        Role::Firewall => "firewall",
        Role::Director => "director",
        Role::RealServer => "real server",
    };
    let mut s = format!("{name} ({role})");
    for (iface, prefixes) in &n.interfaces {
        for p in prefixes {
            let _ = write!(s, "\\n{iface} {p}");
        }
    }
    for svc in lab.services.iter().filter(|s| s.director == name) {
        if let ServiceKey::Addr {
            protocol,
            addr,
            port,
        } = svc.config.key
        {
            let _ = write!(
                s,
                "\\nVIP {protocol} {addr}:{port} {}",
                svc.config.scheduler
            );
        }
    }
    s
}

fn edges(lab: &Lab) -> Vec<Edge> {
    let mut out = Vec::new();
    for l in &lab.links {
        out.push(Edge {
            a: l.a.node.clone(),
            b: l.b.node.clone(),
            label: format!("{} — {}", l.a.iface, l.b.iface),
            reply: false,
        });
    }
    for s in &lab.switches {
        for p in &s.ports {
            out.push(Edge {
                a: p.node.clone(),
                b: s.name.clone(),
                label: p.iface.clone(),
                reply: false,
            });
        }
    }
    for t in &lab.tunnels {
        if let Some(peer) = lab.nodes.iter().find(|n| n.holds(&t.remote)) {
            out.push(Edge {
                a: t.node.clone(),
                b: peer.name.clone(),
                label: format!("{} {}", t.name, t.kind.name()),
                reply: false,
            });
        }
    }
    for n in lab.nodes.iter().filter(|n| n.role == Role::RealServer) {
        let gw = n
            .routes
            .iter()
            .find(|r| r.dest.is_none())
            .and_then(|r| r.via);
        if let Some(gw_node) = gw.and_then(|g| lab.nodes.iter().find(|m| m.holds(&g))) {
            out.push(Edge {
                a: n.name.clone(),
                b: gw_node.name.clone(),
                label: "replies".into(),
                reply: true,
            });
        }
    }
    out
}

/// Draws the lab.
pub fn render(lab: &Lab, format: GraphFormat) -> String {
    let id = |s: &str| s.replace('-', "_");
    let mut s = String::new();
    match format {
        GraphFormat::Mermaid => {
            let _ = writeln!(s, "%% lab {}: {}", lab.name, lab.title);
            let _ = writeln!(s, "flowchart LR");
            for n in &lab.nodes {
                let _ = writeln!(
                    s,
                    "    {}[\"{}\"]",
                    id(&n.name),
                    node_label(lab, &n.name).replace("\\n", "<br/>")
                );
            }
            for sw in &lab.switches {
                let _ = writeln!(s, "    {}{{{{\"{} (switch)\"}}}}", id(&sw.name), sw.name);
            }
            for e in edges(lab) {
                let arrow = if e.reply { "-.->" } else { "---" };
                let _ = writeln!(s, "    {} {arrow}|{}| {}", id(&e.a), e.label, id(&e.b));
            }
        }
        GraphFormat::Dot => {
            let _ = writeln!(s, "// lab {}: {}", lab.name, lab.title);
            let _ = writeln!(s, "graph \"{}\" {{", lab.name);
            let _ = writeln!(s, "  node [shape=box, fontname=\"monospace\"];");
            for n in &lab.nodes {
                let _ = writeln!(
                    s,
                    "  \"{}\" [label=\"{}\"];",
                    n.name,
                    node_label(lab, &n.name)
                );
            }
            for sw in &lab.switches {
                let _ = writeln!(
                    s,
                    "  \"{}\" [label=\"{} (switch)\", shape=ellipse];",
                    sw.name, sw.name
                );
            }
            for e in edges(lab) {
                let style = if e.reply { ", style=dashed" } else { "" };
                let _ = writeln!(
                    s,
                    "  \"{}\" -- \"{}\" [label=\"{}\"{style}];",
                    e.a, e.b, e.label
                );
            }
            let _ = writeln!(s, "}}");
        }
    }
    s
}
