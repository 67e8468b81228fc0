//! Terminal summary: one row per trial (lab, dataplane, result, hops checked, packets, time),
//! then the findings of failed trials.

use std::fmt::Write as _;

use super::{RunReport, TrialResult};

/// Renders the summary table (plain text, no colour codes, so logs stay readable).
pub fn render_terminal(run: &RunReport) -> String {
    let header = [
        "lab",
        "dataplane",
        "result",
        "hops checked",
        "packets",
        "time",
    ];
    let rows: Vec<[String; 6]> = run
        .trials
        .iter()
        .map(|t| {
            let lab = match &t.scheduler {
                Some(s) => format!("{} ({s})", t.lab),
                None => t.lab.clone(),
            };
            let result = match &t.result {
                TrialResult::Passed => "ok".to_string(),
                TrialResult::Failed => format!("FAILED ({})", t.findings.len() + t.errors.len()),
                TrialResult::Ignored { reason } => format!("ignored: {reason}"),
            };
            [
                lab,
                t.dataplane.clone(),
                result,
                t.hops_checked.to_string(),
                t.packets.to_string(),
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
    let passed = run
        .trials
        .iter()
        .filter(|t| t.result == TrialResult::Passed)
        .count();
    let failed = run
        .trials
        .iter()
        .filter(|t| t.result == TrialResult::Failed)
        .count();
    let ignored = run.trials.len() - passed - failed;
    let _ = writeln!(s, "\n{passed} passed, {failed} failed, {ignored} ignored");
    for t in run
        .trials
        .iter()
        .filter(|t| t.result == TrialResult::Failed)
    {
        let _ = writeln!(s, "\n{}:", t.name());
        for l in t.failure_text().lines() {
            let _ = writeln!(s, "  {l}");
        }
    }
    s
}
