//! Run reports: `report.json`, JUnit XML, one self-contained HTML file, and the terminal
//! summary table, all rendered from one [`RunReport`].
//!
//! `report.json` shape (serde of [`RunReport`]):
//!
//! ```json
//! {
//!   "run": "2026-11-02T10-00-00",           // run id (captures/<run>/…)
//!   "trials": [{
//!     "lab": "dr", "dataplane": "userspace", "scheduler": "wrr",   // scheduler may be null
//!     "result": {"status": "passed"}        // or {"status":"failed"}
//!                                           // or {"status":"ignored","reason":"…"}
//!     "duration_ms": 1234, "packets": 120, "hops_checked": 40,
//!     "captures": ["captures/…/dr/userspace/capture.pcapng"], "log": "…/trial.log",
//!     "errors": ["setup: …"],               // failures that are not packet findings
//!     "findings": [{"rule": "dr.request", "point": "director:eth0", "frames": [2, 3],
//!                   "flow": 1, "packet": 1, "message": "…",
//!                   "diffs": [{"path": "ipv4.dst", "expected": "192.168.80.66",
//!                              "expected_label": "unchanged", "actual": "192.168.80.11"}]}],
//!     "flows": [{"id": 1, "label": "tcp 198.51.100.7:40000 → 192.168.80.66:80",
//!                "rows": [{"packet": 0, "direction": "request", "point": "director:eth0",
//!                          "frame": 2, "t_us": 10, "text": "…",
//!                          "changed": [["ipv4.ttl", "63", "62"]]}]}]
//!   }]
//! }
//! ```

mod html;
mod junit;
mod terminal;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::correlate::Flow;
use crate::error::PcapError;
use crate::ladder::{self, LadderRow};
use crate::rules::Finding;

pub use html::render_html;
pub use junit::render_junit;
pub use terminal::render_terminal;

/// Outcome of one trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "status")]
pub enum TrialResult {
    /// Every check held.
    Passed,
    /// At least one finding or error.
    Failed,
    /// Not run, with the reason decided when trials were collected.
    Ignored {
        /// Why.
        reason: String,
    },
}

/// A flow's hop ladder as stored in reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowView {
    /// Flow id.
    pub id: usize,
    /// First sighting in words.
    pub label: String,
    /// Ladder rows.
    pub rows: Vec<LadderRow>,
}

impl FlowView {
    /// The report view of a correlated flow.
    pub fn from_flow(flow: &Flow) -> Self {
        FlowView {
            id: flow.id,
            label: flow.label.clone(),
            rows: ladder::rows(flow),
        }
    }
}

/// One lab × dataplane (× scheduler) trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialReport {
    /// Lab name (`nat`, `dr`, …).
    pub lab: String,
    /// `kernel` or `userspace`.
    pub dataplane: String,
    /// Scheduler, when the trial is per scheduler.
    pub scheduler: Option<String>,
    /// Outcome.
    pub result: TrialResult,
    /// Wall time.
    pub duration_ms: u64,
    /// Frames captured.
    pub packets: u64,
    /// Hop pairs compared.
    pub hops_checked: u64,
    /// Capture files.
    pub captures: Vec<String>,
    /// Trial log file.
    pub log: Option<String>,
    /// Failures that are not packet findings (setup, traffic, teardown).
    pub errors: Vec<String>,
    /// Broken rules.
    pub findings: Vec<Finding>,
    /// Hop ladders.
    pub flows: Vec<FlowView>,
}

impl TrialReport {
    /// `lab/dataplane[/scheduler]`, the trial's name in every format.
    pub fn name(&self) -> String {
        match &self.scheduler {
            Some(s) => format!("{}/{}/{}", self.lab, self.dataplane, s),
            None => format!("{}/{}", self.lab, self.dataplane),
        }
    }

    /// Everything that went wrong, as a person reads it.
    pub fn failure_text(&self) -> String {
        let mut parts: Vec<String> = self.errors.clone();
        parts.extend(self.findings.iter().map(|f| f.to_string()));
        parts.join("\n")
    }
}

/// A whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Run id.
    pub run: String,
    /// Trials in run order.
    pub trials: Vec<TrialReport>,
}

impl RunReport {
    /// `report.json` text (pretty, stable field order).
    pub fn to_json(&self) -> Result<String, PcapError> {
        serde_json::to_string_pretty(self).map_err(|source| PcapError::Json {
            what: "run report",
            source,
        })
    }

    /// Parses `report.json` text.
    pub fn from_json(text: &str) -> Result<Self, PcapError> {
        serde_json::from_str(text).map_err(|source| PcapError::Json {
            what: "run report",
            source,
        })
    }

    /// Writes `report.json`, `junit.xml` and `report.html` into `dir`.
    pub fn write_all(&self, dir: &Path) -> Result<(), PcapError> {
        let write = |name: &'static str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| PcapError::WriteFile {
                what: name,
                path,
                source,
            })
        };
        write("report.json", self.to_json()?)?;
        write("junit.xml", render_junit(self))?;
        write("report.html", render_html(self))?;
        Ok(())
    }
}

/// Escapes text for XML and HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}
