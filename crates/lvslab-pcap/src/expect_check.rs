//! A lab's expectations (`expect.toml`, parsed and resolved by lvslab-spec) against the
//! decoded captures of a trial: every sighting of a flow to the service at a point a
//! `[[hop]]` names must carry the fields it expects.

use lvslab_spec::expect::{point_matches, Expectations, HopExpectation};

use crate::correlate::Direction;
use crate::ladder;
use crate::rules::{FieldDiff, Finding};
use crate::Analysis;

/// Findings one expectation reports before it only counts the rest.
pub const MAX_FINDINGS_PER_EXPECTATION: usize = 5;

/// Checking expectations against an [`Analysis`].
pub trait CheckExpectations {
    /// Checks every sighting of every flow to the service against the expectations:
    /// returns the hops compared and the findings (rule `expect.hop`, or `expect.seen`
    /// when an expectation matched no sighting at all).
    fn check(&self, analysis: &Analysis) -> (usize, Vec<Finding>);
}

impl CheckExpectations for Expectations {
    fn check(&self, analysis: &Analysis) -> (usize, Vec<Finding>) {
        let mut checked = 0;
        let mut findings = Vec::new();
        for e in &self.hops {
            let (seen, f) = check_hop(self, e, analysis);
            checked += seen;
            findings.extend(f);
        }
        (checked, findings)
    }
}

/// One expectation: the sightings it matched and its findings.
fn check_hop(
    file: &Expectations,
    e: &HopExpectation,
    analysis: &Analysis,
) -> (usize, Vec<Finding>) {
    let service: Vec<usize> = analysis.outcome.assignments.keys().copied().collect();
    let mut findings = Vec::new();
    let mut seen = 0;
    let mut failed = 0;
    for flow in analysis.flows.iter().filter(|f| service.contains(&f.id)) {
        for h in &flow.hops {
            if !point_matches(&e.point, &h.point) || e.direction.is_some_and(|d| d != h.direction) {
                continue;
            }
            seen += 1;
            let have = ladder::fields(&h.summary);
            let node = h.point.split(':').next().unwrap_or(&h.point);
            let mut diffs = Vec::new();
            for f in &e.fields {
                let actual = have
                    .iter()
                    .find(|(k, _)| k == f.path())
                    .map_or_else(|| "absent".to_string(), |(_, v)| v.clone());
                let allowed = f.allowed_at(node);
                if !allowed.contains(&actual) {
                    diffs.push(FieldDiff {
                        path: f.path().to_string(),
                        expected: allowed.join(" or "),
                        expected_label: Some(f.label.clone()),
                        actual,
                    });
                }
            }
            if diffs.is_empty() {
                continue;
            }
            failed += 1;
            if failed <= MAX_FINDINGS_PER_EXPECTATION {
                findings.push(Finding {
                    rule: "expect.hop".into(),
                    point: h.point.clone(),
                    frames: vec![h.frame],
                    flow: Some(flow.id),
                    packet: Some(h.packet + 1),
                    message: describe(file, e),
                    diffs,
                });
            }
        }
    }
    if failed > MAX_FINDINGS_PER_EXPECTATION {
        findings.push(Finding {
            rule: "expect.hop".into(),
            point: e.point.clone(),
            frames: Vec::new(),
            flow: None,
            packet: None,
            message: format!(
                "{}: {} more sightings differ",
                describe(file, e),
                failed - MAX_FINDINGS_PER_EXPECTATION
            ),
            diffs: Vec::new(),
        });
    }
    if seen == 0 {
        findings.push(Finding {
            rule: "expect.seen".into(),
            point: e.point.clone(),
            frames: Vec::new(),
            flow: None,
            packet: None,
            message: format!(
                "{}: no flow to the service was seen there",
                describe(file, e)
            ),
            diffs: vec![FieldDiff {
                path: "sightings".into(),
                expected: "at least 1".into(),
                expected_label: None,
                actual: "0".into(),
            }],
        });
    }
    (seen, findings)
}

/// `expect.toml:5: requests at rs*:eth0 must have ipv4.src = isp:eth1 (why)`.
fn describe(file: &Expectations, e: &HopExpectation) -> String {
    let dir = match e.direction {
        Some(Direction::Request) => "requests",
        Some(Direction::Reply) => "replies",
        None => "packets",
    };
    let mut s = format!(
        "{}:{}: {dir} at {} must have {}",
        file.file.display(),
        e.line,
        e.point,
        e.fields
            .iter()
            .map(|f| format!("{} = {}", f.path(), f.label))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(n) = &e.note {
        s.push_str(&format!(" ({n})"));
    }
    s
}
