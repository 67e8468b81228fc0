//! The plan-replay trial: the lab built by `lvslab plan | bash` and by netlink must give
//! the same state in every namespace.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use lvslab_netns::apply::{build, Naming};
use lvslab_netns::plan::{render_shell, render_shell_down, Plan};
use lvslab_netns::{snapshot, Netns, NsSnapshot};

use crate::outcome::{Check, Failure, TrialOutcome};

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

pub(super) fn run(p: &Plan, out: &mut TrialOutcome) {
    if let Err(e) = compare(p, out) {
        out.fail(Failure::new(Check::Replay, e));
    }
}

fn compare(p: &Plan, out: &mut TrialOutcome) -> Result<(), String> {
    // 1. The shell replay, in named namespaces (the run's tag keeps their names apart
    //    from every other run's).
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
    out.log.push(format!(
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
    super::teardown(inst, out);
    let ours = ours?;
    let mut diffs = Vec::new();
    for ((name, a), (_, b)) in shell_state.iter().zip(&ours) {
        out.checks += 1;
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
    out.log.push(format!(
        "{} namespaces identical: links, MACs, addresses, routes, rules, sysctls, nft",
        ours.len()
    ));
    Ok(())
}
