//! Plan → a running lab. Steps run in order; on any failure or cancellation everything
//! built so far is removed again, so a lab is either whole or absent.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use indexmap::IndexMap;
use lvslab_spec::model::Encap;

use crate::journal::{Journal, Teardown, NETNS_DIR};
use crate::named::PublishError;
use crate::ns::Netns;
use crate::plan::{DecapImpl, Plan, Step};
use crate::rtnl::NsHandle;

/// Why a lab could not be built; teardown problems are reported alongside.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot build lab `{lab}` on this machine: {missing}\n    nothing was created")]
    Unsupported { lab: String, missing: String },
    #[error("{ns}: `{step}` failed: {source}{}", teardown_note(.teardown))]
    Step {
        ns: String,
        step: String,
        #[source]
        source: Box<crate::error::Error>,
        teardown: Box<Teardown>,
    },
    #[error("{ns}: {source}{}", teardown_note(.teardown))]
    NameTaken {
        ns: String,
        #[source]
        source: Box<PublishError>,
        teardown: Box<Teardown>,
    },
    #[error("interrupted; everything built so far was removed{}", teardown_note(.teardown))]
    Cancelled { teardown: Box<Teardown> },
    #[error(
        "links still not operational {waited_s} s after they were set up: {}{}",
        .links.join(", "),
        teardown_note(.teardown)
    )]
    NotOperational {
        /// `node:iface` of every veth end the kernel had not reported up.
        links: Vec<String>,
        waited_s: u64,
        teardown: Box<Teardown>,
    },
    #[error("journal: {source}{}", teardown_note(.teardown))]
    Journal {
        #[source]
        source: Box<crate::journal::JournalError>,
        teardown: Box<Teardown>,
    },
}

fn teardown_note(t: &Teardown) -> String {
    let mut out = String::new();
    if !t.errors.is_empty() {
        out.push_str("\n    and teardown failed too:");
        for e in &t.errors {
            out.push_str(&format!("\n      {e}"));
        }
    }
    for l in &t.left {
        out.push_str(&format!("\n    left: {l}"));
    }
    out
}

/// How namespaces are held.
pub enum Naming {
    /// By file descriptor only: they vanish with the process (tests).
    Anonymous,
    /// Bind-mounted at `/run/netns/lvslab-<instance>-<node>`, recorded in the journal
    /// before creation (`lvslab up`).
    Named(Box<Journal>),
}

/// A built lab: one namespace per node and switch.
pub struct LabInstance {
    pub plan: Plan,
    namespaces: IndexMap<String, Netns>,
    journal: Option<Journal>,
}

impl std::fmt::Debug for LabInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabInstance")
            .field("instance", &self.plan.instance)
            .field("namespaces", &self.namespaces.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LabInstance {
    /// A view of a lab that is already built (the named namespaces of a running
    /// instance, opened again by its background process). Dropping it removes nothing.
    pub fn attach(plan: Plan, namespaces: IndexMap<String, Netns>) -> LabInstance {
        LabInstance {
            plan,
            namespaces,
            journal: None,
        }
    }

    /// The namespace of a node or switch.
    pub fn ns(&self, node: &str) -> Option<&Netns> {
        self.namespaces.get(node)
    }

    pub fn namespaces(&self) -> impl Iterator<Item = (&str, &Netns)> {
        self.namespaces.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn journal_mut(&mut self) -> Option<&mut Journal> {
        self.journal.as_mut()
    }

    /// Keeps a named lab running after this value is gone (`lvslab up` exits while the
    /// lab stays); returns the journal that `down` will use.
    pub fn detach(mut self) -> Option<Journal> {
        self.journal.take()
    }

    /// Removes the lab; returns what was done and every problem met on the way.
    pub fn teardown(mut self) -> Teardown {
        let journal = self.journal.take();
        self.namespaces.clear(); // closing the fds frees anonymous namespaces
        match journal {
            Some(j) => j.teardown(),
            None => Teardown::default(),
        }
    }
}

impl Drop for LabInstance {
    fn drop(&mut self) {
        if let Some(j) = self.journal.take() {
            for e in j.teardown().errors {
                tracing::warn!("teardown: {e}");
            }
        }
    }
}

/// Kernel features the plan needs, each with what to do when it is missing.
pub fn required_features(plan: &Plan) -> Vec<(&'static str, &'static str)> {
    let mut need: Vec<(&'static str, &'static str)> = vec![
        ("netns", "the kernel needs CONFIG_NET_NS"),
        ("veth", "the kernel needs CONFIG_VETH"),
    ];
    let mut add = |f: &'static str, why: &'static str| {
        if !need.iter().any(|(n, _)| *n == f) {
            need.push((f, why));
        }
    };
    for s in &plan.steps {
        match s {
            Step::Bridge { .. } => add("bridge", "the kernel needs CONFIG_BRIDGE"),
            Step::Tunnel {
                kind: Encap::Gre, ..
            } => add(
                "gre",
                "this kernel has no GRE: run the lab in the VM (`lvslab vm run -- lvslab up …`)",
            ),
            Step::Tunnel {
                kind: Encap::Ipip, ..
            } => add(
                "ipip",
                "this kernel has no IPIP: run the lab in the VM (`lvslab vm run -- lvslab up …`)",
            ),
            Step::DecapDevice {
                via: DecapImpl::Kernel,
                encap,
                ..
            } => {
                add("ipip", "real servers decapsulate on the kernel's tunl0, which needs IPIP: use `--dataplane userspace` (our tunnel endpoint) or the VM");
                if *encap == Encap::Gre {
                    add("gre", "real servers decapsulate GRE with the kernel's ip_gre: use `--dataplane userspace` (our tunnel endpoint) or the VM");
                }
            }
            Step::DecapDevice {
                via: DecapImpl::Userspace,
                ..
            } => add(
                "tun",
                "the userspace tunnel endpoint needs /dev/net/tun (CONFIG_TUN)",
            ),
            Step::Nft { .. } => add(
                "nft",
                "NAT rules need a kernel with nf_tables and its NAT (CONFIG_NF_TABLES, CONFIG_NFT_NAT)",
            ),
            _ => {}
        }
    }
    need
}

/// Checks the plan against probed features before anything is created.
pub fn preflight(plan: &Plan, features: &[crate::probe::Feature]) -> Result<(), ApplyError> {
    let mut missing = Vec::new();
    for (name, fix) in required_features(plan) {
        match features.iter().find(|f| f.name == name) {
            Some(f) if f.available => {}
            Some(f) => missing.push(format!("{name} is missing ({}); {fix}", f.detail)),
            None => missing.push(format!("{name} was not probed; {fix}")),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Unsupported {
            lab: plan.lab.clone(),
            missing: missing.join("\n    "),
        })
    }
}

/// Builds the lab. `cancel` is polled between steps (Ctrl-C).
pub fn build(plan: &Plan, naming: Naming, cancel: &AtomicBool) -> Result<LabInstance, ApplyError> {
    let journal = match naming {
        Naming::Anonymous => None,
        Naming::Named(j) => Some(*j),
    };
    let mut lab = LabInstance {
        plan: plan.clone(),
        namespaces: IndexMap::new(),
        journal,
    };
    let mut handles: HashMap<String, NsHandle> = HashMap::new();
    // LVSLAB_STEP_DELAY_MS slows a build down step by step: to watch a lab come up in a
    // workshop, and to interrupt `up` at a chosen point in tests.
    let delay = std::env::var("LVSLAB_STEP_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis);
    for step in &plan.steps {
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(ApplyError::Cancelled {
                teardown: Box::new(lab.teardown()),
            });
        }
        if let Err(source) = apply_step(&mut lab, &mut handles, step) {
            match source {
                StepError::Netns(source) => {
                    let ns = step.ns().to_string();
                    let step = crate::plan::render_step(plan, step);
                    handles.clear();
                    return Err(ApplyError::Step {
                        ns,
                        step,
                        source: Box::new(source),
                        teardown: Box::new(lab.teardown()),
                    });
                }
                StepError::Journal(source) => {
                    handles.clear();
                    return Err(ApplyError::Journal {
                        source: Box::new(source),
                        teardown: Box::new(lab.teardown()),
                    });
                }
                StepError::NameTaken(source) => {
                    handles.clear();
                    return Err(ApplyError::NameTaken {
                        ns: step.ns().to_string(),
                        source: Box::new(source),
                        teardown: Box::new(lab.teardown()),
                    });
                }
            }
        }
    }
    if let Err(e) = wait_until_operational(&lab, &mut handles, cancel) {
        handles.clear();
        return Err(match e {
            NotReady::Cancelled => ApplyError::Cancelled {
                teardown: Box::new(lab.teardown()),
            },
            NotReady::Step(ns, source) => ApplyError::Step {
                ns,
                step: "ip link show (waiting for the links to come up)".into(),
                source,
                teardown: Box::new(lab.teardown()),
            },
            NotReady::Links(links) => ApplyError::NotOperational {
                links,
                waited_s: OPERATIONAL_WAIT.as_secs(),
                teardown: Box::new(lab.teardown()),
            },
        });
    }
    Ok(lab)
}

/// Upper bound on the wait for links to become operational. The kernel normally needs
/// at most about a second (see [`wait_until_operational`]); a lab not up by then is broken.
const OPERATIONAL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

enum NotReady {
    Cancelled,
    Step(String, Box<crate::error::Error>),
    Links(Vec<String>),
}

/// Returns once every veth end of the plan is operationally up (or what is missing).
///
/// Setting both ends of a veth up is not enough for frames to pass: the kernel's link
/// watcher still has to notice the carrier, attach the queue and, on a bridge port, start
/// forwarding. It does that at once when the device's index differs from its peer's, but
/// a veth whose two ends got the same index number in their two namespaces (a switch's
/// first port often does: `lo`, `br0`, then index 3, like the node's second interface)
/// looks like a device without a lower link to it, and its event waits for the watcher's
/// next run, up to a second later (more under rtnl contention). A lab used in that window
/// loses frames on that port: a first ARP request, and with it a check's single ping.
fn wait_until_operational(
    lab: &LabInstance,
    handles: &mut HashMap<String, NsHandle>,
    cancel: &AtomicBool,
) -> Result<(), NotReady> {
    let mut pending: Vec<(String, String)> = Vec::new();
    for step in &lab.plan.steps {
        if let Step::Veth {
            ns,
            name,
            peer_ns,
            peer_name,
            ..
        } = step
        {
            pending.push((ns.clone(), name.clone()));
            pending.push((peer_ns.clone(), peer_name.clone()));
        }
    }
    let deadline = std::time::Instant::now() + OPERATIONAL_WAIT;
    loop {
        let mut still = Vec::new();
        for (ns, iface) in pending {
            if !handles.contains_key(&ns) {
                if let Some(netns) = lab.namespaces.get(&ns) {
                    let h = netns
                        .netlink()
                        .map_err(|e| NotReady::Step(ns.clone(), Box::new(e)))?;
                    handles.insert(ns.clone(), h);
                }
            }
            let up = match handles.get(&ns) {
                Some(h) => h
                    .is_oper_up(&iface)
                    .map_err(|e| NotReady::Step(ns.clone(), Box::new(e)))?,
                None => true,
            };
            if !up {
                still.push((ns, iface));
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(NotReady::Cancelled);
        }
        if std::time::Instant::now() > deadline {
            return Err(NotReady::Links(
                still.iter().map(|(n, i)| format!("{n}:{i}")).collect(),
            ));
        }
        pending = still;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

enum StepError {
    Netns(crate::error::Error),
    Journal(crate::journal::JournalError),
    NameTaken(PublishError),
}

impl From<crate::error::Error> for StepError {
    fn from(e: crate::error::Error) -> Self {
        StepError::Netns(e)
    }
}

fn v4(op: &str, a: IpAddr) -> Result<std::net::Ipv4Addr, crate::error::Error> {
    match a {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(crate::error::Error::InvalidArgument {
            op: op.into(),
            detail: "IPv6 tunnel endpoints are not supported".into(),
        }),
    }
}

fn apply_step(
    lab: &mut LabInstance,
    handles: &mut HashMap<String, NsHandle>,
    step: &Step,
) -> Result<(), StepError> {
    if let Step::Namespace { ns } = step {
        let netns = match lab.journal.as_mut() {
            None => Netns::new_anonymous()?,
            Some(j) => {
                // Recorded with its identity before the name becomes visible: see
                // `crate::named`.
                let path = PathBuf::from(NETNS_DIR).join(lab.plan.netns_name(ns));
                let mut prepared = crate::named::prepare(&path)?;
                j.record_namespace(ns, &prepared.record)
                    .map_err(StepError::Journal)?;
                crate::named::create_mount_point(&mut prepared)?;
                j.record_namespace(ns, &prepared.record)
                    .map_err(StepError::Journal)?;
                match crate::named::publish(prepared) {
                    Ok(netns) => netns,
                    Err(PublishError::Other(e)) => return Err(e.into()),
                    Err(taken) => {
                        j.forget_namespace(ns).map_err(StepError::Journal)?;
                        return Err(StepError::NameTaken(taken));
                    }
                }
            }
        };
        lab.namespaces.insert(ns.clone(), netns);
        return Ok(());
    }
    let name = step.ns();
    let netns = lab
        .namespaces
        .get(name)
        .ok_or_else(|| crate::error::Error::InvalidArgument {
            op: "find namespace".into(),
            detail: format!("no namespace for `{name}`: plan steps out of order"),
        })?;
    if !handles.contains_key(name) {
        handles.insert(name.to_string(), netns.netlink()?);
    }
    let h = handles
        .get(name)
        .ok_or_else(|| crate::error::Error::InvalidArgument {
            op: "netlink".into(),
            detail: name.into(),
        })?;
    match step {
        Step::Namespace { .. } => {}
        Step::Veth {
            name,
            mac,
            peer_ns,
            peer_name,
            peer_mac,
            mtu,
            ..
        } => {
            let peer = lab.namespaces.get(peer_ns).ok_or_else(|| {
                crate::error::Error::InvalidArgument {
                    op: "find namespace".into(),
                    detail: format!("no namespace for `{peer_ns}`"),
                }
            })?;
            h.add_veth(name, *mac, peer, peer_name, *peer_mac)?;
            if let Some(m) = mtu {
                h.set_mtu(name, *m)?;
                peer.netlink()?.set_mtu(peer_name, *m)?;
            }
        }
        Step::Bridge { name, mac, .. } => h.add_bridge(name, *mac)?,
        Step::Master { iface, master, .. } => h.set_master(iface, master)?,
        Step::TxChecksumOff { iface, .. } => h.set_tx_checksumming(iface, false)?,
        Step::Tunnel {
            name,
            kind,
            local,
            remote,
            ..
        } => {
            let (l, r) = (v4("tunnel", *local)?, v4("tunnel", *remote)?);
            match kind {
                Encap::Gre => h.add_gre(name, l, r, 64)?,
                Encap::Ipip => h.add_ipip(name, l, r, 64)?,
                // Validation refuses it; the kernel has no GUE device to create.
                Encap::Gue => {
                    return Err(crate::error::Error::InvalidArgument {
                        op: format!("create tunnel {name}"),
                        detail:
                            "a lab tunnel is ipip or gre (GUE is an IPVS destination setting only)"
                                .into(),
                    }
                    .into())
                }
            }
        }
        Step::DecapDevice {
            name, encap, via, ..
        } => match via {
            DecapImpl::Kernel => {
                // The ipip/ip_gre modules create their fallback devices in every new
                // namespace; the lab only uses them.
                h.link(name)?;
                if *encap == Encap::Gre {
                    h.set_up("gre0")?;
                    crate::sysctl::set_sysctl(netns, "net.ipv4.conf.gre0.rp_filter", "0")?;
                }
            }
            DecapImpl::Userspace => crate::tun::create_persistent_tun(netns, name)?,
        },
        Step::Sysctl { key, value, .. } => crate::sysctl::set_sysctl(netns, key, value)?,
        Step::Address { iface, prefix, .. } => h.add_address(iface, prefix.addr, prefix.len)?,
        Step::Up { iface, .. } => h.set_up(iface)?,
        Step::Route { dest, via, dev, .. } => {
            h.add_route(dest.map(|d| (d.network(), d.len)), *via, dev.as_deref())?
        }
        Step::Nft { table, .. } => crate::nft::apply(netns, table)?,
    }
    Ok(())
}
