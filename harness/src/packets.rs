//! Per-hop captures and packet assertions for dataplane trials.
//!
//! A dataplane trial arms one capture point on every interface of every lab node (switch
//! namespaces are plumbing, not hops; `lo` carries nothing between nodes), sends its traffic,
//! drains the captures and then:
//! - fails on any frame the capture lost (socket drops or the per-point cap), naming the point;
//! - writes one pcapng (one interface block per `node:iface`) to the trial's capture directory;
//! - checks every flow to the service against the forwarding-mode rules with [`Roles`] built
//!   from the lab model, and the flows per real server against the scheduler's share;
//! - checks the lab's own expectations (`labs/<lab>/expect.toml`, see [`Expectations`]);
//! - writes [`PacketReport`] (`packets.json`) beside the pcapng, which is how `lvslab test`
//!   learns what a trial saw, also when the trial ran in the VM.
//!
//! Where captures go: `<root>/<lab>/<dataplane>/`, the root being the one `lvslab test` set
//! ([`set_capture_root`]), else `$LVSLAB_CAPTURE_DIR`, else the workspace's
//! `target/lvslab-captures`. `<lab>` is the lab name followed by `-<value>` per parameter
//! the trial sets, as in instance names.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use lvslab_netns::apply::LabInstance;
use lvslab_netns::capture::{CaptureSet, Captured};
use lvslab_netns::plan::mac_of;
use lvslab_pcap::decode::{L4Summary, TcpFlags};
use lvslab_pcap::rules::{Director, RealServer, Roles};
use lvslab_pcap::FlowView;
use lvslab_pcap::{
    check_distribution, correlate, decode_capture, ladder, rules, Analysis, Capture,
    CorrelateOptions, Direction, FieldDiff, Finding, Flow,
};
use lvslab_spec::lb::ServiceKey;
use lvslab_spec::model::{Lab, NatRule, Role};
use lvslab_spec::MacAddr;
use lvslab_spec::{SpecError, SpecErrors};
use serde::{Deserialize, Serialize};

use crate::trials::TrialSpec;
use lvslab_spec::Dataplane;

/// Environment variable naming the capture root (what the VM passes to a kernel trial).
pub const CAPTURE_DIR_ENV: &str = "LVSLAB_CAPTURE_DIR";

/// The capture file of a trial, in its capture directory.
pub const CAPTURE_FILE: &str = "capture.pcapng";

/// The trial's packet results, in its capture directory.
pub const REPORT_FILE: &str = "packets.json";

/// The lab's own packet expectations, beside its `lab.toml`.
pub const EXPECT_FILE: &str = "expect.toml";

/// How long draining waits for frames still in flight after the last request.
const SETTLE: Duration = Duration::from_millis(300);

/// Pause before arming: longer than a loopback-speed FIN exchange by far, short next to
/// a trial.
const QUIET_BEFORE_ARMING: Duration = Duration::from_millis(200);

/// Flows kept in a report besides those with findings: enough to show a healthy ladder
/// without making the HTML report one long table.
const SAMPLE_FLOWS: usize = 3;

/// Findings one expectation reports before it only counts the rest.
const MAX_FINDINGS_PER_EXPECTATION: usize = 5;

static CAPTURE_ROOT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Makes every later trial of this process write its captures under `root` (what
/// `lvslab test` does with its report directory).
pub fn set_capture_root(root: PathBuf) {
    if let Ok(mut r) = CAPTURE_ROOT.lock() {
        *r = Some(root);
    }
}

/// The capture root in force; see the module docs.
pub fn capture_root() -> PathBuf {
    if let Some(r) = CAPTURE_ROOT.lock().ok().and_then(|r| r.clone()) {
        return r;
    }
    if let Some(d) = std::env::var_os(CAPTURE_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .join("target")
        .join("lvslab-captures")
}

/// `<lab>` of a capture directory: the lab name and the value of each parameter the trial
/// sets.
pub fn lab_key(lab: &str, params: &[(String, String)]) -> String {
    let p: String = params.iter().map(|(_, v)| format!("-{v}")).collect();
    format!("{lab}{p}")
}

/// Capture directory of a dataplane trial (`None` for other kinds).
pub fn spec_capture_dir(spec: &TrialSpec) -> Option<PathBuf> {
    let crate::TrialKind::Dataplane(d) = spec.kind else {
        return None;
    };
    let lab = spec.name.split("::").nth(1)?;
    let lab = lab.split('[').next().unwrap_or(lab);
    Some(
        capture_root()
            .join(lab_key(lab, &spec.params))
            .join(d.name()),
    )
}

/// Prepares a kernel trial that runs in the VM: creates its capture directory on the host,
/// shares it read-write with the guest at the same path and tells the guest the root.
pub fn prepare_vm(spec: &TrialSpec, opts: &mut lvslab_vm::RunOptions) -> Result<(), String> {
    let Some(dir) = spec_capture_dir(spec) else {
        return Ok(());
    };
    clear_dir(&dir)?;
    let dir = std::fs::canonicalize(&dir)
        .map_err(|e| format!("capture directory {}: {e}", dir.display()))?;
    let root = dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("capture directory {} has no root", dir.display()))?;
    match &opts.scratch {
        None => opts.scratch = Some(dir.clone()),
        Some(s) if dir.starts_with(s) => {}
        Some(s) => {
            return Err(format!(
                "the VM can share one writable directory and it is already {}: \
                 the captures must go under it (set {CAPTURE_DIR_ENV})",
                s.display()
            ))
        }
    }
    opts.env
        .push((CAPTURE_DIR_ENV.into(), root.as_os_str().to_os_string()));
    Ok(())
}

/// Creates `dir` and removes what an earlier run left there.
fn clear_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("create capture directory {}: {e}", dir.display()))?;
    for f in [CAPTURE_FILE, REPORT_FILE, crate::outcome::OUTCOME_FILE] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| format!("remove {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// What a dataplane trial's captures showed; `packets.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketReport {
    /// Frames captured over all points.
    pub packets: u64,
    /// Hop pairs and reply paths compared by the mode rules, plus hops checked against
    /// the lab's expectations.
    pub hops_checked: u64,
    /// Capture files written.
    pub captures: Vec<String>,
    /// Every broken rule or expectation.
    pub findings: Vec<Finding>,
    /// Flows with findings, then a few more, as hop ladders.
    pub flows: Vec<FlowView>,
    /// Failures that are not findings (lost frames, files that could not be written).
    pub errors: Vec<String>,
}

impl PacketReport {
    /// Reads `packets.json` from a trial's capture directory (`None` when it has none).
    pub fn read(dir: &Path) -> Option<Result<PacketReport, String>> {
        let path = dir.join(REPORT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(format!("read {}: {e}", path.display()))),
        };
        Some(serde_json::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display())))
    }

    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        !self.findings.is_empty() || !self.errors.is_empty()
    }
}

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

fn mac(instance: &str, node: &str, iface: &str) -> MacAddr {
    mac_of(instance, node, iface)
}

fn role_rank(r: Role) -> u8 {
    match r {
        Role::Client => 0,
        Role::Router => 1,
        Role::Firewall => 2,
        Role::Director => 3,
        Role::RealServer => 4,
    }
}

/// Capture points of a lab, client side first: every interface of every node but `lo`
/// (tunnel and decapsulation devices included).
/// The device on which a TUN-mode real server's decapsulated packets appear: its decap
/// device (which holds the VIP), except on kernel IPVS with GRE, where the kernel's
/// fallback device `gre0` receives them (`decap` in expect.toml names it).
pub fn decap_receive_device(lab: &Lab, d: Dataplane) -> Option<String> {
    let decap = lab.nodes.iter().find_map(|n| n.decap.as_ref())?;
    Some(match (d, decap.encap) {
        (Dataplane::Kernel, lvslab_spec::model::Encap::Gre) => "gre0".to_string(),
        _ => decap.device.clone(),
    })
}

/// The lab's capture points, client side first: those its `[capture]` declares
/// (`node:*` standing for every interface of the node), else every interface of every
/// node but `lo`.
pub fn capture_points(lab: &Lab) -> Vec<String> {
    let mut nodes: Vec<_> = lab.nodes.iter().collect();
    nodes.sort_by_key(|n| role_rank(n.role));
    let declared = |node: &str, iface: &str| match &lab.capture_points {
        None => iface != "lo",
        Some(points) => points
            .iter()
            .any(|e| e.node == node && (e.iface == iface || (e.iface == "*" && iface != "lo"))),
    };
    let mut out = Vec::new();
    for n in nodes {
        let mut ifaces = lab.node_interfaces(&n.name);
        ifaces.push("lo".to_string());
        for iface in ifaces {
            let p = format!("{}:{iface}", n.name);
            if declared(&n.name, &iface) && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Which of `node`'s interfaces reaches `to`: the one whose subnet holds it, else the one
/// whose subnet holds the gateway of the node's most specific route covering it.
fn iface_toward(lab: &Lab, node: &str, to: IpAddr) -> Option<String> {
    let n = lab.node(node)?;
    let on_link = |ip: IpAddr| {
        n.interfaces
            .iter()
            .find(|(_, ps)| ps.iter().any(|p| p.len < 32 && p.contains(&ip)))
            .map(|(i, _)| i.clone())
    };
    if let Some(i) = on_link(to) {
        return Some(i);
    }
    let route = n
        .routes
        .iter()
        .filter(|r| r.dest.as_ref().is_none_or(|d| d.contains(&to)))
        .max_by_key(|r| r.dest.as_ref().map_or(0, |d| d.len + 1))?;
    if let Some(dev) = &route.dev {
        return Some(dev.clone());
    }
    on_link(route.via?)
}

/// Node and interface holding `ip`, preferring interfaces other than `lo` and
/// decapsulation devices (a hidden VIP).
fn holder(lab: &Lab, ip: IpAddr) -> Option<(String, String)> {
    let label = lab.label_of(&ip)?;
    let (n, i) = label.split_once(':')?;
    Some((n.to_string(), i.to_string()))
}

/// The role addresses of the lab's first service, all from the lab model: mode, VIP, the
/// director's address toward the real servers and its MACs, each real server's node,
/// capture point, address, port and MAC, FullNAT local addresses, and the addresses
/// requests may carry at the director (the traffic source's, and those of every node that
/// rewrites sources on the way).
pub fn roles(lab: &Lab, instance: &str) -> Result<Roles, String> {
    let svc = lab.services.first().ok_or("the lab has no [[service]]")?;
    let ServiceKey::Addr {
        protocol,
        addr,
        port,
    } = svc.config.key
    else {
        return Err("firewall-mark services have no VIP to check packets against".into());
    };
    let vip = v4(addr).ok_or("IPv6 services are not checked")?;
    let director = lab
        .node(&svc.director)
        .ok_or_else(|| format!("director node {} is not in the lab", svc.director))?;
    let first_rs = svc
        .real_servers
        .first()
        .ok_or("the service has no real server")?;
    let dip = iface_toward(lab, &director.name, first_rs.config.addr)
        .and_then(|i| director.first_address(&i))
        .and_then(v4)
        .ok_or_else(|| {
            format!(
                "no address of {} faces real server {}",
                director.name, first_rs.config.addr
            )
        })?;
    let macs = lab
        .node_interfaces(&director.name)
        .into_iter()
        .map(|i| {
            (
                format!("{}:{i}", director.name),
                mac(instance, &director.name, &i),
            )
        })
        .collect();
    let mut real_servers = Vec::new();
    for rs in &svc.real_servers {
        let rip = v4(rs.config.addr)
            .ok_or_else(|| format!("real server {} is not IPv4", rs.config.addr))?;
        let (node, iface) = match (&rs.node, holder(lab, rs.config.addr)) {
            (Some(n), Some((hn, i))) if &hn == n => (n.clone(), i),
            (Some(n), _) => {
                let i = iface_toward(lab, n, IpAddr::V4(dip))
                    .ok_or_else(|| format!("no interface of {n} faces the director"))?;
                (n.clone(), i)
            }
            (None, Some(h)) => h,
            (None, None) => {
                return Err(format!(
                    "real server {} is on no node of the lab",
                    rs.config.addr
                ))
            }
        };
        real_servers.push(RealServer {
            name: node.clone(),
            point: format!("{node}:{iface}"),
            rip,
            port: rs.config.port,
            mac: Some(mac(instance, &node, &iface)),
            tunnel_src: None,
        });
    }
    let tun_encap = svc
        .real_servers
        .first()
        .map(|r| r.config.tun_type)
        .unwrap_or_default();
    let mode = lab.mode;
    let local_addrs = svc
        .config
        .local_addresses
        .iter()
        .copied()
        .filter_map(v4)
        .collect();
    Ok(Roles {
        mode,
        tun_encap,
        proto: protocol.number(),
        vip,
        vport: port,
        director: Director {
            node: director.name.clone(),
            dip,
            macs,
        },
        real_servers,
        local_addrs,
        client_addrs: client_addrs(lab),
    })
}

/// Sources a request may carry when it reaches the director: the traffic source's
/// addresses and every address a source-rewriting node puts on packets.
fn client_addrs(lab: &Lab) -> Vec<Ipv4Addr> {
    let Some(t) = &lab.traffic else {
        return Vec::new();
    };
    let mut out: Vec<Ipv4Addr> = lab
        .node(&t.from)
        .map(|n| {
            n.interfaces
                .values()
                .flatten()
                .filter_map(|p| v4(p.addr))
                .collect()
        })
        .unwrap_or_default();
    for n in &lab.nodes {
        for rule in &n.nat {
            let added: Vec<Ipv4Addr> = match rule {
                NatRule::Snat { to, .. } => v4(*to).into_iter().collect(),
                NatRule::Masquerade { out: Some(i), .. } => n
                    .interfaces
                    .get(i)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| v4(p.addr))
                    .collect(),
                NatRule::Masquerade { out: None, .. } => n
                    .interfaces
                    .values()
                    .flatten()
                    .filter_map(|p| v4(p.addr))
                    .collect(),
                NatRule::Dnat { .. } => Vec::new(),
            };
            for a in added {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// Captures running during a dataplane trial's traffic.
pub struct TrialCapture {
    set: CaptureSet,
    points: Vec<String>,
    dir: PathBuf,
    roles: Roles,
    expect: Option<Expectations>,
}

impl TrialCapture {
    /// Checks the lab's roles and expectations, then arms every capture point of the
    /// built lab. Call right before the traffic.
    pub fn arm(lab: &Lab, inst: &LabInstance, d: Dataplane) -> Result<TrialCapture, String> {
        let instance = &inst.plan.instance;
        let key = instance
            .split_once('-')
            .map_or(instance.as_str(), |(_, k)| k);
        let dir = capture_root().join(key).join(d.name());
        let roles = roles(lab, instance)?;
        let expect_path = lab
            .source
            .parent()
            .map(|p| p.join(EXPECT_FILE))
            .unwrap_or_else(|| PathBuf::from(EXPECT_FILE));
        let mut expect =
            Expectations::load(&expect_path, lab, instance).map_err(|e| e.to_string())?;
        if let (Some(e), Some(dev)) = (expect.as_mut(), decap_receive_device(lab, d)) {
            for h in &mut e.hops {
                if let Some(nodes) = h.point.strip_suffix(":decap") {
                    h.point = format!("{nodes}:{dev}");
                }
            }
        }
        clear_dir(&dir)?;
        // Let the closing segments of connections made before (the lab's checks) pass
        // first, so the capture holds the traffic's flows only.
        std::thread::sleep(QUIET_BEFORE_ARMING);
        let mut points = capture_points(lab);
        if let Some(dev) = decap_receive_device(lab, d) {
            for n in lab.nodes.iter() {
                if let Some(decap) = &n.decap {
                    let held = format!("{}:{}", n.name, decap.device);
                    for p in points.iter_mut().filter(|p| **p == held) {
                        *p = format!("{}:{dev}", n.name);
                    }
                }
            }
        }
        let mut at = Vec::new();
        for p in &points {
            let node = p.split(':').next().unwrap_or(p);
            let ns = inst
                .ns(node)
                .ok_or_else(|| format!("capture point {p}: no namespace for node {node}"))?;
            at.push((ns, p.clone()));
        }
        let set = CaptureSet::arm(&at).map_err(|e| format!("arm captures: {e}"))?;
        Ok(TrialCapture {
            set,
            points,
            dir,
            roles,
            expect,
        })
    }

    /// The capture points, in order.
    pub fn points(&self) -> &[String] {
        &self.points
    }

    /// Drains the captures and checks them (see the module docs). `expected` is the
    /// flows per real server the scheduler must give, when it is exact. What was checked
    /// goes to `log`, findings with their field diffs and the flow's hop ladder included.
    pub fn finish(
        self,
        expected: Option<&BTreeMap<String, u64>>,
        log: &mut Vec<String>,
    ) -> (PacketReport, Vec<lvslab_pcap::PacketSummary>) {
        let mut report = PacketReport::default();
        let captured = match self.set.drain(SETTLE) {
            Ok(c) => c,
            Err(e) => {
                report.errors.push(format!("drain captures: {e}"));
                return (report, Vec::new());
            }
        };
        let summaries = check_captured(
            &captured,
            &self.points,
            &self.dir,
            &self.roles,
            self.expect.as_ref(),
            expected,
            log,
            &mut report,
        );
        let path = self.dir.join(REPORT_FILE);
        match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                if let Err(e) = std::fs::write(&path, text) {
                    report.errors.push(format!("write {}: {e}", path.display()));
                }
            }
            Err(e) => report
                .errors
                .push(format!("encode {}: {e}", path.display())),
        }
        (report, summaries)
    }
}

#[allow(clippy::too_many_arguments)]
fn check_captured(
    captured: &Captured,
    points: &[String],
    dir: &Path,
    roles: &Roles,
    expect: Option<&Expectations>,
    expected: Option<&BTreeMap<String, u64>>,
    log: &mut Vec<String>,
    report: &mut PacketReport,
) -> Vec<lvslab_pcap::PacketSummary> {
    for s in &captured.stats {
        if s.lost() > 0 {
            report.errors.push(format!(
                "capture point {} lost {} frame(s) ({} dropped by the kernel, {} over the cap): \
                 its capture is incomplete",
                s.point,
                s.lost(),
                s.drops,
                s.over_cap
            ));
        }
    }
    let file = dir.join(CAPTURE_FILE);
    match captured.write_pcapng(&file) {
        Ok(()) => {
            report.captures.push(file.display().to_string());
            log.push(format!(
                "captured {} frames at {} points: {}",
                captured.capture.frames.len(),
                points.len(),
                file.display()
            ));
        }
        Err(e) => report.errors.push(format!("write {}: {e}", file.display())),
    }
    let analysis = check_capture(&captured.capture, points, roles, expect, expected);
    report.packets = captured.capture.frames.len() as u64;
    report.hops_checked = analysis.hops_checked as u64;
    log.push(format!(
        "hops checked: {}, packets: {} ({} flows to the service, {} mode rules)",
        report.hops_checked,
        report.packets,
        analysis.analysis.outcome.flows_checked,
        roles.mode.name()
    ));
    if analysis.unchecked > 0 {
        log.push(format!(
            "{} TCP flow(s) were under way before the capture started (no SYN seen): not checked",
            analysis.unchecked
        ));
    }
    if let Some(want) = expected {
        if !analysis
            .findings
            .iter()
            .any(|f| f.rule == "scheduler.distribution")
        {
            log.push(format!("captured flows per real server match {want:?}"));
        }
    }
    let flows = &analysis.analysis.flows;
    let mut shown: Vec<usize> = Vec::new();
    for f in &analysis.findings {
        for line in f.to_string().lines() {
            log.push(format!("finding: {line}"));
        }
        if let Some(flow) = f.flow.and_then(|id| flows.iter().find(|fl| fl.id == id)) {
            if !shown.contains(&flow.id) {
                shown.push(flow.id);
                for line in ladder::render_text(flow).lines() {
                    log.push(format!("  {line}"));
                }
            }
        }
    }
    let service: Vec<usize> = analysis
        .analysis
        .outcome
        .assignments
        .keys()
        .copied()
        .collect();
    for id in service.iter().copied() {
        if shown.len() >= SAMPLE_FLOWS.max(shown.len()) && !shown.is_empty() {
            break;
        }
        if !shown.contains(&id) {
            shown.push(id);
        }
    }
    shown.sort_unstable();
    report.flows = shown
        .iter()
        .filter_map(|id| flows.iter().find(|f| f.id == *id))
        .map(FlowView::from_flow)
        .collect();
    report.findings = analysis.findings;
    analysis.analysis.summaries
}

/// What [`check_capture`] found.
#[derive(Debug, Clone)]
pub struct CaptureCheck {
    /// Decoded frames, flows and the mode rules' outcome.
    pub analysis: Analysis,
    /// Mode-rule findings, then the distribution's, then the expectations'.
    pub findings: Vec<Finding>,
    /// Hops compared by the rules and the expectations.
    pub hops_checked: usize,
    /// TCP flows already under way when the capture was armed (their first sighting is
    /// not a SYN): stragglers of the trial's checks, not checked.
    pub unchecked: usize,
    /// Flows of other protocols than the service's (IGMP, ICMP echo…), not checked.
    pub other_protocols: usize,
}

/// ICMP type of a redirect.
const ICMP_REDIRECT: u8 = 5;

/// Removes the ICMP redirects the director sent from the flows they quote (they are not
/// packets of the flow, and the mode rules would read them as requests that never left
/// the director) and reports each as an `icmp.redirect` finding: a real server that obeys
/// one sends its replies past the director, which breaks NAT and FullNAT.
fn take_redirects(flows: &mut [Flow], roles: &Roles) -> Vec<Finding> {
    let mut out = Vec::new();
    let director = roles.director.node.as_str();
    for flow in flows.iter_mut() {
        let mut reported: Vec<usize> = Vec::new();
        for h in &flow.hops {
            let Some(L4Summary::Icmp(i)) = &h.summary.l4 else {
                continue;
            };
            if i.icmp_type != ICMP_REDIRECT || reported.contains(&h.packet) {
                continue;
            }
            let Some(ip) = h.summary.inner() else {
                continue;
            };
            reported.push(h.packet);
            let from_director = h.point.split(':').next() == Some(director);
            out.push(Finding {
                rule: "icmp.redirect".into(),
                point: h.point.clone(),
                frames: vec![h.frame],
                flow: Some(flow.id),
                packet: Some(h.packet + 1),
                message: format!(
                    "{} sent an ICMP redirect to {}{}",
                    ip.src,
                    ip.dst,
                    if from_director {
                        " (the director's send_redirects is on: a real server that obeys it \
                         bypasses the director)"
                    } else {
                        ""
                    }
                ),
                diffs: vec![FieldDiff {
                    path: "icmp.type".into(),
                    expected: "no redirect".into(),
                    expected_label: None,
                    actual: format!("{} code {}", i.icmp_type, i.code),
                }],
            });
        }
        if !reported.is_empty() {
            flow.hops.retain(|h| !reported.contains(&h.packet));
        }
    }
    out
}

/// Whether a flow's first sighting is a TCP segment other than a SYN: the connection was
/// opened before the capture started, so its opening (and its ISN, which correlation
/// needs) is missing.
fn began_before_capture(flow: &Flow) -> bool {
    flow.hops.first().is_some_and(
        |h| matches!(&h.summary.l4, Some(L4Summary::Tcp(t)) if !t.flags.has(TcpFlags::SYN)),
    )
}

/// Checks one trial capture: the mode rules of `roles`, the scheduler's share
/// (`expected`) and the lab's expectations.
pub fn check_capture(
    capture: &Capture,
    points: &[String],
    roles: &Roles,
    expect: Option<&Expectations>,
    expected: Option<&BTreeMap<String, u64>>,
) -> CaptureCheck {
    let opts = CorrelateOptions {
        point_order: points.to_vec(),
        ..CorrelateOptions::default()
    };
    let summaries: Vec<_> = decode_capture(capture);
    // Only flows of the service's protocol: multicast reports and the like cross the
    // director too, and the mode rules would read them as requests it dropped.
    let (flows, other): (Vec<Flow>, Vec<Flow>) =
        correlate(&summaries, &opts).into_iter().partition(|f| {
            f.hops
                .first()
                .and_then(|h| h.summary.inner())
                .is_some_and(|ip| ip.proto == roles.proto)
        });
    let (mut flows, before): (Vec<Flow>, Vec<Flow>) =
        flows.into_iter().partition(|f| !began_before_capture(f));
    let redirects = take_redirects(&mut flows, roles);
    let outcome = rules::check(&flows, roles);
    let analysis = Analysis {
        summaries,
        flows,
        outcome,
    };
    let mut findings = redirects;
    findings.extend(analysis.outcome.findings.iter().cloned());
    let mut hops_checked = analysis.outcome.hops_checked;
    if let Some(want) = expected {
        findings.extend(check_distribution(&analysis.outcome, want, roles));
    }
    if let Some(e) = expect {
        let (n, f) = e.check(&analysis);
        hops_checked += n;
        findings.extend(f);
    }
    CaptureCheck {
        analysis,
        findings,
        hops_checked,
        unchecked: before.len(),
        other_protocols: other.len(),
    }
}

// ---------------------------------------------------------------------------------------
// expect.toml

/// `expect.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    #[serde(default)]
    hop: Vec<HopFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HopFile {
    point: toml::Spanned<String>,
    #[serde(default)]
    direction: Option<Direction>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    eth: Option<AddrFields>,
    #[serde(default)]
    ipv4: Option<AddrFields>,
    #[serde(default)]
    outer: Option<OuterFields>,
    #[serde(default)]
    tcp: Option<PortFields>,
    #[serde(default)]
    udp: Option<PortFields>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddrFields {
    #[serde(default)]
    src: Option<toml::Spanned<toml::Value>>,
    #[serde(default)]
    dst: Option<toml::Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OuterFields {
    ipv4: AddrFields,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortFields {
    #[serde(default)]
    sport: Option<toml::Spanned<toml::Value>>,
    #[serde(default)]
    dport: Option<toml::Spanned<toml::Value>>,
}

/// What kind of value a field holds, so references resolve to the right thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Mac,
    Ipv4,
    Port,
}

/// One field a hop must have: its path (as in [`ladder::fields`]), the values allowed, and
/// the references they came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldExpectation {
    /// Field path, e.g. `ipv4.src`.
    pub path: String,
    /// Allowed values, formatted as [`ladder::fields`] formats them.
    pub allowed: Vec<String>,
    /// Values allowed only at the given node's points (`rport`).
    pub per_node: BTreeMap<String, Vec<String>>,
    /// The references as written, e.g. `isp:eth1`.
    pub label: String,
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

/// A lab's `expect.toml`, resolved against the lab.
///
/// ```toml
/// [[hop]]
/// point = "rs*:eth0"          # capture points; `*` matches any run of characters
/// direction = "request"       # or "reply"; both when absent
/// note = "the real server sees the ISP's public address as the client"
/// ipv4.src = "isp:eth1"       # one reference, or a list of allowed ones
/// tcp.dport = "rport"
/// ```
///
/// Fields: `eth.src|dst`, `ipv4.src|dst` (innermost header), `outer.ipv4.src|dst` (the
/// tunnel header), `tcp.sport|dport`, `udp.sport|dport`. References only, never literal
/// values: `node:iface` (that interface's first address, or its MAC in `eth.*`), `vip`
/// (the service address), `local` (any FullNAT local address); ports: `vport` (the service
/// port), `rport` (the port of the real server on the hop's node). A point's interface
/// `decap` names where a TUN real server's decapsulated packets appear
/// ([`decap_receive_device`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The file.
    pub file: PathBuf,
    /// Its `[[hop]]`s.
    pub hops: Vec<HopExpectation>,
}

/// 1-based line and column of a byte offset (mirrors the lab loader's locator).
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(start..).map_or(0, |s| s.chars().count()) + 1;
    (line, col)
}

/// What one reference stands for.
enum Resolved {
    /// These values, at every point.
    Values(Vec<String>),
    /// These values at the points of each node.
    PerNode(BTreeMap<String, Vec<String>>),
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    lab: &'a Lab,
    instance: &'a str,
    errors: Vec<SpecError>,
}

impl Ctx<'_> {
    fn error(&mut self, offset: usize, path: String, message: String, help: Option<String>) {
        let (line, col) = line_col(self.text, offset);
        self.errors.push(SpecError {
            file: self.file.to_path_buf(),
            line,
            col,
            path,
            message,
            help,
        });
    }

    fn resolve(
        &mut self,
        path: &str,
        kind: FieldKind,
        value: &toml::Spanned<toml::Value>,
        points: &[String],
        field: &str,
    ) -> Option<FieldExpectation> {
        let start = value.span().start;
        let refs: Vec<String> = match value.get_ref() {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Array(a) if !a.is_empty() => {
                let mut out = Vec::new();
                for v in a {
                    let Some(s) = v.as_str() else {
                        self.error(
                            start,
                            path.to_string(),
                            format!("{field}: every reference is a string, found {v}"),
                            None,
                        );
                        return None;
                    };
                    out.push(s.to_string());
                }
                out
            }
            other => {
                self.error(
                    start,
                    path.to_string(),
                    format!("{field}: expected a reference or a list of them, found {other}"),
                    Some(reference_help(kind).into()),
                );
                return None;
            }
        };
        let mut allowed = Vec::new();
        let mut per_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &refs {
            match self.value_of(kind, r, points) {
                Ok(Resolved::Values(v)) => allowed.extend(v),
                Ok(Resolved::PerNode(m)) => {
                    for (n, v) in m {
                        per_node.entry(n).or_default().extend(v);
                    }
                }
                Err(why) => {
                    self.error(
                        start,
                        path.to_string(),
                        format!("{field}: {why}"),
                        Some(reference_help(kind).into()),
                    );
                    return None;
                }
            }
        }
        allowed.sort();
        allowed.dedup();
        Some(FieldExpectation {
            path: field.to_string(),
            allowed,
            per_node,
            label: refs.join(" or "),
        })
    }

    fn value_of(&self, kind: FieldKind, r: &str, points: &[String]) -> Result<Resolved, String> {
        let svc = self.lab.services.first();
        let no_service = || format!("`{r}` needs a [[service]] in the lab");
        match (kind, r) {
            (FieldKind::Ipv4, "vip") => match svc.map(|s| s.config.key) {
                Some(ServiceKey::Addr { addr, .. }) => Ok(Resolved::Values(vec![addr.to_string()])),
                _ => Err(no_service()),
            },
            (FieldKind::Ipv4, "local") => {
                let l: Vec<String> = svc
                    .map(|s| {
                        s.config
                            .local_addresses
                            .iter()
                            .map(IpAddr::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if l.is_empty() {
                    Err("`local`: the service has no local_addresses".into())
                } else {
                    Ok(Resolved::Values(l))
                }
            }
            (FieldKind::Port, "vport") => match svc.map(|s| s.config.key) {
                Some(ServiceKey::Addr { port, .. }) => Ok(Resolved::Values(vec![port.to_string()])),
                _ => Err(no_service()),
            },
            (FieldKind::Port, "rport") => {
                let svc = svc.ok_or_else(no_service)?;
                let mut per_node = BTreeMap::new();
                for p in points {
                    let node = p.split(':').next().unwrap_or(p);
                    let ports: Vec<String> = svc
                        .real_servers
                        .iter()
                        .filter(|r| r.node.as_deref() == Some(node))
                        .map(|r| r.config.port.to_string())
                        .collect();
                    if ports.is_empty() {
                        return Err(format!("`rport`: {p} is not on a real server"));
                    }
                    per_node.insert(node.to_string(), ports);
                }
                Ok(Resolved::PerNode(per_node))
            }
            (FieldKind::Port, _) => Err(format!("unknown port reference `{r}`")),
            (_, _) => {
                let Some((node, iface)) = r.split_once(':') else {
                    return Err(format!("unknown reference `{r}`"));
                };
                let n = self
                    .lab
                    .node(node)
                    .ok_or_else(|| format!("`{r}`: no node named {node}"))?;
                match kind {
                    FieldKind::Mac => {
                        if self.lab.node_interfaces(node).iter().any(|i| i == iface) {
                            Ok(Resolved::Values(vec![
                                mac(self.instance, node, iface).to_string()
                            ]))
                        } else {
                            Err(format!("`{r}`: {node} has no interface {iface}"))
                        }
                    }
                    _ => n
                        .first_address(iface)
                        .map(|a| Resolved::Values(vec![a.to_string()]))
                        .ok_or_else(|| format!("`{r}`: {node} has no address on {iface}")),
                }
            }
        }
    }
}

fn reference_help(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Mac => "a MAC reference is `node:iface`",
        FieldKind::Ipv4 => "an address reference is `node:iface`, `vip` or `local`",
        FieldKind::Port => "a port reference is `vport` or `rport`",
    }
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

impl Expectations {
    /// Parses and resolves `path` against the lab (`Ok(None)` when the lab has no such
    /// file). Every problem is reported with file, line and column.
    pub fn load(
        path: &Path,
        lab: &Lab,
        instance: &str,
    ) -> Result<Option<Expectations>, SpecErrors> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SpecErrors(vec![SpecError {
                    file: path.to_path_buf(),
                    line: 0,
                    col: 0,
                    path: String::new(),
                    message: format!("cannot read: {e}"),
                    help: None,
                }]))
            }
        };
        Self::parse(path, &text, lab, instance).map(Some)
    }

    /// Parses and resolves expectation text (`file` names it in errors).
    pub fn parse(
        file: &Path,
        text: &str,
        lab: &Lab,
        instance: &str,
    ) -> Result<Expectations, SpecErrors> {
        let mut ctx = Ctx {
            file,
            text,
            lab,
            instance,
            errors: Vec::new(),
        };
        let parsed: ExpectFile = match toml::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                ctx.error(at, String::new(), e.message().trim().to_string(), None);
                return Err(SpecErrors(ctx.errors));
            }
        };
        let all_points = capture_points(lab);
        let mut hops = Vec::new();
        for (i, h) in parsed.hop.iter().enumerate() {
            let at = h.point.span().start;
            let pattern = h.point.get_ref().clone();
            // `decap` stands for the decapsulation device; validate against the one the
            // lab declares (the trial swaps in kernel GRE's gre0 where that applies).
            let declared = match (
                pattern.strip_suffix(":decap"),
                lab.nodes.iter().find_map(|n| n.decap.as_ref()),
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
                    format!("`{pattern}` matches no capture point of lab {}", lab.name),
                    Some(format!("capture points: {}", all_points.join(", "))),
                );
                continue;
            }
            let mut specs: Vec<(FieldKind, &str, &toml::Spanned<toml::Value>)> = Vec::new();
            if let Some(e) = &h.eth {
                specs.extend(e.src.as_ref().map(|v| (FieldKind::Mac, "eth.src", v)));
                specs.extend(e.dst.as_ref().map(|v| (FieldKind::Mac, "eth.dst", v)));
            }
            if let Some(e) = &h.ipv4 {
                specs.extend(e.src.as_ref().map(|v| (FieldKind::Ipv4, "ipv4.src", v)));
                specs.extend(e.dst.as_ref().map(|v| (FieldKind::Ipv4, "ipv4.dst", v)));
            }
            if let Some(o) = &h.outer {
                let e = &o.ipv4;
                specs.extend(
                    e.src
                        .as_ref()
                        .map(|v| (FieldKind::Ipv4, "outer.ipv4.src", v)),
                );
                specs.extend(
                    e.dst
                        .as_ref()
                        .map(|v| (FieldKind::Ipv4, "outer.ipv4.dst", v)),
                );
            }
            for (l4, p) in [("tcp", &h.tcp), ("udp", &h.udp)] {
                if let Some(p) = p {
                    if let Some(v) = &p.sport {
                        specs.push((
                            FieldKind::Port,
                            if l4 == "tcp" {
                                "tcp.sport"
                            } else {
                                "udp.sport"
                            },
                            v,
                        ));
                    }
                    if let Some(v) = &p.dport {
                        specs.push((
                            FieldKind::Port,
                            if l4 == "tcp" {
                                "tcp.dport"
                            } else {
                                "udp.dport"
                            },
                            v,
                        ));
                    }
                }
            }
            if specs.is_empty() {
                ctx.error(
                    at,
                    path.clone(),
                    "the hop expects no field".into(),
                    Some("add e.g. ipv4.src = \"node:iface\"".into()),
                );
                continue;
            }
            let mut fields = Vec::new();
            for (kind, field, v) in specs {
                if let Some(f) = ctx.resolve(&format!("{path}.{field}"), kind, v, &points, field) {
                    fields.push(f);
                }
            }
            hops.push(HopExpectation {
                point: pattern,
                direction: h.direction,
                note: h.note.clone(),
                fields,
                line: line_col(text, at).0,
            });
        }
        if ctx.errors.is_empty() {
            Ok(Expectations {
                file: file.to_path_buf(),
                hops,
            })
        } else {
            Err(SpecErrors(ctx.errors))
        }
    }

    /// Checks every sighting of every flow to the service against the expectations:
    /// returns the hops compared and the findings (rule `expect.hop`, or `expect.seen`
    /// when an expectation matched no sighting at all).
    pub fn check(&self, analysis: &Analysis) -> (usize, Vec<Finding>) {
        let service: Vec<usize> = analysis.outcome.assignments.keys().copied().collect();
        let mut checked = 0;
        let mut findings = Vec::new();
        for e in &self.hops {
            let mut seen = 0;
            let mut failed = 0;
            for flow in analysis.flows.iter().filter(|f| service.contains(&f.id)) {
                for h in &flow.hops {
                    if !point_matches(&e.point, &h.point)
                        || e.direction.is_some_and(|d| d != h.direction)
                    {
                        continue;
                    }
                    seen += 1;
                    let have = ladder::fields(&h.summary);
                    let node = h.point.split(':').next().unwrap_or(&h.point);
                    let mut diffs = Vec::new();
                    for f in &e.fields {
                        let actual = have
                            .iter()
                            .find(|(k, _)| *k == f.path)
                            .map_or_else(|| "absent".to_string(), |(_, v)| v.clone());
                        let mut allowed = f.allowed.clone();
                        allowed.extend(f.per_node.get(node).into_iter().flatten().cloned());
                        if !allowed.contains(&actual) {
                            diffs.push(FieldDiff {
                                path: f.path.clone(),
                                expected: allowed.join(" or "),
                                expected_label: Some(f.label.clone()),
                                actual,
                            });
                        }
                    }
                    if diffs.is_empty() {
                        continue;
                    }
                    failed += 1;
                    if failed <= MAX_FINDINGS_PER_EXPECTATION {
                        findings.push(Finding {
                            rule: "expect.hop".into(),
                            point: h.point.clone(),
                            frames: vec![h.frame],
                            flow: Some(flow.id),
                            packet: Some(h.packet + 1),
                            message: self.describe(e),
                            diffs,
                        });
                    }
                }
            }
            checked += seen;
            if failed > MAX_FINDINGS_PER_EXPECTATION {
                findings.push(Finding {
                    rule: "expect.hop".into(),
                    point: e.point.clone(),
                    frames: Vec::new(),
                    flow: None,
                    packet: None,
                    message: format!(
                        "{}: {} more sightings differ",
                        self.describe(e),
                        failed - MAX_FINDINGS_PER_EXPECTATION
                    ),
                    diffs: Vec::new(),
                });
            }
            if seen == 0 {
                findings.push(Finding {
                    rule: "expect.seen".into(),
                    point: e.point.clone(),
                    frames: Vec::new(),
                    flow: None,
                    packet: None,
                    message: format!(
                        "{}: no flow to the service was seen there",
                        self.describe(e)
                    ),
                    diffs: vec![FieldDiff {
                        path: "sightings".into(),
                        expected: "at least 1".into(),
                        expected_label: None,
                        actual: "0".into(),
                    }],
                });
            }
        }
        (checked, findings)
    }

    fn describe(&self, e: &HopExpectation) -> String {
        let dir = match e.direction {
            Some(Direction::Request) => "requests",
            Some(Direction::Reply) => "replies",
            None => "packets",
        };
        let mut s = format!(
            "{}:{}: {dir} at {} must have {}",
            self.file.display(),
            e.line,
            e.point,
            e.fields
                .iter()
                .map(|f| format!("{} = {}", f.path, f.label))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(n) = &e.note {
            s.push_str(&format!(" ({n})"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvslab_spec::Mode;

    /// The first two connections of a real `userspace::nat` trial (instance `u-nat`), cut
    /// with `editcap -r capture.pcapng out 1-155` right before the third connection's SYN.
    const NAT_CAPTURE: &[u8] = include_bytes!("../tests/fixtures/nat-userspace-2flows.pcapng");

    fn labs() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs")
    }

    fn nat_lab() -> Lab {
        lvslab_spec::load_lab(&labs().join("nat/lab.toml"), &[]).expect("the nat lab loads")
    }

    fn nat_capture() -> Capture {
        Capture::from_pcapng(NAT_CAPTURE).expect("the fixture is pcapng")
    }

    #[test]
    fn roles_come_from_the_lab_model() {
        let lab = nat_lab();
        let r = roles(&lab, "u-nat").expect("roles");
        let addr = |n: &str, i: &str| lab.node(n).and_then(|n| n.first_address(i));
        assert_eq!(r.mode, Mode::Nat);
        assert_eq!(Some(IpAddr::V4(r.vip)), addr("director", "eth0"));
        assert_eq!(r.vport, 80);
        assert_eq!(r.proto, 6);
        assert_eq!(r.director.node, "director");
        assert_eq!(
            r.director.macs.get("director:eth0"),
            Some(&mac_of("u-nat", "director", "eth0"))
        );
        let names: Vec<&str> = r.real_servers.iter().map(|s| s.point.as_str()).collect();
        assert_eq!(names, ["rs1:eth0", "rs2:eth0", "rs3:eth0"]);
        assert_eq!(Some(IpAddr::V4(r.real_servers[0].rip)), addr("rs1", "eth0"));
        assert_eq!(r.real_servers[0].port, 8080);
        // The client, and the ISP that masquerades it.
        assert!(r
            .client_addrs
            .iter()
            .any(|a| Some(IpAddr::V4(*a)) == addr("client", "eth0")));
        assert!(r
            .client_addrs
            .iter()
            .any(|a| Some(IpAddr::V4(*a)) == addr("isp", "eth1")));
    }

    #[test]
    fn a_real_nat_capture_passes_the_nat_rules_and_the_lab_expectations() {
        let lab = nat_lab();
        let r = roles(&lab, "u-nat").expect("roles");
        let e = Expectations::load(&labs().join("nat").join(EXPECT_FILE), &lab, "u-nat")
            .expect("expect.toml parses")
            .expect("the nat lab has an expect.toml");
        let c = check_capture(&nat_capture(), &capture_points(&lab), &r, Some(&e), None);
        assert_eq!(c.findings, Vec::<Finding>::new());
        assert_eq!(c.analysis.outcome.flows_checked, 2);
        assert!(c.hops_checked > c.analysis.outcome.hops_checked);
    }

    #[test]
    fn dr_roles_on_a_nat_capture_fail_with_the_fields_nat_rewrote() {
        let lab = nat_lab();
        let mut r = roles(&lab, "u-nat").expect("roles");
        r.mode = Mode::Dr;
        let c = check_capture(&nat_capture(), &capture_points(&lab), &r, None, None);
        let rips: Vec<String> = r.real_servers.iter().map(|s| s.rip.to_string()).collect();
        // DR leaves the destination alone: the NAT director rewrote it to a real server.
        let dst = c
            .findings
            .iter()
            .filter(|f| f.rule == "dr.request")
            .flat_map(|f| &f.diffs)
            .find(|d| d.path == "ipv4.dst")
            .expect("a dr.request finding on ipv4.dst");
        assert_eq!(dst.expected, r.vip.to_string());
        assert!(rips.contains(&dst.actual), "{dst}");
        // …and the port: 80 became the real server's 8080.
        assert!(c
            .findings
            .iter()
            .flat_map(|f| &f.diffs)
            .any(|d| d.path == "tcp.dport" && d.expected == "80" && d.actual == "8080"));
        // DR replies bypass the director; NAT replies cross it.
        let reply = c
            .findings
            .iter()
            .find(|f| f.rule == "dr.reply")
            .expect("a dr.reply finding");
        assert!(reply.diffs.iter().any(|d| d.path == "route"), "{reply}");
    }

    #[test]
    fn expectations_resolve_references_and_fail_on_the_wrong_source() {
        let lab = nat_lab();
        let text =
            "[[hop]]\npoint = \"rs*:eth0\"\ndirection = \"request\"\nipv4.src = \"client:eth0\"\n";
        let e =
            Expectations::parse(Path::new("x/expect.toml"), text, &lab, "u-nat").expect("valid");
        assert_eq!(e.hops[0].fields[0].allowed, ["192.168.10.1"]);
        let r = roles(&lab, "u-nat").expect("roles");
        let c = check_capture(&nat_capture(), &capture_points(&lab), &r, Some(&e), None);
        let f = c
            .findings
            .iter()
            .find(|f| f.rule == "expect.hop")
            .expect("the masqueraded source is not the client's");
        assert!(f.message.contains("x/expect.toml:2"), "{}", f.message);
        let d = &f.diffs[0];
        assert_eq!(
            (d.path.as_str(), d.actual.as_str()),
            ("ipv4.src", "198.51.100.1")
        );
    }

    #[test]
    fn expect_errors_name_file_line_and_field() {
        let lab = nat_lab();
        let file = Path::new("labs/nat/expect.toml");
        let unknown = "[[hop]]\npoint = \"rs1:eth0\"\nipv4.srcx = \"vip\"\n";
        let e = Expectations::parse(file, unknown, &lab, "u-nat").expect_err("unknown field");
        let text = e.to_string();
        assert!(text.contains("labs/nat/expect.toml:3:"), "{text}");
        assert!(text.contains("srcx"), "{text}");

        let bad_ref = "[[hop]]\npoint = \"rs1:eth0\"\n\nipv4.src = \"nosuch:eth0\"\n";
        let e = Expectations::parse(file, bad_ref, &lab, "u-nat").expect_err("bad reference");
        assert_eq!((e.0[0].line, e.0[0].path.as_str()), (4, "hop[0].ipv4.src"));
        assert!(e.0[0].message.contains("no node named nosuch"), "{e}");

        let literal = "[[hop]]\npoint = \"rs1:eth0\"\nipv4.src = \"192.168.10.1\"\n";
        assert!(Expectations::parse(file, literal, &lab, "u-nat").is_err());

        let nowhere = "[[hop]]\npoint = \"rs9:*\"\nipv4.src = \"vip\"\n";
        let e = Expectations::parse(file, nowhere, &lab, "u-nat").expect_err("no such point");
        assert_eq!((e.0[0].line, e.0[0].col), (2, 9));
    }

    #[test]
    fn every_shipped_expect_file_resolves() {
        for lab_file in crate::trials::lab_files(&labs()) {
            let lab = lvslab_spec::load_lab(&lab_file, &[]).expect("lab loads");
            let path = lab_file.with_file_name(EXPECT_FILE);
            Expectations::load(&path, &lab, "u-x").unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn declared_capture_points_are_the_ones_captured() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../labs/dr/lab.toml");
        let text = std::fs::read_to_string(&root).expect("dr lab")
            + "\n[capture]\npoints = [\"rs1:*\", \"director:lo\", \"client:eth0\"]\n";
        let lab = lvslab_spec::parse_lab(&root, &text, &[]).expect("dr lab with capture points");
        assert_eq!(
            capture_points(&lab),
            ["client:eth0", "director:lo", "rs1:eth0"]
        );
        let all = lvslab_spec::load_lab(&root, &[]).expect("dr lab");
        assert!(capture_points(&all).iter().all(|p| !p.ends_with(":lo")));
        // client 1, isp 2, firewall 2, director 1, rs1..rs3 1 each.
        assert_eq!(capture_points(&all).len(), 9);
    }

    #[test]
    fn globs_match_whole_points() {
        assert!(point_matches("rs*:eth0", "rs12:eth0"));
        assert!(point_matches("*:tunl0", "rs1:tunl0"));
        assert!(!point_matches("rs*:eth0", "rs1:eth1"));
        assert!(!point_matches("rs1:eth0", "rs1:eth00"));
        assert!(point_matches("rs1:eth0", "rs1:eth0"));
    }
}
