//! The topology trial: build the lab, compare the kernel's state with the model, run the
//! lab's own checks that need no load balancer, tear down.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use lvslab_netns::apply::{build, LabInstance, Naming};
use lvslab_netns::plan::Plan;
use lvslab_netns::traffic::start_lab_servers;
use lvslab_spec::model::Lab;

use crate::checks::run_check;
use crate::outcome::{Check, Failure, TrialOutcome};
use crate::verify::verify_state;

pub(super) fn run(lab: &Lab, p: &Plan, out: &mut TrialOutcome) {
    let cancel = AtomicBool::new(false);
    let t = Instant::now();
    let inst = match build(p, Naming::Anonymous, &cancel) {
        Ok(i) => i,
        Err(e) => return out.fail(Failure::new(Check::Setup, e.to_string())),
    };
    out.log.push(format!("built in {:.0?}", t.elapsed()));
    check_built(lab, &inst, out);
    super::teardown(inst, out);
}

/// Reads the built lab back against its plan, then runs the checks that need no balancer.
fn check_built(lab: &Lab, inst: &LabInstance, out: &mut TrialOutcome) {
    let mismatches = verify_state(inst);
    out.checks += inst.plan.steps.len() as u64;
    if !mismatches.is_empty() {
        for m in mismatches {
            out.fail(Failure::new(Check::State, m));
        }
        return;
    }
    out.log.push(format!(
        "kernel state matches the model ({} steps read back)",
        inst.plan.steps.len()
    ));
    let servers = match start_lab_servers(lab, inst) {
        Ok(s) => s,
        Err(e) => return out.fail(Failure::new(Check::Setup, e.to_string())),
    };
    for c in lab.checks.iter().filter(|c| !c.needs_balancer) {
        record_check(lab, inst, c, out);
    }
    drop(servers);
}

/// Runs one of the lab's checks and records it.
pub(super) fn record_check(
    lab: &Lab,
    inst: &LabInstance,
    c: &lvslab_spec::model::Check,
    out: &mut TrialOutcome,
) {
    let r = run_check(lab, inst, c);
    out.checks += 1;
    out.log.push(format!(
        "check {}: {} ({})",
        r.what,
        if r.ok { "ok" } else { "FAILED" },
        r.detail
    ));
    if !r.ok {
        out.fail(
            Failure::new(Check::LabCheck, format!("{}: {}", r.what, r.detail))
                .at(c.from.clone())
                .expected_seen(
                    if c.expect_ok { "success" } else { "failure" },
                    r.detail.clone(),
                ),
        );
    }
}
