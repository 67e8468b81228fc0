//! The lab's reachability checks: ICMP echo or TCP connect from a node, each expected to
//! succeed or (with `expect_ok = false`) to fail.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lvslab_netns::apply::LabInstance;
use lvslab_netns::traffic::{ping, tcp_connect};
use lvslab_spec::model::{Check, CheckKind, Lab};

/// How long one probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Result of one check, in words.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// Runs one check and judges it against `expect_ok`.
pub fn run_check(lab: &Lab, inst: &LabInstance, c: &Check) -> CheckResult {
    let to_label = lab
        .label_of(&c.to)
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    let what = match c.kind {
        CheckKind::Ping => format!("{} ping {}{to_label}", c.from, c.to),
        CheckKind::Tcp { port } => format!("{} tcp {}:{port}{to_label}", c.from, c.to),
    };
    let Some(ns) = inst.ns(&c.from) else {
        return CheckResult {
            what,
            ok: false,
            detail: format!("no namespace for node {}", c.from),
        };
    };
    let got: Result<String, String> = match (c.kind, c.to) {
        (CheckKind::Ping, IpAddr::V4(a)) => ping(ns, &c.from, a, PROBE_TIMEOUT)
            .map(|rtt| format!("reply in {rtt:.1?}"))
            .map_err(|e| e.to_string()),
        (CheckKind::Ping, IpAddr::V6(_)) => Err("IPv6 ping is not supported".into()),
        (CheckKind::Tcp { port }, to) => {
            tcp_connect(ns, &c.from, SocketAddr::new(to, port), PROBE_TIMEOUT)
                .map(|_| "connected".to_string())
                .map_err(|e| e.to_string())
        }
    };
    match (got, c.expect_ok) {
        (Ok(d), true) => CheckResult {
            what,
            ok: true,
            detail: d,
        },
        (Err(e), false) => CheckResult {
            what,
            ok: true,
            detail: format!("failed as expected: {e}"),
        },
        (Ok(d), false) => CheckResult {
            what,
            ok: false,
            detail: format!("expected to fail, but {d}"),
        },
        (Err(e), true) => CheckResult {
            what,
            ok: false,
            detail: e,
        },
    }
}
