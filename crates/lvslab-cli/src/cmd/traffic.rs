//! `lvslab traffic <instance>`: N requests through a running lab, counted by the real
//! server that answered.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use lvslab_harness::traffic::{http_requests, udp_requests};
use lvslab_instance::Instance;

use super::require_root;

/// Arguments of `lvslab traffic`.
pub struct TrafficArgs<'a> {
    pub instance: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub port: Option<u16>,
    pub count: u64,
    pub proto: &'a str,
    pub json: bool,
}

/// Hard limits: traffic is bounded in count and time.
const MAX_COUNT: u64 = 100_000;

pub fn traffic(a: &TrafficArgs<'_>) -> anyhow::Result<ExitCode> {
    require_root("lvslab traffic")?;
    if a.proto != "tcp" && a.proto != "udp" {
        bail!(
            "--proto {}: tcp (HTTP to the lab's http servers) or udp (to its udp-echo servers)",
            a.proto
        );
    }
    if a.count == 0 || a.count > MAX_COUNT {
        bail!("--count must be 1..={MAX_COUNT}");
    }
    let inst = Instance::open(a.instance)?;
    let lab = inst.lab();
    let default = lab.traffic.as_ref();
    let from = a
        .from
        .or(default.map(|t| t.from.as_str()))
        .context("the lab declares no [traffic]: give --from NODE")?;
    let to: IpAddr = match a.to {
        Some(t) => match t.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                let (node, iface) = t
                    .split_once(':')
                    .with_context(|| format!("--to {t}: an address or node:iface"))?;
                lab.node(node)
                    .and_then(|n| n.first_address(iface))
                    .with_context(|| format!("--to {t}: no such node interface with an address"))?
            }
        },
        None => default
            .map(|t| t.to)
            .context("the lab declares no [traffic]: give --to TARGET")?,
    };
    let port = a.port.or(default.map(|t| t.port)).context("give --port")?;
    let ns = inst.node(from)?;
    let target = SocketAddr::new(to, port);
    let summary = if a.proto == "udp" {
        udp_requests(&ns, from, target, a.count, Duration::from_secs(2))
    } else {
        http_requests(&ns, from, target, a.count, Duration::from_secs(3))
    };
    if a.json {
        let v = serde_json::json!({ "ok": summary.ok, "failed": summary.failed, "by_server": summary.by_server });
        println!("{v}");
    } else {
        println!(
            "{} {} requests from {from} to {to}:{port}",
            a.count, a.proto
        );
        print!("{}", summary.histogram());
    }
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
