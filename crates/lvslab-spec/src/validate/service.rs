//! Virtual services and their real servers.

use std::collections::HashSet;
use std::net::IpAddr;

use super::refs::{known, protocol, Resolver};
use super::Ctx;
use crate::file::{RealServerFile, ServiceFile};
use crate::lb::{DestConfig, ForwardMethod, Scheduler, ServiceConfig, ServiceFlags, ServiceKey};
use crate::model::{Encap, Node, RealServer, Role, Service};

pub(crate) fn services(
    cx: &mut Ctx<'_>,
    resolver: &Resolver<'_>,
    nodes: &[Node],
    files: &[ServiceFile],
) -> Vec<Service> {
    let mut services = Vec::new();
    let mut keys = HashSet::new();
    for (i, s) in files.iter().enumerate() {
        let p = format!("service[{i}]");
        if let Some(svc) = service(cx, resolver, nodes, s, &p) {
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
    services
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
    let netmask = netmask(cx, s, p);
    let local_addresses: Vec<IpAddr> = s
        .local_addresses
        .iter()
        .enumerate()
        .filter_map(|(k, a)| r.addr(cx, a, &format!("{p}.local_addresses[{k}]")))
        .collect();
    let dests = real_servers(cx, r, nodes, s, p);
    if dests
        .iter()
        .any(|d| d.config.method == ForwardMethod::FullNat)
        && local_addresses.is_empty()
    {
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

/// The persistence netmask (all ones when absent).
fn netmask(cx: &mut Ctx<'_>, s: &ServiceFile, p: &str) -> Option<u32> {
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
    netmask
}

fn real_servers(
    cx: &mut Ctx<'_>,
    r: &Resolver<'_>,
    nodes: &[Node],
    s: &ServiceFile,
    p: &str,
) -> Vec<RealServer> {
    let mut dests = Vec::new();
    let mut seen = HashSet::new();
    for (k, d) in s.real_servers.iter().enumerate() {
        let dp = format!("{p}.real_server[{k}]");
        let Some(addr) = r.addr(cx, &d.address, &format!("{dp}.address")) else {
            continue;
        };
        let Some(config) = dest_config(cx, s, d, addr, &dp) else {
            continue;
        };
        if !seen.insert((addr, d.port)) {
            cx.err(
                &d.address,
                &dp,
                format!("real server {addr}:{} is listed twice", d.port),
                None,
            );
        }
        let node = nodes
            .iter()
            .find(|n| n.holds(&addr))
            .map(|n| n.name.clone());
        dests.push(RealServer { node, config });
    }
    dests
}

/// Method, weight, port and tunnel type of one real server.
fn dest_config(
    cx: &mut Ctx<'_>,
    s: &ServiceFile,
    d: &RealServerFile,
    addr: IpAddr,
    dp: &str,
) -> Option<DestConfig> {
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
            return None;
        }
    };
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
    let mut config = DestConfig::new(addr, d.port);
    config.method = method;
    config.weight = weight;
    config.tun_type = tun_type;
    Some(config)
}
