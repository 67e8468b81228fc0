//! Every nftables table lvslab builds for the shipped labs (the nodes' NAT tables, the
//! userspace engine's netdev tables on directors and tunnel endpoints, kernel FullNAT's
//! SNAT table), installed over netlink and cross-checked with the `nft` program: nft
//! lists the rendered text and the same bytecode, and the rendered text applied with
//! `nft -f` reads back exactly like the netlink build. Needs root and nftables; uses
//! anonymous namespaces only.

#[path = "../../crates/lvslab-netns/tests/support/nft_cli.rs"]
mod nft_cli;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use lvslab_dataplane::director::Director;
use lvslab_dataplane::engine::view::{director_ruleset, endpoint_ruleset, ServiceView};
use lvslab_harness::verify::verify_state;
use lvslab_instance::balancer::kernel_fullnat_ruleset;
use lvslab_netns::apply::{build, Naming};
use lvslab_netns::nft::{self, Family, Hook, Name, Table};
use lvslab_netns::plan::{plan, DecapImpl, PlanOptions, Step};
use lvslab_netns::{MacAddr, Netns};
use lvslab_spec::lb::LoadBalancer;
use lvslab_spec::model::{Lab, Role};

const LABS: [&str; 4] = ["nat", "dr", "tun", "fullnat"];

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create network namespaces and must run as root"
    );
}

fn load(name: &str) -> Lab {
    let labs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../labs");
    lvslab_spec::load_lab(&lvslab_spec::lab_path(&labs, name), &[])
        .unwrap_or_else(|e| panic!("lab {name}: {e:?}"))
}

fn v4(addrs: impl Iterator<Item = IpAddr>) -> Vec<Ipv4Addr> {
    addrs
        .filter_map(|a| match a {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// Every table lvslab installs for `lab`, named by where it goes.
fn tables_of(lab: &Lab) -> Vec<(String, Table)> {
    let mut out = Vec::new();
    let p = plan(
        lab,
        &PlanOptions {
            instance: lab.name.clone(),
            decap: DecapImpl::Userspace,
            run: None,
        },
    )
    .expect("plan");
    for step in &p.steps {
        if let Step::Nft { ns, table } = step {
            out.push((format!("{}: NAT of {ns}", lab.name), table.clone()));
        }
    }
    for svc in &lab.services {
        if let Some(t) = kernel_fullnat_ruleset(svc).expect("FullNAT table") {
            out.push((
                format!("{}: kernel FullNAT of {}", lab.name, svc.director),
                t,
            ));
        }
    }
    for node in lab
        .nodes
        .iter()
        .filter(|n| lab.services.iter().any(|s| s.director == n.name))
    {
        let mut director = Director::default();
        for svc in lab.services.iter().filter(|s| s.director == node.name) {
            director.add_service(&svc.config).expect("add service");
            for rs in &svc.real_servers {
                director
                    .add_dest(&svc.config.key, &rs.config)
                    .expect("add real server");
            }
        }
        let view = ServiceView::from_listing(&director.list().expect("list"));
        let ifaces: Vec<String> = node
            .interfaces
            .keys()
            .filter(|i| *i != "lo")
            .cloned()
            .collect();
        let mut local = v4(node.interfaces.values().flatten().map(|p| p.addr));
        local.push(Ipv4Addr::LOCALHOST);
        let table = director_ruleset(&view, &ifaces, &local).expect("engine table");
        out.push((format!("{}: engine of {}", lab.name, node.name), table));
    }
    for node in lab.nodes.iter().filter(|n| n.role == Role::RealServer) {
        let Some(decap) = &node.decap else {
            continue;
        };
        let Some((iface, prefixes)) = node
            .interfaces
            .iter()
            .find(|(name, addrs)| *name != "lo" && **name != decap.device && !addrs.is_empty())
        else {
            continue;
        };
        let addrs = v4(prefixes.iter().map(|p| p.addr));
        let table =
            endpoint_ruleset(iface, decap.encap.ip_protocol(), &addrs).expect("endpoint table");
        out.push((
            format!("{}: tunnel endpoint of {}", lab.name, node.name),
            table,
        ));
    }
    out
}

/// A namespace with a veth end for every device `table` hooks (kernels before 6.10
/// refuse netdev chains on devices that do not exist), and the namespace of the peers.
fn namespace_for(table: &Table) -> (Netns, Netns) {
    let ns = Netns::new_anonymous().expect("namespace");
    let peers = Netns::new_anonymous().expect("peer namespace");
    let h = ns.netlink().expect("netlink");
    for (k, chain) in table.chains().iter().enumerate() {
        if let Some(Hook::Ingress(device)) = chain.base().map(|b| &b.hook) {
            if h.link(device.as_str()).is_err() {
                let peer = format!("peer{k}");
                h.add_veth(
                    device.as_str(),
                    MacAddr::local_from_key(&format!("nft-rulesets/{device}")),
                    &peers,
                    &peer,
                    MacAddr::local_from_key(&format!("nft-rulesets/{peer}")),
                )
                .expect("veth for the hooked device");
            }
        }
    }
    (ns, peers)
}

#[test]
fn every_lab_table_reads_back_as_nft_sees_it() {
    require_root();
    let mut checked = Vec::new();
    for name in LABS {
        for (what, table) in tables_of(&load(name)) {
            let (ours, _ours_peers) = namespace_for(&table);
            let (theirs, _theirs_peers) = namespace_for(&table);
            nft::apply(&ours, &table).unwrap_or_else(|e| panic!("{what}: {e}"));
            nft_cli::apply_text(&theirs, &nft::render::replace_script(&table));

            let listing = nft::list(&ours).expect("list");
            assert_eq!(
                listing.tables,
                [nft::expected(&table)],
                "{what}:\n{listing}"
            );
            assert_eq!(
                nft_cli::listed_text(&ours),
                nft_cli::normalise(&nft::render::table(&table)),
                "{what}: nft lists another text than lvslab renders"
            );
            assert_eq!(
                nft_cli::debug_listing(&ours),
                nft_cli::netlink_listing(&listing),
                "{what}: nft sees other bytecode than lvslab lists"
            );
            assert_eq!(
                nft::list(&theirs).expect("list"),
                listing,
                "{what}: nft -f built another ruleset"
            );
            checked.push(what);
        }
    }
    // Today's labs hold every kind: NAT on ISPs, firewalls and routers, an engine per
    // director, tunnel endpoints on the TUN lab's real servers, kernel FullNAT's SNAT.
    for kind in [
        "NAT of",
        "engine of",
        "tunnel endpoint of",
        "kernel FullNAT of",
    ] {
        assert!(
            checked.iter().any(|w| w.contains(kind)),
            "no {kind} table among {checked:#?}"
        );
    }
}

#[test]
fn verify_reads_back_a_built_labs_nat_tables_and_misses_a_removed_one() {
    require_root();
    let lab = load("nat");
    let p = plan(
        &lab,
        &PlanOptions {
            instance: "nft-verify".into(),
            decap: DecapImpl::Userspace,
            run: None,
        },
    )
    .expect("plan");
    let inst = build(&p, Naming::Anonymous, &AtomicBool::new(false)).expect("build the lab");
    let built = verify_state(&inst);
    let firewall = inst.ns("firewall").expect("firewall namespace");
    nft::delete_table(firewall, Family::Ip, &Name::new("lvslab").expect("name"))
        .expect("remove the firewall's NAT table");
    let after = verify_state(&inst);
    let errors = inst.teardown();
    assert!(errors.ok(), "teardown: {errors:?}");
    assert!(
        built.is_empty(),
        "a fresh build differs from its plan: {built:#?}"
    );
    assert_eq!(after.len(), 1, "{after:#?}");
    assert!(
        after[0].contains("firewall: nft table ip lvslab differs from the plan")
            && after[0].contains("no such table"),
        "{}",
        after[0]
    );
}
