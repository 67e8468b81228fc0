//! The shipped labs parse, and say what the article says.

use std::net::IpAddr;
use std::path::PathBuf;

use lvslab_spec::lb::{Encap, ForwardMethod, Scheduler, ServiceKey};
use lvslab_spec::model::{Lab, Mode, Role};
use lvslab_spec::{lab_path, load_lab};

fn labs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs")
}

fn lab(name: &str, params: &[(&str, &str)]) -> Lab {
    let p: Vec<(String, String)> = params
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    match load_lab(&lab_path(&labs_dir(), name), &p) {
        Ok(l) => l,
        Err(e) => panic!("lab {name} does not validate:\n{e}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn weights(l: &Lab) -> Vec<(IpAddr, u16, u32, ForwardMethod)> {
    l.services[0]
        .real_servers
        .iter()
        .map(|r| {
            (
                r.config.addr,
                r.config.port,
                r.config.weight,
                r.config.method,
            )
        })
        .collect()
}

#[test]
fn nat_lab_is_the_articles_first_example() {
    let l = lab("nat", &[]);
    assert_eq!(l.mode, Mode::Nat);
    assert_eq!(l.services.len(), 1);
    let s = &l.services[0];
    assert_eq!(s.config.scheduler, Scheduler::Wrr);
    assert!(
        matches!(s.config.key, ServiceKey::Addr { addr, port: 80, .. } if addr == ip("192.168.80.10"))
    );
    assert_eq!(
        weights(&l),
        vec![
            (ip("192.168.80.11"), 8080, 3, ForwardMethod::Nat),
            (ip("192.168.80.12"), 8080, 2, ForwardMethod::Nat),
            (ip("192.168.80.13"), 8080, 1, ForwardMethod::Nat),
        ]
    );
    let rs: Vec<_> = s
        .real_servers
        .iter()
        .map(|r| r.node.clone().unwrap_or_default())
        .collect();
    assert_eq!(rs, ["rs1", "rs2", "rs3"]);
    // The real servers' gateway is the director.
    let dir = l.node("director").map(|n| n.first_address("eth0"));
    for n in ["rs1", "rs2", "rs3"] {
        let node = l.node(n).expect("node");
        assert_eq!(node.routes[0].via, dir.flatten());
    }
    assert_eq!(
        l.label_of(&ip("192.168.80.11")).as_deref(),
        Some("rs1:eth0")
    );
}

#[test]
fn dr_lab_hides_the_vip_on_real_servers() {
    let l = lab("dr", &[]);
    assert_eq!(l.mode, Mode::Dr);
    let vip = ip("192.168.80.66");
    for n in ["rs1", "rs2", "rs3"] {
        let node = l.node(n).expect("node");
        assert_eq!(node.role, Role::RealServer);
        assert!(node.interfaces["lo"].iter().any(|p| p.addr == vip));
        for key in [
            "net.ipv4.conf.all.arp_ignore",
            "net.ipv4.conf.lo.arp_ignore",
        ] {
            assert!(
                node.sysctls.contains(&(key.to_string(), "1".to_string())),
                "{n} lacks {key}=1"
            );
        }
    }
    // The VIP is named after the director, where it is not hidden either... it is on lo
    // everywhere, so the first holder (the director) names it.
    assert_eq!(l.label_of(&vip).as_deref(), Some("director:lo"));
    assert!(weights(&l)
        .iter()
        .all(|w| w.3 == ForwardMethod::Dr && w.1 == 80));
}

#[test]
fn tun_lab_encapsulation_is_a_parameter() {
    let gre = lab("tun", &[]);
    assert_eq!(gre.params["encap"], "gre");
    assert!(gre.services[0]
        .real_servers
        .iter()
        .all(|r| r.config.tun_type == Encap::Gre && r.config.method == ForwardMethod::Tunnel));
    let ipip = lab("tun", &[("encap", "ipip")]);
    assert!(ipip.services[0]
        .real_servers
        .iter()
        .all(|r| r.config.tun_type == Encap::Ipip));
    let rs1 = ipip.node("rs1").expect("rs1");
    assert_eq!(rs1.decap.as_ref().map(|d| d.device.as_str()), Some("tunl0"));
    assert!(rs1
        .sysctls
        .contains(&("net.ipv4.conf.tunl0.rp_filter".into(), "0".into())));
}

#[test]
fn tun_lab_rejects_an_unknown_encapsulation() {
    let err = load_lab(
        &lab_path(&labs_dir(), "tun"),
        &[("encap".into(), "vxlan".into())],
    )
    .expect_err("vxlan is not allowed");
    let text = err.to_string();
    assert!(
        text.contains("--param encap") && text.contains("allowed: gre, ipip"),
        "{text}"
    );
}

#[test]
fn fullnat_lab_pool_is_outside_the_vip_network() {
    let l = lab("fullnat", &[]);
    let s = &l.services[0];
    assert_eq!(
        s.config.local_addresses,
        vec![ip("10.10.0.101"), ip("10.10.0.102")]
    );
    let ServiceKey::Addr { addr: vip, .. } = s.config.key else {
        panic!("addr service")
    };
    assert!(s.config.local_addresses.iter().all(|a| !matches!((a, vip), (IpAddr::V4(a), IpAddr::V4(v)) if a.octets()[..3] == v.octets()[..3])));
    assert!(weights(&l)
        .iter()
        .all(|w| w.3 == ForwardMethod::FullNat && w.1 == 8080));
}

#[test]
fn every_lab_uses_only_documentation_and_private_addresses() {
    for name in ["nat", "dr", "tun", "fullnat"] {
        let l = lab(name, &[]);
        for n in &l.nodes {
            for p in n.interfaces.values().flatten() {
                let IpAddr::V4(a) = p.addr else {
                    panic!("IPv4 only")
                };
                let o = a.octets();
                let doc = matches!(
                    (o[0], o[1], o[2]),
                    (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
                );
                let private = o[0] == 10
                    || (o[0] == 172 && (16..32).contains(&o[1]))
                    || (o[0] == 192 && o[1] == 168);
                assert!(
                    doc || private,
                    "{name}: {}:{p} is neither RFC 5737 nor private",
                    n.name
                );
            }
        }
    }
}

#[test]
fn graph_shows_where_replies_go() {
    use lvslab_spec::graph::{render, GraphFormat};
    let nat = render(&lab("nat", &[]), GraphFormat::Mermaid);
    assert!(nat.contains("rs1 -.->|replies| director"), "{nat}");
    let dr = render(&lab("dr", &[]), GraphFormat::Dot);
    assert!(
        dr.contains("\"rs1\" -- \"firewall\" [label=\"replies\", style=dashed]"),
        "{dr}"
    );
    assert!(dr.contains("VIP tcp 192.168.80.66:80 wrr"), "{dr}");
}

#[test]
fn declared_capture_points_are_the_ones_captured() {
    let file = labs_dir().join("dr/lab.toml");
    let text = std::fs::read_to_string(&file).expect("dr lab")
        + "\n[capture]\npoints = [\"rs1:*\", \"director:lo\", \"client:eth0\"]\n";
    let declared = lvslab_spec::parse_lab(&file, &text, &[]).expect("dr lab with capture points");
    // Client side first; `rs1:*` is every interface of rs1 but `lo`.
    assert_eq!(
        declared.points_to_capture(),
        ["client:eth0", "director:lo", "rs1:eth0"]
    );
    let all = lab("dr", &[]);
    assert!(all.points_to_capture().iter().all(|p| !p.ends_with(":lo")));
    // client 1, isp 2, firewall 2, director 1, rs1..rs3 1 each.
    assert_eq!(all.points_to_capture().len(), 9);
}
