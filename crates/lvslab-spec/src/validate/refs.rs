//! References between parts of a lab: node names, and address values written as a
//! literal address or `node:iface` (that interface's first address).

use std::collections::HashSet;
use std::net::IpAddr;

use indexmap::IndexMap;

use super::Ctx;
use crate::file::SpannedStr;
use crate::lb::Protocol;
use crate::model::Prefix;

/// The help naming every node, for an unknown node.
pub(crate) fn known(names: &HashSet<String>) -> String {
    let mut v: Vec<_> = names.iter().cloned().collect();
    v.sort();
    format!("nodes in this lab: {}", v.join(", "))
}

/// Resolves address values: a literal address or `node:iface` (first address there).
pub(crate) struct Resolver<'a> {
    pub nodes: &'a HashSet<String>,
    pub addrs: &'a IndexMap<(String, String), Vec<Prefix>>,
}

impl Resolver<'_> {
    /// Reports an unknown node at `v`; whether the node exists.
    pub fn node(&self, cx: &mut Ctx<'_>, v: &SpannedStr, path: &str) -> bool {
        let known_node = self.nodes.contains(v.get_ref());
        if !known_node {
            cx.err(
                v,
                path,
                format!("unknown node `{}`", v.get_ref()),
                known(self.nodes),
            );
        }
        known_node
    }

    pub fn addr(&self, cx: &mut Ctx<'_>, v: &SpannedStr, path: &str) -> Option<IpAddr> {
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

    pub fn prefix(&self, cx: &mut Ctx<'_>, v: &SpannedStr, path: &str) -> Option<Prefix> {
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

pub(crate) fn protocol(cx: &mut Ctx<'_>, v: &SpannedStr, path: &str) -> Option<Protocol> {
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
