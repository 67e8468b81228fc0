//! What runs on a built lab: the default traffic, the reachability checks and the
//! capture points.

use toml::Spanned;

use super::refs::{known, protocol, Resolver};
use super::topology::Topology;
use super::Ctx;
use crate::file::{CaptureFile, CheckFile, TrafficFile};
use crate::model::{Check, CheckKind, Endpoint, Traffic};

pub(crate) fn traffic(
    cx: &mut Ctx<'_>,
    resolver: &Resolver<'_>,
    t: Option<&TrafficFile>,
) -> Option<Traffic> {
    let t = t?;
    resolver.node(cx, &t.from, "traffic.from");
    let to = resolver.addr(cx, &t.to, "traffic.to");
    let protocol = protocol(cx, &t.protocol, "traffic.protocol");
    port_not_zero(cx, &t.port, "traffic.port");
    Some(Traffic {
        from: t.from.get_ref().clone(),
        to: to?,
        port: *t.port.get_ref(),
        protocol: protocol?,
    })
}

fn port_not_zero(cx: &mut Ctx<'_>, port: &Spanned<u16>, path: &str) {
    if *port.get_ref() == 0 {
        cx.err(
            port,
            path,
            "port 0 cannot be connected to",
            "give the port the server listens on, e.g. 80".to_string(),
        );
    }
}

pub(crate) fn checks(cx: &mut Ctx<'_>, resolver: &Resolver<'_>, files: &[CheckFile]) -> Vec<Check> {
    let mut checks = Vec::new();
    for (i, c) in files.iter().enumerate() {
        let p = format!("check[{i}]");
        resolver.node(cx, &c.from, &format!("{p}.from"));
        let to = resolver.addr(cx, &c.to, &format!("{p}.to"));
        if let Some(port) = &c.port {
            port_not_zero(cx, port, &format!("{p}.port"));
        }
        let kind = match (
            c.kind.get_ref().as_str(),
            c.port.as_ref().map(|p| *p.get_ref()),
        ) {
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
    checks
}

pub(crate) fn capture_points(cx: &mut Ctx<'_>, topo: &Topology, c: &CaptureFile) -> Vec<Endpoint> {
    let mut points = Vec::new();
    for (i, p) in c.points.iter().enumerate() {
        let path = format!("capture.points[{i}]");
        let Some((node, iface)) = p.get_ref().split_once(':') else {
            cx.err(
                p,
                &path,
                format!("`{}` is not `node:iface`", p.get_ref()),
                "write e.g. `director:eth0`, or `director:*` for all its interfaces".to_string(),
            );
            continue;
        };
        if !topo.node_names.contains(node) {
            cx.err(
                p,
                &path,
                format!("unknown node `{node}`"),
                known(&topo.node_names),
            );
            continue;
        }
        if iface != "*" && !topo.has_iface(node, iface) {
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
}
