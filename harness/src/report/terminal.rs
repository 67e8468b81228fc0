//! Terminal summary: one row per trial (lab, trial kind, result, checks, packets, time),
//! then the failures and likely causes of failed trials.

use std::fmt::Write as _;

use super::RunReport;
use crate::outcome::Status;

/// Renders the summary table (plain text, no colour codes, so logs stay readable).
pub fn render_terminal(run: &RunReport) -> String {
    let header = ["lab", "trial", "result", "checks", "packets", "time"];
    let rows: Vec<[String; 6]> = run
        .trials
        .iter()
        .map(|t| {
            let lab = match t.name.split_once('[') {
                Some((_, p)) => format!("{} [{p}", t.lab),
                None => t.lab.clone(),
            };
            let result = match &t.status {
                Status::Passed => "ok".to_string(),
                Status::Failed => format!("FAILED ({})", t.failures.len()),
                Status::Ignored { reason } => format!("ignored: {reason}"),
            };
            let (packets, _) = t.packet_counts();
            [
                lab,
                t.kind.clone(),
                result,
                t.checks.to_string(),
                packets.to_string(),
                format!("{:.2}s", t.duration_ms as f64 / 1000.0),
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut s = String::new();
    let _ = writeln!(s, "{}", line(&header.map(String::from)));
    let _ = writeln!(s, "{}", line(&width.map(|w| "-".repeat(w))));
    for r in &rows {
        let _ = writeln!(s, "{}", line(r));
    }
    let (passed, failed) = (run.passed(), run.failed());
    let ignored = run.trials.len() - passed - failed;
    let _ = writeln!(s, "\n{passed} passed, {failed} failed, {ignored} ignored");
    for t in run.trials.iter().filter(|t| t.status == Status::Failed) {
        let _ = writeln!(s, "\n{}:", t.name);
        for l in t.failure_text().lines() {
            let _ = writeln!(s, "  {l}");
        }
    }
    s
}
