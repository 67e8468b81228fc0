//! Client traffic for trials and `lvslab traffic`: N sequential HTTP requests, each a new
//! TCP connection (so each is a new scheduling decision), counted by the real server
//! that answered (lab servers answer with their node name).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use lvslab_netns::traffic::{http_get, http_get_from, udp_ask};
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
    /// Requests not sent because [`GIVE_UP_AFTER`] had already failed.
    #[serde(skip_serializing_if = "is_zero")]
    pub abandoned: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How many failure messages a summary keeps.
const KEEP_ERRORS: usize = 5;

/// Failures after which [`http_requests`] stops: a broken service would otherwise cost a
/// full timeout per remaining request, and a handful of failures already say it is broken.
pub const GIVE_UP_AFTER: u64 = 5;

/// Sends `count` HTTP requests from `ns` (node `from`) to `to`, giving up after
/// [`GIVE_UP_AFTER`] failures (the rest are counted in `abandoned`).
pub fn http_requests(
    ns: &Netns,
    from: &str,
    to: SocketAddr,
    count: u64,
    timeout: Duration,
) -> TrafficSummary {
    requests(count, |_| http_get(ns, from, to, timeout))
}

/// [`http_requests`] from source ports `first_port`, `first_port + 1`, …: every request
/// is a connection the load balancer has never seen, whatever ports the kernel would
/// have handed out (trials count exact shares).
pub fn http_requests_from_ports(
    ns: &Netns,
    from: &str,
    first_port: u16,
    to: SocketAddr,
    count: u64,
    timeout: Duration,
) -> TrafficSummary {
    requests(count, |i| {
        let port = u16::try_from(u64::from(first_port) + i).unwrap_or(u16::MAX);
        http_get_from(ns, from, Some(port), to, timeout)
    })
}

/// Sends `count` UDP datagrams from `ns`, each from a new source port, to a `udp-echo`
/// service at `to`, giving up like [`http_requests`].
pub fn udp_requests(
    ns: &Netns,
    from: &str,
    to: SocketAddr,
    count: u64,
    timeout: Duration,
) -> TrafficSummary {
    requests(count, |seq| udp_ask(ns, from, to, seq, timeout))
}

/// Runs `count` requests, each answering with the name of the server that answered.
fn requests(
    count: u64,
    mut ask: impl FnMut(u64) -> Result<String, lvslab_netns::traffic::TrafficError>,
) -> TrafficSummary {
    let mut s = TrafficSummary::default();
    for i in 0..count {
        if s.failed >= GIVE_UP_AFTER {
            s.abandoned = count - i;
            s.errors.push(format!(
                "gave up after {} failures: {} requests not sent",
                s.failed, s.abandoned
            ));
            break;
        }
        match ask(i) {
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
