//! The hop ladder: each packet of a flow, hop by hop, with the fields that changed since the
//! previous hop. The text form is for terminals and logs; the HTML report renders the same
//! [`LadderRow`]s.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::correlate::{Direction, Flow};
use crate::decode::{L4Summary, PacketSummary, TunnelHeader};

/// Named field values of a frame, in a fixed order. Paths match [`crate::rules::FieldDiff`]:
/// `eth.*`, `ipv4.*` (innermost header), `outer.ipv4.*` (the header directly enclosing it),
/// `outer2.ipv4.*` (the next one out), `gre.proto`, `tcp.*`, `udp.*`, `icmp.*`, `payload.*`.
pub fn fields(s: &PacketSummary) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: String| out.push((k.to_string(), v));
    if let Some(e) = &s.eth {
        push("eth.src", e.src.to_string());
        push("eth.dst", e.dst.to_string());
    }
    let n = s.ip.len();
    for (i, ip) in s.ip.iter().enumerate() {
        let depth = n - 1 - i;
        let prefix = match depth {
            0 => "ipv4".to_string(),
            1 => "outer.ipv4".to_string(),
            d => format!("outer{d}.ipv4"),
        };
        push(&format!("{prefix}.src"), ip.src.to_string());
        push(&format!("{prefix}.dst"), ip.dst.to_string());
        push(&format!("{prefix}.proto"), ip.proto.to_string());
        push(&format!("{prefix}.ttl"), ip.ttl.to_string());
        push(&format!("{prefix}.id"), ip.id.to_string());
        push(&format!("{prefix}.tos"), format!("{:#04x}", ip.tos));
        push(&format!("{prefix}.df"), ip.df.to_string());
        if depth == 1 {
            if let Some(TunnelHeader::Gre { protocol, .. }) = ip.encap {
                push("gre.proto", format!("{protocol:#06x}"));
            }
        }
    }
    match &s.l4 {
        Some(L4Summary::Tcp(t)) => {
            push("tcp.sport", t.sport.to_string());
            push("tcp.dport", t.dport.to_string());
            push("tcp.flags", t.flags.to_string());
            push("tcp.seq", t.seq.to_string());
            push("tcp.ack", t.ack.to_string());
        }
        Some(L4Summary::Udp(u)) => {
            push("udp.sport", u.sport.to_string());
            push("udp.dport", u.dport.to_string());
        }
        Some(L4Summary::Icmp(i)) => {
            push("icmp.type", i.icmp_type.to_string());
            push("icmp.code", i.code.to_string());
        }
        _ => {}
    }
    if let Some(l4) = &s.l4 {
        let (len, hash) = l4.payload();
        push("payload.len", len.to_string());
        push("payload.hash", format!("{hash:016x}"));
    }
    out
}

/// Paths whose value differs between two frames, with (before, after); a field present on only
/// one side shows `-` on the other.
pub fn changed_fields(
    before: &PacketSummary,
    after: &PacketSummary,
) -> Vec<(String, String, String)> {
    let a = fields(before);
    let b = fields(after);
    let mut out = Vec::new();
    for (k, vb) in &b {
        match a.iter().find(|(ka, _)| ka == k) {
            Some((_, va)) if va == vb => {}
            Some((_, va)) => out.push((k.clone(), va.clone(), vb.clone())),
            None => out.push((k.clone(), "-".into(), vb.clone())),
        }
    }
    for (k, va) in &a {
        if !b.iter().any(|(kb, _)| kb == k) {
            out.push((k.clone(), va.clone(), "-".into()));
        }
    }
    out
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LadderRow {
    /// Logical packet index within the flow (0-based).
    pub packet: usize,
    /// Request or reply.
    pub direction: Direction,
    /// Capture point.
    pub point: String,
    /// Frame number at that point.
    pub frame: u64,
    /// Microseconds since the flow's first sighting.
    pub t_us: u64,
    /// tcpdump-like one-liner.
    pub text: String,
    /// (path, before, after) for fields changed since the previous hop of the same packet.
    pub changed: Vec<(String, String, String)>,
}

/// The ladder rows of a flow.
pub fn rows(flow: &Flow) -> Vec<LadderRow> {
    let t0 = flow.hops.first().map(|h| h.summary.ts_ns).unwrap_or(0);
    let mut out = Vec::new();
    for packet in flow.packets() {
        let mut prev: Option<&PacketSummary> = None;
        for h in packet {
            out.push(LadderRow {
                packet: h.packet,
                direction: h.direction,
                point: h.point.clone(),
                frame: h.frame,
                t_us: h.summary.ts_ns.saturating_sub(t0) / 1000,
                text: h.summary.describe(),
                changed: prev
                    .map(|p| changed_fields(p, &h.summary))
                    .unwrap_or_default(),
            });
            prev = Some(&h.summary);
        }
    }
    out
}

/// The ladder as plain text, e.g.
///
/// ```text
/// flow 1: tcp 198.51.100.7:40000 → 192.168.80.66:80
///   packet 1 (request)
///     director:eth0   #3     +12µs 198.51.100.7:40000 > 192.168.80.66:80 tcp [S] …
///     director:eth0   #4     +20µs …
///                     changed: eth.dst 02:…:10 → 02:…:11, ipv4.ttl 63 → 62
/// ```
pub fn render_text(flow: &Flow) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "flow {}: {}", flow.id, flow.label);
    let width = flow.hops.iter().map(|h| h.point.len()).max().unwrap_or(0);
    let mut last_packet = usize::MAX;
    for r in rows(flow) {
        if r.packet != last_packet {
            let dir = match r.direction {
                Direction::Request => "request",
                Direction::Reply => "reply",
            };
            let _ = writeln!(s, "  packet {} ({dir})", r.packet + 1);
            last_packet = r.packet;
        }
        let _ = writeln!(
            s,
            "    {:<width$} #{:<5} +{}µs {}",
            r.point, r.frame, r.t_us, r.text
        );
        if !r.changed.is_empty() {
            let list: Vec<String> = r
                .changed
                .iter()
                .map(|(k, a, b)| format!("{k} {a} → {b}"))
                .collect();
            let _ = writeln!(s, "    {:<width$} changed: {}", "", list.join(", "));
        }
    }
    s
}

/// A flow's hop ladder as reports store it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowView {
    /// Flow id.
    pub id: usize,
    /// First sighting in words.
    pub label: String,
    /// Ladder rows.
    pub rows: Vec<LadderRow>,
}

impl FlowView {
    /// The report view of a correlated flow.
    pub fn from_flow(flow: &Flow) -> Self {
        FlowView {
            id: flow.id,
            label: flow.label.clone(),
            rows: rows(flow),
        }
    }
}
