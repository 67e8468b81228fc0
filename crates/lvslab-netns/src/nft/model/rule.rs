//! One rule: typed matches (each checking its own values and what it depends on) and
//! the statement that decides.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use lvslab_spec::lb::Protocol;
use serde::Serialize;

use super::{invalid, IfName, Ipv4Prefix, Name, MAX_RAW_BITS, MAX_RAW_BYTE_OFFSET};
use crate::error::Result;

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
