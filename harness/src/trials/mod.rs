//! Trials: collection (one per lab × kind × parameter value, skips decided here with
//! their reasons) and execution, each returning a typed [`TrialOutcome`].
//!
//! - [`topology`]: build, read back, run the lab's checks, tear down;
//! - [`replay`]: `lvslab plan | bash` against the netlink build;
//! - [`dataplane`]: a load balancer, traffic, captures checked hop by hop, diagnosis;
//! - [`vm`]: a kernel trial run in the VM, its outcome handed back as JSON;
//! - [`oracle`]: the exact shares schedulers must give.

mod dataplane;
pub mod oracle;
mod replay;
mod topology;
mod vm;

use std::path::{Path, PathBuf};
use std::time::Instant;

use lvslab_netns::apply::{preflight, required_features};
use lvslab_netns::plan::{plan, DecapImpl, Plan, PlanOptions};
use lvslab_netns::probe::Feature;
use lvslab_netns::{snapshot, Netns};
use lvslab_spec::model::{Encap, Lab};
use lvslab_spec::Dataplane;

use crate::outcome::{Check, Failure, Status, TrialOutcome};

pub use oracle::{expected_share, sum_shares, TRIAL_FIRST_PORT, TRIAL_REQUESTS};

/// What a trial does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialKind {
    /// Build the lab, compare the kernel's state with the model, run the lab's checks,
    /// tear down, and prove the host's own namespace did not change.
    Topology,
    /// Build the lab from `lvslab plan | bash` and from netlink, and compare every
    /// namespace's state.
    PlanReplay,
    /// Build the lab, install its service on a dataplane, send the lab's traffic and
    /// check that every request is answered and spread as the scheduler must.
    Dataplane(Dataplane),
}

impl TrialKind {
    pub fn name(self) -> &'static str {
        match self {
            TrialKind::Topology => "topology",
            TrialKind::PlanReplay => "plan-replay",
            TrialKind::Dataplane(Dataplane::Userspace) => "userspace",
            TrialKind::Dataplane(Dataplane::Kernel) => "kernel",
        }
    }
}

/// One trial, with the reason it cannot run here (decided at collection).
#[derive(Debug, Clone)]
pub struct TrialSpec {
    pub name: String,
    pub kind: TrialKind,
    pub lab_file: PathBuf,
    pub params: Vec<(String, String)>,
    pub skip: Option<String>,
    /// How real servers decapsulate, chosen from the machine's features at collection.
    pub decap: DecapImpl,
    /// Whether the trial runs in the VM (a kernel trial on a kernel without IPVS),
    /// decided at collection like the skip.
    pub in_vm: bool,
}

/// The lab folders under `labs_dir` (those holding a lab.toml), sorted.
pub fn lab_files(labs_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(labs_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("lab.toml"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Parameter combinations a lab is tried with: its defaults, plus every other allowed
/// value of each parameter.
fn variants(lab_file: &Path) -> Vec<Vec<(String, String)>> {
    let mut out = vec![Vec::new()];
    let Ok(text) = std::fs::read_to_string(lab_file) else {
        return out;
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return out;
    };
    if let Some(toml::Value::Table(params)) = table.get("params") {
        for (name, decl) in params {
            let default = decl
                .get("default")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            if let Some(toml::Value::Array(allowed)) = decl.get("allowed") {
                for v in allowed
                    .iter()
                    .filter_map(|v| v.as_str())
                    .filter(|v| *v != default)
                {
                    out.push(vec![(name.clone(), v.to_string())]);
                }
            }
        }
    }
    out
}

fn trial_name(kind: TrialKind, lab: &str, params: &[(String, String)]) -> String {
    let k = kind.name();
    if params.is_empty() {
        format!("{k}::{lab}")
    } else {
        let p: Vec<String> = params.iter().map(|(a, b)| format!("{a}={b}")).collect();
        format!("{k}::{lab}[{}]", p.join(","))
    }
}

/// Decapsulation the host can offer: the kernel's where it has ipip (and gre for GRE
/// labs), else the userspace endpoint.
pub fn decap_for_host(lab: &Lab, features: &[Feature]) -> DecapImpl {
    let has = |n: &str| features.iter().any(|f| f.name == n && f.available);
    let needs_gre = lab
        .nodes
        .iter()
        .any(|n| n.decap.as_ref().is_some_and(|d| d.encap == Encap::Gre));
    if has("ipip") && (!needs_gre || has("gre")) {
        DecapImpl::Kernel
    } else {
        DecapImpl::Userspace
    }
}

fn instance_for(kind: TrialKind, lab: &str, params: &[(String, String)]) -> String {
    let base = match kind {
        TrialKind::Topology => "t",
        TrialKind::PlanReplay => "r",
        TrialKind::Dataplane(Dataplane::Userspace) => "u",
        TrialKind::Dataplane(Dataplane::Kernel) => "k",
    };
    let p: String = params.iter().map(|(_, v)| format!("-{v}")).collect();
    format!("{base}-{lab}{p}")
}

/// This process's tag, unique among the runs on one machine: the pid (unique among live
/// processes) and a few clock bits (a crashed earlier run may have had the same pid). It
/// prefixes the names of every named namespace a trial creates.
pub fn run_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("{:x}{:03x}", std::process::id(), nanos >> 20)
    })
}

fn missing_tools(tools: &[&str]) -> Vec<String> {
    tools
        .iter()
        .filter(|t| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            !std::env::split_paths(&path).any(|d| d.join(t).is_file())
        })
        .map(|t| t.to_string())
        .collect()
}

/// Collects every trial with its skip reason, probing the machine once.
pub fn collect(labs_dir: &Path) -> Vec<TrialSpec> {
    let features = lvslab_netns::probe();
    let root = nix::unistd::geteuid().is_root();
    let mut out = Vec::new();
    for lab_file in lab_files(labs_dir) {
        for params in variants(&lab_file) {
            let lab = match lvslab_spec::load_lab(&lab_file, &params) {
                Ok(l) => l,
                Err(e) => {
                    // An invalid lab is a failing trial, not a skipped one.
                    out.push(TrialSpec {
                        name: trial_name(
                            TrialKind::Topology,
                            &lab_file.display().to_string(),
                            &params,
                        ),
                        kind: TrialKind::Topology,
                        lab_file: lab_file.clone(),
                        params: params.clone(),
                        skip: None,
                        decap: DecapImpl::Userspace,
                        in_vm: false,
                    });
                    tracing::warn!("{e}");
                    continue;
                }
            };
            for kind in [
                TrialKind::Topology,
                TrialKind::PlanReplay,
                TrialKind::Dataplane(Dataplane::Userspace),
                TrialKind::Dataplane(Dataplane::Kernel),
            ] {
                let decap = decap_for(kind, &lab, &features);
                let p = plan(
                    &lab,
                    &PlanOptions {
                        instance: instance_for(kind, &lab.name, &params),
                        run: Some(run_tag().to_string()),
                        decap,
                    },
                );
                // A lab the planner refuses is a failing trial (running it says why).
                let skip = p
                    .as_ref()
                    .ok()
                    .and_then(|p| skip_reason(kind, &lab, p, &features, root));
                out.push(TrialSpec {
                    name: trial_name(kind, &lab.name, &params),
                    kind,
                    lab_file: lab_file.clone(),
                    params: params.clone(),
                    skip,
                    decap,
                    in_vm: kind == TrialKind::Dataplane(Dataplane::Kernel)
                        && kernel_trials_in_vm(&features),
                });
            }
        }
    }
    out
}

/// How real servers decapsulate in a trial of this kind.
fn decap_for(kind: TrialKind, lab: &Lab, features: &[Feature]) -> DecapImpl {
    match kind {
        TrialKind::Topology | TrialKind::PlanReplay => decap_for_host(lab, features),
        TrialKind::Dataplane(Dataplane::Userspace) => DecapImpl::Userspace,
        TrialKind::Dataplane(Dataplane::Kernel) => DecapImpl::Kernel,
    }
}

fn has(features: &[Feature], name: &str) -> bool {
    features.iter().any(|f| f.name == name && f.available)
}

/// Whether kernel trials run here directly (this kernel has IPVS) or in the VM.
pub fn kernel_trials_in_vm(features: &[Feature]) -> bool {
    !has(features, "ipvs") && std::env::var_os("LVSLAB_IN_VM").is_none()
}

fn skip_reason(
    kind: TrialKind,
    lab: &Lab,
    p: &Plan,
    features: &[Feature],
    root: bool,
) -> Option<String> {
    if !root {
        return Some("needs root (network namespaces): run the tests with sudo".to_string());
    }
    if let TrialKind::Dataplane(_) = kind {
        if lab.services.is_empty() || lab.traffic.is_none() {
            return Some("the lab declares no [[service]] or no [traffic]".into());
        }
    }
    if kind == TrialKind::Dataplane(Dataplane::Kernel) && kernel_trials_in_vm(features) {
        // Decided on the host: the trial itself runs in the VM, which has IPVS, ipip
        // and gre.
        return lvslab_vm::probe()
            .skip_reason()
            .map(|r| format!("this kernel has no IPVS and no VM can run: {r}"));
    }
    if let Err(e) = preflight(p, features) {
        return Some(e.to_string().replace('\n', " "));
    }
    if kind == TrialKind::PlanReplay {
        let mut tools = vec!["bash", "ip", "ethtool"];
        if p.steps
            .iter()
            .any(|s| matches!(s, lvslab_netns::plan::Step::Nft { .. }))
        {
            tools.push("nft");
        }
        if p.steps
            .iter()
            .any(|s| matches!(s, lvslab_netns::plan::Step::Sysctl { .. }))
        {
            tools.push("sysctl");
        }
        let m = missing_tools(&tools);
        if !m.is_empty() {
            return Some(format!(
                "the replayed plan needs {} (apt-get install iproute2 ethtool nftables procps)",
                m.join(", ")
            ));
        }
    }
    None
}

/// Runs a trial. A trial that was skipped at collection fails here with its reason, so a
/// forced run (`--ignored`) never passes by accident. `vm_argv` gives the command that
/// runs one trial by name inside the VM (kernel trials on a kernel without IPVS).
pub fn run_trial(spec: &TrialSpec, vm_argv: &dyn Fn(&str) -> Vec<String>) -> TrialOutcome {
    let start = Instant::now();
    let mut out = TrialOutcome::new(&spec.name, &spec.lab_name(), spec.kind.name(), &spec.params);
    if let Some(why) = &spec.skip {
        out.fail(Failure::new(
            Check::Setup,
            format!("this trial cannot run here: {why}"),
        ));
    } else if spec.in_vm {
        vm::run_in_vm(spec, &vm_argv(&spec.name), &mut out);
    } else {
        run_here(spec, &mut out);
    }
    out.duration_ms = start.elapsed().as_millis() as u64;
    if out.failures.is_empty() && out.status == Status::Failed {
        out.status = Status::Passed;
    }
    // Inside the VM, the host reads the outcome from the trial's capture folder.
    if let Some(dir) = crate::packets::spec_capture_dir(spec) {
        if !spec.in_vm && dir.is_dir() {
            if let Err(e) = out.write(&dir) {
                out.log.push(format!("could not keep the outcome: {e}"));
            }
        }
    }
    out
}

impl TrialSpec {
    /// The lab's name as trial names show it (`tun` of `userspace::tun[encap=ipip]`).
    pub fn lab_name(&self) -> String {
        let lab = self.name.split("::").nth(1).unwrap_or(&self.name);
        lab.split('[').next().unwrap_or(lab).to_string()
    }
}

/// Runs a trial on this machine, and proves the host's own namespace unchanged after it.
fn run_here(spec: &TrialSpec, out: &mut TrialOutcome) {
    let lab = match lvslab_spec::load_lab(&spec.lab_file, &spec.params) {
        Ok(l) => l,
        Err(e) => return out.fail(Failure::new(Check::Setup, e.to_string())),
    };
    let p = plan(
        &lab,
        &PlanOptions {
            instance: instance_for(spec.kind, &lab.name, &spec.params),
            decap: spec.decap,
            run: Some(run_tag().to_string()),
        },
    );
    let p = match p {
        Ok(p) => p,
        Err(e) => return out.fail(Failure::new(Check::Setup, format!("plan: {e}"))),
    };
    out.log.push(format!(
        "plan: {} namespaces, {} steps, decapsulation {:?}; needs {}",
        p.namespaces.len(),
        p.steps.len(),
        spec.decap,
        required_features(&p)
            .iter()
            .map(|f| f.0)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let before = match Netns::root().and_then(|root| snapshot(&root)) {
        Ok(s) => s,
        Err(e) => {
            return out.fail(Failure::new(
                Check::Setup,
                format!("snapshot of the host namespace: {e}"),
            ))
        }
    };
    match spec.kind {
        TrialKind::Topology => topology::run(&lab, &p, out),
        TrialKind::PlanReplay => replay::run(&p, out),
        TrialKind::Dataplane(d) => dataplane::run(&lab, &p, d, out),
    }
    let after = match Netns::root().and_then(|root| snapshot(&root)) {
        Ok(s) => s,
        Err(e) => {
            return out.fail(Failure::new(
                Check::Host,
                format!("snapshot of the host namespace: {e}"),
            ))
        }
    };
    out.checks += 1;
    let diff = before.diff(&after);
    if diff.is_empty() {
        out.log.push(
            "host namespace unchanged (links, addresses, routes, rules, sysctls, nft)".into(),
        );
    } else {
        out.fail(Failure::new(
            Check::Host,
            format!("the host namespace changed:\n  {}", diff.join("\n  ")),
        ));
    }
}

/// Records teardown problems of a lab built by a trial.
fn teardown(inst: lvslab_netns::apply::LabInstance, out: &mut TrialOutcome) {
    let t = inst.teardown();
    for e in t.errors {
        out.fail(Failure::new(Check::Teardown, e.to_string()).at(e.object.clone()));
    }
}
