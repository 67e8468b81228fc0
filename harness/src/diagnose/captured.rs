//! What the captures alone show: a real server that got requests and answered none.

use std::net::IpAddr;

use lvslab_pcap::decode::PacketSummary;
use lvslab_spec::model::Lab;

use super::*;

/// From captures: a real server that received requests for the service but sent nothing
/// back. It confirms a fault on that server without saying which; the other rules say.
pub(super) fn captured_requests_unanswered(lab: &Lab, ev: &Evidence, out: &mut Vec<Diagnosis>) {
    if ev.packets.is_empty() {
        return;
    }
    for rs in real_servers(lab) {
        let prefix = format!("{}:", rs.node);
        let at_rs: Vec<&PacketSummary> = ev
            .packets
            .iter()
            .filter(|p| p.point.starts_with(&prefix))
            .collect();
        if at_rs.is_empty() {
            continue;
        }
        let service_dst = rs.vip.unwrap_or(rs.rip);
        let is_syn_to = |p: &&&PacketSummary, dst: IpAddr| {
            p.inner().is_some_and(|ip| IpAddr::V4(ip.dst) == dst)
                && matches!(p.l4, Some(lvslab_pcap::decode::L4Summary::Tcp(t))
                    if t.flags.has(lvslab_pcap::decode::TcpFlags::SYN)
                        && !t.flags.has(lvslab_pcap::decode::TcpFlags::ACK))
        };
        let syns = at_rs
            .iter()
            .filter(|p| is_syn_to(p, service_dst) || is_syn_to(p, rs.rip))
            .count();
        let answers = at_rs
            .iter()
            .filter(|p| {
                p.inner().is_some_and(|ip| {
                    let s = IpAddr::V4(ip.src);
                    s == service_dst || s == rs.rip
                }) && matches!(p.l4, Some(lvslab_pcap::decode::L4Summary::Tcp(t))
                    if t.flags.has(lvslab_pcap::decode::TcpFlags::SYN)
                        && t.flags.has(lvslab_pcap::decode::TcpFlags::ACK))
            })
            .count();
        if syns > 0 && answers == 0 {
            out.push(Diagnosis {
                cause_id: "rs.requests-unanswered".into(),
                node: rs.node.into(),
                summary: format!(
                    "{} received {syns} connection requests but answered none: its stack drops \
                     them (check the VIP, rp_filter and its routes, as the other causes say)",
                    rs.node
                ),
                evidence: vec![format!(
                    "captured at {}: {syns} SYNs in, no SYN-ACK out",
                    rs.node
                )],
                likelihood: 50,
            });
        }
    }
}
