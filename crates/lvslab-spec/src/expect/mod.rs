//! A lab's packet expectations (`labs/<lab>/expect.toml`): what every sighting of a flow to
//! the service must carry at the capture points a `[[hop]]` names, by reference to the lab.
//!
//! ```toml
//! [[hop]]
//! point = "rs*:eth0"          # capture points; `*` matches any run of characters
//! direction = "request"       # or "reply"; both when absent
//! note = "the real server sees the ISP's public address as the client"
//! ipv4.src = "isp:eth1"       # one reference, or a list of allowed ones
//! tcp.dport = "rport"
//! ```
//!
//! Fields: `eth.src|dst`, `ipv4.src|dst` (innermost header), `outer.ipv4.src|dst` (the
//! tunnel header), `tcp.sport|dport`, `udp.sport|dport`. References only, never literal
//! values: `node:iface` (that interface's first address, or its MAC in `eth.*`), `vip`
//! (the service address), `local` (any FullNAT local address); ports: `vport` (the service
//! port), `rport` (the port of the real server on the hop's node). A point's interface
//! `decap` names where a TUN real server's decapsulated packets appear (see
//! [`Expectations::receive_decap_on`]).
//!
//! Parsing and resolution live here, with the same `file:line:col` errors as `lab.toml`;
//! comparing with decoded captures is lvslab-pcap's (`expect_check`).

mod file;
mod resolve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::error::{utf8, Locator, SpecError, SpecErrors};
use crate::model::Lab;
use crate::vocab::Direction;
use file::{ExpectFile, HopFile};
use resolve::Ctx;

/// The expectations file, beside a lab's `lab.toml`.
pub const EXPECT_FILE: &str = "expect.toml";

/// What kind of value a field holds, so references resolve to the right thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    Mac,
    Ipv4,
    Port,
}

/// A header field a hop can constrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HeaderField {
    EthSrc,
    EthDst,
    Ipv4Src,
    Ipv4Dst,
    OuterIpv4Src,
    OuterIpv4Dst,
    TcpSport,
    TcpDport,
    UdpSport,
    UdpDport,
}

impl HeaderField {
    /// The field's path as decoded hop ladders name it, e.g. `ipv4.src`.
    pub fn path(self) -> &'static str {
        match self {
            HeaderField::EthSrc => "eth.src",
            HeaderField::EthDst => "eth.dst",
            HeaderField::Ipv4Src => "ipv4.src",
            HeaderField::Ipv4Dst => "ipv4.dst",
            HeaderField::OuterIpv4Src => "outer.ipv4.src",
            HeaderField::OuterIpv4Dst => "outer.ipv4.dst",
            HeaderField::TcpSport => "tcp.sport",
            HeaderField::TcpDport => "tcp.dport",
            HeaderField::UdpSport => "udp.sport",
            HeaderField::UdpDport => "udp.dport",
        }
    }

    pub fn kind(self) -> ValueKind {
        match self {
            HeaderField::EthSrc | HeaderField::EthDst => ValueKind::Mac,
            HeaderField::Ipv4Src
            | HeaderField::Ipv4Dst
            | HeaderField::OuterIpv4Src
            | HeaderField::OuterIpv4Dst => ValueKind::Ipv4,
            _ => ValueKind::Port,
        }
    }
}

/// One field a hop must have: the values allowed, and the references they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldExpectation {
    pub field: HeaderField,
    /// Allowed values, formatted as decoded hop ladders format them (MACs lower-case with
    /// colons, dotted IPv4, decimal ports).
    pub allowed: Vec<String>,
    /// Values allowed only at the given node's points (`rport`).
    pub per_node: BTreeMap<String, Vec<String>>,
    /// The references as written, e.g. `isp:eth1`.
    pub label: String,
}

impl FieldExpectation {
    /// The field's path, e.g. `ipv4.src`.
    pub fn path(&self) -> &'static str {
        self.field.path()
    }

    /// Every value allowed at a point of `node`.
    pub fn allowed_at(&self, node: &str) -> Vec<String> {
        let mut allowed = self.allowed.clone();
        allowed.extend(self.per_node.get(node).into_iter().flatten().cloned());
        allowed
    }
}

/// One `[[hop]]`: every sighting at a matching point, in the given direction, of a flow to
/// the service must have these fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopExpectation {
    /// `node:iface`, where `*` matches any run of characters (`rs*:eth0`).
    pub point: String,
    /// Request or reply; both when absent.
    pub direction: Option<Direction>,
    /// Why the lab expects this (shown in findings).
    pub note: Option<String>,
    /// The fields.
    pub fields: Vec<FieldExpectation>,
    /// Line in expect.toml, for findings.
    pub line: usize,
}

/// A lab's `expect.toml`, resolved against the lab (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The file.
    pub file: PathBuf,
    /// Its `[[hop]]`s.
    pub hops: Vec<HopExpectation>,
}

/// Whether `point` matches `pattern`, where `*` matches any run of characters.
pub fn point_matches(pattern: &str, point: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == point;
    };
    let Some(mut tail) = point.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return tail.len() >= part.len() && tail.ends_with(part);
        }
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    true
}

const HOP_HELP: &str = "a [[hop]] takes point, direction, note and the fields eth.src|dst, ipv4.src|dst, outer.ipv4.src|dst, tcp.sport|dport, udp.sport|dport";

impl Expectations {
    /// The expectations file of a lab: beside its `lab.toml`.
    pub fn path_for(lab: &Lab) -> PathBuf {
        lab.source
            .parent()
            .map(|p| p.join(EXPECT_FILE))
            .unwrap_or_else(|| PathBuf::from(EXPECT_FILE))
    }

    /// Parses and resolves `path` against the lab (`Ok(None)` when the lab has no such
    /// file). `instance` is the lab instance whose MACs `eth.*` references stand for.
    /// Every problem is reported with file, line and column.
    pub fn load(
        path: &Path,
        lab: &Lab,
        instance: &str,
    ) -> Result<Option<Expectations>, SpecErrors> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SpecErrors(vec![SpecError {
                    file: path.to_path_buf(),
                    line: 0,
                    col: 0,
                    path: String::new(),
                    message: format!("cannot read the expectations file: {e}"),
                    help: None,
                }]))
            }
        };
        Self::parse_bytes(path, &bytes, lab, instance).map(Some)
    }

    /// Parses and resolves the bytes of an expectations file: text that is not UTF-8 is
    /// an error at the first byte that is not.
    pub fn parse_bytes(
        file: &Path,
        bytes: &[u8],
        lab: &Lab,
        instance: &str,
    ) -> Result<Expectations, SpecErrors> {
        let text = utf8(file, bytes).map_err(|e| SpecErrors(vec![e]))?;
        Self::parse(file, text, lab, instance)
    }

    /// Parses and resolves expectation text (`file` names it in errors).
    pub fn parse(
        file: &Path,
        text: &str,
        lab: &Lab,
        instance: &str,
    ) -> Result<Expectations, SpecErrors> {
        let loc = Locator::new(file, text);
        let parsed: ExpectFile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let help = e.message().contains("field").then(|| HOP_HELP.to_string());
            SpecErrors(vec![loc.error(
                span,
                "",
                e.message().trim().to_string(),
                help,
            )])
        })?;
        let mut ctx = Ctx {
            loc: &loc,
            lab,
            instance,
            errors: Vec::new(),
        };
        let all_points = lab.points_to_capture();
        let mut hops = Vec::new();
        for (i, h) in parsed.hop.iter().enumerate() {
            if let Some(hop) = hop(&mut ctx, &all_points, i, h) {
                hops.push(hop);
            }
        }
        if ctx.errors.is_empty() {
            Ok(Expectations {
                file: file.to_path_buf(),
                hops,
            })
        } else {
            let mut errors = ctx.errors;
            errors.sort_by_key(|e| (e.line, e.col));
            Err(SpecErrors(errors))
        }
    }

    /// Points the `decap` interface (`rs*:decap`) at the device on which decapsulated
    /// packets appear in this run (the lab's decap device, or the kernel's `gre0` for GRE
    /// on kernel IPVS).
    pub fn receive_decap_on(&mut self, device: &str) {
        for h in &mut self.hops {
            if let Some(nodes) = h.point.strip_suffix(":decap") {
                h.point = format!("{nodes}:{device}");
            }
        }
    }
}

/// One `[[hop]]`: its point must match a capture point of the lab, and it must expect at
/// least one field.
fn hop(ctx: &mut Ctx<'_>, all_points: &[String], i: usize, h: &HopFile) -> Option<HopExpectation> {
    let at = h.point.span().start;
    let pattern = h.point.get_ref().clone();
    // `decap` stands for the decapsulation device; validate against the one the lab
    // declares (a trial may swap in kernel GRE's gre0, see `receive_decap_on`).
    let declared = match (
        pattern.strip_suffix(":decap"),
        ctx.lab.nodes.iter().find_map(|n| n.decap.as_ref()),
    ) {
        (Some(nodes), Some(d)) => format!("{nodes}:{}", d.device),
        _ => pattern.clone(),
    };
    let points: Vec<String> = all_points
        .iter()
        .filter(|p| point_matches(&declared, p))
        .cloned()
        .collect();
    let path = format!("hop[{i}]");
    if points.is_empty() {
        ctx.error(
            at,
            format!("{path}.point"),
            format!(
                "`{}` matches no capture point of lab {}",
                pattern.escape_debug(),
                ctx.lab.name
            ),
            Some(format!("capture points: {}", all_points.join(", "))),
        );
        return None;
    }
    let specs = fields_of(h);
    if specs.is_empty() {
        ctx.error(
            at,
            path,
            "the hop expects no field".into(),
            Some("add e.g. ipv4.src = \"node:iface\"".into()),
        );
        return None;
    }
    let mut fields = Vec::new();
    for (field, v) in specs {
        if let Some(f) = ctx.resolve(&format!("{path}.{}", field.path()), field, v, &points) {
            fields.push(f);
        }
    }
    Some(HopExpectation {
        point: pattern,
        direction: h.direction,
        note: h.note.clone(),
        fields,
        line: ctx.loc.line_col(at).0,
    })
}

/// The fields a hop sets, in a fixed order.
fn fields_of(h: &HopFile) -> Vec<(HeaderField, &Spanned<toml::Value>)> {
    let (eth_src, eth_dst) = file::AddrFields::pair(h.eth.as_ref());
    let (ip_src, ip_dst) = file::AddrFields::pair(h.ipv4.as_ref());
    let (outer_src, outer_dst) = file::AddrFields::pair(h.outer.as_ref().map(|o| &o.ipv4));
    let (tcp_sport, tcp_dport) = file::PortFields::pair(h.tcp.as_ref());
    let (udp_sport, udp_dport) = file::PortFields::pair(h.udp.as_ref());
    [
        (HeaderField::EthSrc, eth_src),
        (HeaderField::EthDst, eth_dst),
        (HeaderField::Ipv4Src, ip_src),
        (HeaderField::Ipv4Dst, ip_dst),
        (HeaderField::OuterIpv4Src, outer_src),
        (HeaderField::OuterIpv4Dst, outer_dst),
        (HeaderField::TcpSport, tcp_sport),
        (HeaderField::TcpDport, tcp_dport),
        (HeaderField::UdpSport, udp_sport),
        (HeaderField::UdpDport, udp_dport),
    ]
    .into_iter()
    .filter_map(|(field, v)| v.map(|v| (field, v)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_points() {
        assert!(point_matches("rs*:eth0", "rs12:eth0"));
        assert!(point_matches("*:tunl0", "rs1:tunl0"));
        assert!(point_matches("rs*:*", "rs1:eth0"));
        assert!(!point_matches("rs*:eth0", "rs1:eth1"));
        assert!(!point_matches("rs1:eth0", "rs1:eth00"));
        assert!(point_matches("rs1:eth0", "rs1:eth0"));
        assert!(!point_matches("a*a", "a"));
    }

    #[test]
    fn fields_name_their_ladder_path_and_kind() {
        assert_eq!(HeaderField::OuterIpv4Src.path(), "outer.ipv4.src");
        assert_eq!(HeaderField::EthDst.kind(), ValueKind::Mac);
        assert_eq!(HeaderField::UdpSport.kind(), ValueKind::Port);
        assert_eq!(HeaderField::Ipv4Dst.kind(), ValueKind::Ipv4);
    }
}
