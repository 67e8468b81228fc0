//! What a trial found, as one typed value: which check failed, at which hop and field,
//! what was expected and what was seen, what the captures showed and the likely cause.
//! Every report (terminal, JSON, JUnit, HTML) renders this type, and a trial that ran in
//! the VM hands it back to the host as JSON (`outcome.json` in its capture folder).

use std::fmt;
use std::path::Path;

use lvslab_pcap::Finding;
use serde::{Deserialize, Serialize};

use crate::diagnose::Diagnosis;
use crate::error::{io, HarnessError};
use crate::packets::PacketReport;

/// The file a trial writes its outcome to, in its capture folder.
pub const OUTCOME_FILE: &str = "outcome.json";

/// Which kind of check failed: a closed set, so reports and scripts can count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The lab could not be built, or its servers or load balancer could not start.
    Setup,
    /// The kernel's state read back differs from the model.
    State,
    /// One of the lab's own `[[check]]`s.
    LabCheck,
    /// Requests through the service failed.
    Traffic,
    /// The scheduler's share of requests per real server.
    Distribution,
    /// The balancer's connection count against the connections made.
    Connections,
    /// A capture lost frames or could not be written.
    Capture,
    /// A packet at a hop broke a forwarding-mode rule or the lab's expectations.
    Hop,
    /// The host's own namespace changed.
    Host,
    /// `lvslab plan | bash` and the netlink build differ.
    Replay,
    /// Removing the lab failed.
    Teardown,
    /// The VM could not run the trial or hand its outcome back.
    Vm,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Setup => "setup",
            Check::State => "state",
            Check::LabCheck => "lab_check",
            Check::Traffic => "traffic",
            Check::Distribution => "distribution",
            Check::Connections => "connections",
            Check::Capture => "capture",
            Check::Hop => "hop",
            Check::Host => "host",
            Check::Replay => "replay",
            Check::Teardown => "teardown",
            Check::Vm => "vm",
        }
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub check: Check,
    /// The rule broken (`dr.request`, `scheduler.distribution`, …) where one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Where: a capture point `node:iface`, or a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The field that differs (`ipv4.dst`, `eth.dst`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
    /// The whole story in words.
    pub message: String,
}

impl Failure {
    pub fn new(check: Check, message: impl Into<String>) -> Failure {
        Failure {
            check,
            rule: None,
            at: None,
            field: None,
            expected: None,
            seen: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, at: impl Into<String>) -> Failure {
        self.at = Some(at.into());
        self
    }

    pub fn expected_seen(
        mut self,
        expected: impl Into<String>,
        seen: impl Into<String>,
    ) -> Failure {
        self.expected = Some(expected.into());
        self.seen = Some(seen.into());
        self
    }

    /// A packet finding: its rule, capture point and first differing field.
    pub fn from_finding(f: &Finding) -> Failure {
        let check = if f.rule == "scheduler.distribution" {
            Check::Distribution
        } else if f.rule.starts_with("capture.") {
            Check::Capture
        } else {
            Check::Hop
        };
        let first = f.diffs.first();
        Failure {
            check,
            rule: Some(f.rule.clone()),
            at: Some(f.point.clone()),
            field: first.map(|d| d.path.clone()),
            expected: first.map(|d| match &d.expected_label {
                Some(l) => format!("{} ({l})", d.expected),
                None => d.expected.clone(),
            }),
            seen: first.map(|d| d.actual.clone()),
            message: f.to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if self.check != Check::Hop {
            if let (Some(e), Some(s)) = (&self.expected, &self.seen) {
                write!(f, " (expected {e}, seen {s})")?;
            }
        }
        Ok(())
    }
}

/// Whether a trial passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "status")]
pub enum Status {
    Passed,
    Failed,
    /// Not run, with the reason decided when trials were collected.
    Ignored {
        reason: String,
    },
}

/// How the VM ran a kernel trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRun {
    pub kernel: String,
    pub accel: String,
    pub boot_ms: u64,
    pub total_ms: u64,
    pub exit_code: i32,
}

/// Everything one trial found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialOutcome {
    /// `userspace::nat`, `kernel::tun[encap=ipip]`, …
    pub name: String,
    pub lab: String,
    /// `topology`, `plan-replay`, `userspace` or `kernel`.
    pub kind: String,
    pub params: Vec<(String, String)>,
    #[serde(flatten)]
    pub status: Status,
    pub duration_ms: u64,
    /// Checks made: kernel objects read back, lab checks, requests, hops compared.
    pub checks: u64,
    /// What was checked, in order.
    pub log: Vec<String>,
    pub failures: Vec<Failure>,
    /// What the captures showed (dataplane trials).
    pub packets: Option<PacketReport>,
    /// Likely causes, most likely first (failed dataplane trials).
    pub diagnosis: Vec<Diagnosis>,
    /// Set when the trial ran in the VM.
    pub vm: Option<VmRun>,
    /// The trial's log file, once a report wrote it.
    pub log_file: Option<String>,
}

impl TrialOutcome {
    /// An outcome for `name` that has not run yet.
    pub fn new(name: &str, lab: &str, kind: &str, params: &[(String, String)]) -> TrialOutcome {
        TrialOutcome {
            name: name.to_string(),
            lab: lab.to_string(),
            kind: kind.to_string(),
            params: params.to_vec(),
            status: Status::Passed,
            duration_ms: 0,
            checks: 0,
            log: Vec::new(),
            failures: Vec::new(),
            packets: None,
            diagnosis: Vec::new(),
            vm: None,
            log_file: None,
        }
    }

    pub fn passed(&self) -> bool {
        self.status == Status::Passed
    }

    /// Records a failure (and marks the trial failed).
    pub fn fail(&mut self, f: Failure) {
        self.status = Status::Failed;
        self.failures.push(f);
    }

    /// Packet findings, if the trial captured any.
    pub fn findings(&self) -> &[Finding] {
        self.packets.as_ref().map_or(&[], |p| p.findings.as_slice())
    }

    /// Frames captured and hops compared.
    pub fn packet_counts(&self) -> (u64, u64) {
        self.packets
            .as_ref()
            .map_or((0, 0), |p| (p.packets, p.hops_checked))
    }

    /// Everything that went wrong, then the likely causes, as a person reads it.
    pub fn failure_text(&self) -> String {
        let mut parts: Vec<String> = self.failures.iter().map(ToString::to_string).collect();
        parts.extend(self.diagnosis.iter().map(ToString::to_string));
        parts.join("\n")
    }

    /// Reads an outcome a trial wrote (`None` when there is none).
    pub fn read(dir: &Path) -> Option<Result<TrialOutcome, HarnessError>> {
        let path = dir.join(OUTCOME_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(io("read", &path)(e))),
        };
        Some(
            serde_json::from_str(&text).map_err(|source| HarnessError::Json {
                op: "parse",
                path,
                source,
            }),
        )
    }

    /// Writes the outcome into `dir` (what a trial in the VM does for the host).
    pub fn write(&self, dir: &Path) -> Result<(), HarnessError> {
        let path = dir.join(OUTCOME_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|source| HarnessError::Json {
            op: "encode",
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text).map_err(io("write", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvslab_pcap::FieldDiff;

    #[test]
    fn a_finding_becomes_a_hop_failure_with_its_first_field() {
        let f = Finding {
            rule: "dr.request".into(),
            point: "director:eth0".into(),
            frames: vec![3, 4],
            flow: Some(1),
            packet: Some(1),
            message: "the director must rewrite only the MACs".into(),
            diffs: vec![FieldDiff {
                path: "ipv4.dst".into(),
                expected: "192.168.80.66".into(),
                expected_label: Some("unchanged".into()),
                actual: "192.168.80.11".into(),
            }],
        };
        let fail = Failure::from_finding(&f);
        assert_eq!(fail.check, Check::Hop);
        assert_eq!(fail.rule.as_deref(), Some("dr.request"));
        assert_eq!(fail.at.as_deref(), Some("director:eth0"));
        assert_eq!(fail.field.as_deref(), Some("ipv4.dst"));
        assert_eq!(fail.expected.as_deref(), Some("192.168.80.66 (unchanged)"));
        assert_eq!(fail.seen.as_deref(), Some("192.168.80.11"));
        let dist = Finding {
            rule: "scheduler.distribution".into(),
            ..f
        };
        assert_eq!(Failure::from_finding(&dist).check, Check::Distribution);
    }

    #[test]
    fn outcomes_round_trip_through_json() {
        let mut o = TrialOutcome::new("kernel::dr", "dr", "kernel", &[]);
        o.fail(
            Failure::new(Check::Traffic, "3 of 60 requests failed")
                .at("client")
                .expected_seen("60 answered", "57 answered"),
        );
        o.vm = Some(VmRun {
            kernel: "6.12".into(),
            accel: "Tcg".into(),
            boot_ms: 4700,
            total_ms: 20000,
            exit_code: 1,
        });
        let text = serde_json::to_string(&o).expect("encode");
        assert!(text.contains("\"status\":\"failed\""), "{text}");
        let back: TrialOutcome = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, o);
        assert!(!back.passed());
        assert!(back
            .failure_text()
            .contains("expected 60 answered, seen 57 answered"));
    }
}
