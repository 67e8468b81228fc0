//! The one path trials take ([`check_trial`]) on the first two connections of a real
//! `userspace::nat` trial: roles from the lab model, the NAT rules and the lab's
//! expectations hold; the DR rules and a wrong expectation fail with the right fields.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use lvslab_pcap::{check_trial, roles_of, Capture, Finding};
use lvslab_spec::expect::Expectations;
use lvslab_spec::model::Lab;
use lvslab_spec::{MacAddr, Mode};

/// The first two connections of a real `userspace::nat` trial (instance `u-nat`), cut
/// with `editcap -r capture.pcapng out 1-155` right before the third connection's SYN.
const NAT_CAPTURE: &[u8] = include_bytes!("fixtures/nat-userspace-2flows.pcapng");

fn labs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../labs")
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
    let r = roles_of(&lab, "u-nat").expect("roles");
    let addr = |n: &str, i: &str| lab.node(n).and_then(|n| n.first_address(i));
    assert_eq!(r.mode, Mode::Nat);
    assert_eq!(Some(IpAddr::V4(r.vip)), addr("director", "eth0"));
    assert_eq!(r.vport, 80);
    assert_eq!(r.proto, 6);
    assert_eq!(r.director.node, "director");
    assert_eq!(
        r.director.macs.get("director:eth0"),
        Some(&MacAddr::of_interface("u-nat", "director", "eth0"))
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
    let r = roles_of(&lab, "u-nat").expect("roles");
    let e = Expectations::load(
        &labs().join("nat").join(lvslab_spec::expect::EXPECT_FILE),
        &lab,
        "u-nat",
    )
    .expect("expect.toml parses")
    .expect("the nat lab has an expect.toml");
    let c = check_trial(&nat_capture(), &lab.points_to_capture(), &r, Some(&e), None);
    assert_eq!(c.findings, Vec::<Finding>::new());
    assert_eq!(c.analysis.outcome.flows_checked, 2);
    assert!(c.hops_checked > c.analysis.outcome.hops_checked);
}

#[test]
fn dr_roles_on_a_nat_capture_fail_with_the_fields_nat_rewrote() {
    let lab = nat_lab();
    let mut r = roles_of(&lab, "u-nat").expect("roles");
    r.mode = Mode::Dr;
    let c = check_trial(&nat_capture(), &lab.points_to_capture(), &r, None, None);
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
    let e = Expectations::parse(Path::new("x/expect.toml"), text, &lab, "u-nat").expect("valid");
    assert_eq!(e.hops[0].fields[0].allowed, ["192.168.10.1"]);
    let r = roles_of(&lab, "u-nat").expect("roles");
    let c = check_trial(&nat_capture(), &lab.points_to_capture(), &r, Some(&e), None);
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
