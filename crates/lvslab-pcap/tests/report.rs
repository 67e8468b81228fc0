//! Report renderers on a run with one failing and one ignored trial.

mod common;

use std::collections::BTreeMap;

use common::*;
use lvslab_pcap::report::{
    render_html, render_junit, render_terminal, FlowView, RunReport, TrialReport, TrialResult,
};
use lvslab_pcap::{analyse, CorrelateOptions, Director, Encap, Mode, RealServer, Roles};

fn dr_roles() -> Roles {
    Roles {
        mode: Mode::Dr,
        tun_encap: Encap::Ipip,
        proto: 6,
        vip: ip(VIP),
        vport: 80,
        director: Director {
            node: "director".into(),
            dip: ip(DIP),
            macs: BTreeMap::new(),
        },
        real_servers: vec![RealServer {
            name: "rs1".into(),
            point: "rs1:eth0".into(),
            rip: ip(RIP1),
            port: 80,
            mac: Some(mac(MAC_RS1)),
            tunnel_src: None,
        }],
        local_addrs: Vec::new(),
        client_addrs: Vec::new(),
    }
}

fn run() -> RunReport {
    let syn = Pkt::tcp((CLIENT, 40000), (VIP, 80), 1000)
        .syn()
        .ttl(63)
        .id(100);
    // Wrong DR: destination rewritten to the RIP.
    let out = syn.clone().macs(MAC_DIR0, MAC_RS1).ttl(62).dst(RIP1, 80);
    let cap = Cap::see_all(&[
        ("director:eth0", syn),
        ("director:eth0", out.clone()),
        ("rs1:eth0", out),
    ])
    .cap;
    let a = analyse(
        std::slice::from_ref(&cap),
        &dr_roles(),
        &CorrelateOptions::default(),
    );
    let failed = TrialReport {
        lab: "dr".into(),
        dataplane: "userspace".into(),
        scheduler: Some("wrr".into()),
        result: TrialResult::Failed,
        duration_ms: 1500,
        packets: cap.frames.len() as u64,
        hops_checked: a.outcome.hops_checked as u64,
        captures: vec!["captures/r1/dr/userspace/capture.pcapng".into()],
        log: None,
        errors: Vec::new(),
        findings: a.outcome.findings.clone(),
        flows: a.flows.iter().map(FlowView::from_flow).collect(),
    };
    let ignored = TrialReport {
        lab: "tun".into(),
        dataplane: "kernel".into(),
        scheduler: None,
        result: TrialResult::Ignored {
            reason: "kernel has no ipip <module>".into(),
        },
        duration_ms: 0,
        packets: 0,
        hops_checked: 0,
        captures: Vec::new(),
        log: None,
        errors: Vec::new(),
        findings: Vec::new(),
        flows: Vec::new(),
    };
    RunReport {
        run: "r1".into(),
        trials: vec![failed, ignored],
    }
}

#[test]
fn json_round_trips() {
    let r = run();
    let text = r.to_json().expect("json");
    assert_eq!(RunReport::from_json(&text).expect("parse"), r);
    assert!(text.contains("\"path\": \"ipv4.dst\""), "{text}");
    assert!(text.contains("\"status\": \"ignored\""), "{text}");
}

#[test]
fn junit_has_one_testcase_per_trial_with_failure_text() {
    let x = render_junit(&run());
    assert_eq!(x.matches("<testcase ").count(), 2, "{x}");
    assert!(
        x.contains("tests=\"2\" failures=\"1\" skipped=\"1\""),
        "{x}"
    );
    assert!(
        x.contains("ipv4.dst: expected 192.168.80.66 (unchanged), got 192.168.80.11</failure>"),
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
    assert!(
        h.contains("<span class=\"changed mono\">ipv4.ttl: 63 → 62</span>"),
        "{h}"
    );
    assert!(h.contains("kernel has no ipip &lt;module&gt;"));
}

#[test]
fn terminal_table() {
    let t = render_terminal(&run());
    let expected = "\
lab       dataplane  result                                hops checked  packets  time
--------  ---------  ------------------------------------  ------------  -------  -----
dr (wrr)  userspace  FAILED (1)                            1             3        1.50s
tun       kernel     ignored: kernel has no ipip <module>  0             0        0.00s
";
    assert!(t.starts_with(expected), "got:\n{t}\nexpected:\n{expected}");
    assert!(t.contains("0 passed, 1 failed, 1 ignored"));
    assert!(
        t.contains(
            "dr/userspace/wrr:\n  dr.request at director:eth0 (flow 1, packet 1, frames 1, 2)"
        ),
        "{t}"
    );
}

#[test]
fn write_all_creates_the_three_files() {
    let dir = std::env::temp_dir().join(format!("lvslab-pcap-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    run().write_all(&dir).expect("write");
    for f in ["report.json", "junit.xml", "report.html"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
