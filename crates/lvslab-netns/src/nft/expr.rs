//! nf_tables expressions, the register code a rule runs: [`compile_table`] turns the
//! model into the expressions nft 1.0 emits for the same text (its implicit protocol
//! dependencies included), and `Display` prints an expression the way
//! `nft --debug=netlink` does, so that listings compare with nft's own.

use std::fmt;

use super::model::{
    Family, IfName, Ipv4Prefix, Match, PayloadBase, PortField, Rule, Statement, Table, ICMP,
};

/// The verdict register.
pub(crate) const REG_VERDICT: u32 = 0;
/// The first 16-byte data register (`NFT_REG_1`).
pub(crate) const REG_1: u32 = 1;

/// `NFT_PAYLOAD_*_HEADER`.
pub(crate) const BASE_LINK: u32 = 0;
pub(crate) const BASE_NETWORK: u32 = 1;
pub(crate) const BASE_TRANSPORT: u32 = 2;

/// `NFT_META_*` keys used here.
pub(crate) const META_PROTOCOL: u32 = 1;
pub(crate) const META_IIFNAME: u32 = 6;
pub(crate) const META_OIFNAME: u32 = 7;
pub(crate) const META_NFPROTO: u32 = 15;
pub(crate) const META_L4PROTO: u32 = 16;

/// `NFT_CMP_EQ`, `NFT_CMP_NEQ`.
pub(crate) const CMP_EQ: u32 = 0;
pub(crate) const CMP_NEQ: u32 = 1;

/// `NFT_LOOKUP_F_INV`.
pub(crate) const LOOKUP_INV: u32 = 1;

/// Verdict codes (`NF_DROP`, `NF_ACCEPT`, `NFT_*`).
pub(crate) const VERDICT_DROP: i32 = 0;
pub(crate) const VERDICT_ACCEPT: i32 = 1;
pub(crate) const VERDICT_JUMP: i32 = -3;
pub(crate) const VERDICT_RETURN: i32 = -5;

/// `NFT_NAT_SNAT`, `NFT_NAT_DNAT`.
pub(crate) const NAT_SNAT: u32 = 0;
pub(crate) const NAT_DNAT: u32 = 1;
/// `NFPROTO_IPV4`, the family of a NAT expression.
pub(crate) const NFPROTO_IPV4: u32 = 2;
/// `NF_NAT_RANGE_MAP_IPS`, `NF_NAT_RANGE_PROTO_SPECIFIED`.
pub(crate) const NAT_MAP_IPS: u32 = 0x1;
pub(crate) const NAT_PROTO_SPECIFIED: u32 = 0x2;

/// nft's datatype numbers for set keys (`TYPE_IPADDR`, `TYPE_ICMP_TYPE`).
pub(crate) const KEY_TYPE_IPV4_ADDR: u32 = 7;
pub(crate) const KEY_TYPE_ICMP_TYPE: u32 = 14;
/// `NFT_SET_ANONYMOUS | NFT_SET_CONSTANT`.
pub(crate) const SET_ANONYMOUS_CONSTANT: u32 = 0x3;

/// The set a lookup reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetRef {
    /// The n-th anonymous set of the table being built; the kernel names it `__set<n>`
    /// in a fresh table.
    Anonymous(usize),
    /// A set by the name the kernel gave it.
    Named(String),
}

/// An immediate's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data {
    Value(Vec<u8>),
    Verdict { code: i32, chain: Option<String> },
}

/// One expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    Meta {
        key: u32,
        dreg: u32,
    },
    Cmp {
        op: u32,
        sreg: u32,
        data: Vec<u8>,
    },
    /// `dreg = (sreg & mask) ^ xor` over `mask.len()` bytes.
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    Lookup {
        set: SetRef,
        sreg: u32,
        flags: u32,
    },
    Immediate {
        dreg: u32,
        data: Data,
    },
    Nat {
        kind: u32,
        family: u32,
        addr_min: Option<u32>,
        addr_max: Option<u32>,
        proto_min: Option<u32>,
        proto_max: Option<u32>,
        flags: Option<u32>,
    },
    Masq {
        flags: Option<u32>,
    },
    /// A counter; its numbers change with traffic and are left out.
    Counter,
    /// Any other expression, with its attributes as the kernel dumped them.
    Other {
        name: String,
        detail: String,
    },
}

/// An anonymous constant set a rule looks up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnonSet {
    pub(crate) key_type: u32,
    pub(crate) key_len: u32,
    /// Sorted, without duplicates.
    pub(crate) elements: Vec<Vec<u8>>,
}

/// A table as expressions: per chain, per rule, its expressions; and the anonymous sets
/// its lookups refer to (by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledTable {
    pub(crate) rules: Vec<Vec<Vec<Expr>>>,
    pub(crate) sets: Vec<AnonSet>,
}

/// Compiles every rule of `table`, chain by chain.
pub(crate) fn compile_table(table: &Table) -> CompiledTable {
    let mut sets = Vec::new();
    let rules = table
        .chains()
        .iter()
        .map(|c| {
            c.rules()
                .iter()
                .map(|r| compile_rule(table.family(), r, &mut sets))
                .collect()
        })
        .collect();
    CompiledTable { rules, sets }
}

/// What a rule has established so far: nft inserts a dependency only once.
struct Context {
    family: Family,
    network_known: bool,
    l4: Option<u8>,
}

impl Context {
    /// The packet is IPv4: implicit in `ip` tables, a check of the family (inet) or
    /// EtherType (netdev) otherwise.
    fn need_ipv4(&mut self, out: &mut Vec<Expr>) {
        if self.network_known {
            return;
        }
        match self.family {
            Family::Ip => {}
            Family::Inet => meta_cmp(out, META_NFPROTO, vec![NFPROTO_IPV4 as u8]),
            Family::Netdev => meta_cmp(out, META_PROTOCOL, 0x0800u16.to_be_bytes().to_vec()),
        }
        self.network_known = true;
    }

    fn need_l4(&mut self, protocol: u8, out: &mut Vec<Expr>) {
        if self.l4 != Some(protocol) {
            meta_cmp(out, META_L4PROTO, vec![protocol]);
            self.l4 = Some(protocol);
        }
    }
}

fn meta_cmp(out: &mut Vec<Expr>, key: u32, data: Vec<u8>) {
    out.push(Expr::Meta { key, dreg: REG_1 });
    out.push(cmp(CMP_EQ, data));
}

fn cmp(op: u32, data: Vec<u8>) -> Expr {
    Expr::Cmp {
        op,
        sreg: REG_1,
        data,
    }
}

fn load(base: u32, offset: u32, len: u32) -> Expr {
    Expr::Payload {
        base,
        offset,
        len,
        dreg: REG_1,
    }
}

fn op_of(negate: bool) -> u32 {
    if negate {
        CMP_NEQ
    } else {
        CMP_EQ
    }
}

/// Compiles one rule; anonymous sets it needs are appended to `sets`.
pub(crate) fn compile_rule(family: Family, rule: &Rule, sets: &mut Vec<AnonSet>) -> Vec<Expr> {
    let mut out = compile_matches(family, rule.matches(), sets);
    compile_statement(rule.statement(), &mut out);
    out
}

/// The expressions of `matches` at the start of a rule, dependencies included.
pub(crate) fn compile_matches(
    family: Family,
    matches: &[Match],
    sets: &mut Vec<AnonSet>,
) -> Vec<Expr> {
    let mut cx = Context {
        family,
        network_known: family == Family::Ip,
        l4: None,
    };
    let mut out = Vec::new();
    for m in matches {
        compile_match(&mut cx, m, sets, &mut out);
    }
    out
}

fn compile_match(cx: &mut Context, m: &Match, sets: &mut Vec<AnonSet>, out: &mut Vec<Expr>) {
    match m {
        Match::Saddr { prefix, negate } => {
            cx.need_ipv4(out);
            prefix_match(12, prefix, *negate, out);
        }
        Match::Daddr { prefix, negate } => {
            cx.need_ipv4(out);
            prefix_match(16, prefix, *negate, out);
        }
        Match::DaddrIn { addrs, negate } => {
            cx.need_ipv4(out);
            out.push(load(BASE_NETWORK, 16, 4));
            let elements = addrs.iter().map(|a| a.octets().to_vec()).collect();
            set_match(KEY_TYPE_IPV4_ADDR, 4, elements, *negate, sets, out);
        }
        Match::IpProtocol(p) => {
            cx.need_ipv4(out);
            out.push(load(BASE_NETWORK, 9, 1));
            out.push(cmp(CMP_EQ, vec![*p]));
            cx.l4 = Some(*p);
        }
        Match::L4Proto(p) => {
            out.push(Expr::Meta {
                key: META_L4PROTO,
                dreg: REG_1,
            });
            out.push(cmp(CMP_EQ, vec![*p]));
            cx.l4 = Some(*p);
        }
        Match::Port {
            protocol,
            field,
            port,
        } => {
            cx.need_l4(protocol.number(), out);
            let offset = match field {
                PortField::Sport => 0,
                PortField::Dport => 2,
            };
            out.push(load(BASE_TRANSPORT, offset, 2));
            out.push(cmp(CMP_EQ, port.to_be_bytes().to_vec()));
        }
        Match::IcmpType(types) => {
            cx.need_ipv4(out);
            cx.need_l4(ICMP, out);
            out.push(load(BASE_TRANSPORT, 0, 1));
            let elements = types.iter().map(|t| vec![*t]).collect();
            set_match(KEY_TYPE_ICMP_TYPE, 1, elements, false, sets, out);
        }
        Match::Iifname { name, negate } => ifname_match(META_IIFNAME, name, *negate, out),
        Match::Oifname { name, negate } => ifname_match(META_OIFNAME, name, *negate, out),
        Match::Raw {
            base,
            offset,
            len,
            value,
        } => raw_match(*base, *offset, *len, *value, out),
    }
}

/// nft 1.0 compares a prefix on a byte boundary by loading only its bytes; other
/// prefixes (and /0) are masked.
fn prefix_match(offset: u32, prefix: &Ipv4Prefix, negate: bool, out: &mut Vec<Expr>) {
    let octets = prefix.addr().octets();
    let len = u32::from(prefix.prefix_len());
    if len > 0 && len % 8 == 0 {
        let bytes = len / 8;
        out.push(load(BASE_NETWORK, offset, bytes));
        out.push(cmp(op_of(negate), octets[..bytes as usize].to_vec()));
    } else {
        out.push(load(BASE_NETWORK, offset, 4));
        out.push(Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            mask: prefix.mask().to_be_bytes().to_vec(),
            xor: vec![0; 4],
        });
        out.push(cmp(op_of(negate), octets.to_vec()));
    }
}

/// One element is compared directly (as nft does); more go into an anonymous set.
fn set_match(
    key_type: u32,
    key_len: u32,
    mut elements: Vec<Vec<u8>>,
    negate: bool,
    sets: &mut Vec<AnonSet>,
    out: &mut Vec<Expr>,
) {
    elements.sort();
    elements.dedup();
    if elements.len() == 1 {
        out.push(cmp(op_of(negate), elements.remove(0)));
        return;
    }
    sets.push(AnonSet {
        key_type,
        key_len,
        elements,
    });
    out.push(Expr::Lookup {
        set: SetRef::Anonymous(sets.len() - 1),
        sreg: REG_1,
        flags: if negate { LOOKUP_INV } else { 0 },
    });
}

fn ifname_match(key: u32, name: &IfName, negate: bool, out: &mut Vec<Expr>) {
    // The whole IFNAMSIZ buffer, NUL-padded: an exact name, not a prefix.
    let mut data = name.as_str().as_bytes().to_vec();
    data.resize(16, 0);
    out.push(Expr::Meta { key, dreg: REG_1 });
    out.push(cmp(op_of(negate), data));
}

/// Loads the bytes covering the bits; bits that do not fill whole bytes are masked.
fn raw_match(base: PayloadBase, offset: u32, len: u32, value: u64, out: &mut Vec<Expr>) {
    let base = match base {
        PayloadBase::Link => BASE_LINK,
        PayloadBase::Network => BASE_NETWORK,
        PayloadBase::Transport => BASE_TRANSPORT,
    };
    let lead = offset % 8;
    let bytes = (lead + len).div_ceil(8);
    let shift = bytes * 8 - lead - len;
    let be = |v: u128| v.to_be_bytes()[16 - bytes as usize..].to_vec();
    out.push(load(base, offset / 8, bytes));
    if lead != 0 || len % 8 != 0 {
        let mask = ((1u128 << len) - 1) << shift;
        out.push(Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            mask: be(mask),
            xor: vec![0; bytes as usize],
        });
    }
    out.push(cmp(CMP_EQ, be(u128::from(value) << shift)));
}

fn verdict(code: i32, chain: Option<String>) -> Expr {
    Expr::Immediate {
        dreg: REG_VERDICT,
        data: Data::Verdict { code, chain },
    }
}

/// The statement's expressions, in the form the kernel dumps them back (NAT with its
/// maximum registers and flags spelled out), so a listing equals what was sent.
fn compile_statement(statement: &Statement, out: &mut Vec<Expr>) {
    let (kind, to) = match statement {
        Statement::Accept => return out.push(verdict(VERDICT_ACCEPT, None)),
        Statement::Drop => return out.push(verdict(VERDICT_DROP, None)),
        Statement::Return => return out.push(verdict(VERDICT_RETURN, None)),
        Statement::Jump(chain) => {
            return out.push(verdict(VERDICT_JUMP, Some(chain.as_str().to_string())))
        }
        Statement::Masquerade => return out.push(Expr::Masq { flags: None }),
        Statement::Snat(to) => (NAT_SNAT, to),
        Statement::Dnat(to) => (NAT_DNAT, to),
    };
    let mut reg = REG_1;
    let mut immediate = |bytes: Vec<u8>| {
        out.push(Expr::Immediate {
            dreg: reg,
            data: Data::Value(bytes),
        });
        reg += 1;
        reg - 1
    };
    let addr_min = immediate(to.first().octets().to_vec());
    let addr_max = match to.last() {
        Some(last) => immediate(last.octets().to_vec()),
        None => addr_min,
    };
    let proto = to.port().map(|p| immediate(p.to_be_bytes().to_vec()));
    let mut flags = NAT_MAP_IPS;
    if proto.is_some() {
        flags |= NAT_PROTO_SPECIFIED;
    }
    out.push(Expr::Nat {
        kind,
        family: NFPROTO_IPV4,
        addr_min: Some(addr_min),
        addr_max: Some(addr_max),
        proto_min: proto,
        proto_max: proto,
        flags: Some(flags),
    });
}

/// Data as libnftnl prints it: 32-bit words in host order, the last one zero-padded.
pub(crate) fn words(data: &[u8]) -> String {
    data.chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            format!("0x{:08x}", u32::from_ne_bytes(w))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn meta_key_name(key: u32) -> String {
    const NAMES: [&str; 17] = [
        "len",
        "protocol",
        "priority",
        "mark",
        "iif",
        "oif",
        "iifname",
        "oifname",
        "iiftype",
        "oiftype",
        "skuid",
        "skgid",
        "nftrace",
        "rtclassid",
        "secmark",
        "nfproto",
        "l4proto",
    ];
    NAMES
        .get(key as usize)
        .map_or_else(|| format!("unknown{key}"), |n| (*n).to_string())
}

fn verdict_name(code: i32, chain: &Option<String>) -> String {
    let chain = chain.as_deref().unwrap_or("");
    match code {
        VERDICT_DROP => "drop".into(),
        VERDICT_ACCEPT => "accept".into(),
        -1 => "continue".into(),
        -2 => "break".into(),
        VERDICT_JUMP => format!("jump -> {chain}"),
        -4 => format!("goto -> {chain}"),
        VERDICT_RETURN => "return".into(),
        other => format!("verdict {other}"),
    }
}

impl fmt::Display for SetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetRef::Anonymous(n) => write!(f, "__set{n}"),
            SetRef::Named(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                let base = ["link", "network", "transport", "inner"]
                    .get(*base as usize)
                    .copied()
                    .unwrap_or("unknown");
                write!(
                    f,
                    "payload load {len}b @ {base} header + {offset} => reg {dreg}"
                )
            }
            Expr::Meta { key, dreg } => {
                write!(f, "meta load {} => reg {dreg}", meta_key_name(*key))
            }
            Expr::Cmp { op, sreg, data } => {
                let op = ["eq", "neq", "lt", "lte", "gt", "gte"]
                    .get(*op as usize)
                    .copied()
                    .unwrap_or("unknown");
                write!(f, "cmp {op} reg {sreg} {}", words(data))
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => write!(
                f,
                "bitwise reg {dreg} = ( reg {sreg} & {} ) ^ {}",
                words(mask),
                words(xor)
            ),
            Expr::Lookup { set, sreg, flags } => {
                write!(f, "lookup reg {sreg} set {set} {flags:#x}")
            }
            Expr::Immediate { dreg, data } => match data {
                Data::Value(v) => write!(f, "immediate reg {dreg} {}", words(v)),
                Data::Verdict { code, chain } => {
                    write!(f, "immediate reg {dreg} {}", verdict_name(*code, chain))
                }
            },
            Expr::Nat {
                kind,
                family,
                addr_min,
                addr_max,
                proto_min,
                proto_max,
                flags,
            } => {
                let kind = if *kind == NAT_SNAT { "snat" } else { "dnat" };
                let family = match *family {
                    2 => "ip",
                    10 => "ip6",
                    1 => "inet",
                    _ => "unknown",
                };
                write!(f, "nat {kind} {family}")?;
                for (label, reg) in [
                    ("addr_min", addr_min),
                    ("addr_max", addr_max),
                    ("proto_min", proto_min),
                    ("proto_max", proto_max),
                ] {
                    if let Some(r) = reg {
                        write!(f, " {label} reg {r}")?;
                    }
                }
                if let Some(flags) = flags {
                    write!(f, " flags {flags:#x}")?;
                }
                Ok(())
            }
            Expr::Masq { flags } => match flags {
                Some(flags) => write!(f, "masq flags {flags:#x}"),
                None => f.write_str("masq"),
            },
            Expr::Counter => f.write_str("counter"),
            Expr::Other { name, detail } if detail.is_empty() => f.write_str(name),
            Expr::Other { name, detail } => write!(f, "{name} {detail}"),
        }
    }
}

/// The expressions of `exprs` as one listing fragment: `[ e1 ] [ e2 ] …`.
pub(crate) fn bracketed(exprs: &[Expr]) -> String {
    exprs
        .iter()
        .map(|e| format!("[ {e} ]"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[path = "expr_tests.rs"]
mod tests;
