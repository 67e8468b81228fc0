//! The forwarding-mode rules, applied to the hops around the director, and the scheduler
//! distribution check. Every expected value comes from the role addresses the caller passes
//! ([`Roles`]); nothing here knows a lab's addresses.
//!
//! Rules (IPVS behaviour, see the kernel's `ip_vs_xmit.c`):
//! - **DR**: the director rewrites only the MACs (destination = the real server's) and
//!   decrements the TTL; IP addresses, ID, TOS, DF and ports are untouched. The reply leaves the
//!   real server with the VIP:port as source and does not cross the director.
//! - **NAT**: destination IP and port become the real server's, TTL −1, source untouched; the
//!   reply crosses the director, which restores VIP:port as source (TTL −1 again).
//! - **TUN**: an outer IPv4 header DIP → RIP with protocol 4 (IPIP), or 47 with GRE protocol
//!   0x0800, is added; the inner packet is untouched except its TTL −1. The reply leaves the
//!   real server with the VIP as source and does not cross the director.
//! - **FullNAT**: source becomes a local address (port may change), destination the real
//!   server, TTL −1; the reply crosses the director, which restores VIP:port → client.
//!
//! Director ingress and egress of a packet are its first and last sightings at the director's
//! capture points (refined by the pcapng direction flag when the capture recorded it). The real
//! server a packet went to is the first real-server capture point after the director; without
//! one, it is inferred from the destination MAC (DR), outer destination (TUN) or destination
//! address (NAT, FullNAT).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::correlate::{Direction, Flow, Hop};
use crate::decode::{L4Summary, MacAddr, PacketSummary, TunnelHeader};
use crate::pcapng::PacketDirection;
pub use lvslab_spec::{Encap, Mode};

/// The director under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Director {
    /// Node name: capture points `node:*` are the director's.
    pub node: String,
    /// Director IP facing the real servers (outer source in TUN mode).
    pub dip: Ipv4Addr,
    /// MAC of each director capture point, by `node:iface` (source MAC after DR rewrite).
    pub macs: BTreeMap<String, MacAddr>,
}

/// One real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServer {
    /// Node name (`rs1`).
    pub name: String,
    /// Its capture point facing the director (`rs1:eth0`).
    pub point: String,
    /// Real-server IP (the tunnel endpoint in TUN mode).
    pub rip: Ipv4Addr,
    /// Service port on the real server.
    pub port: u16,
    /// MAC of `point`, expected as destination MAC in DR mode.
    pub mac: Option<MacAddr>,
    /// Outer source for TUN packets to this server when it is not `Director::dip`.
    pub tunnel_src: Option<Ipv4Addr>,
}

/// Role addresses and the mode: everything the rules compare against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    /// Forwarding method.
    pub mode: Mode,
    /// Encapsulation in TUN mode.
    pub tun_encap: Encap,
    /// Service protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// Virtual IP.
    pub vip: Ipv4Addr,
    /// Virtual port.
    pub vport: u16,
    /// The director.
    pub director: Director,
    /// Real servers.
    pub real_servers: Vec<RealServer>,
    /// FullNAT local addresses (source after the rewrite).
    pub local_addrs: Vec<Ipv4Addr>,
    /// Source addresses requests may carry when they reach the director (empty: any).
    pub client_addrs: Vec<Ipv4Addr>,
}

/// One field that does not have the value the rule expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDiff {
    /// Field path, e.g. `ipv4.dst` (see [`crate::ladder::fields`]).
    pub path: String,
    /// Expected value.
    pub expected: String,
    /// Whose value it is (`rs1:eth0`, `unchanged`, …).
    pub expected_label: Option<String>,
    /// Value seen.
    pub actual: String,
}

impl fmt::Display for FieldDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expected_label {
            Some(l) => write!(
                f,
                "{}: expected {} ({}), got {}",
                self.path, self.expected, l, self.actual
            ),
            None => write!(
                f,
                "{}: expected {}, got {}",
                self.path, self.expected, self.actual
            ),
        }
    }
}

/// A broken rule, with the frames that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id, e.g. `dr.request`, `nat.reply`, `scheduler.distribution`.
    pub rule: String,
    /// Capture point where the wrong packet was seen.
    pub point: String,
    /// Frame numbers involved (at `point`, and the reference frame before it).
    pub frames: Vec<u64>,
    /// Flow id, when the finding is about one flow.
    pub flow: Option<usize>,
    /// 1-based packet number within the flow.
    pub packet: Option<usize>,
    /// What the rule says, in a sentence.
    pub message: String,
    /// Fields that differ.
    pub diffs: Vec<FieldDiff>,
}

impl fmt::Display for Finding {
    /// `dr.request at director:eth0 (flow 1, packet 1, frames 3, 4): <message>` then one
    /// indented line per diff.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.rule, self.point)?;
        let mut ctx = Vec::new();
        if let Some(flow) = self.flow {
            ctx.push(format!("flow {flow}"));
        }
        if let Some(p) = self.packet {
            ctx.push(format!("packet {p}"));
        }
        if !self.frames.is_empty() {
            let fr: Vec<String> = self.frames.iter().map(u64::to_string).collect();
            ctx.push(format!("frames {}", fr.join(", ")));
        }
        if !ctx.is_empty() {
            write!(f, " ({})", ctx.join(", "))?;
        }
        write!(f, ": {}", self.message)?;
        for d in &self.diffs {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

/// Result of checking flows against the mode rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// Everything that broke a rule.
    pub findings: Vec<Finding>,
    /// Number of hop pairs (and reply paths) compared.
    pub hops_checked: usize,
    /// Flows addressed to the service.
    pub flows_checked: usize,
    /// Real server each service flow went to (by flow id; `None` if it reached none).
    pub assignments: BTreeMap<usize, Option<String>>,
}

fn node(point: &str) -> &str {
    point.split(':').next().unwrap_or(point)
}

fn diff(
    out: &mut Vec<FieldDiff>,
    path: &str,
    expected: impl ToString,
    label: Option<&str>,
    actual: impl ToString,
) {
    let (e, a) = (expected.to_string(), actual.to_string());
    if e != a {
        out.push(FieldDiff {
            path: path.to_string(),
            expected: e,
            expected_label: label.map(str::to_string),
            actual: a,
        });
    }
}

fn l4_prefix(s: &PacketSummary) -> &'static str {
    match s.l4 {
        Some(L4Summary::Udp(_)) => "udp",
        _ => "tcp",
    }
}

fn ports(s: &PacketSummary) -> (Option<u16>, Option<u16>) {
    match s.l4.as_ref().and_then(|l| l.ports()) {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    }
}

fn opt(v: Option<u16>) -> String {
    v.map(|p| p.to_string()).unwrap_or_else(|| "-".into())
}

fn is_service(flow: &Flow, roles: &Roles) -> bool {
    flow.hops.iter().any(|h| {
        node(&h.point) == roles.director.node
            || (h.direction == Direction::Request
                && h.summary.inner().is_some_and(|ip| {
                    ip.dst == roles.vip
                        && ip.proto == roles.proto
                        && ports(&h.summary).1 == Some(roles.vport)
                }))
    })
}

/// (ingress, egress) sightings at the director among one packet's hops.
fn director_pair<'a>(hops: &'a [Hop], roles: &Roles) -> (Option<&'a Hop>, Option<&'a Hop>) {
    let at: Vec<&Hop> = hops
        .iter()
        .filter(|h| node(&h.point) == roles.director.node)
        .collect();
    let ingress = at
        .iter()
        .find(|h| h.summary.direction != Some(PacketDirection::Outbound))
        .or(at.first())
        .copied();
    let egress = at
        .iter()
        .rev()
        .find(|h| h.summary.direction != Some(PacketDirection::Inbound))
        .copied()
        .filter(|e| ingress.is_some_and(|i| !std::ptr::eq(*e, i)));
    (ingress, egress)
}

fn which_rs<'r>(hops: &[Hop], egress: &Hop, roles: &'r Roles) -> Option<&'r RealServer> {
    let after = hops
        .iter()
        .skip_while(|h| !std::ptr::eq(*h, egress))
        .skip(1);
    for h in after {
        if let Some(rs) = roles
            .real_servers
            .iter()
            .find(|rs| node(&rs.point) == node(&h.point))
        {
            return Some(rs);
        }
    }
    let s = &egress.summary;
    roles.real_servers.iter().find(|rs| match roles.mode {
        Mode::Dr => rs.mac.is_some() && s.eth.map(|e| e.dst) == rs.mac,
        Mode::Tun => s.ip.len() >= 2 && s.ip[s.ip.len() - 2].dst == rs.rip,
        Mode::Nat | Mode::FullNat => s.inner().is_some_and(|ip| ip.dst == rs.rip),
    })
}

/// Compares the director's egress `b` with its ingress `a` for a request in `roles.mode`.
fn request_diffs(
    a: &PacketSummary,
    b: &PacketSummary,
    rs: &RealServer,
    roles: &Roles,
) -> Vec<FieldDiff> {
    let mut d = Vec::new();
    let (Some(ia), Some(ib)) = (a.inner(), b.inner()) else {
        return d;
    };
    let (sa, da) = ports(a);
    let (sb, db) = ports(b);
    let l4 = l4_prefix(b);
    let rs_label = Some(rs.point.as_str());
    let unchanged = Some("unchanged");
    let dir_label = roles.director.node.as_str();
    diff(
        &mut d,
        "ipv4.ttl",
        ia.ttl.saturating_sub(1),
        Some("ingress ttl - 1"),
        ib.ttl,
    );
    diff(&mut d, "ipv4.id", ia.id, unchanged, ib.id);
    diff(&mut d, "ipv4.proto", ia.proto, unchanged, ib.proto);
    match roles.mode {
        Mode::Dr => {
            if let (Some(mac), Some(e)) = (rs.mac, b.eth) {
                diff(&mut d, "eth.dst", mac, rs_label, e.dst);
            }
            if let (Some(mac), Some(e)) = (roles.director.macs.get(&b.point), b.eth) {
                diff(&mut d, "eth.src", mac, Some(&b.point), e.src);
            }
        }
        Mode::Tun => {
            if b.ip.len() < 2 {
                let want = roles.tun_encap.name();
                diff(&mut d, "outer.ipv4", format!("{want} header"), None, "none");
            } else {
                let outer = &b.ip[b.ip.len() - 2];
                let src = rs.tunnel_src.unwrap_or(roles.director.dip);
                diff(&mut d, "outer.ipv4.src", src, Some(dir_label), outer.src);
                diff(&mut d, "outer.ipv4.dst", rs.rip, rs_label, outer.dst);
                let want_proto = roles.tun_encap.ip_protocol();
                diff(&mut d, "outer.ipv4.proto", want_proto, None, outer.proto);
                if let (Encap::Gre, Some(TunnelHeader::Gre { protocol, .. })) =
                    (roles.tun_encap, outer.encap)
                {
                    diff(
                        &mut d,
                        "gre.proto",
                        "0x0800",
                        None,
                        format!("{protocol:#06x}"),
                    );
                }
            }
        }
        _ => {}
    }
    if !matches!(roles.mode, Mode::Tun) && b.ip.len() > 1 {
        diff(
            &mut d,
            "outer.ipv4",
            "none",
            None,
            format!("{} header(s)", b.ip.len() - 1),
        );
    }
    // Addresses and ports.
    match roles.mode {
        Mode::Dr | Mode::Tun => {
            diff(&mut d, "ipv4.src", ia.src, unchanged, ib.src);
            diff(&mut d, "ipv4.dst", ia.dst, unchanged, ib.dst);
            diff(&mut d, &format!("{l4}.sport"), opt(sa), unchanged, opt(sb));
            diff(&mut d, &format!("{l4}.dport"), opt(da), unchanged, opt(db));
        }
        Mode::Nat => {
            diff(&mut d, "ipv4.src", ia.src, unchanged, ib.src);
            diff(&mut d, "ipv4.dst", rs.rip, rs_label, ib.dst);
            diff(&mut d, &format!("{l4}.sport"), opt(sa), unchanged, opt(sb));
            diff(&mut d, &format!("{l4}.dport"), rs.port, rs_label, opt(db));
        }
        Mode::FullNat => {
            if !roles.local_addrs.contains(&ib.src) {
                let want: Vec<String> = roles.local_addrs.iter().map(|a| a.to_string()).collect();
                let want = if want.len() == 1 {
                    want.join("")
                } else {
                    format!("one of {}", want.join(", "))
                };
                diff(&mut d, "ipv4.src", want, Some("local address"), ib.src);
            }
            diff(&mut d, "ipv4.dst", rs.rip, rs_label, ib.dst);
            diff(&mut d, &format!("{l4}.dport"), rs.port, rs_label, opt(db));
        }
    }
    if matches!(roles.mode, Mode::Dr | Mode::Tun) {
        diff(
            &mut d,
            "ipv4.tos",
            format!("{:#04x}", ia.tos),
            unchanged,
            format!("{:#04x}", ib.tos),
        );
        diff(&mut d, "ipv4.df", ia.df, unchanged, ib.df);
    }
    d
}

fn route_text(hops: &[Hop]) -> String {
    let mut pts: Vec<&str> = Vec::new();
    for h in hops {
        if pts.last() != Some(&h.point.as_str()) {
            pts.push(&h.point);
        }
    }
    pts.join(" → ")
}

fn checksum_findings(flow: &Flow, out: &mut Vec<Finding>) {
    for h in &flow.hops {
        let mut diffs = Vec::new();
        for (depth, ip) in h.summary.ip.iter().rev().enumerate() {
            if let crate::decode::Checksum::Invalid { found, expected } = ip.header_checksum {
                let path = match depth {
                    0 => "ipv4.checksum".to_string(),
                    1 => "outer.ipv4.checksum".to_string(),
                    n => format!("outer{n}.ipv4.checksum"),
                };
                diff(
                    &mut diffs,
                    &path,
                    format!("{expected:#06x}"),
                    None,
                    format!("{found:#06x}"),
                );
            }
        }
        let l4 = match &h.summary.l4 {
            Some(L4Summary::Tcp(t)) => Some(("tcp.checksum", t.checksum)),
            Some(L4Summary::Udp(u)) => Some(("udp.checksum", u.checksum)),
            Some(L4Summary::Icmp(i)) => Some(("icmp.checksum", i.checksum)),
            _ => None,
        };
        if let Some((path, crate::decode::Checksum::Invalid { found, expected })) = l4 {
            diff(
                &mut diffs,
                path,
                format!("{expected:#06x}"),
                None,
                format!("{found:#06x}"),
            );
        }
        if !diffs.is_empty() {
            out.push(Finding {
                rule: "checksum".into(),
                point: h.point.clone(),
                frames: vec![h.frame],
                flow: Some(flow.id),
                packet: Some(h.packet + 1),
                message:
                    "checksum does not match the packet (offload-pending frames are not counted)"
                        .into(),
                diffs,
            });
        }
    }
}

/// Checks every flow addressed to the service against the rules of `roles.mode`.
pub fn check(flows: &[Flow], roles: &Roles) -> CheckOutcome {
    let mut out = CheckOutcome::default();
    let mode = roles.mode.name();
    for flow in flows.iter().filter(|f| is_service(f, roles)) {
        out.flows_checked += 1;
        checksum_findings(flow, &mut out.findings);
        let mut flow_rs: Option<&RealServer> = None;
        let mut first_ingress: Option<&Hop> = None;
        let mut first_egress: Option<&Hop> = None;
        let packets = flow.packets();
        for hops in packets
            .iter()
            .filter(|p| p[0].direction == Direction::Request)
        {
            let pno = Some(hops[0].packet + 1);
            let (ingress, egress) = director_pair(hops, roles);
            let Some(a) = ingress else {
                let last = hops.last().expect("a packet has at least one hop");
                out.findings.push(Finding {
                    rule: "director.reached".into(),
                    point: last.point.clone(),
                    frames: hops.iter().map(|h| h.frame).collect(),
                    flow: Some(flow.id),
                    packet: pno,
                    message: "request addressed to the service never reached the director".into(),
                    diffs: vec![FieldDiff {
                        path: "route".into(),
                        expected: format!("via {}", roles.director.node),
                        expected_label: None,
                        actual: route_text(hops),
                    }],
                });
                continue;
            };
            if first_ingress.is_none() {
                first_ingress = Some(a);
            }
            if !roles.client_addrs.is_empty() {
                if let Some(ip) = a.summary.inner() {
                    if !roles.client_addrs.contains(&ip.src) {
                        let want: Vec<String> =
                            roles.client_addrs.iter().map(|a| a.to_string()).collect();
                        out.findings.push(Finding {
                            rule: "director.client".into(),
                            point: a.point.clone(),
                            frames: vec![a.frame],
                            flow: Some(flow.id),
                            packet: pno,
                            message: "request reached the director from an unexpected source"
                                .into(),
                            diffs: vec![FieldDiff {
                                path: "ipv4.src".into(),
                                expected: want.join(" or "),
                                expected_label: Some("client side".into()),
                                actual: ip.src.to_string(),
                            }],
                        });
                    }
                }
            }
            let Some(b) = egress else {
                out.findings.push(Finding {
                    rule: "director.forward".into(),
                    point: a.point.clone(),
                    frames: vec![a.frame],
                    flow: Some(flow.id),
                    packet: pno,
                    message: format!("request entered {} and never left the director", a.point),
                    diffs: Vec::new(),
                });
                continue;
            };
            if first_egress.is_none() {
                first_egress = Some(b);
            }
            out.hops_checked += 1;
            let Some(rs) = which_rs(hops, b, roles) else {
                let names: Vec<&str> = roles
                    .real_servers
                    .iter()
                    .map(|r| r.point.as_str())
                    .collect();
                out.findings.push(Finding {
                    rule: "rs.reached".into(),
                    point: b.point.clone(),
                    frames: vec![a.frame, b.frame],
                    flow: Some(flow.id),
                    packet: pno,
                    message: "request left the director toward no known real server".into(),
                    diffs: vec![FieldDiff {
                        path: "route".into(),
                        expected: format!("one of {}", names.join(", ")),
                        expected_label: None,
                        actual: route_text(hops),
                    }],
                });
                continue;
            };
            flow_rs.get_or_insert(rs);
            let diffs = request_diffs(&a.summary, &b.summary, rs, roles);
            if !diffs.is_empty() {
                out.findings.push(Finding {
                    rule: format!("{mode}.request"),
                    point: b.point.clone(),
                    frames: vec![a.frame, b.frame],
                    flow: Some(flow.id),
                    packet: pno,
                    message: request_rule_text(roles),
                    diffs,
                });
            }
        }
        out.assignments
            .insert(flow.id, flow_rs.map(|r| r.name.clone()));
        for hops in packets
            .iter()
            .filter(|p| p[0].direction == Direction::Reply)
        {
            out.hops_checked += 1;
            if let Some(f) = check_reply(flow, hops, flow_rs, first_ingress, first_egress, roles) {
                out.findings.push(f);
            }
        }
    }
    out
}

fn request_rule_text(roles: &Roles) -> String {
    match roles.mode {
        Mode::Dr => "DR rewrites only the MACs and decrements the TTL",
        Mode::Nat => "NAT rewrites the destination to the real server and decrements the TTL",
        Mode::Tun => "TUN adds an outer header director → real server and leaves the inner packet untouched except its TTL",
        Mode::FullNat => "FullNAT rewrites the source to a local address and the destination to the real server",
    }
    .to_string()
}

fn check_reply(
    flow: &Flow,
    hops: &[Hop],
    rs: Option<&RealServer>,
    req_in: Option<&Hop>,
    req_out: Option<&Hop>,
    roles: &Roles,
) -> Option<Finding> {
    let mode = roles.mode.name();
    let mut d = Vec::new();
    let first = &hops[0];
    let at_dir: Vec<&Hop> = hops
        .iter()
        .filter(|h| node(&h.point) == roles.director.node)
        .collect();
    let at_rs = rs.and_then(|rs| hops.iter().find(|h| node(&h.point) == node(&rs.point)));
    let l4 = l4_prefix(&first.summary);
    match roles.mode {
        Mode::Dr | Mode::Tun => {
            if let Some(h) = at_dir.first() {
                diff(
                    &mut d,
                    "route",
                    "bypasses the director",
                    None,
                    format!("via {} (frame {})", h.point, h.frame),
                );
            }
            if let (Some(h), Some(rs)) = (at_rs, rs) {
                if let Some(ip) = h.summary.inner() {
                    let label = format!("VIP, leaving {}", rs.point);
                    diff(&mut d, "ipv4.src", roles.vip, Some(&label), ip.src);
                    diff(
                        &mut d,
                        &format!("{l4}.sport"),
                        roles.vport,
                        Some("VIP port"),
                        opt(ports(&h.summary).0),
                    );
                }
            }
        }
        Mode::Nat | Mode::FullNat => {
            if let (Some(h), Some(rs)) = (at_rs, rs) {
                if let Some(ip) = h.summary.inner() {
                    diff(&mut d, "ipv4.src", rs.rip, Some(&rs.point), ip.src);
                    diff(
                        &mut d,
                        &format!("{l4}.sport"),
                        rs.port,
                        Some(&rs.point),
                        opt(ports(&h.summary).0),
                    );
                    if let (Mode::FullNat, Some(out)) =
                        (roles.mode, req_out.and_then(|o| o.summary.inner()))
                    {
                        diff(&mut d, "ipv4.dst", out.src, Some("local address"), ip.dst);
                    }
                }
            }
            let c = at_dir
                .iter()
                .find(|h| h.summary.direction != Some(PacketDirection::Outbound));
            let dd = at_dir
                .iter()
                .rev()
                .find(|h| h.summary.direction != Some(PacketDirection::Inbound))
                .filter(|e| c.is_some_and(|c| !std::ptr::eq(**e, *c)));
            match (c, dd) {
                (None, _) => diff(
                    &mut d,
                    "route",
                    format!("via {}", roles.director.node),
                    None,
                    route_text(hops),
                ),
                (Some(c), None) => diff(
                    &mut d,
                    "route",
                    format!("through {}", roles.director.node),
                    None,
                    format!("entered {} (frame {}) and never left", c.point, c.frame),
                ),
                (Some(c), Some(e)) => {
                    if let (Some(ic), Some(ie)) = (c.summary.inner(), e.summary.inner()) {
                        diff(&mut d, "ipv4.src", roles.vip, Some("VIP"), ie.src);
                        diff(
                            &mut d,
                            &format!("{l4}.sport"),
                            roles.vport,
                            Some("VIP port"),
                            opt(ports(&e.summary).0),
                        );
                        if let Some(a) = req_in {
                            if let Some(ia) = a.summary.inner() {
                                let label = format!("client as seen at {}", a.point);
                                diff(&mut d, "ipv4.dst", ia.src, Some(&label), ie.dst);
                                diff(
                                    &mut d,
                                    &format!("{l4}.dport"),
                                    opt(ports(&a.summary).0),
                                    Some(&label),
                                    opt(ports(&e.summary).1),
                                );
                            }
                        }
                        diff(
                            &mut d,
                            "ipv4.ttl",
                            ic.ttl.saturating_sub(1),
                            Some("ingress ttl - 1"),
                            ie.ttl,
                        );
                    }
                }
            }
        }
    }
    if d.is_empty() {
        return None;
    }
    let at = at_dir.last().copied().or(at_rs).unwrap_or(first);
    let mut frames: Vec<u64> = Vec::new();
    for h in at_rs.into_iter().chain(at_dir.iter().copied()) {
        frames.push(h.frame);
    }
    if frames.is_empty() {
        frames.push(first.frame);
    }
    let message = match roles.mode {
        Mode::Dr | Mode::Tun => "the reply leaves the real server with the VIP as source and does not cross the director",
        Mode::Nat => "the reply crosses the director, which restores the VIP:port as source",
        Mode::FullNat => "the reply returns to the local address and the director restores VIP:port → client",
    };
    Some(Finding {
        rule: format!("{mode}.reply"),
        point: at.point.clone(),
        frames,
        flow: Some(flow.id),
        packet: Some(first.packet + 1),
        message: message.into(),
        diffs: d,
    })
}

/// Compares observed flows per real server with the counts the scheduler should produce.
/// Returns a `scheduler.distribution` finding listing each server whose count differs
/// (flows that reached no server count as `(none)`).
pub fn check_distribution(
    outcome: &CheckOutcome,
    expected: &BTreeMap<String, u64>,
    roles: &Roles,
) -> Option<Finding> {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for rs in outcome.assignments.values() {
        let key = rs.clone().unwrap_or_else(|| "(none)".into());
        *seen.entry(key).or_default() += 1;
    }
    let mut names: Vec<String> = roles.real_servers.iter().map(|r| r.name.clone()).collect();
    for k in expected.keys().chain(seen.keys()) {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    let mut d = Vec::new();
    for n in &names {
        let e = expected.get(n).copied().unwrap_or(0);
        let s = seen.get(n).copied().unwrap_or(0);
        diff(&mut d, &format!("flows.{n}"), e, None, s);
    }
    if d.is_empty() {
        return None;
    }
    Some(Finding {
        rule: "scheduler.distribution".into(),
        point: roles.director.node.clone(),
        frames: Vec::new(),
        flow: None,
        packet: None,
        message: "flows per real server differ from the scheduler's expected counts".into(),
        diffs: d,
    })
}
