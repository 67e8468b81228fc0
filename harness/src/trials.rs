//! Trial collection and execution.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lvslab_netns::apply::{build, preflight, required_features, LabInstance, Naming};
use lvslab_netns::plan::{plan, render_shell, render_shell_down, DecapImpl, Plan, PlanOptions};
use lvslab_netns::probe::Feature;
use lvslab_netns::traffic::start_lab_servers;
use lvslab_netns::{snapshot, Netns, NsSnapshot};
use std::collections::BTreeMap;

use lvslab_spec::lb::Scheduler;
use lvslab_spec::model::{Encap, Lab};

use crate::balancer::{Balancer, Dataplane};
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
                // A lab the planner refuses is a failing trial (run_inner says why).
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
/// forced run (`--ignored`) never passes by accident.
pub fn run_trial(spec: &TrialSpec, vm_argv: &dyn Fn(&str) -> Vec<String>) -> TrialOutcome {
    let start = Instant::now();
    let mut log = Vec::new();
    let mut checks = 0;
    let result = if spec.skip.is_none() && spec.in_vm {
        run_in_vm(spec, &vm_argv(&spec.name), &mut log, &mut checks)
    } else {
        run_inner(spec, &mut log, &mut checks)
    };
    let passed = match result {
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
    let decap = spec.decap;
    let p = plan(
        &lab,
        &PlanOptions {
            instance: instance_for(spec.kind, &lab.name, &spec.params),
            run: Some(run_tag().to_string()),
            decap,
        },
    )
    .map_err(|e| format!("plan: {e}"))?;
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
        TrialKind::Dataplane(d) => dataplane(&lab, &p, d, log, checks),
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
    let servers = start_lab_servers(lab, inst).map_err(|e| e.to_string())?;
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
            Netns::open(&PathBuf::from(lvslab_netns::journal::NETNS_DIR).join(p.netns_name(n)))
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

/// Modules a kernel trial needs in the VM (schedulers load on demand).
const VM_MODULES: [&str; 3] = ["ip_vs", "ipip", "ip_gre"];

/// Runs one kernel trial in the VM: the same binary, filtered to this trial, in a guest
/// whose kernel has IPVS. The guest's output becomes the trial's log.
fn run_in_vm(
    spec: &TrialSpec,
    argv: &[String],
    log: &mut Vec<String>,
    checks: &mut usize,
) -> Result<(), String> {
    let mut opts = lvslab_vm::RunOptions {
        output: lvslab_vm::OutputMode::Capture,
        modules: VM_MODULES.iter().map(|m| m.to_string()).collect(),
        ..lvslab_vm::RunOptions::default()
    };
    // The guest sees the host's / read-only with its own tmpfs on /tmp, /run and /var;
    // lvslab-vm shares a checkout there by itself (the working directory's tree).
    // The trial writes its captures in the guest into a directory the host reads back.
    crate::packets::prepare_vm(spec, &mut opts)?;
    let out = lvslab_vm::run(&opts, argv).map_err(|e| format!("VM: {e}"))?;
    log.push(format!(
        "ran in a {} guest ({:?}): booted in {} ms, {} ms in all",
        out.kernel_release, out.accel, out.boot_ms, out.total_ms
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    for l in text.lines().filter(|l| l.starts_with("  ")) {
        log.push(format!("vm:{l}"));
    }
    *checks += text
        .lines()
        .filter(|l| l.trim_start().starts_with("check "))
        .count();
    if out.exit_code == 0 {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "in the VM the trial exited {}:\n{}\n{}",
            out.exit_code,
            text.lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n"),
            err.lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }
}

/// How many requests a dataplane trial sends per phase.
pub const TRIAL_REQUESTS: u64 = 60;

/// Source port of a trial's first request (phases continue 1000 ports further on).
pub const TRIAL_FIRST_PORT: u16 = 20_000;

/// What `count` requests must give under a round-robin scheduler: weights share the
/// requests exactly when `count` is a multiple of their sum. `None` for schedulers with no
/// exact share.
pub fn expected_share(
    scheduler: Scheduler,
    servers: &[(String, u32)],
    count: u64,
) -> Option<BTreeMap<String, u64>> {
    let weights: Vec<(String, u64)> = match scheduler {
        Scheduler::Rr => servers
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(n, _)| (n.clone(), 1))
            .collect(),
        Scheduler::Wrr => servers
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(n, w)| (n.clone(), u64::from(*w)))
            .collect(),
        _ => return None,
    };
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    if total == 0 || count % total != 0 {
        return None;
    }
    Some(
        weights
            .into_iter()
            .map(|(n, w)| (n, count / total * w))
            .collect(),
    )
}

fn dataplane(
    lab: &Lab,
    p: &Plan,
    d: Dataplane,
    log: &mut Vec<String>,
    checks: &mut usize,
) -> Result<(), String> {
    let cancel = AtomicBool::new(false);
    let inst = build(p, Naming::Anonymous, &cancel).map_err(|e| e.to_string())?;
    let result = (|| {
        let servers = start_lab_servers(lab, &inst).map_err(|e| e.to_string())?;
        let mut lb = Balancer::install(lab, &inst, d).map_err(|e| e.to_string())?;
        log.push(format!(
            "{} dataplane installed: {} service(s)",
            d.name(),
            lab.services.len()
        ));
        if d == Dataplane::Kernel
            && lab
                .services
                .iter()
                .any(|s| matches!(crate::balancer::kernel_fullnat_ruleset(s), Ok(Some(_))))
        {
            log.push(crate::balancer::KERNEL_FULLNAT_NOTE.to_string());
        }
        let mut failed = Vec::new();
        for c in &lab.checks {
            let r = run_check(lab, &inst, c);
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
        let t = lab.traffic.as_ref().ok_or("the lab has no [traffic]")?;
        let svc = &lab.services[0];
        let from = inst
            .ns(&t.from)
            .ok_or("no namespace for the traffic source")?;
        let to = std::net::SocketAddr::new(t.to, t.port);
        let servers_w: Vec<(String, u32)> = svc
            .real_servers
            .iter()
            .map(|r| {
                (
                    r.node.clone().unwrap_or_else(|| r.config.addr.to_string()),
                    r.config.weight,
                )
            })
            .collect();
        let mut phases = vec![(svc.config.scheduler, "as configured")];
        if matches!(svc.config.scheduler, Scheduler::Wrr) {
            phases.push((Scheduler::Rr, "after `ipvsadm -E … -s rr`"));
        }
        // Per-hop captures around the traffic only: the checks above are not in them.
        let capture = crate::packets::TrialCapture::arm(lab, &inst, d)?;
        for (i, (sched, why)) in phases.iter().enumerate() {
            if i > 0 {
                let mut cfg = svc.config.clone();
                cfg.scheduler = *sched;
                lb.with_lb(&svc.director, |b| b.edit_service(&cfg))
                    .ok_or("no balancer for the director")?
                    .map_err(|e| format!("edit service: {e}"))?;
            }
            // Each phase from its own range of source ports, so no request meets an
            // earlier connection's entry and every one is a scheduling decision.
            let got = crate::traffic::http_requests_from_ports(
                from,
                &t.from,
                TRIAL_FIRST_PORT + (i as u16) * 1000,
                to,
                TRIAL_REQUESTS,
                Duration::from_secs(3),
            );
            *checks += 1;
            log.push(format!(
                "traffic {} x {to} from {} ({sched}, {why}): {} ok, {} failed, {:?}",
                TRIAL_REQUESTS, t.from, got.ok, got.failed, got.by_server
            ));
            if got.failed > 0 {
                failed.push(format!(
                    "{} of {} requests failed ({sched}): {}",
                    got.failed,
                    TRIAL_REQUESTS,
                    got.errors.join("; ")
                ));
                continue;
            }
            if let Some(want) = expected_share(*sched, &servers_w, TRIAL_REQUESTS) {
                *checks += 1;
                if want != got.by_server {
                    failed.push(format!(
                        "{sched} should give {want:?}, got {:?}",
                        got.by_server
                    ));
                } else {
                    log.push(format!("distribution matches {sched}: {want:?}"));
                }
            }
        }
        let shares: Vec<_> = phases
            .iter()
            .map(|(sched, _)| expected_share(*sched, &servers_w, TRIAL_REQUESTS))
            .collect();
        let packets = capture.finish(crate::packets::sum_shares(&shares).as_ref(), log);
        *checks += packets.hops_checked as usize;
        failed.extend(packets.errors.iter().cloned());
        failed.extend(
            packets
                .findings
                .iter()
                .map(|f| format!("{} at {}: {}", f.rule, f.point, f.message)),
        );
        // Each passing TCP check through the service made one connection too.
        let check_conns = lab
            .checks
            .iter()
            .filter(|c| {
                c.needs_balancer
                    && c.expect_ok
                    && matches!(c.kind, lvslab_spec::model::CheckKind::Tcp { .. })
            })
            .count() as u64;
        let want_conns = TRIAL_REQUESTS * phases.len() as u64 + check_conns;
        // The `conns` counter must equal what was made. Kernel IPVS folds its per-CPU `conns` counters into what it reports only when
        // its rate estimator runs (every 2 s), so that figure may lag: wait for it.
        let deadline = Instant::now() + Duration::from_secs(8);
        let (in_table, conns) = loop {
            let listed = lb
                .with_lb(&svc.director, |b| b.list())
                .ok_or("no balancer")?
                .map_err(|e| format!("list: {e}"))?;
            let conns: u64 = listed.iter().map(|s| s.stats.conns).sum();
            let in_table: u64 = listed
                .iter()
                .flat_map(|s| &s.dests)
                .map(|d| u64::from(d.active_conns) + u64::from(d.inactive_conns))
                .sum();
            if conns >= want_conns || Instant::now() > deadline {
                break (in_table, conns);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        *checks += 1;
        if conns != want_conns {
            failed.push(format!(
                "the balancer counted {conns} connections, {want_conns} were made"
            ));
        } else {
            // Informational: an entry whose close the director saw only in part sits in
            // CLOSE for 10 s, which a slow (emulated) machine can outlast.
            log.push(format!(
                "balancer counted {conns} connections; {in_table} of them still in its table"
            ));
        }
        if in_table > want_conns {
            failed.push(format!(
                "the balancer holds {in_table} connections, only {want_conns} were made"
            ));
        }
        drop(lb);
        drop(servers);
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "dataplane trial failed:\n  {}",
                failed.join("\n  ")
            ))
        }
    })();
    // Read the nodes' state while the lab still stands, and name the likely cause.
    let result = result.map_err(|e| crate::diagnose::explain_failure(lab, &inst, d, None, e));
    let errors = inst.teardown();
    if !errors.is_empty() {
        return Err(format!("teardown: {}", errors.join("; ")));
    }
    result
}
