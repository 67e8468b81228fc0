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
use crate::HarnessError;

fn bash(script: &str) -> Result<(), HarnessError> {
    use std::io::Write;
    let failed = |detail: String| HarnessError::Command {
        program: "bash".into(),
        detail,
    };
    let mut child = Command::new("bash")
        .arg("-s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Snapshots every namespace of the plan; the first one that cannot be read is recorded as
/// a failure and ends the comparison.
fn snapshot_all(
    p: &Plan,
    open: impl Fn(&str) -> Option<Netns>,
    out: &mut TrialOutcome,
) -> Option<Vec<(String, NsSnapshot)>> {
    let mut all = Vec::new();
    for n in &p.namespaces {
        let Some(ns) = open(&n.name) else {
            out.fail(Failure::new(
                Check::Replay,
                format!("no namespace for {}", n.name),
            ));
            return None;
        };
        match snapshot(&ns) {
            Ok(s) => all.push((n.name.clone(), s)),
            Err(e) => {
                out.fail(Failure::new(
                    Check::Replay,
                    format!("snapshot {}: {e}", n.name),
                ));
                return None;
            }
        }
    }
    Some(all)
}

pub(super) fn run(p: &Plan, out: &mut TrialOutcome) {
    // 1. The shell replay, in named namespaces (the run's tag keeps their names apart
    //    from every other run's).
    let t = Instant::now();
    let built = bash(&render_shell(p));
    let shell_state = match &built {
        Ok(()) => snapshot_all(
            p,
            |n| {
                Netns::open(&PathBuf::from(lvslab_netns::journal::NETNS_DIR).join(p.netns_name(n)))
                    .ok()
            },
            out,
        ),
        Err(_) => None,
    };
    let cleanup = bash(&render_shell_down(p));
    for e in [built.err(), cleanup.err()].into_iter().flatten() {
        out.fail(Failure::new(Check::Replay, e.to_string()));
    }
    let Some(shell_state) = shell_state else {
        return;
    };
    out.log.push(format!(
        "`lvslab plan | bash` built and removed in {:.0?}",
        t.elapsed()
    ));
    // 2. The same plan over netlink.
    let cancel = AtomicBool::new(false);
    let inst = match build(p, Naming::Anonymous, &cancel) {
        Ok(i) => i,
        Err(e) => return out.fail(Failure::new(Check::Setup, e.to_string())),
    };
    let ours = snapshot_all(p, |n| inst.ns(n).and_then(|ns| ns.try_clone().ok()), out);
    super::teardown(inst, out);
    let Some(ours) = ours else {
        return;
    };
    let mut diffs = Vec::new();
    for ((name, a), (_, b)) in shell_state.iter().zip(&ours) {
        out.checks += 1;
        for d in a.diff(b) {
            diffs.push(format!("{name}: {d}"));
        }
    }
    if diffs.is_empty() {
        out.log.push(format!(
            "{} namespaces identical: links, MACs, addresses, routes, rules, sysctls, nft",
            ours.len()
        ));
    } else {
        out.fail(Failure::new(
            Check::Replay,
            format!(
                "netlink build differs from the shell replay (- shell, + netlink):\n  {}",
                diffs.join("\n  ")
            ),
        ));
    }
}
