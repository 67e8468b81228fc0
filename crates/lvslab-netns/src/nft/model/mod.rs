//! The structured nftables ruleset lvslab installs: a [`Table`] of [`Chain`]s of
//! [`Rule`]s, each rule a list of typed [`Match`]es and one [`Statement`].
//!
//! Every constructor validates what it is given (name lengths and characters, value
//! ranges, protocol dependencies, which statements a chain may hold), so a value that
//! reaches a rule is always well-formed: it can neither inject nft syntax into the
//! rendered text nor surprise the kernel. Fields are private for that reason; the
//! accessors give everything back.
//!
//! This module holds the validated values (names, interface names, prefixes, the
//! family); `rule` the matches, statements and rules; `chain` the chains and the table,
//! whose constructor checks how they fit together.

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::error::{Error, Result};

mod chain;
mod rule;

pub use chain::{BaseChain, Chain, ChainType, Hook, Policy, Table};
pub(crate) use rule::ICMP;
pub use rule::{Match, NatTo, PayloadBase, PortField, Rule, Statement};

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

#[cfg(test)]
mod tests;
