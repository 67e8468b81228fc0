//! up, down, status, exec, shell: named lab instances that outlive the command.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use lvslab_netns::apply::{build, preflight, required_features, Naming};
use lvslab_netns::journal::{orphan_namespaces, Journal, NETNS_DIR};
use lvslab_netns::plan::{netns_name, plan as make_plan, DecapImpl, PlanOptions};
use lvslab_netns::Netns;

use super::{check_instance_name, load, require_root};
use crate::cmd::lab::decap_for;
use crate::DataplaneArg;

/// How long `up` waits for the instance's background process to report ready.
const DAEMON_READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Name of the file the daemon writes once its servers listen.
pub const READY_FILE: &str = "ready";

pub fn dataplane_name(d: DataplaneArg) -> &'static str {
    match d {
        DataplaneArg::Kernel => "kernel",
        DataplaneArg::Userspace => "userspace",
    }
}

pub fn up(
    labs: &Path,
    lab: &str,
    instance: Option<&str>,
    params: &[String],
    dataplane: Option<DataplaneArg>,
) -> anyhow::Result<ExitCode> {
    let (l, params) = match load(labs, lab, params) {
        Ok(x) => x,
        Err(f) => return f.report(),
    };
    require_root("lvslab up")?;
    let instance = instance.unwrap_or(&l.name).to_string();
    check_instance_name(&instance)?;
    // Probe only what this lab can need (and IPVS, which picks the default dataplane).
    let candidates = [
        make_plan(
            &l,
            &PlanOptions {
                instance: instance.clone(),
                decap: DecapImpl::Kernel,
                run: None,
            },
        )?,
        make_plan(
            &l,
            &PlanOptions {
                instance: instance.clone(),
                decap: DecapImpl::Userspace,
                run: None,
            },
        )?,
    ];
    let mut wanted: Vec<&str> = candidates
        .iter()
        .flat_map(|p| required_features(p).into_iter().map(|(n, _)| n))
        .collect();
    wanted.push("ipvs");
    let features = lvslab_netns::probe::probe_some(&wanted);
    let kernel_ipvs = features.iter().any(|f| f.name == "ipvs" && f.available);
    let dataplane = dataplane.unwrap_or(if kernel_ipvs {
        DataplaneArg::Kernel
    } else {
        DataplaneArg::Userspace
    });
    if dataplane == DataplaneArg::Kernel && !kernel_ipvs {
        bail!("--dataplane kernel needs IPVS in the running kernel, and this one has none (see `lvslab doctor`): use `--dataplane userspace`, or run inside the VM: `lvslab vm run -- lvslab up {lab} --dataplane kernel`");
    }
    let p = make_plan(
        &l,
        &PlanOptions {
            instance: instance.clone(),
            decap: decap_for(dataplane),
            run: None,
        },
    )?;
    preflight(&p, &features)?;

    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || cancel.store(true, Ordering::Relaxed))
            .context("install the Ctrl-C handler")?;
    }
    let lab_file = std::fs::canonicalize(&l.source).unwrap_or_else(|_| l.source.clone());
    let journal = Journal::create(
        &instance,
        &l.name,
        &lab_file,
        &params,
        dataplane_name(dataplane),
    )?;
    let started = Instant::now();
    let mut built = build(&p, Naming::Named(Box::new(journal)), &cancel)?;
    if dataplane == DataplaneArg::Kernel {
        // Kernel IPVS state lives in the director's namespace and outlives this command.
        if let Err(e) = crate::cmd::ipvsadm::install_kernel(&l, &built) {
            return Err(abandon(built, e));
        }
    }

    // The servers (and, with the userspace dataplane, the director engine) run in a
    // background process of their own that outlives this command.
    let spawned = {
        let j = built.journal_mut().context("named lab without a journal")?;
        let dir = j.dir().to_path_buf();
        let pid = spawn_daemon(&instance, &dir)?;
        j.record_process(pid, "lvslab daemon")?;
        wait_ready(&dir, pid)
    };
    if let Err(e) = spawned {
        return Err(abandon(built, e));
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(abandon(built, "interrupted; the lab was removed"));
    }
    let _journal = built.detach();
    println!(
        "lab `{}` is up as instance `{instance}` ({} dataplane, {} namespaces, {:.0?})",
        l.name,
        dataplane_name(dataplane),
        p.namespaces.len(),
        started.elapsed()
    );
    for n in &l.nodes {
        let addrs: Vec<String> = n
            .interfaces
            .iter()
            .flat_map(|(i, ps)| ps.iter().map(move |p| format!("{i} {p}")))
            .collect();
        println!("  {:10} {}", n.name, addrs.join(", "));
    }
    println!(
        "try:  lvslab exec {instance} {} -- ip addr",
        l.nodes.first().map_or("client", |n| n.name.as_str())
    );
    println!("stop: lvslab down {instance}");
    Ok(ExitCode::SUCCESS)
}

/// Removes a half-started instance and says why it was given up, with any teardown
/// problems.
fn abandon(built: lvslab_netns::apply::LabInstance, e: impl std::fmt::Display) -> anyhow::Error {
    let errors = built.teardown();
    if errors.is_empty() {
        anyhow::anyhow!("{e:#}")
    } else {
        anyhow::anyhow!("{e:#}\nteardown: {}", errors.join("; "))
    }
}

fn spawn_daemon(instance: &str, dir: &Path) -> anyhow::Result<i32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("find the lvslab binary")?;
    let log = std::fs::File::create(dir.join("daemon.log")).context("create daemon.log")?;
    let child = Command::new(exe)
        .arg("daemon")
        .arg(instance)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C at the terminal after `up` must not stop it.
        .process_group(0)
        .spawn()
        .context("start the instance's background process")?;
    Ok(child.id() as i32)
}

fn wait_ready(dir: &Path, pid: i32) -> anyhow::Result<()> {
    let deadline = Instant::now() + DAEMON_READY_TIMEOUT;
    while Instant::now() < deadline {
        if dir.join(READY_FILE).exists() {
            return Ok(());
        }
        let status = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        if let Ok(s) = status {
            if s != nix::sys::wait::WaitStatus::StillAlive {
                let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
                bail!("the instance's background process exited ({s:?}):\n{log}");
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("the instance's background process did not get ready within {DAEMON_READY_TIMEOUT:?}; see {}", dir.join("daemon.log").display())
}

pub fn down(instance: Option<&str>, all: bool) -> anyhow::Result<ExitCode> {
    require_root("lvslab down")?;
    let mut errors = Vec::new();
    let mut removed = Vec::new();
    if all {
        let journals = Journal::list()?;
        let orphans = orphan_namespaces(&journals);
        for j in journals {
            let name = j.state.instance.clone();
            let e = j.teardown();
            if e.is_empty() {
                removed.push(name);
            }
            errors.extend(e);
        }
        for o in orphans {
            match Netns::remove_named(&o) {
                Ok(()) => removed.push(o.display().to_string()),
                Err(e) => errors.push(format!("remove {}: {e}", o.display())),
            }
        }
    } else {
        let inst = instance.context("name an instance, or use --all")?;
        check_instance_name(inst)?;
        let prefix = format!("{}-", netns_name(inst, ""));
        let prefix = prefix.trim_end_matches('-').to_string() + "-";
        match Journal::open(inst) {
            Ok(j) => {
                errors.extend(j.teardown());
                removed.push(inst.to_string());
            }
            Err(lvslab_netns::journal::JournalError::NotFound { .. }) => {
                // No journal: remove namespaces that still carry the instance's prefix.
                let leftovers = orphan_namespaces(&[])
                    .into_iter()
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(&prefix))
                    })
                    .collect::<Vec<PathBuf>>();
                if leftovers.is_empty() {
                    bail!("no instance `{inst}` is up (`lvslab status` lists the running ones)");
                }
                for o in leftovers {
                    match Netns::remove_named(&o) {
                        Ok(()) => removed.push(o.display().to_string()),
                        Err(e) => errors.push(format!("remove {}: {e}", o.display())),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    for r in &removed {
        println!("removed {r}");
    }
    if errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("teardown problems:\n  {}", errors.join("\n  "))
    }
}

#[derive(serde::Serialize)]
struct StatusNs {
    node: String,
    path: PathBuf,
    present: bool,
}

#[derive(serde::Serialize)]
struct StatusProc {
    pid: i32,
    what: String,
    running: bool,
}

#[derive(serde::Serialize)]
struct StatusInstance {
    instance: String,
    lab: String,
    lab_file: PathBuf,
    params: Vec<(String, String)>,
    dataplane: String,
    complete: bool,
    created_unix: u64,
    namespaces: Vec<StatusNs>,
    processes: Vec<StatusProc>,
}

pub fn status(json: bool) -> anyhow::Result<ExitCode> {
    let journals = Journal::list()?;
    let orphans = orphan_namespaces(&journals);
    let list: Vec<StatusInstance> = journals
        .into_iter()
        .map(|j| {
            let s = j.state;
            StatusInstance {
                namespaces: s
                    .namespaces
                    .iter()
                    .map(|n| StatusNs {
                        node: n.node.clone(),
                        path: n.path.clone(),
                        present: n.path.exists(),
                    })
                    .collect(),
                processes: s
                    .processes
                    .iter()
                    .map(|p| StatusProc {
                        pid: p.pid,
                        what: p.what.clone(),
                        running: lvslab_netns::journal::process_start_time(p.pid)
                            .is_some_and(|t| t == p.start_time),
                    })
                    .collect(),
                instance: s.instance,
                lab: s.lab,
                lab_file: s.lab_file,
                params: s.params,
                dataplane: s.dataplane,
                complete: s.complete,
                created_unix: s.created_unix,
            }
        })
        .collect();
    if json {
        let v = serde_json::json!({ "instances": list, "orphan_namespaces": orphans });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() && orphans.is_empty() {
        println!("no lab instances are up");
    }
    for i in &list {
        let present = i.namespaces.iter().filter(|n| n.present).count();
        let running = i.processes.iter().filter(|p| p.running).count();
        let state = if i.complete {
            "up"
        } else {
            "INTERRUPTED (run `lvslab down` to clean up)"
        };
        println!(
            "{:12} lab {:8} {:9} {state}: {present}/{} namespaces, {running}/{} processes",
            i.instance,
            i.lab,
            i.dataplane,
            i.namespaces.len(),
            i.processes.len()
        );
    }
    for o in &orphans {
        println!(
            "orphan namespace {} (remove with `lvslab down --all`)",
            o.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn open_node(instance: &str, node: &str) -> anyhow::Result<Netns> {
    check_instance_name(instance)?;
    let path = PathBuf::from(NETNS_DIR).join(netns_name(instance, node));
    if !path.exists() {
        let j = Journal::open(instance)?;
        let nodes: Vec<&str> = j.state.namespaces.iter().map(|n| n.node.as_str()).collect();
        bail!(
            "instance `{instance}` has no node `{node}`; nodes: {}",
            nodes.join(", ")
        );
    }
    Ok(Netns::open(&path)?)
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(c.clamp(0, 255) as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
        _ => ExitCode::FAILURE,
    }
}

pub fn exec(instance: &str, node: &str, command: &[String]) -> anyhow::Result<ExitCode> {
    require_root("lvslab exec")?;
    let ns = open_node(instance, node)?;
    let (prog, args) = command.split_first().context("no command given")?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env("LVSLAB_INSTANCE", instance)
        .env("LVSLAB_NODE", node);
    let mut child = ns.spawn(&mut cmd)?;
    let status = child.wait().with_context(|| format!("wait for {prog}"))?;
    Ok(exit_code(status))
}

pub fn shell(instance: &str, node: &str) -> anyhow::Result<ExitCode> {
    require_root("lvslab shell")?;
    let ns = open_node(instance, node)?;
    let sh = std::env::var("SHELL").unwrap_or_else(|_| "/bin/bash".into());
    let mut cmd = Command::new(&sh);
    cmd.env("LVSLAB_INSTANCE", instance)
        .env("LVSLAB_NODE", node)
        .env("PS1", format!("({instance}:{node}) \\w# "));
    if sh.ends_with("bash") {
        cmd.arg("--norc");
    }
    let mut child = ns.spawn(&mut cmd)?;
    let status = child.wait().context("wait for the shell")?;
    Ok(exit_code(status))
}
