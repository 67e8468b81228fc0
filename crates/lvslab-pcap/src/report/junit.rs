//! JUnit XML: one `<testcase>` per trial, failures carrying the findings as text, ignored
//! trials as `<skipped>` with their reason.

use std::fmt::Write as _;

use super::{escape, RunReport, TrialResult};

/// Renders the run as a JUnit `<testsuites>` document.
pub fn render_junit(run: &RunReport) -> String {
    let failures = run
        .trials
        .iter()
        .filter(|t| t.result == TrialResult::Failed)
        .count();
    let skipped = run
        .trials
        .iter()
        .filter(|t| matches!(t.result, TrialResult::Ignored { .. }))
        .count();
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
            escape(&t.name()),
            t.duration_ms as f64 / 1000.0
        );
        match &t.result {
            TrialResult::Passed => s.push_str("/>\n"),
            TrialResult::Ignored { reason } => {
                let _ = writeln!(
                    s,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(reason)
                );
            }
            TrialResult::Failed => {
                let text = t.failure_text();
                let first = text.lines().next().unwrap_or("failed");
                let _ = writeln!(
                    s,
                    ">\n      <failure message=\"{}\" type=\"lvslab.finding\">{}</failure>\n    </testcase>",
                    escape(first),
                    escape(&text)
                );
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
