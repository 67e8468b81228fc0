//! nftables over netlink against the kernel and, as an independent cross-check, the `nft`
//! program. Needs root (anonymous namespaces only) and nftables installed.

#[path = "support/nft_cli.rs"]
mod nft_cli;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use lvslab_netns::nft::{
    self, BaseChain, Chain, ChainType, Family, Hook, IfName, Ipv4Prefix, Match, Name, NatTo,
    PayloadBase, Policy, PortField, Rule, Statement, Table,
};
use lvslab_netns::{Error, Netns};
use lvslab_spec::lb::Protocol;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create network namespaces and must run as root"
    );
}

fn a(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn n(s: &str) -> Name {
    Name::new(s).expect("test name")
}

fn rule(matches: Vec<Match>, statement: Statement) -> Rule {
    Rule::new(matches, statement).expect("valid rule")
}

fn port(protocol: Protocol, field: PortField, port: u16) -> Match {
    Match::Port {
        protocol,
        field,
        port,
    }
}

fn raw(base: PayloadBase, offset: u32, len: u32, value: u64) -> Match {
    Match::raw(base, offset, len, value).expect("raw match")
}

/// Every NAT form: DNAT with a port, SNAT to an address, a range, a range with a port,
/// masquerade with prefixes (aligned, masked, negated, /0) and an interface.
fn nat_table() -> Table {
    let pre = vec![
        rule(
            vec![
                Match::Daddr {
                    prefix: Ipv4Prefix::host(a("198.51.100.2")),
                    negate: false,
                },
                port(Protocol::Tcp, PortField::Dport, 80),
            ],
            Statement::Dnat(NatTo::addr(a("192.168.80.10")).with_port(8080)),
        ),
        rule(
            vec![port(Protocol::Udp, PortField::Dport, 53)],
            Statement::Dnat(NatTo::addr(a("192.168.80.10")).with_port(53)),
        ),
    ];
    let post = vec![
        rule(
            vec![
                Match::Saddr {
                    prefix: Ipv4Prefix::new(a("192.168.10.0"), 24).expect("p"),
                    negate: false,
                },
                Match::Daddr {
                    prefix: Ipv4Prefix::new(a("10.0.0.0"), 12).expect("p"),
                    negate: true,
                },
                Match::Oifname {
                    name: IfName::new("lo").expect("if"),
                    negate: false,
                },
            ],
            Statement::Masquerade,
        ),
        rule(
            vec![Match::Saddr {
                prefix: Ipv4Prefix::new(a("10.1.2.0"), 23).expect("p"),
                negate: false,
            }],
            Statement::Snat(NatTo::addr(a("192.0.2.1"))),
        ),
        rule(
            vec![
                Match::Daddr {
                    prefix: Ipv4Prefix::host(a("172.16.20.11")),
                    negate: false,
                },
                port(Protocol::Tcp, PortField::Dport, 8080),
            ],
            Statement::Snat(NatTo::range(a("10.10.0.101"), a("10.10.0.102")).expect("range")),
        ),
        rule(
            vec![
                Match::Saddr {
                    prefix: Ipv4Prefix::new(a("0.0.0.0"), 0).expect("p"),
                    negate: false,
                },
                Match::L4Proto(17),
            ],
            Statement::Snat(
                NatTo::range(a("10.1.0.1"), a("10.1.0.3"))
                    .expect("range")
                    .with_port(1000),
            ),
        ),
    ];
    Table::new(
        Family::Ip,
        n("lvslab"),
        vec![
            Chain::new(n("prerouting"), Some(BaseChain::dstnat()), pre),
            Chain::new(n("postrouting"), Some(BaseChain::srcnat()), post),
        ],
    )
    .expect("nat table")
}

/// The engine's kinds of matches on a device: sets (negated too), raw transport
/// matches, ICMP type sets, protocols, interfaces, link-layer and unaligned raw values.
fn netdev_table() -> Table {
    let set = |addrs: &[&str]| addrs.iter().map(|s| a(s)).collect::<BTreeSet<_>>();
    let rules = vec![
        rule(
            vec![
                Match::Daddr {
                    prefix: Ipv4Prefix::host(a("203.0.113.10")),
                    negate: false,
                },
                port(Protocol::Tcp, PortField::Dport, 80),
            ],
            Statement::Drop,
        ),
        rule(
            vec![
                Match::Saddr {
                    prefix: Ipv4Prefix::host(a("172.16.20.11")),
                    negate: false,
                },
                port(Protocol::Tcp, PortField::Sport, 8080),
                Match::DaddrIn {
                    addrs: set(&["203.0.113.10", "10.0.0.1"]),
                    negate: true,
                },
            ],
            Statement::Drop,
        ),
        rule(
            vec![
                Match::IcmpType([3u8, 4, 11].into_iter().collect()),
                raw(PayloadBase::Transport, 64, 8, 0x45),
                raw(PayloadBase::Transport, 136, 8, 6),
                raw(PayloadBase::Transport, 192, 32, 0xac10_140b),
                raw(PayloadBase::Transport, 240, 16, 8080),
            ],
            Statement::Drop,
        ),
        rule(
            vec![
                Match::DaddrIn {
                    addrs: set(&["198.51.100.1"]),
                    negate: false,
                },
                Match::IpProtocol(47),
            ],
            Statement::Drop,
        ),
        rule(
            vec![
                Match::DaddrIn {
                    addrs: set(&["198.51.100.1", "198.51.100.2", "198.51.100.3"]),
                    negate: false,
                },
                Match::IpProtocol(4),
            ],
            Statement::Drop,
        ),
        rule(
            vec![Match::Iifname {
                name: IfName::new("lo").expect("if"),
                negate: true,
            }],
            Statement::Accept,
        ),
        rule(
            vec![raw(PayloadBase::Link, 0, 48, 0x0102_0304_0506)],
            Statement::Drop,
        ),
        rule(vec![], Statement::Jump(n("sub"))),
    ];
    let sub = vec![rule(
        vec![port(Protocol::Udp, PortField::Dport, 53)],
        Statement::Return,
    )];
    Table::new(
        Family::Netdev,
        n("lvslab_engine"),
        vec![
            Chain::new(
                n("ingress_lo"),
                Some(BaseChain::ingress(IfName::new("lo").expect("if"))),
                rules,
            ),
            Chain::new(n("sub"), None, sub),
        ],
    )
    .expect("netdev table")
}

/// An inet table: a filter chain with a drop policy and the inet dependencies, and NAT.
fn inet_table() -> Table {
    let input = BaseChain {
        chain_type: ChainType::Filter,
        hook: Hook::Input,
        priority: -5,
        policy: Policy::Drop,
    };
    let rules = vec![
        rule(
            vec![
                port(Protocol::Tcp, PortField::Dport, 22),
                Match::Daddr {
                    prefix: Ipv4Prefix::host(a("10.0.0.1")),
                    negate: false,
                },
                Match::Iifname {
                    name: IfName::new("lo").expect("if"),
                    negate: false,
                },
            ],
            Statement::Accept,
        ),
        rule(
            vec![
                Match::IpProtocol(17),
                port(Protocol::Udp, PortField::Sport, 53),
            ],
            Statement::Accept,
        ),
    ];
    // NAT in an inet table names its family (`snat ip to`).
    let post = vec![
        rule(vec![], Statement::Snat(NatTo::addr(a("10.0.0.1")))),
        rule(
            vec![Match::Saddr {
                prefix: Ipv4Prefix::new(a("10.0.0.0"), 8).expect("p"),
                negate: false,
            }],
            Statement::Masquerade,
        ),
    ];
    Table::new(
        Family::Inet,
        n("lvslab_filter"),
        vec![
            Chain::new(n("input"), Some(input), rules),
            Chain::new(n("post"), Some(BaseChain::srcnat()), post),
        ],
    )
    .expect("inet table")
}

/// Applies `tables` over netlink in one namespace and with `nft -f` (their rendered
/// text) in another, and checks: each table lists back as expected; nft's text listing
/// is the rendered text; nft's view of the bytecode is lvslab's listing; and both
/// namespaces list the same.
fn cross_check(tables: &[Table]) {
    let ours = Netns::new_anonymous().expect("namespace");
    let theirs = Netns::new_anonymous().expect("namespace");
    for t in tables {
        nft::apply(&ours, t).unwrap_or_else(|e| panic!("apply {}: {e}", t.name()));
        nft_cli::apply_text(&theirs, &nft::render::replace_script(t));
    }
    let listing = nft::list(&ours).expect("list ours");
    for t in tables {
        assert_eq!(
            listing.table(t.family(), t.name().as_str()),
            Some(&nft::expected(t)),
            "listing of {}:\n{listing}",
            t.name()
        );
    }
    let rendered: String = tables.iter().map(nft::render::table).collect();
    assert_eq!(nft_cli::listed_text(&ours), nft_cli::normalise(&rendered));
    assert_eq!(
        nft_cli::debug_listing(&ours),
        nft_cli::netlink_listing(&listing)
    );
    let via_nft = nft::list(&theirs).expect("list theirs");
    assert_eq!(
        via_nft, listing,
        "nft -f built:\n{via_nft}\nnetlink built:\n{listing}"
    );
}

#[test]
fn nat_tables_cross_check_with_nft() {
    require_root();
    cross_check(&[nat_table()]);
}

#[test]
fn netdev_tables_cross_check_with_nft() {
    require_root();
    cross_check(&[netdev_table()]);
}

#[test]
fn several_tables_of_each_family_cross_check_with_nft() {
    require_root();
    cross_check(&[inet_table(), nat_table(), netdev_table()]);
}

#[test]
fn apply_replaces_a_table_and_a_refused_one_changes_nothing() {
    require_root();
    let ns = Netns::new_anonymous().expect("namespace");
    let first = netdev_table();
    nft::apply(&ns, &first).expect("first version");
    // The same table again, smaller: the old rules and sets are gone, not merged.
    let second = Table::new(
        Family::Netdev,
        n("lvslab_engine"),
        vec![Chain::new(
            n("ingress_lo"),
            Some(BaseChain::ingress(IfName::new("lo").expect("if"))),
            vec![rule(vec![Match::IpProtocol(4)], Statement::Drop)],
        )],
    )
    .expect("table");
    nft::apply(&ns, &second).expect("second version");
    assert_eq!(
        nft::list(&ns).expect("list").tables,
        [nft::expected(&second)]
    );

    // A NAT chain on the forward hook, which NAT does not have: the kernel refuses that
    // command, with its errno, and the whole transaction (the old table's removal
    // included) is undone.
    nft::apply(&ns, &nat_table()).expect("nat table");
    let mut chains = nat_table().chains().to_vec();
    let forward = BaseChain {
        hook: Hook::Forward,
        ..BaseChain::srcnat()
    };
    chains.push(Chain::new(n("forward"), Some(forward), vec![]));
    let broken =
        Table::new(Family::Ip, n("lvslab"), chains).expect("the model leaves this to the kernel");
    match nft::apply(&ns, &broken) {
        Err(Error::NftTransaction {
            command,
            source,
            op,
            ..
        }) => {
            assert_eq!(op, "nft replace table ip lvslab");
            assert_eq!(command, "add chain ip lvslab forward");
            assert_eq!(source.raw_os_error(), Some(libc::EOPNOTSUPP), "{source}");
        }
        other => panic!("expected a refused transaction, got {other:?}"),
    }
    let listing = nft::list(&ns).expect("list");
    assert_eq!(
        listing.tables,
        [nft::expected(&nat_table()), nft::expected(&second)],
        "{listing}"
    );
}

#[test]
fn a_refused_rule_is_named_by_its_position_and_text() {
    require_root();
    let ns = Netns::new_anonymous().expect("namespace");
    // Masquerade in a regular chain passes the model (the kernel checks such chains
    // against their callers) but the kernel refuses it from a filter chain.
    let input = BaseChain {
        chain_type: ChainType::Filter,
        hook: Hook::Input,
        priority: 0,
        policy: Policy::Accept,
    };
    let table = Table::new(
        Family::Ip,
        n("lvslab_bad"),
        vec![
            Chain::new(
                n("input"),
                Some(input),
                vec![rule(vec![], Statement::Jump(n("masq")))],
            ),
            Chain::new(
                n("masq"),
                None,
                vec![rule(vec![Match::IpProtocol(6)], Statement::Masquerade)],
            ),
        ],
    )
    .expect("table");
    let err =
        nft::apply(&ns, &table).expect_err("the kernel refuses masquerade reached from input");
    let text = err.to_string();
    assert_eq!(err.errno(), Some(libc::EOPNOTSUPP), "{text}");
    assert!(
        text.contains("rule 1 of chain ip lvslab_bad masq: ip protocol 6 masquerade"),
        "{text}"
    );
    assert!(nft::list(&ns).expect("list").is_empty(), "nothing applied");
}

#[test]
fn delete_table_is_quiet_about_absent_tables() {
    require_root();
    let ns = Netns::new_anonymous().expect("namespace");
    nft::delete_table(&ns, Family::Netdev, &n("lvslab_engine")).expect("absent table");
    nft::apply(&ns, &nat_table()).expect("apply");
    nft::apply(&ns, &netdev_table()).expect("apply");
    nft::delete_table(&ns, Family::Netdev, &n("lvslab_engine")).expect("present table");
    let listing = nft::list(&ns).expect("list");
    assert_eq!(listing.tables, [nft::expected(&nat_table())], "{listing}");
}

#[test]
fn the_root_namespace_is_listed_but_never_changed() {
    require_root();
    let root = Netns::root().expect("root handle");
    let before = nft::list(&root).expect("list root");
    for err in [
        nft::apply(&root, &nat_table()).err(),
        nft::delete_table(&root, Family::Ip, &n("lvslab")).err(),
    ] {
        assert!(matches!(err, Some(Error::RootIsReadOnly { .. })), "{err:?}");
    }
    assert_eq!(nft::list(&root).expect("list root"), before);
}

#[test]
fn a_large_table_is_one_transaction_with_every_acknowledgement_read() {
    require_root();
    let ns = Netns::new_anonymous().expect("namespace");
    let rules: Vec<Rule> = (0..3000u16)
        .map(|p| {
            rule(
                vec![
                    Match::DaddrIn {
                        addrs: [a("192.0.2.1"), a("192.0.2.2")].into_iter().collect(),
                        negate: false,
                    },
                    port(Protocol::Udp, PortField::Dport, 10_000 + p),
                ],
                Statement::Drop,
            )
        })
        .collect();
    let input = BaseChain {
        chain_type: ChainType::Filter,
        hook: Hook::Input,
        priority: 0,
        policy: Policy::Accept,
    };
    let table = Table::new(
        Family::Ip,
        n("lvslab_large"),
        vec![Chain::new(n("input"), Some(input), rules)],
    )
    .expect("table");
    nft::apply(&ns, &table).expect("a table of 3000 rules and 3000 sets");
    let listing = nft::list(&ns).expect("list");
    assert_eq!(listing.tables, [nft::expected(&table)]);
}
