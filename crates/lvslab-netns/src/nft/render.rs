//! The model printed as nft syntax, for `lvslab plan` and for people.
//!
//! The text is what `nft -nyp list ruleset` prints for the same table (numeric
//! priorities and protocols, hexadecimal raw values, one blank line between chains),
//! so the two compare line by line. Names need no quoting: [`Name`] admits only
//! characters nft's identifiers are made of. Interface names are always written as
//! nft quoted strings, which [`IfName`] guarantees can hold them.

use std::fmt::Write as _;

use super::model::{Family, Hook, IfName, Match, Name, Policy, PortField, Rule, Statement, Table};

/// The table, as nft lists it.
pub fn table(table: &Table) -> String {
    let mut out = format!("table {} {} {{\n", table.family(), table.name());
    for (i, chain) in table.chains().iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "\tchain {} {{", chain.name());
        if let Some(base) = chain.base() {
            let device = match &base.hook {
                Hook::Ingress(d) => format!(" device {}", quoted(d)),
                _ => String::new(),
            };
            let policy = match base.policy {
                Policy::Accept => "accept",
                Policy::Drop => "drop",
            };
            let _ = writeln!(
                out,
                "\t\ttype {} hook {}{device} priority {}; policy {policy};",
                base.chain_type.name(),
                base.hook.name(),
                base.priority
            );
        }
        for r in chain.rules() {
            let _ = writeln!(out, "\t\t{}", rule(table.family(), r));
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
    out
}

/// An `nft -f` script that does what [`crate::nft::apply`] does: the table replaced in
/// one transaction, whether or not it existed.
pub fn replace_script(t: &Table) -> String {
    format!("{}{}", delete_script(t.family(), t.name()), table(t))
}

/// An `nft -f` script that removes a table, whether or not it exists.
pub fn delete_script(family: Family, name: &Name) -> String {
    format!("table {family} {name} {{}}\ndelete table {family} {name}\n")
}

/// An interface name as an nft quoted string.
pub fn quoted(name: &IfName) -> String {
    format!("\"{name}\"")
}

fn not(negate: bool) -> &'static str {
    if negate {
        "!= "
    } else {
        ""
    }
}

fn set_text<T: ToString>(items: impl ExactSizeIterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    if items.len() == 1 {
        items.concat()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

/// One rule's text: its matches, then its statement.
pub fn rule(family: Family, rule: &Rule) -> String {
    let mut parts: Vec<String> = rule.matches().iter().map(match_text).collect();
    parts.push(statement_text(family, rule.statement()));
    parts.join(" ")
}

fn match_text(m: &Match) -> String {
    match m {
        Match::Saddr { prefix, negate } => format!("ip saddr {}{prefix}", not(*negate)),
        Match::Daddr { prefix, negate } => format!("ip daddr {}{prefix}", not(*negate)),
        Match::DaddrIn { addrs, negate } => {
            format!("ip daddr {}{}", not(*negate), set_text(addrs.iter()))
        }
        Match::IpProtocol(p) => format!("ip protocol {p}"),
        Match::L4Proto(p) => format!("meta l4proto {p}"),
        Match::Port {
            protocol,
            field,
            port,
        } => {
            let field = match field {
                PortField::Sport => "sport",
                PortField::Dport => "dport",
            };
            format!("{protocol} {field} {port}")
        }
        Match::IcmpType(types) => format!("icmp type {}", set_text(types.iter())),
        Match::Iifname { name, negate } => format!("iifname {}{}", not(*negate), quoted(name)),
        Match::Oifname { name, negate } => format!("oifname {}{}", not(*negate), quoted(name)),
        Match::Raw {
            base,
            offset,
            len,
            value,
        } => format!("@{},{offset},{len} {value:#x}", base.keyword()),
    }
}

fn statement_text(family: Family, s: &Statement) -> String {
    let (kind, to) = match s {
        Statement::Accept => return "accept".into(),
        Statement::Drop => return "drop".into(),
        Statement::Return => return "return".into(),
        Statement::Jump(chain) => return format!("jump {chain}"),
        Statement::Masquerade => return "masquerade".into(),
        Statement::Snat(to) => ("snat", to),
        Statement::Dnat(to) => ("dnat", to),
    };
    // In an inet table NAT must say which family its addresses are.
    let family = if family == Family::Inet { " ip" } else { "" };
    let mut text = format!("{kind}{family} to {}", to.first());
    if let Some(last) = to.last() {
        let _ = write!(text, "-{last}");
    }
    if let Some(port) = to.port() {
        let _ = write!(text, ":{port}");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use lvslab_spec::lb::Protocol;

    use super::*;
    use crate::nft::model::{BaseChain, Chain, Ipv4Prefix, NatTo, PayloadBase};

    fn n(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    #[test]
    fn a_nat_table_prints_as_nft_lists_it() {
        let ifname = IfName::new("eth1").expect("ifname");
        let masq = Rule::new(
            vec![
                Match::Saddr {
                    prefix: Ipv4Prefix::new("192.168.10.0".parse().expect("addr"), 24)
                        .expect("prefix"),
                    negate: false,
                },
                Match::Daddr {
                    prefix: Ipv4Prefix::host("10.0.0.1".parse().expect("addr")),
                    negate: true,
                },
                Match::Oifname {
                    name: ifname,
                    negate: false,
                },
            ],
            Statement::Masquerade,
        )
        .expect("rule");
        let dnat = Rule::new(
            vec![Match::Port {
                protocol: Protocol::Udp,
                field: PortField::Dport,
                port: 53,
            }],
            Statement::Dnat(NatTo::addr("192.168.80.10".parse().expect("addr")).with_port(5353)),
        )
        .expect("rule");
        let t = Table::new(
            Family::Ip,
            n("lvslab"),
            vec![
                Chain::new(n("prerouting"), Some(BaseChain::dstnat()), vec![dnat]),
                Chain::new(n("postrouting"), Some(BaseChain::srcnat()), vec![masq]),
            ],
        )
        .expect("table");
        assert_eq!(
            table(&t),
            "table ip lvslab {\n\
             \tchain prerouting {\n\
             \t\ttype nat hook prerouting priority -100; policy accept;\n\
             \t\tudp dport 53 dnat to 192.168.80.10:5353\n\
             \t}\n\
             \n\
             \tchain postrouting {\n\
             \t\ttype nat hook postrouting priority 100; policy accept;\n\
             \t\tip saddr 192.168.10.0/24 ip daddr != 10.0.0.1 oifname \"eth1\" masquerade\n\
             \t}\n\
             }\n"
        );
        assert!(replace_script(&t)
            .starts_with("table ip lvslab {}\ndelete table ip lvslab\ntable ip lvslab {\n"));
    }

    #[test]
    fn netdev_rules_print_sets_raw_values_and_the_device() {
        let addrs: BTreeSet<_> = ["203.0.113.10", "10.0.0.1"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        let r = Rule::new(
            vec![
                Match::DaddrIn {
                    addrs,
                    negate: true,
                },
                Match::IcmpType([3u8, 11].into_iter().collect()),
                Match::raw(PayloadBase::Transport, 240, 16, 8080).expect("raw"),
            ],
            Statement::Drop,
        )
        .expect("rule");
        assert_eq!(
            rule(Family::Netdev, &r),
            "ip daddr != { 10.0.0.1, 203.0.113.10 } icmp type { 3, 11 } @th,240,16 0x1f90 drop"
        );
        let dev = IfName::new("e$(x)").expect("ifname");
        let t = Table::new(
            Family::Netdev,
            n("lvslab_engine"),
            vec![Chain::new(
                n("ingress_0"),
                Some(BaseChain::ingress(dev)),
                vec![r],
            )],
        )
        .expect("table");
        assert!(
            table(&t)
                .contains("type filter hook ingress device \"e$(x)\" priority 0; policy accept;"),
            "{}",
            table(&t)
        );
    }
}
