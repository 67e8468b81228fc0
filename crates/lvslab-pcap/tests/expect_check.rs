//! A lab's expectations against decoded flows: every sighting at a matching point must
//! carry the expected fields; findings name the file and line of the expectation, the
//! field, the allowed and the actual value.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use lvslab_pcap::{
    analyse, Analysis, CheckExpectations, CorrelateOptions, Director, Encap, Mode, RealServer,
    Roles,
};
use lvslab_spec::expect::{Expectations, FieldExpectation, HeaderField, HopExpectation};
use lvslab_spec::Direction;

fn roles() -> Roles {
    Roles {
        mode: Mode::Nat,
        tun_encap: Encap::Ipip,
        proto: 6,
        vip: ip(VIP),
        vport: 80,
        director: Director {
            node: "director".into(),
            dip: ip(DIP),
            macs: BTreeMap::from([
                ("director:eth0".to_string(), mac(MAC_DIR0)),
                ("director:eth1".to_string(), mac(MAC_DIR1)),
            ]),
        },
        real_servers: vec![RealServer {
            name: "rs1".into(),
            point: "rs1:eth0".into(),
            rip: ip(RIP1),
            port: 8080,
            mac: Some(mac(MAC_RS1)),
            tunnel_src: None,
        }],
        local_addrs: Vec::new(),
        client_addrs: vec![ip(CLIENT)],
    }
}

/// `flows` NAT connections (SYN, SYN-ACK) to rs1, from client ports 40000, 40001, ….
fn nat(flows: u16) -> Analysis {
    let mut steps = Vec::new();
    for k in 0..flows {
        let c = (CLIENT, 40000 + k);
        let cisn = 1000 + u32::from(k) * 10_000;
        let syn = Pkt::tcp(c, (VIP, 80), cisn).syn().ttl(63).id(100 + k);
        let syn_out = syn.clone().dst(RIP1, 8080).ttl(62).macs(MAC_DIR1, MAC_RS1);
        let synack = Pkt::tcp((RIP1, 8080), c, 500_000 + u32::from(k) * 10_000)
            .syn()
            .ack(cisn + 1)
            .id(200 + k)
            .macs(MAC_RS1, MAC_DIR1);
        let synack_out = synack
            .clone()
            .src(VIP, 80)
            .ttl(63)
            .macs(MAC_DIR0, MAC_ROUTER);
        steps.extend([
            ("director:eth0", syn),
            ("director:eth1", syn_out.clone()),
            ("rs1:eth0", syn_out),
            ("rs1:eth0", synack.clone()),
            ("director:eth1", synack),
            ("director:eth0", synack_out),
        ]);
    }
    let cap = Cap::see_all(&steps).cap;
    analyse(&[cap], &roles(), &CorrelateOptions::default())
}

fn field(field: HeaderField, allowed: &[&str], label: &str) -> FieldExpectation {
    FieldExpectation {
        field,
        allowed: allowed.iter().map(|s| s.to_string()).collect(),
        per_node: BTreeMap::new(),
        label: label.into(),
    }
}

fn expect(
    point: &str,
    direction: Option<Direction>,
    fields: Vec<FieldExpectation>,
) -> Expectations {
    Expectations {
        file: PathBuf::from("labs/x/expect.toml"),
        hops: vec![HopExpectation {
            point: point.into(),
            direction,
            note: Some("why".into()),
            fields,
            line: 3,
        }],
    }
}

#[test]
fn matching_sightings_pass_and_are_counted() {
    let analysis = nat(2);
    assert!(
        analysis.outcome.findings.is_empty(),
        "{:?}",
        analysis.outcome.findings
    );
    let mut rport = field(HeaderField::TcpDport, &[], "rport");
    rport.per_node.insert("rs1".into(), vec!["8080".into()]);
    let e = expect(
        "rs*:eth0",
        Some(Direction::Request),
        vec![
            field(HeaderField::Ipv4Dst, &["192.168.80.11"], "rs1:eth0"),
            rport,
        ],
    );
    let (checked, findings) = e.check(&analysis);
    assert_eq!(findings, []);
    // One request sighting per flow at rs1:eth0.
    assert_eq!(checked, 2);
    // Without a direction, replies are checked too (and the reply's destination differs).
    let both = expect(
        "rs1:eth0",
        None,
        vec![field(
            HeaderField::Ipv4Src,
            &["192.168.80.11", "198.51.100.7"],
            "rs1:eth0 or client:eth0",
        )],
    );
    assert_eq!(both.check(&analysis), (4, Vec::new()));
}

#[test]
fn a_wrong_field_is_a_finding_naming_the_expectation() {
    let e = expect(
        "rs1:eth0",
        Some(Direction::Request),
        vec![field(HeaderField::Ipv4Src, &["192.168.80.66"], "vip")],
    );
    let (checked, findings) = e.check(&nat(1));
    assert_eq!(checked, 1);
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = &findings[0];
    assert_eq!(
        (f.rule.as_str(), f.point.as_str(), f.flow, f.packet),
        ("expect.hop", "rs1:eth0", Some(1), Some(1))
    );
    assert_eq!(
        f.message,
        "labs/x/expect.toml:3: requests at rs1:eth0 must have ipv4.src = vip (why)"
    );
    let d = &f.diffs[0];
    assert_eq!(
        (
            d.path.as_str(),
            d.expected.as_str(),
            d.expected_label.as_deref(),
            d.actual.as_str()
        ),
        ("ipv4.src", "192.168.80.66", Some("vip"), "198.51.100.7")
    );
    // A field the packet lacks is `absent`.
    let e = expect(
        "rs1:eth0",
        None,
        vec![field(
            HeaderField::OuterIpv4Src,
            &["192.168.80.10"],
            "director:eth0",
        )],
    );
    let (_, findings) = e.check(&nat(1));
    assert!(
        findings.iter().all(|f| f.diffs[0].actual == "absent"),
        "{findings:?}"
    );
}

#[test]
fn an_expectation_no_flow_reaches_is_reported() {
    let e = expect(
        "rs2:eth0",
        Some(Direction::Reply),
        vec![field(HeaderField::Ipv4Src, &["192.168.80.12"], "rs2:eth0")],
    );
    let (checked, findings) = e.check(&nat(1));
    assert_eq!(checked, 0);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule, "expect.seen");
    assert_eq!(findings[0].message, "labs/x/expect.toml:3: replies at rs2:eth0 must have ipv4.src = rs2:eth0 (why): no flow to the service was seen there");
}

#[test]
fn many_differing_sightings_are_counted_after_the_first_few() {
    let flows = lvslab_pcap::expect_check::MAX_FINDINGS_PER_EXPECTATION + 2;
    let e = expect(
        "rs1:eth0",
        Some(Direction::Request),
        vec![field(HeaderField::TcpDport, &["80"], "vport")],
    );
    let (checked, findings) = e.check(&nat(flows as u16));
    assert_eq!(checked, flows);
    assert_eq!(
        findings.len(),
        lvslab_pcap::expect_check::MAX_FINDINGS_PER_EXPECTATION + 1
    );
    let last = findings.last().expect("summary");
    assert!(
        last.message.ends_with(": 2 more sightings differ"),
        "{}",
        last.message
    );
    assert!(last.flow.is_none() && last.diffs.is_empty());
}
