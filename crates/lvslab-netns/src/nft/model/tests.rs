//! Validation of the model's constructors.

use std::collections::BTreeSet;

use lvslab_spec::lb::Protocol;

use super::*;

fn a(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

#[test]
fn names_refuse_what_nft_syntax_cannot_write() {
    assert!(Name::new("lvslab_engine").is_ok());
    assert!(Name::new("ingress_eth0.100").is_ok());
    for bad in ["", "1abc", "a b", "a;b", "x\"y", "a}", "é", "a\nb"] {
        let err = Name::new(bad).expect_err(bad).to_string();
        assert!(err.contains(&format!("{bad:?}")), "{err}");
    }
    assert!(Name::new(&"a".repeat(255)).is_ok());
    assert!(Name::new(&"a".repeat(256)).is_err());
}

#[test]
fn interface_names_follow_the_kernel_and_nft_quoting() {
    assert!(IfName::new("eth0").is_ok());
    assert!(IfName::new("e$(touch_x)").is_ok(), "inert once quoted");
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a:b",
        "a b",
        "tab\there",
        "q\"uote",
        "nul\0",
        "sixteen-bytes-xx",
    ] {
        let err = IfName::new(bad).expect_err(bad).to_string();
        assert!(err.contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn prefixes_clear_host_bits() {
    let p = Ipv4Prefix::new(a("10.1.2.3"), 8).expect("valid");
    assert_eq!(
        (p.addr(), p.prefix_len(), p.mask()),
        (a("10.0.0.0"), 8, 0xff00_0000)
    );
    assert_eq!(Ipv4Prefix::new(a("10.1.2.3"), 0).expect("valid").mask(), 0);
    assert!(Ipv4Prefix::new(a("10.1.2.3"), 33).is_err());
    assert_eq!(Ipv4Prefix::host(a("10.1.2.3")).to_string(), "10.1.2.3");
}

#[test]
fn raw_matches_must_fit() {
    assert!(Match::raw(PayloadBase::Transport, 240, 16, 8080).is_ok());
    assert!(Match::raw(PayloadBase::Transport, 240, 16, 0x1_0000).is_err());
    assert!(Match::raw(PayloadBase::Network, 0, 0, 0).is_err());
    assert!(Match::raw(PayloadBase::Network, 0, 65, 0).is_err());
    assert!(Match::raw(PayloadBase::Link, 0, 64, u64::MAX).is_ok());
    assert!(Match::raw(PayloadBase::Link, u32::MAX, 8, 0).is_err());
    assert!(Match::raw(PayloadBase::Link, 255 * 8, 8, 0).is_ok());
    assert!(Match::raw(PayloadBase::Link, 256 * 8, 8, 0).is_err());
}

#[test]
fn rules_refuse_contradicting_protocols_and_portless_nat_ports() {
    let tcp80 = Match::Port {
        protocol: Protocol::Tcp,
        field: PortField::Dport,
        port: 80,
    };
    assert!(Rule::new(vec![Match::IpProtocol(17), tcp80.clone()], Statement::Drop).is_err());
    assert!(Rule::new(vec![Match::IpProtocol(6), tcp80.clone()], Statement::Drop).is_ok());
    let to = NatTo::addr(a("10.0.0.1")).with_port(8080);
    assert!(Rule::new(vec![], Statement::Dnat(to)).is_err());
    assert!(Rule::new(vec![tcp80], Statement::Dnat(to)).is_ok());
    assert!(Rule::new(
        vec![Match::DaddrIn {
            addrs: BTreeSet::new(),
            negate: false
        }],
        Statement::Drop
    )
    .is_err());
}

#[test]
fn tables_check_hooks_jumps_and_nat_placement() {
    let name = |s: &str| Name::new(s).expect("valid name");
    let masq = Rule::new(vec![], Statement::Masquerade).expect("rule");
    let pre = Chain::new(name("pre"), Some(BaseChain::dstnat()), vec![masq.clone()]);
    let err = Table::new(Family::Ip, name("t"), vec![pre]).expect_err("masquerade in prerouting");
    assert!(err.to_string().contains("chain pre, rule 1"), "{err}");
    let post = Chain::new(name("post"), Some(BaseChain::srcnat()), vec![masq]);
    assert!(Table::new(Family::Ip, name("t"), vec![post.clone()]).is_ok());
    assert!(Table::new(Family::Netdev, name("t"), vec![post.clone()]).is_err());
    assert!(Table::new(Family::Ip, name("t"), vec![post.clone(), post]).is_err());
    let jump = |to: &str| Rule::new(vec![], Statement::Jump(name(to))).expect("rule");
    let ingress = BaseChain::ingress(IfName::new("eth0").expect("ifname"));
    let from = Chain::new(name("in"), Some(ingress), vec![jump("sub")]);
    let sub = Chain::new(name("sub"), None, vec![]);
    assert!(Table::new(Family::Netdev, name("t"), vec![from.clone(), sub]).is_ok());
    assert!(Table::new(Family::Netdev, name("t"), vec![from]).is_err());
}
