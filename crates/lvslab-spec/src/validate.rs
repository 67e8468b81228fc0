//! Semantic checks and reference resolution: lab file → [`Lab`].
//!
//! Every check reports at the span of the offending value with the field path and what
//! would be valid; all problems are collected, not just the first.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use indexmap::IndexMap;
use toml::Spanned;

use crate::error::{Locator, SpecError, SpecErrors};
use crate::file::*;
use crate::lb::{
    DestConfig, ForwardMethod, Protocol, Scheduler, ServiceConfig, ServiceFlags, ServiceKey,
};
use crate::model::*;

/// The encapsulations a lab's devices can have: the kernel offers ipip and gre devices
/// (GUE exists only as an IPVS destination setting).
fn device_encap(s: &str) -> Option<Encap> {
    Encap::parse(s).filter(|e| *e != Encap::Gue)
}

/// Longest interface name the kernel accepts (IFNAMSIZ − 1).
pub const MAX_IFNAME: usize = 15;
/// Longest node or switch name: derived names such as namespace files must stay readable.
pub const MAX_NODE_NAME: usize = 10;
/// Longest lab name.
pub const MAX_LAB_NAME: usize = 12;

struct Ctx<'a> {
    loc: &'a Locator<'a>,
    errors: Vec<SpecError>,
}

impl Ctx<'_> {
    fn err<T>(
        &mut self,
        at: &Spanned<T>,
        path: &str,
        msg: impl Into<String>,
        help: impl Into<Option<String>>,
    ) {
        let e = self.loc.error(at.span(), path, msg, help.into());
        self.errors.push(e);
    }
}

fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_lowercase()
}

fn valid_ifname(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("interface name is empty".into());
    }
    if s.len() > MAX_IFNAME {
        return Err(format!(
            "interface name `{s}` is {} bytes; the kernel allows at most {MAX_IFNAME}",
            s.len()
        ));
    }
    if s == "."
        || s == ".."
        || s.bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        return Err(format!("interface name `{s}` contains a character the kernel rejects (`/`, `:` or white space)"));
    }
    Ok(())
}

/// Validates a parsed lab file and resolves its references.
pub fn validate(
    path: &Path,
    loc: &Locator<'_>,
    file: LabFile,
    params: IndexMap<String, String>,
) -> Result<Lab, SpecErrors> {
    let mut cx = Ctx {
        loc,
        errors: Vec::new(),
    };

    // ---- lab meta
    let name = file.lab.name.get_ref().clone();
    if !is_simple_name(&name) || name.len() > MAX_LAB_NAME {
        cx.err(&file.lab.name, "lab.name", format!("`{name}` is not a valid lab name"),
            format!("use lowercase letters, digits and `-`, starting with a letter, at most {MAX_LAB_NAME} bytes"));
    }
    let mode = match file.lab.mode.get_ref().as_str() {
        "nat" => Mode::Nat,
        "dr" => Mode::Dr,
        "tun" => Mode::Tun,
        "fullnat" => Mode::FullNat,
        other => {
            cx.err(
                &file.lab.mode,
                "lab.mode",
                format!("unknown mode `{other}`"),
                "one of nat, dr, tun, fullnat".to_string(),
            );
            Mode::Nat
        }
    };

    // ---- node names first: every other reference checks against them
    let mut node_names: HashSet<String> = HashSet::new();
    for (i, n) in file.nodes.iter().enumerate() {
        let nm = n.name.get_ref();
        let p = format!("node[{i}].name");
        if !is_simple_name(nm) || nm.len() > MAX_NODE_NAME {
            cx.err(&n.name, &p, format!("`{nm}` is not a valid node name"),
                format!("use lowercase letters, digits and `-`, starting with a letter, at most {MAX_NODE_NAME} bytes"));
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
        if !is_simple_name(nm) || nm.len() > MAX_NODE_NAME {
            cx.err(
                &s.name,
                &p,
                format!("`{nm}` is not a valid switch name"),
                format!("use lowercase letters, digits and `-`, at most {MAX_NODE_NAME} bytes"),
            );
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

    // ---- cabling: every node interface is plugged in at most once
    let mut plugged: HashMap<(String, String), String> = HashMap::new();
    let mut links = Vec::new();
    for (i, l) in file.links.iter().enumerate() {
        let mut ends = Vec::new();
        for (k, e) in l.ends.iter().enumerate() {
            let p = format!("link[{i}].ends[{k}]");
            if let Some(ep) = plug(&mut cx, &mut plugged, e, &p, &node_names) {
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
            links.push(Link {
                a: a.clone(),
                b: b.clone(),
                mtu: l.mtu,
            });
        }
    }
    let mut switches = Vec::new();
    for (i, s) in file.switches.iter().enumerate() {
        let mut ports = Vec::new();
        for (k, e) in s.ports.iter().enumerate() {
            let p = format!("switch[{i}].ports[{k}]");
            if let Some(ep) = plug(&mut cx, &mut plugged, e, &p, &node_names) {
                ports.push(ep);
            }
        }
        switches.push(Switch {
            name: s.name.get_ref().clone(),
            ports,
        });
    }

    // ---- interfaces and addresses (needed to resolve `node:iface` references)
    let mut tunnel_names: HashSet<(String, String)> = HashSet::new();
    for t in &file.tunnels {
        tunnel_names.insert((t.node.get_ref().clone(), t.name.get_ref().clone()));
    }
    // Every interface a node has: link ends, switch ports, tunnels, its decap device, lo.
    let mut ifaces: HashSet<(String, String)> = plugged.keys().cloned().collect();
    ifaces.extend(tunnel_names.iter().cloned());
    for n in &file.nodes {
        let node = n.name.get_ref().clone();
        if let Some(d) = &n.decap {
            ifaces.insert((node.clone(), d.device.get_ref().clone()));
        }
        ifaces.insert((node, "lo".to_string()));
    }
    let has_iface =
        |node: &str, iface: &str| ifaces.contains(&(node.to_string(), iface.to_string()));
    let mut addrs: IndexMap<(String, String), Vec<Prefix>> = IndexMap::new();
    for (i, n) in file.nodes.iter().enumerate() {
        let node = n.name.get_ref();
        for (iface, list) in &n.interfaces {
            let ip = format!("node[{i}].interfaces.{}", iface.get_ref());
            if let Err(m) = valid_ifname(iface.get_ref()) {
                cx.err(iface, &ip, m, None);
            }
            if !has_iface(node, iface.get_ref()) {
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
    check_overlaps(&mut cx, &file, &addrs);

    let resolver = Resolver {
        nodes: &node_names,
        addrs: &addrs,
    };

    // ---- nodes
    let mut nodes = Vec::new();
    for (i, n) in file.nodes.iter().enumerate() {
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
        let iface_ok = |name: &str| has_iface(&node, name);
        let mut routes = Vec::new();
        for (k, r) in n.routes.iter().enumerate() {
            let p = format!("node[{i}].routes[{k}]");
            let dest = if r.to.get_ref() == "default" {
                None
            } else {
                match r.to.get_ref().parse::<Prefix>() {
                    Ok(pf) => Some(pf),
                    Err(m) => {
                        cx.err(
                            &r.to,
                            &format!("{p}.to"),
                            m,
                            "`default` or a prefix such as `192.0.2.2/32`".to_string(),
                        );
                        None
                    }
                }
            };
            let via = r
                .via
                .as_ref()
                .and_then(|v| resolver.addr(&mut cx, v, &format!("{p}.via")));
            let dev = r.dev.as_ref().map(|d| {
                if !iface_ok(d.get_ref()) {
                    cx.err(
                        d,
                        &format!("{p}.dev"),
                        format!("node `{node}` has no interface `{}`", d.get_ref()),
                        None,
                    );
                }
                d.get_ref().clone()
            });
            if via.is_none() && dev.is_none() {
                cx.err(&r.to, &p, "a route needs `via`, `dev` or both", None);
            }
            routes.push(Route { dest, via, dev });
        }
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
        let mut nat = Vec::new();
        for (k, r) in n.nat.iter().enumerate() {
            let p = format!("node[{i}].nat[{k}]");
            if let Some(rule) = nat_rule(&mut cx, &resolver, r, &p, &iface_ok) {
                nat.push(rule);
            }
        }
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
                .and_then(|b| resolver.addr(&mut cx, b, &format!("{p}.bind")));
            servers.push(Server {
                kind,
                port: s.port,
                bind,
            });
        }
        let decap = n.decap.as_ref().and_then(|d| {
            if let Err(m) = valid_ifname(d.device.get_ref()) {
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
        });
        let interfaces = n
            .interfaces
            .keys()
            .map(|k| {
                let key = (node.clone(), k.get_ref().clone());
                (
                    k.get_ref().clone(),
                    addrs.get(&key).cloned().unwrap_or_default(),
                )
            })
            .collect();
        nodes.push(Node {
            name: node,
            role,
            interfaces,
            routes,
            sysctls,
            nat,
            servers,
            decap,
        });
    }

    // ---- tunnels
    let mut tunnels = Vec::new();
    let mut seen_tunnels = HashSet::new();
    for (i, t) in file.tunnels.iter().enumerate() {
        let p = format!("tunnel[{i}]");
        if !node_names.contains(t.node.get_ref()) {
            cx.err(
                &t.node,
                &format!("{p}.node"),
                format!("unknown node `{}`", t.node.get_ref()),
                known(&node_names),
            );
        }
        if let Err(m) = valid_ifname(t.name.get_ref()) {
            cx.err(&t.name, &format!("{p}.name"), m, None);
        }
        if plugged.contains_key(&(t.node.get_ref().clone(), t.name.get_ref().clone()))
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
        let local = resolver.addr(&mut cx, &t.local, &format!("{p}.local"));
        let remote = resolver.addr(&mut cx, &t.remote, &format!("{p}.remote"));
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

    // ---- services
    let mut services = Vec::new();
    let mut keys = HashSet::new();
    for (i, s) in file.services.iter().enumerate() {
        let p = format!("service[{i}]");
        if let Some(svc) = service(&mut cx, &resolver, &nodes, s, &p) {
            if !keys.insert(svc.config.key) {
                cx.err(
                    &s.vip,
                    &p,
                    format!("service {} is declared twice", svc.config.key),
                    None,
                );
            }
            services.push(svc);
        }
    }

    // ---- traffic and checks
    let traffic = file.traffic.as_ref().and_then(|t| {
        if !node_names.contains(t.from.get_ref()) {
            cx.err(
                &t.from,
                "traffic.from",
                format!("unknown node `{}`", t.from.get_ref()),
                known(&node_names),
            );
        }
        let to = resolver.addr(&mut cx, &t.to, "traffic.to");
        let protocol = protocol(&mut cx, &t.protocol, "traffic.protocol");
        Some(Traffic {
            from: t.from.get_ref().clone(),
            to: to?,
            port: t.port,
            protocol: protocol?,
        })
    });
    let mut checks = Vec::new();
    for (i, c) in file.checks.iter().enumerate() {
        let p = format!("check[{i}]");
        if !node_names.contains(c.from.get_ref()) {
            cx.err(
                &c.from,
                &format!("{p}.from"),
                format!("unknown node `{}`", c.from.get_ref()),
                known(&node_names),
            );
        }
        let to = resolver.addr(&mut cx, &c.to, &format!("{p}.to"));
        let kind = match (c.kind.get_ref().as_str(), c.port) {
            ("ping", None) => Some(CheckKind::Ping),
            ("ping", Some(_)) => {
                cx.err(
                    &c.kind,
                    &format!("{p}.port"),
                    "a ping check takes no port",
                    "remove `port`, or use kind = \"tcp\"".to_string(),
                );
                None
            }
            ("tcp", Some(port)) => Some(CheckKind::Tcp { port }),
            ("tcp", None) => {
                cx.err(
                    &c.kind,
                    &format!("{p}.port"),
                    "a tcp check needs `port`",
                    None,
                );
                None
            }
            (other, _) => {
                cx.err(
                    &c.kind,
                    &format!("{p}.kind"),
                    format!("unknown check kind `{other}`"),
                    "one of ping, tcp".to_string(),
                );
                None
            }
        };
        if let (Some(to), Some(kind)) = (to, kind) {
            checks.push(Check {
                from: c.from.get_ref().clone(),
                to,
                kind,
                expect_ok: c.expect_ok,
                needs_balancer: c.needs_balancer,
            });
        }
    }

    // ---- capture points
    let capture_points = file.capture.as_ref().map(|c| {
        let mut points = Vec::new();
        for (i, p) in c.points.iter().enumerate() {
            let path = format!("capture.points[{i}]");
            let Some((node, iface)) = p.get_ref().split_once(':') else {
                cx.err(
                    p,
                    &path,
                    format!("`{}` is not `node:iface`", p.get_ref()),
                    "write e.g. `director:eth0`, or `director:*` for all its interfaces"
                        .to_string(),
                );
                continue;
            };
            if !node_names.contains(node) {
                cx.err(
                    p,
                    &path,
                    format!("unknown node `{node}`"),
                    known(&node_names),
                );
                continue;
            }
            if iface != "*" && !has_iface(node, iface) {
                cx.err(
                    p,
                    &path,
                    format!("node `{node}` has no interface `{iface}`"),
                    "capture a link end, switch port, tunnel, decap device or `lo`".to_string(),
                );
                continue;
            }
            points.push(Endpoint {
                node: node.to_string(),
                iface: iface.to_string(),
            });
        }
        points
    });

    if cx.errors.is_empty() {
        Ok(Lab {
            name,
            title: file.lab.title,
            mode,
            source: path.to_path_buf(),
            params,
            nodes,
            links,
            switches,
            tunnels,
            services,
            traffic,
            checks,
            capture_points,
        })
    } else {
        cx.errors.sort_by_key(|e| (e.line, e.col));
        Err(SpecErrors(cx.errors))
    }
}

fn known(names: &HashSet<String>) -> String {
    let mut v: Vec<_> = names.iter().cloned().collect();
    v.sort();
    format!("nodes in this lab: {}", v.join(", "))
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
    if let Err(m) = valid_ifname(iface) {
        cx.err(e, path, m, None);
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

/// Resolves address values: a literal address or `node:iface` (first address there).
struct Resolver<'a> {
    nodes: &'a HashSet<String>,
    addrs: &'a IndexMap<(String, String), Vec<Prefix>>,
}

impl Resolver<'_> {
    fn addr(&self, cx: &mut Ctx<'_>, v: &SpannedStr, path: &str) -> Option<IpAddr> {
        let s = v.get_ref();
        if let Ok(a) = s.parse::<IpAddr>() {
            return Some(a);
        }
        let Some((node, iface)) = s.split_once(':') else {
            cx.err(
                v,
                path,
                format!("`{s}` is neither an address nor `node:iface`"),
                "write e.g. `192.168.80.10` or `director:eth0`".to_string(),
            );
            return None;
        };
        if !self.nodes.contains(node) {
            cx.err(v, path, format!("unknown node `{node}`"), known(self.nodes));
            return None;
        }
        match self
            .addrs
            .get(&(node.to_string(), iface.to_string()))
            .and_then(|l| l.first())
        {
            Some(p) => Some(p.addr),
            None => {
                cx.err(
                    v,
                    path,
                    format!("`{s}` has no address to refer to"),
                    format!("give `{node}` an address on `{iface}` in its `interfaces`"),
                );
                None
            }
        }
    }

    fn prefix(&self, cx: &mut Ctx<'_>, v: &SpannedStr, path: &str) -> Option<Prefix> {
        match v.get_ref().parse::<Prefix>() {
            Ok(p) => Some(p),
            Err(m) => {
                cx.err(
                    v,
                    path,
                    m,
                    "write a prefix such as `192.168.10.0/24`".to_string(),
                );
                None
            }
        }
    }
}

fn protocol(cx: &mut Ctx<'_>, v: &SpannedStr, path: &str) -> Option<Protocol> {
    match v.get_ref().as_str() {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        other => {
            cx.err(
                v,
                path,
                format!("unknown protocol `{other}`"),
                "one of tcp, udp".to_string(),
            );
            None
        }
    }
}

fn nat_rule(
    cx: &mut Ctx<'_>,
    r: &Resolver<'_>,
    f: &NatFile,
    p: &str,
    iface_ok: &dyn Fn(&str) -> bool,
) -> Option<NatRule> {
    let source = f
        .source
        .as_ref()
        .and_then(|s| r.prefix(cx, s, &format!("{p}.source")));
    let not_destination = f
        .not_destination
        .as_ref()
        .and_then(|s| r.prefix(cx, s, &format!("{p}.not_destination")));
    let out = f.out.as_ref().map(|o| {
        if !iface_ok(o.get_ref()) {
            cx.err(
                o,
                &format!("{p}.out"),
                format!("no interface `{}` on this node", o.get_ref()),
                None,
            );
        }
        o.get_ref().clone()
    });
    let forbid = |cx: &mut Ctx<'_>, present: bool, field: &str, kind: &str| {
        if present {
            cx.err(
                &f.kind,
                &format!("{p}.{field}"),
                format!("`{field}` does not apply to {kind}"),
                None,
            );
        }
    };
    match f.kind.get_ref().as_str() {
        "masquerade" => {
            forbid(cx, f.to.is_some(), "to", "masquerade");
            forbid(
                cx,
                f.port.is_some() || f.to_port.is_some(),
                "port",
                "masquerade",
            );
            Some(NatRule::Masquerade {
                source,
                not_destination,
                out,
            })
        }
        "snat" => {
            forbid(cx, f.port.is_some() || f.to_port.is_some(), "port", "snat");
            let Some(to) = f.to.as_ref() else {
                cx.err(
                    &f.kind,
                    &format!("{p}.to"),
                    "snat needs `to` (the new source address)",
                    None,
                );
                return None;
            };
            let to = r.addr(cx, to, &format!("{p}.to"))?;
            Some(NatRule::Snat {
                source,
                not_destination,
                out,
                to,
            })
        }
        "dnat" => {
            forbid(cx, f.source.is_some(), "source", "dnat in this tool");
            forbid(cx, f.out.is_some(), "out", "dnat");
            let (Some(proto), Some(port), Some(dest), Some(to)) =
                (&f.protocol, f.port, &f.destination, &f.to)
            else {
                cx.err(&f.kind, p, "dnat needs `protocol`, `port`, `destination` and `to`", "e.g. { kind = \"dnat\", protocol = \"tcp\", destination = \"firewall:eth0\", port = 80, to = \"director:eth0\" }".to_string());
                return None;
            };
            let protocol = protocol(cx, proto, &format!("{p}.protocol"))?;
            let destination = r.addr(cx, dest, &format!("{p}.destination"))?;
            let to = r.addr(cx, to, &format!("{p}.to"))?;
            Some(NatRule::Dnat {
                protocol,
                destination,
                port,
                to,
                to_port: f.to_port.unwrap_or(port),
            })
        }
        other => {
            cx.err(
                &f.kind,
                &format!("{p}.kind"),
                format!("unknown NAT kind `{other}`"),
                "one of masquerade, snat, dnat".to_string(),
            );
            None
        }
    }
}

fn service(
    cx: &mut Ctx<'_>,
    r: &Resolver<'_>,
    nodes: &[Node],
    s: &ServiceFile,
    p: &str,
) -> Option<Service> {
    let director = s.director.get_ref();
    match nodes.iter().find(|n| &n.name == director) {
        None => cx.err(
            &s.director,
            &format!("{p}.director"),
            format!("unknown node `{director}`"),
            known(r.nodes),
        ),
        Some(n) if n.role != Role::Director => cx.err(
            &s.director,
            &format!("{p}.director"),
            format!("node `{director}` has role {:?}, not director", n.role),
            "set role = \"director\" on the node that balances".to_string(),
        ),
        _ => {}
    }
    let vip = r.addr(cx, &s.vip, &format!("{p}.vip"));
    let proto = protocol(cx, &s.protocol, &format!("{p}.protocol"));
    let scheduler = match s.scheduler.get_ref().parse::<Scheduler>() {
        Ok(k) => Some(k),
        Err(e) => {
            cx.err(&s.scheduler, &format!("{p}.scheduler"), e.to_string(), None);
            None
        }
    };
    let netmask = match &s.netmask {
        None => Some(0xffff_ffff),
        Some(m) => match m.get_ref().parse::<std::net::Ipv4Addr>() {
            Ok(a) if u32::from(a).leading_ones() + u32::from(a).trailing_zeros() == 32 => {
                Some(u32::from(a))
            }
            _ => {
                cx.err(
                    m,
                    &format!("{p}.netmask"),
                    format!("`{}` is not a netmask", m.get_ref()),
                    "a contiguous dotted mask such as `255.255.255.0`".to_string(),
                );
                None
            }
        },
    };
    if s.netmask.is_some() && s.persistence.is_none() {
        if let Some(m) = &s.netmask {
            cx.err(
                m,
                &format!("{p}.netmask"),
                "a persistence netmask without `persistence`",
                "set `persistence = 300` (seconds) or remove `netmask`".to_string(),
            );
        }
    }
    let local_addresses: Vec<IpAddr> = s
        .local_addresses
        .iter()
        .enumerate()
        .filter_map(|(k, a)| r.addr(cx, a, &format!("{p}.local_addresses[{k}]")))
        .collect();
    let mut dests = Vec::new();
    let mut seen = HashSet::new();
    let mut any_fullnat = false;
    for (k, d) in s.real_servers.iter().enumerate() {
        let dp = format!("{p}.real_server[{k}]");
        let Some(addr) = r.addr(cx, &d.address, &format!("{dp}.address")) else {
            continue;
        };
        let method = match d.method.get_ref().as_str() {
            "nat" => ForwardMethod::Nat,
            "dr" => ForwardMethod::Dr,
            "tun" => ForwardMethod::Tunnel,
            "fullnat" => ForwardMethod::FullNat,
            other => {
                cx.err(
                    &d.method,
                    &format!("{dp}.method"),
                    format!("unknown method `{other}`"),
                    "one of nat (-m), dr (-g), tun (-i), fullnat".to_string(),
                );
                continue;
            }
        };
        any_fullnat |= method == ForwardMethod::FullNat;
        let weight = d.weight.unwrap_or(1);
        if weight > i32::MAX as u32 {
            cx.err(
                &d.method,
                &format!("{dp}.weight"),
                format!(
                    "weight {weight} is larger than the kernel's limit {}",
                    i32::MAX
                ),
                None,
            );
        }
        if matches!(method, ForwardMethod::Dr | ForwardMethod::Tunnel) && d.port != s.port {
            cx.err(
                &d.address,
                &format!("{dp}.port"),
                format!(
                    "{} cannot map ports: port {} differs from the service port {}",
                    d.method.get_ref(),
                    d.port,
                    s.port
                ),
                format!("set port = {} (only nat and fullnat rewrite ports)", s.port),
            );
        }
        let tun_type = match (&d.tunnel, method) {
            (None, _) => Encap::Ipip,
            (Some(t), ForwardMethod::Tunnel) => match t.get_ref().as_str() {
                "ipip" => Encap::Ipip,
                "gre" => Encap::Gre,
                other => {
                    cx.err(
                        t,
                        &format!("{dp}.tunnel"),
                        format!("unknown tunnel type `{other}`"),
                        "one of ipip, gre".to_string(),
                    );
                    Encap::Ipip
                }
            },
            (Some(t), _) => {
                cx.err(
                    t,
                    &format!("{dp}.tunnel"),
                    "`tunnel` applies only to method = \"tun\"",
                    None,
                );
                Encap::Ipip
            }
        };
        if !seen.insert((addr, d.port)) {
            cx.err(
                &d.address,
                &dp,
                format!("real server {addr}:{} is listed twice", d.port),
                None,
            );
        }
        let mut config = DestConfig::new(addr, d.port);
        config.method = method;
        config.weight = weight;
        config.tun_type = tun_type;
        let node = nodes
            .iter()
            .find(|n| n.holds(&addr))
            .map(|n| n.name.clone());
        dests.push(RealServer { node, config });
    }
    if any_fullnat && local_addresses.is_empty() {
        cx.err(
            &s.vip,
            &format!("{p}.local_addresses"),
            "fullnat real servers need a local-address pool",
            "add local_addresses = [\"…\"] with addresses of the director".to_string(),
        );
    }
    let (vip, proto, scheduler, netmask) = (vip?, proto?, scheduler?, netmask?);
    let mut config = ServiceConfig::new(
        ServiceKey::Addr {
            protocol: proto,
            addr: vip,
            port: s.port,
        },
        scheduler,
    );
    if let Some(t) = s.persistence {
        config.flags = ServiceFlags {
            persistent: true,
            ..ServiceFlags::default()
        };
        config.timeout = t;
    }
    config.netmask = netmask;
    config.local_addresses = local_addresses;
    Some(Service {
        director: director.clone(),
        config,
        real_servers: dests,
    })
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
    // Same address on several nodes.
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
