//! Run reports: `report.json`, JUnit XML, one self-contained HTML file, and the terminal
//! summary table, all rendered from one [`RunReport`]: the run's [`TrialOutcome`]s.
//!
//! `report.json` is the serde form of [`RunReport`]: `{"run": "<run id>", "trials":
//! [<TrialOutcome>…]}`, each trial with its `status` (`passed`, `failed`, or `ignored` with
//! a `reason`), typed `failures` (`check`, `rule`, `at`, `field`, `expected`, `seen`,
//! `message`), `packets` (frames, hops checked, capture files, findings and hop ladders),
//! `diagnosis` and, for kernel trials in the VM, `vm`.

mod html;
mod junit;
mod terminal;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::outcome::{Status, TrialOutcome};

pub use html::render_html;
pub use junit::render_junit;
pub use terminal::render_terminal;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("encode the run report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Run id (`captures/<run>/…`).
    pub run: String,
    /// Trials in run order.
    pub trials: Vec<TrialOutcome>,
}

impl RunReport {
    /// `report.json` text (pretty, stable field order).
    pub fn to_json(&self) -> Result<String, ReportError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses `report.json` text.
    pub fn from_json(text: &str) -> Result<Self, ReportError> {
        Ok(serde_json::from_str(text)?)
    }

    pub fn passed(&self) -> usize {
        self.trials
            .iter()
            .filter(|t| t.status == Status::Passed)
            .count()
    }

    pub fn failed(&self) -> usize {
        self.trials
            .iter()
            .filter(|t| t.status == Status::Failed)
            .count()
    }

    /// Writes `report.json`, `junit.xml` and `report.html` into `dir`.
    pub fn write_all(&self, dir: &Path) -> Result<(), ReportError> {
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| ReportError::Write { path, source })
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

#[cfg(test)]
mod tests;
