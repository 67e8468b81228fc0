//! One node: its role, routes, sysctls, NAT rules, servers and decapsulation device.

use super::cabling::device_encap;
use super::refs::Resolver;
use super::routing::{nat_rule, routes};
use super::topology::Topology;
use super::{names, sysctl, Ctx};
use crate::file::NodeFile;
use crate::model::{Decap, Node, Role, Server, ServerKind};

/// The device a TUN real server decapsulates on: the ipip module's fallback device, which
/// exists in every namespace once the module is loaded (a lab cannot name another).
const DECAP_DEVICE: &str = "tunl0";

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
        let p = format!("node[{i}].sysctls.\"{}\"", names::shown(k.get_ref()));
        let key = match sysctl::key(k.get_ref(), node, iface_ok) {
            Ok(key) => key,
            Err(r) => {
                cx.err(k, &p, r.message, r.help);
                continue;
            }
        };
        match sysctl::value(&key, v.get_ref()) {
            Ok(value) => sysctls.push((k.get_ref().clone(), value)),
            Err(r) => cx.err(v, &p, r.message, r.help),
        }
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
        if *s.port.get_ref() == 0 {
            cx.err(
                &s.port,
                &format!("{p}.port"),
                "a server on port 0 would listen on a port the kernel picks",
                "give the port clients connect to, e.g. 80".to_string(),
            );
        }
        let bind = s
            .bind
            .as_ref()
            .and_then(|b| resolver.addr(cx, b, &format!("{p}.bind")));
        servers.push(Server {
            kind,
            port: *s.port.get_ref(),
            bind,
        });
    }
    servers
}

fn decap(cx: &mut Ctx<'_>, i: usize, n: &NodeFile) -> Option<Decap> {
    let d = n.decap.as_ref()?;
    if let Err(r) = names::ifname(d.device.get_ref()) {
        cx.err(
            &d.device,
            &format!("node[{i}].decap.device"),
            r.message,
            r.help,
        );
    } else if d.device.get_ref() != DECAP_DEVICE {
        cx.err(
            &d.device,
            &format!("node[{i}].decap.device"),
            format!("the decapsulation device is the kernel's `{DECAP_DEVICE}`, not `{}`", d.device.get_ref()),
            format!("set device = \"{DECAP_DEVICE}\": the ipip module makes it in every namespace, and kernel IPVS labs receive on it"),
        );
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
