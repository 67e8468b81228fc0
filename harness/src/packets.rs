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
use lvslab_pcap::expect_check::CheckExpectations;
use lvslab_pcap::rules::{Director, RealServer, Roles};
use lvslab_pcap::FlowView;
use lvslab_pcap::{
    check_distribution, correlate, decode_capture, ladder, rules, Analysis, Capture,
    CorrelateOptions, FieldDiff, Finding, Flow,
};
use lvslab_spec::lb::ServiceKey;
use lvslab_spec::model::{Lab, NatRule};
use lvslab_spec::MacAddr;
use serde::{Deserialize, Serialize};

use crate::trials::TrialSpec;
use lvslab_spec::Dataplane;

/// Environment variable naming the capture root (what the VM passes to a kernel trial).
pub const CAPTURE_DIR_ENV: &str = "LVSLAB_CAPTURE_DIR";

/// The capture file of a trial, in its capture directory.
pub const CAPTURE_FILE: &str = "capture.pcapng";

/// The trial's packet results, in its capture directory.
pub const REPORT_FILE: &str = "packets.json";

/// The lab's own packet expectations (parsed by lvslab-spec, checked by lvslab-pcap).
pub use lvslab_spec::expect::{Expectations, EXPECT_FILE};

/// How long draining waits for frames still in flight after the last request.
const SETTLE: Duration = Duration::from_millis(300);

/// Pause before arming: longer than a loopback-speed FIN exchange by far, short next to
/// a trial.
const QUIET_BEFORE_ARMING: Duration = Duration::from_millis(200);

/// Flows kept in a report besides those with findings: enough to show a healthy ladder
/// without making the HTML report one long table.
const SAMPLE_FLOWS: usize = 3;

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
/// node but `lo` ([`Lab::points_to_capture`]).
pub fn capture_points(lab: &Lab) -> Vec<String> {
    lab.points_to_capture()
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
        let mut expect = Expectations::load(&Expectations::path_for(lab), lab, instance)
            .map_err(|e| e.to_string())?;
        if let (Some(e), Some(dev)) = (expect.as_mut(), decap_receive_device(lab, d)) {
            e.receive_decap_on(&dev);
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
        let (n, f) = CheckExpectations::check(e, &analysis);
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
}
