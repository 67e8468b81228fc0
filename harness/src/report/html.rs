//! One self-contained HTML file: inline CSS, no scripts, no network. A summary table, then
//! per trial its findings and the hop ladder of each flow with changed fields highlighted.

use std::fmt::Write as _;

use super::{escape, RunReport};
use crate::outcome::Status;
use lvslab_pcap::correlate::Direction;

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
th{background:#f3f3f3}.passed{color:#176f2c}.failed{color:#b00020;font-weight:bold}.ignored{color:#8a6d00}\
pre,code,.mono{font-family:ui-monospace,monospace;font-size:90%}\
.finding{border-left:4px solid #b00020;background:#fff4f4;padding:4px 10px;margin:6px 0;white-space:pre-wrap}\
.changed{background:#ffe58a;border-radius:3px;padding:0 3px;margin-right:6px;display:inline-block}\
.reply td{background:#f4f8ff}details{margin:4px 0}summary{cursor:pointer}";

/// Renders the run as one HTML document.
pub fn render_html(run: &RunReport) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lvslab run {}</title><style>{CSS}</style></head><body>\n",
        escape(&run.run)
    );
    let _ = writeln!(s, "<h1>lvslab run {}</h1>", escape(&run.run));
    s.push_str("<table><tr><th>trial</th><th>result</th><th>checks</th><th>packets</th><th>time</th></tr>\n");
    for t in &run.trials {
        let (class, text) = match &t.status {
            Status::Passed => ("passed", "passed".to_string()),
            Status::Failed => ("failed", "failed".to_string()),
            Status::Ignored { reason } => ("ignored", format!("ignored: {reason}")),
        };
        let (packets, _) = t.packet_counts();
        let _ = writeln!(
            s,
            "<tr><td><a href=\"#{id}\">{name}</a></td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{:.2}s</td></tr>",
            escape(&text),
            t.checks,
            packets,
            t.duration_ms as f64 / 1000.0,
            id = anchor(&t.name),
            name = escape(&t.name),
        );
    }
    s.push_str("</table>\n");
    for t in &run.trials {
        let _ = writeln!(s, "<h2 id=\"{}\">{}</h2>", anchor(&t.name), escape(&t.name));
        for f in &t.failures {
            let _ = writeln!(
                s,
                "<div class=\"finding\"><b>{}</b> {}</div>",
                escape(f.check.name()),
                escape(&f.to_string())
            );
        }
        for d in &t.diagnosis {
            let _ = writeln!(s, "<div class=\"finding\">{}</div>", escape(&d.to_string()));
        }
        let (captures, flows): (&[String], &[lvslab_pcap::FlowView]) = match &t.packets {
            Some(p) => (&p.captures, &p.flows),
            None => (&[], &[]),
        };
        if !captures.is_empty() {
            let list: Vec<String> = captures
                .iter()
                .map(|c| format!("<code>{}</code>", escape(c)))
                .collect();
            let _ = writeln!(s, "<p>captures: {}</p>", list.join(", "));
        }
        for flow in flows {
            let flagged = t.findings().iter().any(|f| f.flow == Some(flow.id));
            let _ = writeln!(
                s,
                "<details{}><summary>flow {}: <span class=\"mono\">{}</span>{}</summary>",
                if flagged { " open" } else { "" },
                flow.id,
                escape(&flow.label),
                if flagged {
                    " <span class=\"failed\">(findings)</span>"
                } else {
                    ""
                }
            );
            s.push_str("<table><tr><th>packet</th><th>point</th><th>frame</th><th>+µs</th><th>packet</th><th>changed since previous hop</th></tr>\n");
            for r in &flow.rows {
                let dir = match r.direction {
                    Direction::Request => "request",
                    Direction::Reply => "reply",
                };
                let changed: String = r
                    .changed
                    .iter()
                    .map(|(k, a, b)| {
                        format!(
                            "<span class=\"changed mono\">{}: {} → {}</span>",
                            escape(k),
                            escape(a),
                            escape(b)
                        )
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "<tr class=\"{dir}\"><td>{} {dir}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{changed}</td></tr>",
                    r.packet + 1,
                    escape(&r.point),
                    r.frame,
                    r.t_us,
                    escape(&r.text),
                );
            }
            s.push_str("</table></details>\n");
        }
    }
    s.push_str("</body></html>\n");
    s
}

fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
