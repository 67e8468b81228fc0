//! References in `expect.toml` → the values a hop must carry, taken from the lab model.

use std::collections::BTreeMap;
use std::net::IpAddr;

use toml::Spanned;

use super::{FieldExpectation, HeaderField, ValueKind};
use crate::error::{Locator, SpecError};
use crate::lb::ServiceKey;
use crate::model::Lab;
use crate::vocab::MacAddr;

/// What one reference stands for.
enum Resolved {
    /// These values, at every point.
    Values(Vec<String>),
    /// These values at the points of each node.
    PerNode(BTreeMap<String, Vec<String>>),
}

/// Resolution of one file: the lab it refers to and the errors found so far.
pub(crate) struct Ctx<'a> {
    pub loc: &'a Locator<'a>,
    pub lab: &'a Lab,
    /// The instance whose MACs `eth.*` references stand for.
    pub instance: &'a str,
    pub errors: Vec<SpecError>,
}

pub(crate) fn reference_help(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Mac => "a MAC reference is `node:iface`",
        ValueKind::Ipv4 => "an address reference is `node:iface`, `vip` or `local`",
        ValueKind::Port => "a port reference is `vport` or `rport`",
    }
}

impl Ctx<'_> {
    pub fn error(&mut self, offset: usize, path: String, message: String, help: Option<String>) {
        let e = self.loc.error(offset..offset, path, message, help);
        self.errors.push(e);
    }

    /// One field of a hop: a reference or a list of them, each resolved at the `points`
    /// the hop matches.
    pub fn resolve(
        &mut self,
        path: &str,
        field: HeaderField,
        value: &Spanned<toml::Value>,
        points: &[String],
    ) -> Option<FieldExpectation> {
        let kind = field.kind();
        let name = field.path();
        let start = value.span().start;
        let refs: Vec<String> = match value.get_ref() {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Array(a) if !a.is_empty() => {
                let mut out = Vec::new();
                for v in a {
                    let Some(s) = v.as_str() else {
                        self.error(
                            start,
                            path.to_string(),
                            format!("{name}: every reference is a string, found {v}"),
                            Some(reference_help(kind).into()),
                        );
                        return None;
                    };
                    out.push(s.to_string());
                }
                out
            }
            other => {
                self.error(
                    start,
                    path.to_string(),
                    format!("{name}: expected a reference or a list of them, found {other}"),
                    Some(reference_help(kind).into()),
                );
                return None;
            }
        };
        let mut allowed = Vec::new();
        let mut per_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &refs {
            match self.value_of(kind, r, points) {
                Ok(Resolved::Values(v)) => allowed.extend(v),
                Ok(Resolved::PerNode(m)) => {
                    for (n, v) in m {
                        per_node.entry(n).or_default().extend(v);
                    }
                }
                Err(why) => {
                    self.error(
                        start,
                        path.to_string(),
                        format!("{name}: {why}"),
                        Some(reference_help(kind).into()),
                    );
                    return None;
                }
            }
        }
        allowed.sort();
        allowed.dedup();
        Some(FieldExpectation {
            field,
            allowed,
            per_node,
            label: refs.join(" or "),
        })
    }

    fn value_of(&self, kind: ValueKind, r: &str, points: &[String]) -> Result<Resolved, String> {
        let svc = self.lab.services.first();
        let shown = r.escape_debug();
        let no_service = || format!("`{shown}` needs a [[service]] in the lab");
        match (kind, r) {
            (ValueKind::Ipv4, "vip") => match svc.map(|s| s.config.key) {
                Some(ServiceKey::Addr { addr, .. }) => Ok(Resolved::Values(vec![addr.to_string()])),
                _ => Err(no_service()),
            },
            (ValueKind::Ipv4, "local") => {
                let l: Vec<String> = svc
                    .map(|s| {
                        s.config
                            .local_addresses
                            .iter()
                            .map(IpAddr::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if l.is_empty() {
                    Err("`local`: the service has no local_addresses".into())
                } else {
                    Ok(Resolved::Values(l))
                }
            }
            (ValueKind::Port, "vport") => match svc.map(|s| s.config.key) {
                Some(ServiceKey::Addr { port, .. }) => Ok(Resolved::Values(vec![port.to_string()])),
                _ => Err(no_service()),
            },
            (ValueKind::Port, "rport") => {
                let svc = svc.ok_or_else(no_service)?;
                let mut per_node = BTreeMap::new();
                for p in points {
                    let node = p.split(':').next().unwrap_or(p);
                    let ports: Vec<String> = svc
                        .real_servers
                        .iter()
                        .filter(|r| r.node.as_deref() == Some(node))
                        .map(|r| r.config.port.to_string())
                        .collect();
                    if ports.is_empty() {
                        return Err(format!("`rport`: {p} is not on a real server"));
                    }
                    per_node.insert(node.to_string(), ports);
                }
                Ok(Resolved::PerNode(per_node))
            }
            (ValueKind::Port, _) => Err(format!("unknown port reference `{shown}`")),
            (_, _) => self.interface_value(kind, r),
        }
    }

    /// `node:iface`: that interface's MAC (in this instance) or first address.
    fn interface_value(&self, kind: ValueKind, r: &str) -> Result<Resolved, String> {
        let shown = r.escape_debug();
        let Some((node, iface)) = r.split_once(':') else {
            return Err(format!("unknown reference `{shown}`"));
        };
        let (node_shown, iface_shown) = (node.escape_debug(), iface.escape_debug());
        let n = self
            .lab
            .node(node)
            .ok_or_else(|| format!("`{shown}`: no node named {node_shown}"))?;
        match kind {
            ValueKind::Mac => {
                if self.lab.node_interfaces(node).iter().any(|i| i == iface) {
                    Ok(Resolved::Values(vec![MacAddr::of_interface(
                        self.instance,
                        node,
                        iface,
                    )
                    .to_string()]))
                } else {
                    Err(format!(
                        "`{shown}`: {node_shown} has no interface {iface_shown}"
                    ))
                }
            }
            _ => n
                .first_address(iface)
                .map(|a| Resolved::Values(vec![a.to_string()]))
                .ok_or_else(|| format!("`{shown}`: {node_shown} has no address on {iface_shown}")),
        }
    }
}
