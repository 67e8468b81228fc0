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
//! - hands back a [`PacketReport`], which the trial's outcome (`outcome.json` beside the
//!   pcapng) carries: how `lvslab test` learns what a trial saw, also in the VM.
//!
//! Where captures go: `<root>/<lab>/<dataplane>/`, the root being the one `lvslab test` set
//! ([`set_capture_root`]), else `$LVSLAB_CAPTURE_DIR`, else the workspace's
//! `target/lvslab-captures`. `<lab>` is the lab name followed by `-<value>` per parameter
//! the trial sets, as in instance names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use lvslab_netns::apply::LabInstance;
use lvslab_netns::capture::{CaptureSet, Captured};
use lvslab_pcap::rules::Roles;
use lvslab_pcap::{check_trial, ladder, roles_of, Finding, FlowView};
use lvslab_spec::model::Lab;
use serde::{Deserialize, Serialize};

use crate::error::{io, HarnessError};
use crate::trials::TrialSpec;
use lvslab_spec::Dataplane;

/// Environment variable naming the capture root (what the VM passes to a kernel trial).
pub const CAPTURE_DIR_ENV: &str = "LVSLAB_CAPTURE_DIR";

/// The capture file of a trial, in its capture directory.
pub const CAPTURE_FILE: &str = "capture.pcapng";

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
pub fn prepare_vm(spec: &TrialSpec, opts: &mut lvslab_vm::RunOptions) -> Result<(), HarnessError> {
    let Some(dir) = spec_capture_dir(spec) else {
        return Ok(());
    };
    clear_dir(&dir)?;
    let dir = std::fs::canonicalize(&dir).map_err(io("resolve", &dir))?;
    // `<root>/<lab>/<dataplane>`: a folder made just above always has two parents.
    let root = dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"));
    match &opts.scratch {
        None => opts.scratch = Some(dir.clone()),
        Some(s) if dir.starts_with(s) => {}
        Some(s) => {
            return Err(HarnessError::VmShare {
                shared: s.clone(),
                env: CAPTURE_DIR_ENV,
            })
        }
    }
    opts.env
        .push((CAPTURE_DIR_ENV.into(), root.as_os_str().to_os_string()));
    Ok(())
}

/// Creates `dir` and removes what an earlier run left there.
fn clear_dir(dir: &Path) -> Result<(), HarnessError> {
    std::fs::create_dir_all(dir).map_err(io("create capture folder", dir))?;
    for f in [CAPTURE_FILE, crate::outcome::OUTCOME_FILE] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p).map_err(io("remove", &p))?;
        }
    }
    Ok(())
}

/// What a dataplane trial's captures showed.
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
    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        !self.findings.is_empty() || !self.errors.is_empty()
    }
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
    pub fn arm(lab: &Lab, inst: &LabInstance, d: Dataplane) -> Result<TrialCapture, HarnessError> {
        let instance = &inst.plan.instance;
        let key = instance
            .split_once('-')
            .map_or(instance.as_str(), |(_, k)| k);
        let dir = capture_root().join(key).join(d.name());
        let roles = roles_of(lab, instance)?;
        let mut expect = Expectations::load(&Expectations::path_for(lab), lab, instance)?;
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
            let ns = inst.ns(node).ok_or_else(|| HarnessError::NoNamespace {
                point: p.clone(),
                node: node.to_string(),
            })?;
            at.push((ns, p.clone()));
        }
        let set = CaptureSet::arm(&at)?;
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
    let analysis = check_trial(&captured.capture, points, roles, expect, expected);
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
