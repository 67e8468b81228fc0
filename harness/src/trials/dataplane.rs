//! The dataplane trial: build the lab, install its service on a dataplane, send the lab's
//! traffic with every hop captured, check the share, the connection count and every hop,
//! and, when something failed, name the likely cause from the nodes' state and what the
//! packets showed, before the lab is torn down.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lvslab_instance::balancer::{kernel_fullnat_ruleset, Balancer, KERNEL_FULLNAT_NOTE};
use lvslab_netns::apply::{build, LabInstance, Naming};
use lvslab_netns::plan::Plan;
use lvslab_netns::traffic::start_lab_servers;
use lvslab_pcap::PacketSummary;
use lvslab_spec::lb::Scheduler;
use lvslab_spec::model::Lab;
use lvslab_spec::Dataplane;

use super::oracle::{expected_share, sum_shares, TRIAL_FIRST_PORT, TRIAL_REQUESTS};
use crate::outcome::{Check, Failure, TrialOutcome};

pub(super) fn run(lab: &Lab, p: &Plan, d: Dataplane, out: &mut TrialOutcome) {
    let cancel = AtomicBool::new(false);
    let inst = match build(p, Naming::Anonymous, &cancel) {
        Ok(i) => i,
        Err(e) => return out.fail(Failure::new(Check::Setup, e.to_string())),
    };
    let packets = exercise(lab, &inst, d, out);
    if !out.failures.is_empty() {
        // Read the nodes' state while the lab still stands, with what the packets showed.
        out.diagnosis = crate::diagnose::diagnose_trial(lab, &inst, d, &packets);
        for dg in &out.diagnosis {
            out.log.push(dg.to_string());
        }
        if out.diagnosis.is_empty() {
            out.log.push(crate::diagnose::render(&[]));
        }
    }
    super::teardown(inst, out);
}

/// Servers, balancer, checks and traffic; returns the decoded captures for diagnosis.
fn exercise(
    lab: &Lab,
    inst: &LabInstance,
    d: Dataplane,
    out: &mut TrialOutcome,
) -> Vec<PacketSummary> {
    let servers = match start_lab_servers(lab, inst) {
        Ok(s) => s,
        Err(e) => {
            out.fail(Failure::new(
                Check::Setup,
                format!("start the lab's servers: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut lb = match Balancer::install(lab, inst, d) {
        Ok(b) => b,
        Err(e) => {
            out.fail(Failure::new(Check::Setup, e.to_string()));
            return Vec::new();
        }
    };
    out.log.push(format!(
        "{} dataplane installed: {} service(s)",
        d.name(),
        lab.services.len()
    ));
    if d == Dataplane::Kernel
        && lab
            .services
            .iter()
            .any(|s| matches!(kernel_fullnat_ruleset(s), Ok(Some(_))))
    {
        out.log.push(KERNEL_FULLNAT_NOTE.to_string());
    }
    for c in &lab.checks {
        super::topology::record_check(lab, inst, c, out);
    }
    let summaries = traffic_phases(lab, inst, &mut lb, d, out);
    count_connections(lab, &mut lb, out);
    drop(lb);
    drop(servers);
    summaries
}

/// The lab's traffic, once per phase (as configured; wrr also after `ipvsadm -E … -s
/// rr`), with every hop captured and checked.
fn traffic_phases(
    lab: &Lab,
    inst: &LabInstance,
    lb: &mut Balancer,
    d: Dataplane,
    out: &mut TrialOutcome,
) -> Vec<PacketSummary> {
    let (Some(t), Some(svc)) = (lab.traffic.as_ref(), lab.services.first()) else {
        out.fail(Failure::new(
            Check::Setup,
            "the lab has no [traffic] or no [[service]]",
        ));
        return Vec::new();
    };
    let Some(from) = inst.ns(&t.from) else {
        out.fail(Failure::new(
            Check::Setup,
            format!("no namespace for the traffic source {}", t.from),
        ));
        return Vec::new();
    };
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
    let capture = match crate::packets::TrialCapture::arm(lab, inst, d) {
        Ok(c) => c,
        Err(e) => {
            out.fail(Failure::new(Check::Capture, e.to_string()));
            return Vec::new();
        }
    };
    for (i, (sched, why)) in phases.iter().enumerate() {
        if i > 0 && out.failures.iter().any(|f| f.check == Check::Traffic) {
            // A service that already lost requests is broken; a second phase would only
            // wait out the same timeouts again.
            out.log.push(format!(
                "phase {sched} ({why}) skipped: requests already failed"
            ));
            break;
        }
        if i > 0 {
            let mut cfg = svc.config.clone();
            cfg.scheduler = *sched;
            match lb.with_lb(&svc.director, |b| b.edit_service(&cfg)) {
                Some(Ok(())) => {}
                Some(Err(e)) => out.fail(Failure::new(Check::Setup, format!("edit service: {e}"))),
                None => out.fail(Failure::new(Check::Setup, "no balancer for the director")),
            }
        }
        // Each phase from its own range of source ports, so no request meets an earlier
        // connection's entry and every one is a scheduling decision.
        let got = crate::traffic::http_requests_from_ports(
            from,
            &t.from,
            TRIAL_FIRST_PORT + (i as u16) * 1000,
            to,
            TRIAL_REQUESTS,
            Duration::from_secs(3),
        );
        out.checks += 1;
        out.log.push(format!(
            "traffic {} x {to} from {} ({sched}, {why}): {} ok, {} failed, {:?}",
            TRIAL_REQUESTS, t.from, got.ok, got.failed, got.by_server
        ));
        if got.failed > 0 {
            out.fail(
                Failure::new(
                    Check::Traffic,
                    format!(
                        "{} of {} requests failed ({sched}): {}",
                        got.failed,
                        TRIAL_REQUESTS,
                        got.errors.join("; ")
                    ),
                )
                .at(t.from.clone())
                .expected_seen(
                    format!("{TRIAL_REQUESTS} answered"),
                    format!("{} answered", got.ok),
                ),
            );
            continue;
        }
        if let Some(want) = expected_share(*sched, &servers_w, TRIAL_REQUESTS) {
            out.checks += 1;
            if want != got.by_server {
                out.fail(
                    Failure::new(Check::Distribution, format!("{sched} gave the wrong share"))
                        .expected_seen(format!("{want:?}"), format!("{:?}", got.by_server)),
                );
            } else {
                out.log
                    .push(format!("distribution matches {sched}: {want:?}"));
            }
        }
    }
    let shares: Vec<Option<BTreeMap<String, u64>>> = phases
        .iter()
        .map(|(sched, _)| expected_share(*sched, &servers_w, TRIAL_REQUESTS))
        .collect();
    let (report, summaries) = capture.finish(sum_shares(&shares).as_ref(), &mut out.log);
    out.checks += report.hops_checked;
    for e in &report.errors {
        out.fail(Failure::new(Check::Capture, e.clone()));
    }
    for f in &report.findings {
        out.fail(Failure::from_finding(f));
    }
    out.packets = Some(report);
    summaries
}

/// The balancer's `conns` counter must equal the connections made: one per request per
/// phase, plus one per passing TCP check through the service.
fn count_connections(lab: &Lab, lb: &mut Balancer, out: &mut TrialOutcome) {
    let Some(svc) = lab.services.first() else {
        return;
    };
    let phases = if matches!(svc.config.scheduler, Scheduler::Wrr) {
        2
    } else {
        1
    };
    let check_conns = lab
        .checks
        .iter()
        .filter(|c| {
            c.needs_balancer
                && c.expect_ok
                && matches!(c.kind, lvslab_spec::model::CheckKind::Tcp { .. })
        })
        .count() as u64;
    let want = TRIAL_REQUESTS * phases + check_conns;
    // Kernel IPVS folds its per-CPU `conns` counters into what it reports only when its
    // rate estimator runs (every 2 s, later on a busy or emulated machine), so that figure
    // may lag: wait for it. The wait ends as soon as the count is reached.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (in_table, conns) = loop {
        let listed = match lb.with_lb(&svc.director, |b| b.list()) {
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                return out.fail(Failure::new(Check::Connections, format!("list: {e}")))
            }
            None => return out.fail(Failure::new(Check::Connections, "no balancer")),
        };
        let conns: u64 = listed.iter().map(|s| s.stats.conns).sum();
        let in_table: u64 = listed
            .iter()
            .flat_map(|s| &s.dests)
            .map(|d| u64::from(d.active_conns) + u64::from(d.inactive_conns))
            .sum();
        if conns >= want || Instant::now() > deadline {
            break (in_table, conns);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    out.checks += 1;
    if conns != want {
        out.fail(
            Failure::new(
                Check::Connections,
                "the balancer's connection counter is off",
            )
            .at(svc.director.clone())
            .expected_seen(format!("{want} made"), format!("{conns} counted")),
        );
    } else {
        // Informational: an entry whose close the director saw only in part sits in
        // CLOSE for 10 s, which a slow (emulated) machine can outlast.
        out.log.push(format!(
            "balancer counted {conns} connections; {in_table} of them still in its table"
        ));
    }
    if in_table > want {
        out.fail(
            Failure::new(
                Check::Connections,
                "the balancer holds more connections than were made",
            )
            .at(svc.director.clone())
            .expected_seen(
                format!("at most {want}"),
                format!("{in_table} in its table"),
            ),
        );
    }
}
