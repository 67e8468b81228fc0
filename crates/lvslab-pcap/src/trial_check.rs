//! A trial's capture checked as a whole, the one path trials take: the flows of the
//! service's protocol, correlated hop by hop; connections opened before the capture set
//! aside; the director's ICMP redirects reported and removed from the flows they quote;
//! then the forwarding-mode rules, the scheduler's share and the lab's expectations.

use std::collections::BTreeMap;

use lvslab_spec::expect::Expectations;

use crate::decode::{decode_capture, L4Summary, TcpFlags};
use crate::expect_check::CheckExpectations;
use crate::rules::{self, check_distribution, FieldDiff, Finding, Roles};
use crate::{correlate, Analysis, Capture, CorrelateOptions, Flow};

/// What [`check_trial`] found.
#[derive(Debug, Clone)]
pub struct TrialCheck {
    /// Decoded frames, flows and the mode rules' outcome.
    pub analysis: Analysis,
    /// Mode-rule findings, then the distribution's, then the expectations'.
    pub findings: Vec<Finding>,
    /// Hops compared by the rules and the expectations.
    pub hops_checked: usize,
    /// TCP flows already under way when the capture was armed (their first sighting is
    /// not a SYN): stragglers of the trial's checks, not checked.
    pub unchecked: usize,
    /// Flows of other protocols than the service's (IGMP, ICMP echo…), not checked.
    pub other_protocols: usize,
}

/// ICMP type of a redirect.
const ICMP_REDIRECT: u8 = 5;

/// Removes the ICMP redirects the director sent from the flows they quote (they are not
/// packets of the flow, and the mode rules would read them as requests that never left
/// the director) and reports each as an `icmp.redirect` finding: a real server that obeys
/// one sends its replies past the director, which breaks NAT and FullNAT.
fn take_redirects(flows: &mut [Flow], roles: &Roles) -> Vec<Finding> {
    let mut out = Vec::new();
    let director = roles.director.node.as_str();
    for flow in flows.iter_mut() {
        let mut reported: Vec<usize> = Vec::new();
        for h in &flow.hops {
            let Some(L4Summary::Icmp(i)) = &h.summary.l4 else {
                continue;
            };
            if i.icmp_type != ICMP_REDIRECT || reported.contains(&h.packet) {
                continue;
            }
            let Some(ip) = h.summary.inner() else {
                continue;
            };
            reported.push(h.packet);
            let from_director = h.point.split(':').next() == Some(director);
            out.push(Finding {
                rule: "icmp.redirect".into(),
                point: h.point.clone(),
                frames: vec![h.frame],
                flow: Some(flow.id),
                packet: Some(h.packet + 1),
                message: format!(
                    "{} sent an ICMP redirect to {}{}",
                    ip.src,
                    ip.dst,
                    if from_director {
                        " (the director's send_redirects is on: a real server that obeys it \
                         bypasses the director)"
                    } else {
                        ""
                    }
                ),
                diffs: vec![FieldDiff {
                    path: "icmp.type".into(),
                    expected: "no redirect".into(),
                    expected_label: None,
                    actual: format!("{} code {}", i.icmp_type, i.code),
                }],
            });
        }
        if !reported.is_empty() {
            flow.hops.retain(|h| !reported.contains(&h.packet));
        }
    }
    out
}

/// Whether a flow's first sighting is a TCP segment other than a SYN: the connection was
/// opened before the capture started, so its opening (and its ISN, which correlation
/// needs) is missing.
fn began_before_capture(flow: &Flow) -> bool {
    flow.hops.first().is_some_and(
        |h| matches!(&h.summary.l4, Some(L4Summary::Tcp(t)) if !t.flags.has(TcpFlags::SYN)),
    )
}

/// Checks one trial capture: the mode rules of `roles`, the scheduler's share
/// (`expected`) and the lab's expectations.
pub fn check_trial(
    capture: &Capture,
    points: &[String],
    roles: &Roles,
    expect: Option<&Expectations>,
    expected: Option<&BTreeMap<String, u64>>,
) -> TrialCheck {
    let opts = CorrelateOptions {
        point_order: points.to_vec(),
        ..CorrelateOptions::default()
    };
    let summaries: Vec<_> = decode_capture(capture);
    // Only flows of the service's protocol: multicast reports and the like cross the
    // director too, and the mode rules would read them as requests it dropped.
    let (flows, other): (Vec<Flow>, Vec<Flow>) =
        correlate(&summaries, &opts).into_iter().partition(|f| {
            f.hops
                .first()
                .and_then(|h| h.summary.inner())
                .is_some_and(|ip| ip.proto == roles.proto)
        });
    let (mut flows, before): (Vec<Flow>, Vec<Flow>) =
        flows.into_iter().partition(|f| !began_before_capture(f));
    let redirects = take_redirects(&mut flows, roles);
    let outcome = rules::check(&flows, roles);
    let analysis = Analysis {
        summaries,
        flows,
        outcome,
    };
    let mut findings = redirects;
    findings.extend(analysis.outcome.findings.iter().cloned());
    let mut hops_checked = analysis.outcome.hops_checked;
    if let Some(want) = expected {
        findings.extend(check_distribution(&analysis.outcome, want, roles));
    }
    if let Some(e) = expect {
        let (n, f) = CheckExpectations::check(e, &analysis);
        hops_checked += n;
        findings.extend(f);
    }
    TrialCheck {
        analysis,
        findings,
        hops_checked,
        unchecked: before.len(),
        other_protocols: other.len(),
    }
}
