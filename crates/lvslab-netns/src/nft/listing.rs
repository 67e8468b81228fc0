//! Read-back of a namespace's nftables state over netlink dumps (tables, chains, sets
//! and their elements, rules), normalised into a comparable [`Listing`]: one line per
//! object, rules as their expressions the way `nft --debug=netlink` prints them.
//! Only `GET` requests are sent, so this works on the host's namespace and changes
//! nothing. [`expected`] gives the listing a [`Table`] has once applied.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::expr::{bracketed, compile_table, words, Data, Expr, SetRef};
use super::model::{Family, Hook, Policy, Table};
use super::netlink::{attr::*, expr_attr::*, *};
use super::wire::{attrs, be32, find, message_attrs, nft_type, string, Attr, MsgWriter};
use crate::netlink::{NlError, NlSocket, RawMessage};

/// How often a read-back is retried when the ruleset changed while it was being read.
const GENERATION_RETRIES: usize = 5;

/// Every table of a namespace, sorted by family and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub tables: Vec<TableListing>,
}

/// One table: its chains (by name, each with its rules in order) and sets (by name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableListing {
    /// `ip`, `inet`, `netdev`, `ip6`, `arp`, `bridge`.
    pub family: String,
    pub name: String,
    pub flags: u32,
    pub chains: Vec<ChainListing>,
    pub sets: Vec<SetListing>,
}

/// One chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainListing {
    pub name: String,
    /// `type T hook H [device D] priority P policy X` of a base chain.
    pub hook: Option<String>,
    /// Each rule as `[ expression ] [ expression ] …`.
    pub rules: Vec<String>,
}

/// One set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetListing {
    pub name: String,
    /// `flags F key TYPE/LEN [data TYPE/LEN]`.
    pub spec: String,
    /// Sorted elements, as 32-bit words like expression data.
    pub elements: Vec<String>,
}

impl TableListing {
    /// The table as lines: the table, each chain followed by its rules, each set.
    pub fn lines(&self) -> Vec<String> {
        let (family, table) = (&self.family, &self.name);
        let mut out = vec![if self.flags == 0 {
            format!("table {family} {table}")
        } else {
            format!("table {family} {table} flags {:#x}", self.flags)
        }];
        for c in &self.chains {
            out.push(match &c.hook {
                Some(hook) => format!("chain {family} {table} {} {hook}", c.name),
                None => format!("chain {family} {table} {}", c.name),
            });
            for r in &c.rules {
                out.push(format!("rule {family} {table} {} {r}", c.name));
            }
        }
        for s in &self.sets {
            out.push(format!(
                "set {family} {table} {} {} elements {{ {} }}",
                s.name,
                s.spec,
                s.elements.join(", ")
            ));
        }
        out
    }
}

impl Listing {
    /// Every line of every table.
    pub fn lines(&self) -> Vec<String> {
        self.tables.iter().flat_map(TableListing::lines).collect()
    }

    /// The table of that family and name.
    pub fn table(&self, family: Family, name: &str) -> Option<&TableListing> {
        self.tables
            .iter()
            .find(|t| t.family == family.name() && t.name == name)
    }

    /// No table at all.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// The listing `table` has once applied to a namespace (anonymous sets named as the
/// kernel names them in a fresh table).
pub fn expected(table: &Table) -> TableListing {
    let family = table.family();
    let compiled = compile_table(table);
    let mut chains: Vec<ChainListing> = table
        .chains()
        .iter()
        .zip(&compiled.rules)
        .map(|(c, rules)| ChainListing {
            name: c.name().to_string(),
            hook: c.base().map(|b| {
                let device = match &b.hook {
                    Hook::Ingress(d) => Some(d.as_str()),
                    _ => None,
                };
                let policy = match b.policy {
                    Policy::Accept => 1,
                    Policy::Drop => 0,
                };
                hook_text(
                    b.chain_type.name(),
                    b.hook.name(),
                    device,
                    b.priority,
                    policy,
                )
            }),
            rules: rules.iter().map(|exprs| bracketed(exprs)).collect(),
        })
        .collect();
    chains.sort_by(|a, b| a.name.cmp(&b.name));
    let mut sets: Vec<SetListing> = compiled
        .sets
        .iter()
        .enumerate()
        .map(|(i, s)| SetListing {
            name: SetRef::Anonymous(i).to_string(),
            spec: set_spec(
                super::expr::SET_ANONYMOUS_CONSTANT,
                s.key_type,
                s.key_len,
                None,
            ),
            elements: s.elements.iter().map(|e| words(e)).collect(),
        })
        .collect();
    sets.sort_by(|a, b| a.name.cmp(&b.name));
    TableListing {
        family: family.name().to_string(),
        name: table.name().to_string(),
        flags: 0,
        chains,
        sets,
    }
}

/// A fragment of a rule's listing: the expressions `matches` compile to at the start of
/// a rule of `family` (dependencies included), for finding such a rule in a listing.
pub fn matches_text(family: Family, matches: &[super::model::Match]) -> String {
    let mut sets = Vec::new();
    bracketed(&super::expr::compile_matches(family, matches, &mut sets))
}

fn hook_text(kind: &str, hook: &str, device: Option<&str>, priority: i32, policy: u32) -> String {
    let device = device.map(|d| format!(" device {d}")).unwrap_or_default();
    let policy = match policy {
        0 => "drop".to_string(),
        1 => "accept".to_string(),
        other => format!("verdict {other}"),
    };
    format!("type {kind} hook {hook}{device} priority {priority} policy {policy}")
}

fn set_spec(flags: u32, key_type: u32, key_len: u32, data: Option<(u32, u32)>) -> String {
    let mut spec = format!("flags {flags:#x} key {key_type}/{key_len}");
    if let Some((t, l)) = data {
        spec.push_str(&format!(" data {t}/{l}"));
    }
    spec
}

fn family_name(nfproto: u8) -> String {
    match nfproto {
        1 => "inet".into(),
        2 => "ip".into(),
        3 => "arp".into(),
        5 => "netdev".into(),
        7 => "bridge".into(),
        10 => "ip6".into(),
        other => format!("family{other}"),
    }
}

fn hook_name(nfproto: u8, hooknum: u32) -> String {
    let names: &[&str] = if nfproto == 5 {
        &["ingress", "egress"]
    } else {
        &[
            "prerouting",
            "input",
            "forward",
            "output",
            "postrouting",
            "ingress",
        ]
    };
    names
        .get(hooknum as usize)
        .map_or_else(|| format!("hook{hooknum}"), |n| (*n).to_string())
}

/// Reads the whole ruleset, again if it changed meanwhile (the generation id moved).
pub(crate) fn read(sock: &mut NlSocket) -> Result<Listing, NlError> {
    for _ in 0..GENERATION_RETRIES {
        let before = generation(sock)?;
        let listing = read_once(sock)?;
        if generation(sock)? == before {
            return Ok(listing);
        }
    }
    Err(NlError::Protocol(format!(
        "the ruleset changed during {GENERATION_RETRIES} read-backs in a row"
    )))
}

fn request(
    msg: u16,
    flags: u16,
    family: u8,
    seq: u32,
    body: impl FnOnce(&mut MsgWriter),
) -> Vec<u8> {
    let mut m = MsgWriter::new(nft_type(msg), NLM_F_REQUEST | flags, seq, family, 0);
    body(&mut m);
    m.finish()
}

fn generation(sock: &mut NlSocket) -> Result<u32, NlError> {
    let replies = sock.request(|seq| request(MSG_GETGEN, NLM_F_ACK, 0, seq, |_| {}))?;
    replies
        .iter()
        .find_map(|m| {
            message_attrs(&m.bytes)
                .ok()
                .and_then(|(_, a)| be32(&a, GEN_ID))
        })
        .ok_or_else(|| NlError::Protocol("no generation id in the GETGEN reply".into()))
}

fn dump_all(sock: &mut NlSocket, msg: u16) -> Result<Vec<RawMessage>, NlError> {
    sock.dump(|seq| request(msg, NLM_F_DUMP, 0, seq, |_| {}))
}

fn bad(what: &str) -> impl Fn(String) -> NlError + '_ {
    move |detail| NlError::Protocol(format!("{what}: {detail}"))
}

fn read_once(sock: &mut NlSocket) -> Result<Listing, NlError> {
    let mut tables = Vec::new();
    for m in dump_all(sock, MSG_GETTABLE)? {
        let (family, a) = message_attrs(&m.bytes).map_err(bad("table"))?;
        tables.push(TableListing {
            family: family_name(family),
            name: string(&a, TABLE_NAME).unwrap_or_default(),
            flags: be32(&a, TABLE_FLAGS).unwrap_or(0),
            chains: Vec::new(),
            sets: Vec::new(),
        });
    }
    let table_of = |tables: &[TableListing], family: u8, name: &str| -> Option<usize> {
        let family = family_name(family);
        tables
            .iter()
            .position(|t| t.family == family && t.name == name)
    };
    for m in dump_all(sock, MSG_GETCHAIN)? {
        let (family, a) = message_attrs(&m.bytes).map_err(bad("chain"))?;
        let table = string(&a, CHAIN_TABLE).unwrap_or_default();
        let chain = decode_chain(family, &a).map_err(bad("chain"))?;
        if let Some(t) = table_of(&tables, family, &table) {
            tables[t].chains.push(chain);
        }
    }
    let mut set_names = Vec::new();
    for m in dump_all(sock, MSG_GETSET)? {
        let (family, a) = message_attrs(&m.bytes).map_err(bad("set"))?;
        let table = string(&a, SET_TABLE).unwrap_or_default();
        let name = string(&a, SET_NAME).unwrap_or_default();
        let data = be32(&a, SET_DATA_TYPE).zip(be32(&a, SET_DATA_LEN));
        let spec = set_spec(
            be32(&a, SET_FLAGS).unwrap_or(0),
            be32(&a, SET_KEY_TYPE).unwrap_or(0),
            be32(&a, SET_KEY_LEN).unwrap_or(0),
            data,
        );
        if let Some(t) = table_of(&tables, family, &table) {
            tables[t].sets.push(SetListing {
                name: name.clone(),
                spec,
                elements: Vec::new(),
            });
            set_names.push((family, table, name));
        }
    }
    for (family, table, name) in set_names {
        let elements = read_elements(sock, family, &table, &name)?;
        if let Some(t) = table_of(&tables, family, &table) {
            if let Some(s) = tables[t].sets.iter_mut().find(|s| s.name == name) {
                s.elements = elements;
            }
        }
    }
    for m in dump_all(sock, MSG_GETRULE)? {
        let (family, a) = message_attrs(&m.bytes).map_err(bad("rule"))?;
        let table = string(&a, RULE_TABLE).unwrap_or_default();
        let chain = string(&a, RULE_CHAIN).unwrap_or_default();
        let exprs = match find(&a, RULE_EXPRESSIONS) {
            Some(list) => decode_exprs(list).map_err(bad("rule expressions"))?,
            None => Vec::new(),
        };
        if let Some(t) = table_of(&tables, family, &table) {
            if let Some(c) = tables[t].chains.iter_mut().find(|c| c.name == chain) {
                c.rules.push(bracketed(&exprs));
            }
        }
    }
    tables.sort_by(|a, b| (&a.family, &a.name).cmp(&(&b.family, &b.name)));
    for t in &mut tables {
        t.chains.sort_by(|a, b| a.name.cmp(&b.name));
        t.sets.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(Listing { tables })
}

fn decode_chain(family: u8, a: &[Attr<'_>]) -> Result<ChainListing, String> {
    let name = string(a, CHAIN_NAME).unwrap_or_default();
    let hook = match find(a, CHAIN_HOOK) {
        None => None,
        Some(nest) => {
            let h = attrs(nest)?;
            let device = match (string(&h, HOOK_DEV), find(&h, HOOK_DEVS)) {
                (Some(d), _) => Some(d),
                (None, Some(devs)) => {
                    let names: Vec<String> = attrs(devs)?
                        .iter()
                        .map(|(_, v)| {
                            String::from_utf8_lossy(v)
                                .trim_end_matches('\0')
                                .to_string()
                        })
                        .collect();
                    Some(names.join(","))
                }
                (None, None) => None,
            };
            Some(hook_text(
                &string(a, CHAIN_TYPE).unwrap_or_default(),
                &hook_name(family, be32(&h, HOOK_HOOKNUM).unwrap_or(u32::MAX)),
                device.as_deref(),
                be32(&h, HOOK_PRIORITY).unwrap_or(0) as i32,
                be32(a, CHAIN_POLICY).unwrap_or(1),
            ))
        }
    };
    Ok(ChainListing {
        name,
        hook,
        rules: Vec::new(),
    })
}

fn read_elements(
    sock: &mut NlSocket,
    family: u8,
    table: &str,
    set: &str,
) -> Result<Vec<String>, NlError> {
    let replies = sock.dump(|seq| {
        request(MSG_GETSETELEM, NLM_F_DUMP, family, seq, |m| {
            m.put_str(SET_ELEM_LIST_TABLE, table);
            m.put_str(SET_ELEM_LIST_SET, set);
        })
    })?;
    let mut elements: Vec<(Vec<u8>, String)> = Vec::new();
    for r in replies {
        let (_, a) = message_attrs(&r.bytes).map_err(bad("set elements"))?;
        let Some(list) = find(&a, SET_ELEM_LIST_ELEMENTS) else {
            continue;
        };
        for (_, element) in attrs(list).map_err(bad("set elements"))? {
            let e = attrs(element).map_err(bad("set element"))?;
            let key = match find(&e, SET_ELEM_KEY) {
                Some(k) => value_of(k).map_err(bad("set element key"))?,
                None => Vec::new(),
            };
            let mut text = words(&key);
            if let Some(d) = find(&e, SET_ELEM_DATA) {
                let data = decode_data(d).map_err(bad("set element data"))?;
                text.push_str(&format!(" : {}", data_text(&data)));
            }
            if let Some(flags) = be32(&e, SET_ELEM_FLAGS).filter(|f| *f != 0) {
                text.push_str(&format!(" flags {flags:#x}"));
            }
            elements.push((key, text));
        }
    }
    elements.sort();
    Ok(elements.into_iter().map(|(_, text)| text).collect())
}

fn value_of(nest: &[u8]) -> Result<Vec<u8>, String> {
    match decode_data(nest)? {
        Data::Value(v) => Ok(v),
        Data::Verdict { .. } => Err("a verdict where a value belongs".into()),
    }
}

fn decode_data(nest: &[u8]) -> Result<Data, String> {
    let a = attrs(nest)?;
    if let Some(v) = find(&a, DATA_VALUE) {
        return Ok(Data::Value(v.to_vec()));
    }
    let verdict = attrs(find(&a, DATA_VERDICT).ok_or("data is neither a value nor a verdict")?)?;
    Ok(Data::Verdict {
        code: be32(&verdict, VERDICT_CODE).ok_or("verdict without a code")? as i32,
        chain: string(&verdict, VERDICT_CHAIN),
    })
}

fn data_text(data: &Data) -> String {
    let e = Expr::Immediate {
        dreg: 0,
        data: data.clone(),
    };
    // "immediate reg 0 <data>" without its prefix.
    e.to_string()
        .trim_start_matches("immediate reg 0 ")
        .to_string()
}

/// Expressions of a rule: a list of `NFTA_LIST_ELEM { NAME, DATA }`.
pub(crate) fn decode_exprs(list: &[u8]) -> Result<Vec<Expr>, String> {
    attrs(list)?
        .iter()
        .map(|(_, element)| {
            let e = attrs(element)?;
            let name = string(&e, EXPR_NAME).ok_or("expression without a name")?;
            let data = attrs(find(&e, EXPR_DATA).unwrap_or(&[]))?;
            decode_expr(name, &data)
        })
        .collect()
}

fn decode_expr(name: String, a: &[Attr<'_>]) -> Result<Expr, String> {
    let reg = |kind: u16| be32(a, kind).ok_or_else(|| format!("{name}: attribute {kind} missing"));
    let value = |kind: u16| value_of(find(a, kind).unwrap_or(&[]));
    let expr = match name.as_str() {
        "payload" if find(a, PAYLOAD_SREG).is_none() => Expr::Payload {
            base: reg(PAYLOAD_BASE)?,
            offset: reg(PAYLOAD_OFFSET)?,
            len: reg(PAYLOAD_LEN)?,
            dreg: reg(PAYLOAD_DREG)?,
        },
        "meta" if find(a, META_DREG).is_some() => Expr::Meta {
            key: reg(META_KEY)?,
            dreg: reg(META_DREG)?,
        },
        "cmp" => Expr::Cmp {
            op: reg(CMP_OP)?,
            sreg: reg(CMP_SREG)?,
            data: value(CMP_DATA)?,
        },
        "bitwise" if be32(a, BITWISE_OP).unwrap_or(0) == 0 => Expr::Bitwise {
            sreg: reg(BITWISE_SREG)?,
            dreg: reg(BITWISE_DREG)?,
            mask: value(BITWISE_MASK)?,
            xor: value(BITWISE_XOR)?,
        },
        "lookup" if find(a, LOOKUP_DREG).is_none() => Expr::Lookup {
            set: SetRef::Named(string(a, LOOKUP_SET).unwrap_or_default()),
            sreg: reg(LOOKUP_SREG)?,
            flags: be32(a, LOOKUP_FLAGS).unwrap_or(0),
        },
        "immediate" => Expr::Immediate {
            dreg: reg(IMMEDIATE_DREG)?,
            data: decode_data(find(a, IMMEDIATE_DATA).unwrap_or(&[]))?,
        },
        "nat" => Expr::Nat {
            kind: reg(NAT_TYPE)?,
            family: reg(NAT_FAMILY)?,
            addr_min: be32(a, NAT_REG_ADDR_MIN),
            addr_max: be32(a, NAT_REG_ADDR_MAX),
            proto_min: be32(a, NAT_REG_PROTO_MIN),
            proto_max: be32(a, NAT_REG_PROTO_MAX),
            flags: be32(a, NAT_FLAGS),
        },
        "masq" if a.iter().all(|(k, _)| *k == MASQ_FLAGS) => Expr::Masq {
            flags: be32(a, MASQ_FLAGS),
        },
        "counter" => Expr::Counter,
        _ => {
            // Stateful expressions change with traffic; only their kind is kept.
            let stateful = ["quota", "limit", "connlimit", "last"].contains(&name.as_str());
            let detail = if stateful {
                String::new()
            } else {
                a.iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}:{}",
                            v.iter().map(|b| format!("{b:02x}")).collect::<String>()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            Expr::Other { name, detail }
        }
    };
    Ok(expr)
}
