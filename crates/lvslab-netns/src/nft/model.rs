//! The structured nftables ruleset lvslab installs: a [`Table`] of [`Chain`]s of
//! [`Rule`]s, each rule a list of typed [`Match`]es and one [`Statement`].
//!
//! Every constructor validates what it is given (name lengths and characters, value
//! ranges, protocol dependencies, which statements a chain may hold), so a value that
//! reaches a rule is always well-formed: it can neither inject nft syntax into the
//! rendered text nor surprise the kernel. Fields are private for that reason; the
//! accessors give everything back.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use lvslab_spec::lb::Protocol;
use serde::Serialize;

use crate::error::{Error, Result};

/// Longest table, chain or set name the kernel takes (`NFT_NAME_MAXLEN` less the NUL).
pub const MAX_NAME: usize = 255;
/// Longest interface name (`IFNAMSIZ` less the NUL).
pub const MAX_IFNAME: usize = 15;
/// Widest raw payload match, in bits.
pub const MAX_RAW_BITS: u32 = 64;
/// Furthest byte a raw payload match can start at (the kernel's limit).
pub const MAX_RAW_BYTE_OFFSET: u32 = 255;

fn invalid(what: &str, detail: String) -> Error {
    Error::InvalidArgument {
        op: format!("nft {what}"),
        detail,
    }
}

/// The address family of a table: which hooks it has and which packets it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 only (`ip`).
    Ip,
    /// IPv4 and IPv6 (`inet`).
    Inet,
    /// One device's frames, before the IP stack (`netdev`).
    Netdev,
}

impl Family {
    /// The nft keyword.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Inet => "inet",
            Family::Netdev => "netdev",
        }
    }

    /// `NFPROTO_*`, the family byte of every nf_tables message.
    pub(crate) fn nfproto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Ip => 2,
            Family::Netdev => 5,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A table or chain name: 1 to 255 bytes of ASCII letters, digits, `_`, `.` and `-`,
/// starting with a letter or `_`. The kernel takes more, but nft's own syntax (which
/// `lvslab plan` prints) can write nothing else, since it has no quoting for names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Checks `name` (see the type's doc).
    pub fn new(name: &str) -> Result<Name> {
        let bad = |why: &str| invalid("name", format!("name {name:?} {why}"));
        if name.is_empty() {
            return Err(bad("is empty"));
        }
        if name.len() > MAX_NAME {
            return Err(bad(&format!(
                "is {} bytes; nftables allows at most {MAX_NAME}",
                name.len()
            )));
        }
        let first = name.as_bytes()[0];
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return Err(bad("must start with a letter or '_'"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(bad("may hold only ASCII letters, digits, '_', '.' and '-'"));
        }
        Ok(Name(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An interface name as the kernel accepts it: 1 to 15 bytes, not `.` or `..`, without
/// `/`, `:`, white space or NUL. Control characters and `"` are refused too: nft's quoted
/// strings cannot hold a `"`, and neither belongs in a name a person reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IfName(String);

impl IfName {
    /// Checks `name` (see the type's doc).
    pub fn new(name: &str) -> Result<IfName> {
        let bad = |why: &str| invalid("interface", format!("interface name {name:?} {why}"));
        if name.is_empty() {
            return Err(bad("is empty"));
        }
        if name.len() > MAX_IFNAME {
            return Err(bad(&format!(
                "is {} bytes; the kernel allows at most {MAX_IFNAME}",
                name.len()
            )));
        }
        if name == "." || name == ".." {
            return Err(bad("is reserved"));
        }
        if name
            .chars()
            .any(|c| matches!(c, '/' | ':' | '"') || c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                "contains '/', ':', '\"', white space or a control character",
            ));
        }
        Ok(IfName(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IPv4 prefix; the address is stored with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Prefix {
    /// `addr/len`, `len` at most 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Ipv4Prefix> {
        if len > 32 {
            return Err(invalid(
                "prefix",
                format!("prefix length {len} of {addr} is over 32"),
            ));
        }
        let mask = Self::mask_of(len);
        Ok(Ipv4Prefix {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            len,
        })
    }

    /// One address (`/32`).
    pub fn host(addr: Ipv4Addr) -> Ipv4Prefix {
        Ipv4Prefix { addr, len: 32 }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The netmask as a number.
    pub fn mask(&self) -> u32 {
        Self::mask_of(self.len)
    }

    fn mask_of(len: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 32 {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// Where a raw payload match counts its offset from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadBase {
    /// The link-layer header (`@ll`).
    Link,
    /// The network header (`@nh`).
    Network,
    /// The transport header (`@th`).
    Transport,
}

impl PayloadBase {
    /// The nft keyword after `@`.
    pub fn keyword(self) -> &'static str {
        match self {
            PayloadBase::Link => "ll",
            PayloadBase::Network => "nh",
            PayloadBase::Transport => "th",
        }
    }
}

/// Which header field a [`Match::Port`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortField {
    Sport,
    Dport,
}

/// One condition of a rule. All conditions of a rule must hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "match", content = "value", rename_all = "snake_case")]
pub enum Match {
    /// `ip saddr [!=] PREFIX`.
    Saddr { prefix: Ipv4Prefix, negate: bool },
    /// `ip daddr [!=] PREFIX`.
    Daddr { prefix: Ipv4Prefix, negate: bool },
    /// `ip daddr [!=] { A, B, … }`; never empty.
    DaddrIn {
        addrs: BTreeSet<Ipv4Addr>,
        negate: bool,
    },
    /// `ip protocol N`.
    IpProtocol(u8),
    /// `meta l4proto N`: the transport protocol, whatever the network layer.
    L4Proto(u8),
    /// `tcp|udp|sctp sport|dport N`.
    Port {
        protocol: Protocol,
        field: PortField,
        port: u16,
    },
    /// `icmp type { … }` (ICMP for IPv4); never empty.
    IcmpType(BTreeSet<u8>),
    /// `iifname [!=] "NAME"`.
    Iifname { name: IfName, negate: bool },
    /// `oifname [!=] "NAME"`.
    Oifname { name: IfName, negate: bool },
    /// `@BASE,OFFSET,LEN VALUE`: `len` bits (1 to 64) at bit `offset` from `base` equal
    /// `value`.
    Raw {
        base: PayloadBase,
        offset: u32,
        len: u32,
        value: u64,
    },
}

impl Match {
    /// `@base,offset,len value`, checked: 1 to 64 bits, `value` fits in them.
    pub fn raw(base: PayloadBase, offset: u32, len: u32, value: u64) -> Result<Match> {
        let m = Match::Raw {
            base,
            offset,
            len,
            value,
        };
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<()> {
        match self {
            Match::DaddrIn { addrs, .. } if addrs.is_empty() => Err(invalid(
                "match",
                "`ip daddr { }` needs at least one address".into(),
            )),
            Match::IcmpType(types) if types.is_empty() => Err(invalid(
                "match",
                "`icmp type { }` needs at least one type".into(),
            )),
            Match::Raw {
                base,
                offset,
                len,
                value,
            } => {
                let at = format!("@{},{offset},{len}", base.keyword());
                if *len == 0 || *len > MAX_RAW_BITS {
                    return Err(invalid(
                        "match",
                        format!("{at}: length must be 1 to {MAX_RAW_BITS} bits"),
                    ));
                }
                // The kernel's payload offset is one byte (`U8_MAX`).
                if offset / 8 > MAX_RAW_BYTE_OFFSET {
                    return Err(invalid(
                        "match",
                        format!("{at}: starts beyond byte {MAX_RAW_BYTE_OFFSET} of its header"),
                    ));
                }
                if *len < 64 && value >> len != 0 {
                    return Err(invalid(
                        "match",
                        format!("{at}: value {value:#x} does not fit in {len} bits"),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The transport protocol this match establishes for the rest of the rule.
    pub(crate) fn establishes_l4(&self) -> Option<u8> {
        match self {
            Match::IpProtocol(p) | Match::L4Proto(p) => Some(*p),
            Match::Port { protocol, .. } => Some(protocol.number()),
            Match::IcmpType(_) => Some(ICMP),
            _ => None,
        }
    }
}

/// IANA protocol number of ICMP.
pub(crate) const ICMP: u8 = 1;

/// Where NAT sends a packet: one address or a range, and optionally one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct NatTo {
    addr: Ipv4Addr,
    addr_end: Option<Ipv4Addr>,
    port: Option<u16>,
}

impl NatTo {
    /// One address.
    pub fn addr(addr: Ipv4Addr) -> NatTo {
        NatTo {
            addr,
            addr_end: None,
            port: None,
        }
    }

    /// `first-last`; a range of one address is that address.
    pub fn range(first: Ipv4Addr, last: Ipv4Addr) -> Result<NatTo> {
        if last < first {
            return Err(invalid(
                "nat",
                format!("address range {first}-{last} runs backwards"),
            ));
        }
        Ok(NatTo {
            addr: first,
            addr_end: (last != first).then_some(last),
            port: None,
        })
    }

    /// The same target with a port (the rule must match a transport protocol).
    pub fn with_port(self, port: u16) -> NatTo {
        NatTo {
            port: Some(port),
            ..self
        }
    }

    /// First (or only) address.
    pub fn first(&self) -> Ipv4Addr {
        self.addr
    }

    /// Last address of a range.
    pub fn last(&self) -> Option<Ipv4Addr> {
        self.addr_end
    }

    /// The port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

/// What a rule does with a packet that matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "statement", content = "to", rename_all = "snake_case")]
pub enum Statement {
    Accept,
    Drop,
    /// Back to the calling chain.
    Return,
    /// Continue in a regular chain of the same table.
    Jump(Name),
    /// Source NAT to the outgoing interface's address.
    Masquerade,
    Snat(NatTo),
    Dnat(NatTo),
}

/// One rule: all matches, then the statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Rule {
    matches: Vec<Match>,
    statement: Statement,
}

impl Rule {
    /// Checks every match, that no two of them name different transport protocols, and
    /// that a NAT port comes after a transport protocol match (nft's own rules).
    pub fn new(matches: Vec<Match>, statement: Statement) -> Result<Rule> {
        let mut l4: Option<(u8, &Match)> = None;
        for m in &matches {
            m.check()?;
            if let Some(p) = m.establishes_l4() {
                match l4 {
                    Some((q, earlier)) if q != p => {
                        return Err(invalid(
                            "rule",
                            format!(
                                "{m:?} contradicts the earlier {earlier:?} (transport protocol {q}, not {p})"
                            ),
                        ))
                    }
                    Some(_) => {}
                    None => l4 = Some((p, m)),
                }
            }
        }
        if let Statement::Snat(to) | Statement::Dnat(to) = &statement {
            if to.port.is_some() && l4.is_none() {
                return Err(invalid(
                    "rule",
                    format!(
                        "NAT to port {} needs a transport protocol match (tcp/udp/…) before it",
                        to.port.unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(Rule { matches, statement })
    }

    /// The matches, in order.
    pub fn matches(&self) -> &[Match] {
        &self.matches
    }

    /// The statement.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }
}

/// The kind of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    Filter,
    Nat,
}

impl ChainType {
    /// The nft keyword (also the kernel's name for it).
    pub fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        }
    }
}

/// Where a base chain is attached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "hook", content = "device", rename_all = "lowercase")]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    /// A device's ingress (netdev tables only).
    Ingress(IfName),
}

impl Hook {
    /// The nft keyword.
    pub fn name(&self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Ingress(_) => "ingress",
        }
    }

    /// The kernel's hook number (`NF_INET_*`, `NF_NETDEV_INGRESS`).
    pub(crate) fn number(&self) -> u32 {
        match self {
            Hook::Prerouting | Hook::Ingress(_) => 0,
            Hook::Input => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }
}

/// What happens to a packet no rule of a base chain decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Accept,
    Drop,
}

/// A chain the kernel calls from a hook.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BaseChain {
    pub chain_type: ChainType,
    pub hook: Hook,
    pub priority: i32,
    pub policy: Policy,
}

impl BaseChain {
    /// `type nat hook prerouting priority dstnat (-100)`.
    pub fn dstnat() -> BaseChain {
        BaseChain {
            chain_type: ChainType::Nat,
            hook: Hook::Prerouting,
            priority: -100,
            policy: Policy::Accept,
        }
    }

    /// `type nat hook postrouting priority srcnat (100)`.
    pub fn srcnat() -> BaseChain {
        BaseChain {
            chain_type: ChainType::Nat,
            hook: Hook::Postrouting,
            priority: 100,
            policy: Policy::Accept,
        }
    }

    /// `type filter hook ingress device DEVICE priority 0`.
    pub fn ingress(device: IfName) -> BaseChain {
        BaseChain {
            chain_type: ChainType::Filter,
            hook: Hook::Ingress(device),
            priority: 0,
            policy: Policy::Accept,
        }
    }
}

/// A chain: attached to a hook ([`BaseChain`]) or regular (reached by `jump`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Chain {
    name: Name,
    base: Option<BaseChain>,
    rules: Vec<Rule>,
}

impl Chain {
    /// A chain; `base` is `None` for a regular chain.
    pub fn new(name: Name, base: Option<BaseChain>, rules: Vec<Rule>) -> Chain {
        Chain { name, base, rules }
    }

    /// The name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The hook, type, priority and policy of a base chain.
    pub fn base(&self) -> Option<&BaseChain> {
        self.base.as_ref()
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// A whole table: what [`crate::nft::apply`] installs (replacing any table of the same
/// family and name) in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Table {
    family: Family,
    name: Name,
    chains: Vec<Chain>,
}

impl Table {
    /// Checks that chain names are unique, that hooks suit the family (netdev tables
    /// have only device ingress hooks), that jumps name a regular chain of the table and
    /// that NAT statements sit in NAT chains of the right hook.
    pub fn new(family: Family, name: Name, chains: Vec<Chain>) -> Result<Table> {
        let what = format!("table {family} {name}");
        let bad = |detail: String| invalid(&what, detail);
        let mut seen = BTreeSet::new();
        for c in &chains {
            if !seen.insert(c.name.as_str()) {
                return Err(bad(format!("chain {} is defined twice", c.name)));
            }
        }
        for c in &chains {
            let chain = &c.name;
            if let Some(base) = &c.base {
                let netdev_hook = matches!(base.hook, Hook::Ingress(_));
                if netdev_hook != (family == Family::Netdev) {
                    return Err(bad(format!(
                        "chain {chain}: hook {} does not exist in family {family}",
                        base.hook.name()
                    )));
                }
                if base.chain_type == ChainType::Nat && family == Family::Netdev {
                    return Err(bad(format!("chain {chain}: netdev tables have no NAT")));
                }
            }
            for (k, r) in c.rules.iter().enumerate() {
                if let Some(problem) = statement_problem(&chains, c, k, r) {
                    return Err(bad(problem));
                }
            }
        }
        Ok(Table {
            family,
            name,
            chains,
        })
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The chains, in order.
    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }
}

/// What is wrong with a rule's statement where it stands, if anything.
fn statement_problem(chains: &[Chain], chain: &Chain, index: usize, rule: &Rule) -> Option<String> {
    let at = format!("chain {}, rule {}", chain.name, index + 1);
    let nat_hooks: &[&str] = match rule.statement {
        Statement::Masquerade => &["postrouting"],
        Statement::Snat(_) => &["postrouting", "input"],
        Statement::Dnat(_) => &["prerouting", "output"],
        Statement::Jump(ref target) => {
            return match chains.iter().find(|c| &c.name == target) {
                Some(c) if c.base.is_none() => None,
                Some(_) => Some(format!("{at}: cannot jump to base chain {target}")),
                None => Some(format!("{at}: jump to unknown chain {target}")),
            };
        }
        Statement::Accept | Statement::Drop | Statement::Return => return None,
    };
    match &chain.base {
        // A regular chain's NAT statements are checked by the kernel against the
        // chains that jump to it.
        None => None,
        Some(b) if b.chain_type == ChainType::Nat && nat_hooks.contains(&b.hook.name()) => None,
        Some(b) => Some(format!(
            "{at}: {:?} needs a nat chain on hook {}, not a {} chain on {}",
            rule.statement,
            nat_hooks.join(" or "),
            b.chain_type.name(),
            b.hook.name()
        )),
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
