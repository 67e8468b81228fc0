//! Kernel-facing tests: they create throwaway namespaces and need root.
//!
//! Not skipped without root: they fail, saying why. Every namespace here is anonymous
//! (held by fd) except in the named-namespace tests, which remove what they make.
//!
//! By subject: `building_blocks` (a whole two-namespace lab read back), `rtnl` (route
//! netlink errors, deletions, tunnels, veth creation), `ns` (entering namespaces,
//! snapshots, the read-only root, the feature probe) and `named` (named namespaces).
//! This file holds the helpers they share.

use std::net::IpAddr;
use std::time::Duration;

use lvslab_netns::nft::{self, BaseChain, Chain, ChainType, Family, Hook, Name, Policy};
use lvslab_netns::{MacAddr, Netns};

mod building_blocks;
mod built_labs;
mod droptrace;
mod named;
mod ns;
mod rtnl;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates network namespaces and must run as root (euid 0); \
         run `sudo cargo test -p lvslab-netns` or use the CI script"
    );
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn mac(key: &str) -> MacAddr {
    MacAddr::local_from_key(key)
}

const TIMEOUT: Duration = Duration::from_secs(3);

/// Two namespaces: `a` with veth `va` 192.0.2.1/24; `b` with the peer `vb` enslaved to
/// bridge `br0` holding 192.0.2.2/24, and 198.51.100.1/32 on `lo`. `a` reaches
/// 198.51.100.0/24 via 192.0.2.2.
struct Pair {
    a: Netns,
    b: Netns,
}

fn build_pair(tag: &str) -> Pair {
    let a = Netns::new_anonymous().expect("create namespace a");
    let b = Netns::new_anonymous().expect("create namespace b");
    let ha = a.netlink().expect("netlink a");
    let hb = b.netlink().expect("netlink b");
    ha.add_veth(
        "va",
        mac(&format!("{tag}/a/va")),
        &b,
        "vb",
        mac(&format!("{tag}/b/vb")),
    )
    .expect("veth pair");
    hb.add_bridge("br0", mac(&format!("{tag}/b/br0")))
        .expect("bridge");
    hb.set_master("vb", "br0").expect("enslave vb");
    for (h, iface) in [(&ha, "va"), (&hb, "vb"), (&hb, "br0")] {
        h.set_up(iface).expect("link up");
    }
    ha.add_address("va", ip("192.0.2.1"), 24)
        .expect("address a");
    hb.add_address("br0", ip("192.0.2.2"), 24)
        .expect("address b");
    hb.add_address("lo", ip("198.51.100.1"), 32)
        .expect("address on lo");
    ha.add_route(Some((ip("198.51.100.0"), 24)), Some(ip("192.0.2.2")), None)
        .expect("route a");
    hb.add_route(None, Some(ip("192.0.2.1")), Some("br0"))
        .expect("default route b");
    Pair { a, b }
}

/// `table inet lvslab_test { chain input { type filter hook input priority 0; udp dport
/// PORT drop } }`.
fn udp_drop_table(port: u16) -> nft::Table {
    let rule = nft::Rule::new(
        vec![nft::Match::Port {
            protocol: lvslab_spec::lb::Protocol::Udp,
            field: nft::PortField::Dport,
            port,
        }],
        nft::Statement::Drop,
    )
    .expect("rule");
    let input = BaseChain {
        chain_type: ChainType::Filter,
        hook: Hook::Input,
        priority: 0,
        policy: Policy::Accept,
    };
    nft::Table::new(
        Family::Inet,
        Name::new("lvslab_test").expect("name"),
        vec![Chain::new(
            Name::new("input").expect("name"),
            Some(input),
            vec![rule],
        )],
    )
    .expect("table")
}
