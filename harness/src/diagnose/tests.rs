//! The diagnosis rules on recorded evidence and on broken labs described in code.

use super::*;
use lvslab_netns::MacAddr;
use lvslab_netns::{AddressInfo, LinkInfo, NeighbourInfo, RouteInfo};
use lvslab_spec::lb::Protocol;
use lvslab_spec::model::Prefix;

fn lab(name: &str) -> Lab {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../labs")
        .join(name)
        .join("lab.toml");
    lvslab_spec::load_lab(&path, &[]).expect("shipped lab loads")
}

/// Evidence as the lab model says the kernel state should be: what a healthy build
/// reads back (addresses, on-link and configured routes, sysctls, links up).
fn model_evidence(lab: &Lab) -> Evidence {
    let mut nodes = Vec::new();
    let mut mac_seq = 1u8;
    for n in &lab.nodes {
        let mut ev = NodeEvidence {
            node: n.name.clone(),
            ..NodeEvidence::default()
        };
        ev.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
        for iface in lab.node_interfaces(&n.name) {
            let tunnel = n.decap.as_ref().is_some_and(|d| d.device == iface);
            ev.links.push(LinkInfo {
                name: iface.clone(),
                ifindex: 0,
                kind: if tunnel { "tun" } else { "veth" }.into(),
                mac: (!tunnel).then_some(MacAddr([2, 0, 0, 0, 0, mac_seq])),
                mtu: 1500,
                up: true,
                master: None,
            });
            mac_seq += 1;
        }
        for (iface, prefixes) in &n.interfaces {
            for p in prefixes {
                ev.addresses.push(AddressInfo {
                    iface: iface.clone(),
                    addr: p.addr,
                    prefix: p.len,
                    scope: "universe".into(),
                });
                if p.len < 32 && iface != "lo" {
                    ev.routes.push(route(Some(p.network()), p.len, None, iface));
                }
            }
        }
        for r in &n.routes {
            let oif = r.dev.clone().unwrap_or_else(|| {
                r.via
                    .and_then(|gw| {
                        ev.addresses
                            .iter()
                            .find(|a| {
                                Prefix {
                                    addr: a.addr,
                                    len: a.prefix,
                                }
                                .contains(&gw)
                                    && a.prefix < 32
                            })
                            .map(|a| a.iface.clone())
                    })
                    .unwrap_or_default()
            });
            ev.routes.push(route(
                r.dest.map(|d| d.network()),
                r.dest.map_or(0, |d| d.len),
                r.via,
                &oif,
            ));
        }
        for (k, v) in &n.sysctls {
            ev.sysctls.insert(k.clone(), v.clone());
        }
        nodes.push(ev);
    }
    Evidence {
        nodes,
        packets: Vec::new(),
        dataplane: Some(Dataplane::Kernel),
    }
}

fn route(dst: Option<IpAddr>, prefix: u8, gw: Option<IpAddr>, oif: &str) -> RouteInfo {
    RouteInfo {
        table: 254,
        family: "inet".into(),
        kind: "unicast".into(),
        dst,
        prefix,
        gateway: gw,
        oif: Some(oif.into()),
        prefsrc: None,
        scope: "universe".into(),
        protocol: "static".into(),
        metric: None,
    }
}

fn node_mut<'a>(ev: &'a mut Evidence, name: &str) -> &'a mut NodeEvidence {
    ev.nodes
        .iter_mut()
        .find(|n| n.node == name)
        .expect("node in evidence")
}

fn causes(d: &[Diagnosis]) -> Vec<(&str, &str)> {
    d.iter()
        .map(|d| (d.cause_id.as_str(), d.node.as_str()))
        .collect()
}

#[test]
fn healthy_shipped_labs_have_no_diagnosis() {
    for name in ["nat", "dr", "tun", "fullnat"] {
        let l = lab(name);
        let d = diagnose(&l, &model_evidence(&l));
        assert!(d.is_empty(), "{name}: {}", render(&d));
    }
}

#[test]
fn dr_vip_missing_on_a_real_server() {
    let l = lab("dr");
    let mut ev = model_evidence(&l);
    let vip = vips(&l)[0];
    node_mut(&mut ev, "rs1").addresses.retain(|a| a.addr != vip);
    let d = diagnose(&l, &ev);
    assert_eq!(
        causes(&d)[0],
        ("dr.rs-missing-vip", "rs1"),
        "{}",
        render(&d)
    );
    assert!(d[0].summary.contains(&format!("{vip}/32 dev lo")));
}

#[test]
fn dr_arp_ignore_zero_is_found_and_confirmed_by_a_neighbour_entry() {
    let l = lab("dr");
    let mut ev = model_evidence(&l);
    let vip = vips(&l)[0];
    let rs1 = node_mut(&mut ev, "rs1");
    for k in ["all", "lo"] {
        rs1.sysctls
            .insert(format!("net.ipv4.conf.{k}.arp_ignore"), "0".into());
    }
    let d = diagnose(&l, &ev);
    assert_eq!(causes(&d)[0], ("dr.rs-answers-arp-for-vip", "rs1"));
    assert_eq!(d[0].likelihood, 70);
    let mac = ev.node("rs1").expect("rs1").links[0].mac;
    node_mut(&mut ev, "firewall")
        .neighbours
        .push(NeighbourInfo {
            iface: "eth1".into(),
            ip: vip,
            mac,
            state: "reachable".into(),
        });
    let d = diagnose(&l, &ev);
    assert_eq!(d[0].likelihood, 95);
    assert!(d[0].evidence.iter().any(|e| e.contains("firewall maps")));
}

#[test]
fn nat_real_server_routing_around_the_director() {
    let l = lab("nat");
    let mut ev = model_evidence(&l);
    let fw = l.node("firewall").and_then(|n| n.first_address("eth1"));
    let rs2 = node_mut(&mut ev, "rs2");
    for r in rs2.routes.iter_mut().filter(|r| r.dst.is_none()) {
        r.gateway = fw;
    }
    let d = diagnose(&l, &ev);
    assert_eq!(causes(&d)[0], ("nat.rs-gateway-not-director", "rs2"));
    assert!(d[0].summary.contains("firewall"), "{}", d[0].summary);
}

#[test]
fn forwarding_off_on_the_nat_director_depends_on_the_dataplane() {
    let l = lab("nat");
    let mut ev = model_evidence(&l);
    node_mut(&mut ev, "director")
        .sysctls
        .insert("net.ipv4.ip_forward".into(), "0".into());
    let d = diagnose(&l, &ev);
    assert_eq!(causes(&d)[0], ("forwarding-off", "director"));
    assert_eq!(d[0].likelihood, 88);
    let d = diagnose(&l, &ev.with_dataplane(Dataplane::Userspace));
    assert_eq!(d[0].likelihood, 25);
}

#[test]
fn tun_rp_filter_on_the_decapsulation_device() {
    let l = lab("tun");
    let mut ev = model_evidence(&l);
    node_mut(&mut ev, "rs2")
        .sysctls
        .insert("net.ipv4.conf.all.rp_filter".into(), "1".into());
    let d = diagnose(&l, &ev);
    assert_eq!(
        causes(&d)[0],
        ("tun.rp-filter-drops-decapsulated", "rs2"),
        "{}",
        render(&d)
    );
    // Loose mode passes: the default route leads back.
    node_mut(&mut ev, "rs2")
        .sysctls
        .insert("net.ipv4.conf.all.rp_filter".into(), "2".into());
    assert!(diagnose(&l, &ev).is_empty());
}

#[test]
fn dnat_to_the_director_instead_of_the_vip() {
    let mut l = lab("dr");
    let dip = l.node("director").and_then(|n| n.first_address("eth0"));
    let fw = l
        .nodes
        .iter_mut()
        .find(|n| n.name == "firewall")
        .expect("firewall");
    for r in &mut fw.nat {
        if let NatRule::Dnat { to, .. } = r {
            *to = dip.expect("director address");
        }
    }
    let d = diagnose(&l, &model_evidence(&l));
    assert_eq!(causes(&d)[0], ("fw.dnat-not-vip", "firewall"));
}

#[test]
fn director_without_the_vip_matters_on_the_kernel_dataplane() {
    let l = lab("dr");
    let mut ev = model_evidence(&l);
    let vip = vips(&l)[0];
    node_mut(&mut ev, "director")
        .addresses
        .retain(|a| a.addr != vip);
    let d = diagnose(&l, &ev);
    assert_eq!(causes(&d)[0], ("director.vip-not-local", "director"));
    assert_eq!(d[0].likelihood, 85);
    let d = diagnose(&l, &ev.with_dataplane(Dataplane::Userspace));
    assert_eq!(d[0].likelihood, 15);
}

#[test]
fn render_names_cause_and_evidence_or_says_none_matched() {
    let d = Diagnosis {
        cause_id: "forwarding-off".into(),
        node: "isp".into(),
        summary: "IP forwarding is off on isp".into(),
        evidence: vec!["isp: net.ipv4.ip_forward = 0".into()],
        likelihood: 88,
    };
    assert_eq!(
        render(&[d]),
        "likely cause [forwarding-off]: IP forwarding is off on isp\n    evidence: isp: \
         net.ipv4.ip_forward = 0"
    );
    assert!(render(&[]).contains("none of the classic LVS mistakes"));
}

#[test]
fn dnat_of_other_ports_is_not_judged() {
    let mut l = lab("nat");
    let fw = l
        .nodes
        .iter_mut()
        .find(|n| n.name == "firewall")
        .expect("firewall");
    let Some(NatRule::Dnat {
        destination, to, ..
    }) = fw.nat.first().cloned()
    else {
        panic!("the nat lab's firewall DNATs");
    };
    fw.nat.push(NatRule::Dnat {
        protocol: Protocol::Udp,
        destination,
        port: 53,
        to,
        to_port: 53,
    });
    assert!(diagnose(&l, &model_evidence(&l)).is_empty());
}

#[test]
fn captured_arp_reply_from_a_real_server_names_it() {
    let l = lab("dr");
    let ev = model_evidence(&l);
    let vip = match vips(&l)[0] {
        IpAddr::V4(v) => v,
        IpAddr::V6(_) => unreachable!("the dr lab is IPv4"),
    };
    let rs_mac = ev.node("rs3").expect("rs3").links[0].mac.expect("mac").0;
    let reply = PacketSummary {
        point: "firewall:eth1".into(),
        frame: 1,
        ts_ns: 0,
        len: 42,
        direction: None,
        eth: None,
        arp: Some(lvslab_pcap::decode::ArpSummary {
            operation: 2,
            sender_mac: lvslab_spec::MacAddr(rs_mac),
            sender_ip: vip,
            target_mac: lvslab_spec::MacAddr([0; 6]),
            target_ip: vip,
        }),
        ip: Vec::new(),
        l4: None,
        csum_not_ready: false,
        malformed: None,
    };
    let d = diagnose(&l, &ev.with_packets(&[reply]));
    assert_eq!(causes(&d)[0], ("dr.rs-answers-arp-for-vip", "rs3"));
}
