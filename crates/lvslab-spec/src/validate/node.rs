//! One node: its role, routes, sysctls, NAT rules, servers and decapsulation device.

use super::cabling::device_encap;
use super::refs::Resolver;
use super::routing::{nat_rule, routes};
use super::topology::Topology;
use super::{names, Ctx};
use crate::file::NodeFile;
use crate::model::{Decap, Node, Role, Server, ServerKind};

pub(crate) fn node(
    cx: &mut Ctx<'_>,
    resolver: &Resolver<'_>,
    topo: &Topology,
    i: usize,
    n: &NodeFile,
) -> Node {
    let node = n.name.get_ref().clone();
    let role = match Role::parse(n.role.get_ref()) {
        Some(r) => r,
        None => {
            cx.err(
                &n.role,
                &format!("node[{i}].role"),
                format!("unknown role `{}`", n.role.get_ref()),
                format!("one of {}", Role::NAMES),
            );
            Role::Client
        }
    };
    let iface_ok = |name: &str| topo.has_iface(&node, name);
    let routes = routes(cx, resolver, i, n, &iface_ok);
    let sysctls = sysctls(cx, i, n, &iface_ok);
    let mut nat = Vec::new();
    for (k, r) in n.nat.iter().enumerate() {
        let p = format!("node[{i}].nat[{k}]");
        if let Some(rule) = nat_rule(cx, resolver, r, &p, &iface_ok) {
            nat.push(rule);
        }
    }
    let servers = servers(cx, resolver, i, n);
    let decap = decap(cx, i, n);
    let interfaces = n
        .interfaces
        .keys()
        .map(|k| {
            let key = (node.clone(), k.get_ref().clone());
            (
                k.get_ref().clone(),
                topo.addrs.get(&key).cloned().unwrap_or_default(),
            )
        })
        .collect();
    Node {
        name: node,
        role,
        interfaces,
        routes,
        sysctls,
        nat,
        servers,
        decap,
    }
}

fn sysctls(
    cx: &mut Ctx<'_>,
    i: usize,
    n: &NodeFile,
    iface_ok: &dyn Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let node = n.name.get_ref();
    let mut sysctls = Vec::new();
    for (k, v) in &n.sysctls {
        let p = format!("node[{i}].sysctls.\"{}\"", k.get_ref());
        let key = k.get_ref();
        if !key.starts_with("net.") || key.contains('/') || key.contains("..") {
            cx.err(
                k,
                &p,
                format!("`{key}` is not a per-namespace network sysctl"),
                "labs may set only `net.*` sysctls, which belong to the node's own namespace"
                    .to_string(),
            );
        } else if let Some(rest) = key
            .strip_prefix("net.ipv4.conf.")
            .or_else(|| key.strip_prefix("net.ipv6.conf."))
        {
            if let Some((iface, _)) = rest.split_once('.') {
                if !matches!(iface, "all" | "default") && !iface_ok(iface) {
                    cx.err(k, &p, format!("node `{node}` has no interface `{iface}`"), "per-interface sysctls name `all`, `default`, `lo` or one of the node's interfaces".to_string());
                }
            }
        }
        sysctls.push((key.clone(), v.as_string()));
    }
    sysctls
}

fn servers(cx: &mut Ctx<'_>, resolver: &Resolver<'_>, i: usize, n: &NodeFile) -> Vec<Server> {
    let mut servers = Vec::new();
    for (k, s) in n.servers.iter().enumerate() {
        let p = format!("node[{i}].servers[{k}]");
        let kind = match s.kind.get_ref().as_str() {
            "http" => ServerKind::Http,
            "tcp-echo" => ServerKind::TcpEcho,
            "udp-echo" => ServerKind::UdpEcho,
            other => {
                cx.err(
                    &s.kind,
                    &format!("{p}.kind"),
                    format!("unknown server kind `{other}`"),
                    "one of http, tcp-echo, udp-echo".to_string(),
                );
                continue;
            }
        };
        let bind = s
            .bind
            .as_ref()
            .and_then(|b| resolver.addr(cx, b, &format!("{p}.bind")));
        servers.push(Server {
            kind,
            port: s.port,
            bind,
        });
    }
    servers
}

fn decap(cx: &mut Ctx<'_>, i: usize, n: &NodeFile) -> Option<Decap> {
    let d = n.decap.as_ref()?;
    if let Err(m) = names::ifname(d.device.get_ref()) {
        cx.err(&d.device, &format!("node[{i}].decap.device"), m, None);
    }
    match device_encap(d.encap.get_ref()) {
        Some(e) => Some(Decap {
            encap: e,
            device: d.device.get_ref().clone(),
        }),
        None => {
            cx.err(
                &d.encap,
                &format!("node[{i}].decap.encap"),
                format!("unknown encapsulation `{}`", d.encap.get_ref()),
                "one of ipip, gre".to_string(),
            );
            None
        }
    }
}
