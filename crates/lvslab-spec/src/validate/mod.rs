//! Semantic checks and reference resolution: lab file → [`Lab`].
//!
//! Every check reports at the span of the offending value with the field path and what
//! would be valid; all problems are collected, not just the first. The work is split by
//! job: [`names`] (what the kernel accepts as a name), [`sysctl`] (keys and typed
//! values), [`topology`] (nodes, interfaces,
//! addresses), [`cabling`] (links, switches, tunnels), [`node`] (each node's routes,
//! sysctls, NAT, servers), [`service`], [`traffic`] (traffic, checks, capture points);
//! [`refs`] resolves `node:iface` references for all of them.

mod cabling;
mod names;
mod node;
mod refs;
mod routing;
mod service;
mod sysctl;
mod topology;
mod traffic;

use std::path::Path;

use indexmap::IndexMap;
use toml::Spanned;

use crate::error::{Locator, SpecError, SpecErrors};
use crate::file::{LabFile, LabMeta};
use crate::model::{Lab, Mode};

pub(crate) use names::{param_name, param_value};
pub use names::{MAX_IFNAME, MAX_LAB_NAME, MAX_NODE_NAME, MAX_PARAM};

/// Where errors go while one file is validated.
pub(crate) struct Ctx<'a> {
    loc: &'a Locator<'a>,
    errors: Vec<SpecError>,
}

impl Ctx<'_> {
    pub(crate) fn err<T>(
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
    let (name, mode) = lab_meta(&mut cx, &file.lab);
    let node_names = topology::node_names(&mut cx, &file);
    let cabled = cabling::cable(&mut cx, &file, &node_names);
    let topo = topology::Topology::new(&mut cx, &file, node_names, &cabled.plugged);
    let resolver = refs::Resolver {
        nodes: &topo.node_names,
        addrs: &topo.addrs,
    };
    let nodes: Vec<_> = file
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| node::node(&mut cx, &resolver, &topo, i, n))
        .collect();
    let tunnels = cabling::tunnels(&mut cx, &resolver, &file, &cabled.plugged);
    let services = service::services(&mut cx, &resolver, &nodes, &file.services);
    let traffic = traffic::traffic(&mut cx, &resolver, file.traffic.as_ref());
    let checks = traffic::checks(&mut cx, &resolver, &file.checks);
    let capture_points = file
        .capture
        .as_ref()
        .map(|c| traffic::capture_points(&mut cx, &topo, c));

    if cx.errors.is_empty() {
        Ok(Lab {
            name,
            title: file.lab.title,
            mode,
            source: path.to_path_buf(),
            params,
            nodes,
            links: cabled.links,
            switches: cabled.switches,
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

fn lab_meta(cx: &mut Ctx<'_>, lab: &LabMeta) -> (String, Mode) {
    let name = lab.name.get_ref().clone();
    if let Err(m) = names::lab_name(&name) {
        cx.err(&lab.name, "lab.name", m.message, m.help);
    }
    let mode = match Mode::parse(lab.mode.get_ref()) {
        Some(m) => m,
        None => {
            cx.err(
                &lab.mode,
                "lab.mode",
                format!("unknown mode `{}`", lab.mode.get_ref()),
                "one of nat, dr, tun, fullnat".to_string(),
            );
            Mode::Nat
        }
    };
    (name, mode)
}
