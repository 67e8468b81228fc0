//! A node's routes and NAT rules.

use super::refs::{protocol, Resolver};
use super::{names, Ctx};
use crate::file::{NatFile, NodeFile};
use crate::model::{NatRule, Prefix, Route};

pub(crate) fn routes(
    cx: &mut Ctx<'_>,
    resolver: &Resolver<'_>,
    i: usize,
    n: &NodeFile,
    iface_ok: &dyn Fn(&str) -> bool,
) -> Vec<Route> {
    let node = n.name.get_ref();
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
            .and_then(|v| resolver.addr(cx, v, &format!("{p}.via")));
        let dev = r.dev.as_ref().map(|d| {
            if let Err(e) = names::ifname(d.get_ref()) {
                cx.err(d, &format!("{p}.dev"), e.message, e.help);
            } else if !iface_ok(d.get_ref()) {
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
    routes
}

pub(crate) fn nat_rule(
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
        if let Err(e) = names::ifname(o.get_ref()) {
            cx.err(o, &format!("{p}.out"), e.message, e.help);
        } else if !iface_ok(o.get_ref()) {
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
