//! The renderers on a run with one failing and one ignored trial.

use lvslab_pcap::correlate::Direction;
use lvslab_pcap::{FieldDiff, Finding, FlowView, LadderRow};

use super::*;
use crate::diagnose::Diagnosis;
use crate::outcome::{Check, Failure, TrialOutcome};
use crate::packets::PacketReport;

fn run() -> RunReport {
    let finding = Finding {
        rule: "dr.request".into(),
        point: "director:eth0".into(),
        frames: vec![1, 2],
        flow: Some(1),
        packet: Some(1),
        message: "the director rewrites only the MACs in DR".into(),
        diffs: vec![FieldDiff {
            path: "ipv4.dst".into(),
            expected: "192.168.80.66".into(),
            expected_label: Some("unchanged".into()),
            actual: "192.168.80.11".into(),
        }],
    };
    let row = |frame, point: &str, changed: Vec<(&str, &str, &str)>| LadderRow {
        packet: 0,
        direction: Direction::Request,
        point: point.into(),
        frame,
        t_us: 10 * frame,
        text: "198.51.100.7:40000 > 192.168.80.66:80 S".into(),
        changed: changed
            .into_iter()
            .map(|(a, b, c)| (a.into(), b.into(), c.into()))
            .collect(),
    };
    let mut failed = TrialOutcome::new("userspace::dr", "dr", "userspace", &[]);
    failed.duration_ms = 1500;
    failed.checks = 4;
    failed.fail(Failure::from_finding(&finding));
    failed.packets = Some(PacketReport {
        packets: 3,
        hops_checked: 1,
        captures: vec!["captures/r1/dr/userspace/capture.pcapng".into()],
        findings: vec![finding],
        flows: vec![FlowView {
            id: 1,
            label: "tcp 198.51.100.7:40000 → 192.168.80.66:80".into(),
            rows: vec![
                row(1, "director:eth0", vec![]),
                row(
                    2,
                    "director:eth0",
                    vec![
                        ("ipv4.dst", "192.168.80.66", "192.168.80.11"),
                        ("ipv4.ttl", "63", "62"),
                    ],
                ),
            ],
        }],
        errors: Vec::new(),
    });
    failed.diagnosis = vec![Diagnosis {
        cause_id: "dr.rs-answers-arp-for-vip".into(),
        node: "rs1".into(),
        summary: "rs1 answers ARP for the VIP".into(),
        evidence: vec!["rs1: net.ipv4.conf.all.arp_ignore = 0".into()],
        likelihood: 90,
    }];
    let mut ignored = TrialOutcome::new("kernel::tun", "tun", "kernel", &[]);
    ignored.status = Status::Ignored {
        reason: "kernel has no ipip <module>".into(),
    };
    let mut other = TrialOutcome::new("userspace::nat", "nat", "userspace", &[]);
    other.fail(
        Failure::new(Check::Traffic, "3 of 60 requests failed")
            .at("client")
            .expected_seen("60 answered", "57 answered"),
    );
    RunReport {
        run: "r1".into(),
        trials: vec![failed, ignored, other],
    }
}

#[test]
fn json_round_trips_with_typed_failures() {
    let r = run();
    let text = r.to_json().expect("json");
    assert_eq!(RunReport::from_json(&text).expect("parse"), r);
    assert!(text.contains("\"path\": \"ipv4.dst\""), "{text}");
    assert!(text.contains("\"status\": \"ignored\""), "{text}");
    assert!(text.contains("\"check\": \"hop\""), "{text}");
    assert!(text.contains("\"field\": \"ipv4.dst\""), "{text}");
    assert!(
        text.contains("\"cause_id\": \"dr.rs-answers-arp-for-vip\""),
        "{text}"
    );
}

#[test]
fn junit_has_one_testcase_per_trial_with_failure_text() {
    let x = render_junit(&run());
    assert_eq!(x.matches("<testcase ").count(), 3, "{x}");
    assert!(
        x.contains("tests=\"3\" failures=\"2\" skipped=\"1\""),
        "{x}"
    );
    assert!(
        x.contains("ipv4.dst: expected 192.168.80.66 (unchanged), got 192.168.80.11"),
        "{x}"
    );
    assert!(x.contains("type=\"lvslab.hop\""), "{x}");
    assert!(x.contains("type=\"lvslab.traffic\""), "{x}");
    assert!(
        x.contains("likely cause [dr.rs-answers-arp-for-vip]"),
        "{x}"
    );
    assert!(
        x.contains("<skipped message=\"kernel has no ipip &lt;module&gt;\"/>"),
        "{x}"
    );
}

#[test]
fn html_is_self_contained_and_highlights_changes() {
    let h = render_html(&run());
    assert!(h.starts_with("<!DOCTYPE html>"));
    assert!(!h.contains("http://") && !h.contains("https://") && !h.contains("<script"));
    assert!(
        h.contains("<span class=\"changed mono\">ipv4.dst: 192.168.80.66 → 192.168.80.11</span>"),
        "{h}"
    );
    assert!(h.contains("kernel has no ipip &lt;module&gt;"));
    assert!(h.contains("expected 60 answered, seen 57 answered"), "{h}");
    assert!(h.contains("dr.rs-answers-arp-for-vip"), "{h}");
}

#[test]
fn terminal_table() {
    let t = render_terminal(&run());
    let expected = "\
lab  trial      result                                checks  packets  time
---  ---------  ------------------------------------  ------  -------  -----
dr   userspace  FAILED (1)                            4       3        1.50s
tun  kernel     ignored: kernel has no ipip <module>  0       0        0.00s
nat  userspace  FAILED (1)                            0       0        0.00s
";
    assert!(t.starts_with(expected), "got:\n{t}\nexpected:\n{expected}");
    assert!(t.contains("0 passed, 2 failed, 1 ignored"));
    assert!(
        t.contains("userspace::dr:\n  dr.request at director:eth0 (flow 1, packet 1, frames 1, 2)"),
        "{t}"
    );
    assert!(
        t.contains("likely cause [dr.rs-answers-arp-for-vip]"),
        "{t}"
    );
}

#[test]
fn write_all_creates_the_three_files() {
    let dir = std::env::temp_dir().join(format!("lvslab-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    run().write_all(&dir).expect("write");
    for f in ["report.json", "junit.xml", "report.html"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
