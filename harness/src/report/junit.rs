//! JUnit XML: one `<testcase>` per trial, failures carrying their typed failures and
//! likely causes as text, ignored trials as `<skipped>` with their reason.

use std::fmt::Write as _;

use super::{escape, RunReport};
use crate::outcome::Status;

/// Renders the run as a JUnit `<testsuites>` document.
pub fn render_junit(run: &RunReport) -> String {
    let failures = run.failed();
    let skipped = run.trials.len() - run.passed() - failures;
    let total_s: f64 = run
        .trials
        .iter()
        .map(|t| t.duration_ms as f64 / 1000.0)
        .sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"lvslab\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{total_s:.3}\">",
        run.trials.len()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"lvslab {}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{total_s:.3}\">",
        escape(&run.run),
        run.trials.len()
    );
    for t in &run.trials {
        let _ = write!(
            s,
            "    <testcase classname=\"lvslab.{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&t.lab),
            escape(&t.name),
            t.duration_ms as f64 / 1000.0
        );
        match &t.status {
            Status::Passed => s.push_str("/>\n"),
            Status::Ignored { reason } => {
                let _ = writeln!(
                    s,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(reason)
                );
            }
            Status::Failed => {
                let text = t.failure_text();
                let first = text.lines().next().unwrap_or("failed");
                let _ = writeln!(
                    s,
                    ">\n      <failure message=\"{}\" type=\"lvslab.{}\">{}</failure>\n    </testcase>",
                    escape(first),
                    t.failures.first().map_or("failure", |f| f.check.name()),
                    escape(&text)
                );
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
