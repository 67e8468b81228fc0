//! up, down, status, exec, shell: argument handling and printing; the lifecycle itself is
//! `lvslab_instance`'s.

use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use lvslab_instance::{Instance, InstanceState, UpOptions};
use lvslab_netns::journal::Teardown;
use lvslab_spec::Dataplane;

use super::{load, require_root};

pub fn up(
    labs: &std::path::Path,
    lab: &str,
    instance: Option<&str>,
    params: &[String],
    dataplane: Option<Dataplane>,
) -> anyhow::Result<ExitCode> {
    let (l, params) = match load(labs, lab, params) {
        Ok(x) => x,
        Err(f) => return f.report(),
    };
    require_root("lvslab up")?;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || cancel.store(true, Ordering::Relaxed))
            .context("install the Ctrl-C handler")?;
    }
    let exe = std::env::current_exe().context("find the lvslab binary")?;
    let r = lvslab_instance::up(&UpOptions {
        lab: &l,
        params: &params,
        instance,
        dataplane,
        daemon_program: &exe,
        cancel: &cancel,
    })?;
    println!(
        "lab `{}` is up as instance `{}` ({} dataplane, {} namespaces, {:.0?})",
        r.lab, r.instance, r.dataplane, r.namespaces, r.elapsed
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
        "try:  lvslab exec {} {} -- ip addr",
        r.instance,
        l.nodes.first().map_or("client", |n| n.name.as_str())
    );
    println!("stop: lvslab down {}", r.instance);
    Ok(ExitCode::SUCCESS)
}

/// Prints what a teardown did; false when something failed.
fn print_teardown(instance: &str, t: &Teardown) -> bool {
    for r in &t.removed {
        println!("removed {r}");
    }
    for l in &t.left {
        println!("left {l}");
    }
    for e in &t.errors {
        eprintln!("lvslab: {instance}: {e}");
    }
    if t.ok() {
        println!("instance `{instance}` is down");
    }
    t.ok()
}

pub fn down(instance: Option<&str>, all: bool) -> anyhow::Result<ExitCode> {
    require_root("lvslab down")?;
    if !all {
        let inst = instance.context("name an instance, or use --all")?;
        let r = lvslab_instance::down(inst)?;
        return Ok(if print_teardown(&r.instance, &r.teardown) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let r = lvslab_instance::down_all()?;
    let mut ok = true;
    for d in &r.done {
        ok &= print_teardown(&d.instance, &d.teardown);
    }
    for s in &r.staging_removed {
        println!(
            "removed {} (an `up` that died before its journal was whole)",
            s.display()
        );
    }
    for (i, why) in &r.skipped {
        println!("skipped `{i}`: {why}");
    }
    for (i, why) in &r.problems {
        println!("skipped `{i}`: {why}");
    }
    for o in &r.orphans {
        println!(
            "not removed: {} (no journal proves lvslab made it; if it is yours: ip netns del {})",
            o.display(),
            o.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
    }
    if r.done.is_empty() && r.skipped.is_empty() && r.problems.is_empty() {
        println!("no lab instances to remove");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn status(json: bool) -> anyhow::Result<ExitCode> {
    let report = lvslab_instance::status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    if report.instances.is_empty()
        && report.problems.is_empty()
        && report.orphan_namespaces.is_empty()
    {
        println!("no lab instances are up");
    }
    for i in &report.instances {
        let present = i.namespaces.iter().filter(|n| n.present).count();
        let running = i.processes.iter().filter(|p| p.running).count();
        let state = match i.state {
            InstanceState::Up => "up",
            InstanceState::Starting => "starting",
            InstanceState::Interrupted => "INTERRUPTED",
            InstanceState::Degraded => "DEGRADED",
        };
        println!(
            "{:12} lab {:8} {:9} {state}: {present}/{} namespaces, {running}/{} processes",
            i.instance,
            i.lab,
            i.dataplane,
            i.namespaces.len(),
            i.processes.len()
        );
        if let Some(h) = &i.hint {
            println!("             {h}");
        }
    }
    for p in &report.problems {
        println!("{:12} UNREADABLE: {}", p.instance, p.error);
    }
    for o in &report.orphan_namespaces {
        println!(
            "orphan namespace {} (no journal: not lvslab's to remove; if it is yours: ip netns del {})",
            o.display(),
            o.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
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
    let ns = Instance::open(instance)?.node(node)?;
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
    let ns = Instance::open(instance)?.node(node)?;
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
