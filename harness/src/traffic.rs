//! Client traffic for trials and `lvslab traffic`: N sequential HTTP requests, each a new
//! TCP connection (so each is a new scheduling decision), counted by the real server
//! that answered (lab servers answer with their node name).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use lvslab_netns::traffic::http_get;
use lvslab_netns::Netns;
use serde::Serialize;

/// What `lvslab traffic --json` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrafficSummary {
    pub ok: u64,
    pub failed: u64,
    pub by_server: BTreeMap<String, u64>,
    /// The first few failures, for the reader.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// How many failure messages a summary keeps.
const KEEP_ERRORS: usize = 5;

/// Sends `count` HTTP requests from `ns` (node `from`) to `to`.
pub fn http_requests(
    ns: &Netns,
    from: &str,
    to: SocketAddr,
    count: u64,
    timeout: Duration,
) -> TrafficSummary {
    let mut s = TrafficSummary::default();
    for _ in 0..count {
        match http_get(ns, from, to, timeout) {
            Ok(who) => {
                s.ok += 1;
                *s.by_server.entry(who).or_default() += 1;
            }
            Err(e) => {
                s.failed += 1;
                if s.errors.len() < KEEP_ERRORS {
                    s.errors.push(e.to_string());
                }
            }
        }
    }
    s
}

impl TrafficSummary {
    /// `rs1 ██████ 30` lines, one per server, for the terminal.
    pub fn histogram(&self) -> String {
        let max = self.by_server.values().copied().max().unwrap_or(0).max(1);
        let width = self.by_server.keys().map(String::len).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in &self.by_server {
            let bar = "#".repeat(((*v as f64 / max as f64) * 40.0).round() as usize);
            out.push_str(&format!("{k:width$} {bar} {v}\n"));
        }
        out.push_str(&format!("{} ok, {} failed\n", self.ok, self.failed));
        for e in &self.errors {
            out.push_str(&format!("  error: {e}\n"));
        }
        out
    }
}
