//! Trial collection and execution.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lvslab_netns::apply::{build, preflight, required_features, LabInstance, Naming};
use lvslab_netns::plan::{
    netns_name, plan, render_shell, render_shell_down, DecapImpl, Plan, PlanOptions,
};
use lvslab_netns::probe::Feature;
use lvslab_netns::traffic::start_server;
use lvslab_netns::{snapshot, Netns, NsSnapshot};
use lvslab_spec::model::{Encap, Lab};

use crate::checks::run_check;
use crate::verify::verify_state;

/// What a trial does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialKind {
    /// Build the lab, compare the kernel's state with the model, run the lab's checks,
    /// tear down, and prove the host's own namespace did not change.
    Topology,
    /// Build the lab from `lvslab plan | bash` and from netlink, and compare every
    /// namespace's state.
    PlanReplay,
}

/// One trial, with the reason it cannot run here (decided at collection).
#[derive(Debug, Clone)]
pub struct TrialSpec {
    pub name: String,
    pub kind: TrialKind,
    pub lab_file: PathBuf,
    pub params: Vec<(String, String)>,
    pub skip: Option<String>,
}

/// What a trial found.
#[derive(Debug, Clone)]
pub struct TrialOutcome {
    pub name: String,
    pub passed: bool,
    /// What was checked, and every failure, in order.
    pub log: Vec<String>,
    pub checks: usize,
    pub duration: Duration,
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
    let k = match kind {
        TrialKind::Topology => "topology",
        TrialKind::PlanReplay => "plan-replay",
    };
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
    };
    let p: String = params.iter().map(|(_, v)| format!("-{v}")).collect();
    format!("{base}-{lab}{p}")
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
                    });
                    tracing::warn!("{e}");
                    continue;
                }
            };
            for kind in [TrialKind::Topology, TrialKind::PlanReplay] {
                let decap = decap_for_host(&lab, &features);
                let p = plan(
                    &lab,
                    &PlanOptions {
                        instance: instance_for(kind, &lab.name, &params),
                        decap,
                    },
                );
                let mut skip = None;
                if !root {
                    skip = Some(
                        "needs root (network namespaces): run the tests with sudo".to_string(),
                    );
                } else if let Err(e) = preflight(&p, &features) {
                    skip = Some(e.to_string().replace('\n', " "));
                } else if kind == TrialKind::PlanReplay {
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
                        skip = Some(format!("the replayed plan needs {} (apt-get install iproute2 ethtool nftables procps)", m.join(", ")));
                    }
                }
                out.push(TrialSpec {
                    name: trial_name(kind, &lab.name, &params),
                    kind,
                    lab_file: lab_file.clone(),
                    params: params.clone(),
                    skip,
                });
            }
        }
    }
    out
}

/// Runs a trial. A trial that was skipped at collection fails here with its reason, so a
/// forced run (`--ignored`) never passes by accident.
pub fn run_trial(spec: &TrialSpec) -> TrialOutcome {
    let start = Instant::now();
    let mut log = Vec::new();
    let mut checks = 0;
    let passed = match run_inner(spec, &mut log, &mut checks) {
        Ok(()) => true,
        Err(e) => {
            log.push(format!("FAILED: {e}"));
            false
        }
    };
    TrialOutcome {
        name: spec.name.clone(),
        passed,
        log,
        checks,
        duration: start.elapsed(),
    }
}

fn run_inner(spec: &TrialSpec, log: &mut Vec<String>, checks: &mut usize) -> Result<(), String> {
    if let Some(why) = &spec.skip {
        return Err(format!("this trial cannot run here: {why}"));
    }
    let lab = lvslab_spec::load_lab(&spec.lab_file, &spec.params).map_err(|e| e.to_string())?;
    let features = lvslab_netns::probe();
    let decap = decap_for_host(&lab, &features);
    let p = plan(
        &lab,
        &PlanOptions {
            instance: instance_for(spec.kind, &lab.name, &spec.params),
            decap,
        },
    );
    log.push(format!(
        "plan: {} namespaces, {} steps, decapsulation {:?}; needs {}",
        p.namespaces.len(),
        p.steps.len(),
        decap,
        required_features(&p)
            .iter()
            .map(|f| f.0)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let root = Netns::root().map_err(|e| e.to_string())?;
    let before = snapshot(&root).map_err(|e| format!("snapshot of the host namespace: {e}"))?;
    let result = match spec.kind {
        TrialKind::Topology => topology(&lab, &p, log, checks),
        TrialKind::PlanReplay => replay(&p, log, checks),
    };
    let after = snapshot(&root).map_err(|e| format!("snapshot of the host namespace: {e}"))?;
    let diff = before.diff(&after);
    *checks += 1;
    if !diff.is_empty() {
        return Err(format!(
            "the host namespace changed:\n  {}",
            diff.join("\n  ")
        ));
    }
    log.push("host namespace unchanged (links, addresses, routes, rules, sysctls, nft)".into());
    result
}

fn topology(lab: &Lab, p: &Plan, log: &mut Vec<String>, checks: &mut usize) -> Result<(), String> {
    let cancel = AtomicBool::new(false);
    let t = Instant::now();
    let inst = build(p, Naming::Anonymous, &cancel).map_err(|e| e.to_string())?;
    log.push(format!("built in {:.0?}", t.elapsed()));
    let result = check_built(lab, &inst, log, checks);
    let errors = inst.teardown();
    if !errors.is_empty() {
        return Err(format!("teardown: {}", errors.join("; ")));
    }
    result
}

fn check_built(
    lab: &Lab,
    inst: &LabInstance,
    log: &mut Vec<String>,
    checks: &mut usize,
) -> Result<(), String> {
    let mismatches = verify_state(inst);
    *checks += inst.plan.steps.len();
    if !mismatches.is_empty() {
        return Err(format!(
            "kernel state differs from the model:\n  {}",
            mismatches.join("\n  ")
        ));
    }
    log.push(format!(
        "kernel state matches the model ({} steps read back)",
        inst.plan.steps.len()
    ));
    let mut servers = Vec::new();
    for n in &lab.nodes {
        let Some(ns) = inst.ns(&n.name) else { continue };
        for s in &n.servers {
            servers.push(start_server(ns, &n.name, s).map_err(|e| e.to_string())?);
        }
    }
    let mut failed = Vec::new();
    for c in lab.checks.iter().filter(|c| !c.needs_balancer) {
        let r = run_check(lab, inst, c);
        *checks += 1;
        log.push(format!(
            "check {}: {} ({})",
            r.what,
            if r.ok { "ok" } else { "FAILED" },
            r.detail
        ));
        if !r.ok {
            failed.push(format!("{}: {}", r.what, r.detail));
        }
    }
    drop(servers);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("checks failed:\n  {}", failed.join("\n  ")))
    }
}

fn bash(script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("bash")
        .arg("-s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("bash: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("bash: no stdin")?
        .write_all(script.as_bytes())
        .map_err(|e| format!("bash: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("bash: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "bash exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn snapshot_all(
    p: &Plan,
    open: impl Fn(&str) -> Result<Netns, String>,
) -> Result<Vec<(String, NsSnapshot)>, String> {
    p.namespaces
        .iter()
        .map(|n| {
            let ns = open(&n.name)?;
            snapshot(&ns)
                .map(|s| (n.name.clone(), s))
                .map_err(|e| format!("snapshot {}: {e}", n.name))
        })
        .collect()
}

fn replay(p: &Plan, log: &mut Vec<String>, checks: &mut usize) -> Result<(), String> {
    // 1. The shell replay, in named namespaces.
    let t = Instant::now();
    let built = bash(&render_shell(p));
    let shell_state = built.and_then(|()| {
        snapshot_all(p, |n| {
            Netns::open(
                &PathBuf::from(lvslab_netns::journal::NETNS_DIR).join(netns_name(&p.instance, n)),
            )
            .map_err(|e| e.to_string())
        })
    });
    let cleanup = bash(&render_shell_down(p));
    let shell_state = shell_state?;
    cleanup?;
    log.push(format!(
        "`lvslab plan | bash` built and removed in {:.0?}",
        t.elapsed()
    ));
    // 2. The same plan over netlink.
    let cancel = AtomicBool::new(false);
    let inst = build(p, Naming::Anonymous, &cancel).map_err(|e| e.to_string())?;
    let ours = snapshot_all(p, |n| {
        inst.ns(n)
            .ok_or_else(|| format!("no namespace {n}"))
            .and_then(|ns| ns.try_clone().map_err(|e| e.to_string()))
    });
    let errors = inst.teardown();
    let ours = ours?;
    if !errors.is_empty() {
        return Err(format!("teardown: {}", errors.join("; ")));
    }
    let mut diffs = Vec::new();
    for ((name, a), (_, b)) in shell_state.iter().zip(&ours) {
        *checks += 1;
        for d in a.diff(b) {
            diffs.push(format!("{name}: {d}"));
        }
    }
    if !diffs.is_empty() {
        return Err(format!(
            "netlink build differs from the shell replay (- shell, + netlink):\n  {}",
            diffs.join("\n  ")
        ));
    }
    log.push(format!(
        "{} namespaces identical: links, MACs, addresses, routes, rules, sysctls, nft",
        ours.len()
    ));
    Ok(())
}
