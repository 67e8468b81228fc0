//! The model as nf_tables netlink messages, sent as one transaction.
//!
//! A batch is `NFNL_MSG_BATCH_BEGIN`, the commands, `NFNL_MSG_BATCH_END`, in one
//! datagram: the kernel applies all of it or nothing. Every command asks for an
//! acknowledgement (`NLM_F_ACK`) under its own sequence number, so a failure names the
//! command (and rule) the kernel refused, with its errno and extended-ack text.

use super::expr::{compile_table, AnonSet, Data, Expr, SetRef, SET_ANONYMOUS_CONSTANT};
use super::model::{Family, Name, Policy, Table};
use super::render;
use super::wire::{nft_type, MsgWriter, MSG_BATCH_BEGIN, MSG_BATCH_END, SUBSYS_NFTABLES};
use crate::netlink::{NlError, NlSocket, NLMSG_ERROR};

/// `NFT_MSG_*` commands.
pub(crate) const MSG_NEWTABLE: u16 = 0;
pub(crate) const MSG_GETTABLE: u16 = 1;
pub(crate) const MSG_DELTABLE: u16 = 2;
pub(crate) const MSG_NEWCHAIN: u16 = 3;
pub(crate) const MSG_GETCHAIN: u16 = 4;
pub(crate) const MSG_NEWRULE: u16 = 6;
pub(crate) const MSG_GETRULE: u16 = 7;
pub(crate) const MSG_NEWSET: u16 = 9;
pub(crate) const MSG_GETSET: u16 = 10;
pub(crate) const MSG_NEWSETELEM: u16 = 12;
pub(crate) const MSG_GETSETELEM: u16 = 13;
pub(crate) const MSG_GETGEN: u16 = 16;

/// Attribute numbers (`NFTA_*`) of tables, chains, rules, sets and their parts.
pub(crate) mod attr {
    pub(crate) const TABLE_NAME: u16 = 1;
    pub(crate) const TABLE_FLAGS: u16 = 2;
    pub(crate) const CHAIN_TABLE: u16 = 1;
    pub(crate) const CHAIN_NAME: u16 = 3;
    pub(crate) const CHAIN_HOOK: u16 = 4;
    pub(crate) const CHAIN_POLICY: u16 = 5;
    pub(crate) const CHAIN_TYPE: u16 = 7;
    pub(crate) const HOOK_HOOKNUM: u16 = 1;
    pub(crate) const HOOK_PRIORITY: u16 = 2;
    pub(crate) const HOOK_DEV: u16 = 3;
    pub(crate) const HOOK_DEVS: u16 = 4;
    pub(crate) const RULE_TABLE: u16 = 1;
    pub(crate) const RULE_CHAIN: u16 = 2;
    pub(crate) const RULE_EXPRESSIONS: u16 = 4;
    pub(crate) const LIST_ELEM: u16 = 1;
    pub(crate) const EXPR_NAME: u16 = 1;
    pub(crate) const EXPR_DATA: u16 = 2;
    pub(crate) const SET_TABLE: u16 = 1;
    pub(crate) const SET_NAME: u16 = 2;
    pub(crate) const SET_FLAGS: u16 = 3;
    pub(crate) const SET_KEY_TYPE: u16 = 4;
    pub(crate) const SET_KEY_LEN: u16 = 5;
    pub(crate) const SET_DATA_TYPE: u16 = 6;
    pub(crate) const SET_DATA_LEN: u16 = 7;
    pub(crate) const SET_DESC: u16 = 9;
    pub(crate) const SET_ID: u16 = 10;
    pub(crate) const SET_DESC_SIZE: u16 = 1;
    pub(crate) const SET_ELEM_LIST_TABLE: u16 = 1;
    pub(crate) const SET_ELEM_LIST_SET: u16 = 2;
    pub(crate) const SET_ELEM_LIST_ELEMENTS: u16 = 3;
    pub(crate) const SET_ELEM_LIST_SET_ID: u16 = 4;
    pub(crate) const SET_ELEM_KEY: u16 = 1;
    pub(crate) const SET_ELEM_DATA: u16 = 2;
    pub(crate) const SET_ELEM_FLAGS: u16 = 3;
    pub(crate) const DATA_VALUE: u16 = 1;
    pub(crate) const DATA_VERDICT: u16 = 2;
    pub(crate) const VERDICT_CODE: u16 = 1;
    pub(crate) const VERDICT_CHAIN: u16 = 2;
    pub(crate) const GEN_ID: u16 = 1;
}

/// Expression attribute numbers (`NFTA_<EXPR>_*`).
pub(crate) mod expr_attr {
    pub(crate) const PAYLOAD_DREG: u16 = 1;
    pub(crate) const PAYLOAD_BASE: u16 = 2;
    pub(crate) const PAYLOAD_OFFSET: u16 = 3;
    pub(crate) const PAYLOAD_LEN: u16 = 4;
    pub(crate) const PAYLOAD_SREG: u16 = 5;
    pub(crate) const META_DREG: u16 = 1;
    pub(crate) const META_KEY: u16 = 2;
    pub(crate) const CMP_SREG: u16 = 1;
    pub(crate) const CMP_OP: u16 = 2;
    pub(crate) const CMP_DATA: u16 = 3;
    pub(crate) const BITWISE_SREG: u16 = 1;
    pub(crate) const BITWISE_DREG: u16 = 2;
    pub(crate) const BITWISE_LEN: u16 = 3;
    pub(crate) const BITWISE_MASK: u16 = 4;
    pub(crate) const BITWISE_XOR: u16 = 5;
    pub(crate) const BITWISE_OP: u16 = 6;
    pub(crate) const LOOKUP_SET: u16 = 1;
    pub(crate) const LOOKUP_SREG: u16 = 2;
    pub(crate) const LOOKUP_DREG: u16 = 3;
    pub(crate) const LOOKUP_SET_ID: u16 = 4;
    pub(crate) const LOOKUP_FLAGS: u16 = 5;
    pub(crate) const IMMEDIATE_DREG: u16 = 1;
    pub(crate) const IMMEDIATE_DATA: u16 = 2;
    pub(crate) const NAT_TYPE: u16 = 1;
    pub(crate) const NAT_FAMILY: u16 = 2;
    pub(crate) const NAT_REG_ADDR_MIN: u16 = 3;
    pub(crate) const NAT_REG_ADDR_MAX: u16 = 4;
    pub(crate) const NAT_REG_PROTO_MIN: u16 = 5;
    pub(crate) const NAT_REG_PROTO_MAX: u16 = 6;
    pub(crate) const NAT_FLAGS: u16 = 7;
    pub(crate) const MASQ_FLAGS: u16 = 1;
}

use attr::*;
use expr_attr::*;

/// Netlink flags (`NLM_F_*`).
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CREATE: u16 = 0x400;

/// A transaction ready to send: its bytes and, per command, its sequence number and
/// what it does (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) bytes: Vec<u8>,
    pub(crate) begin_seq: u32,
    pub(crate) end_seq: u32,
    pub(crate) commands: Vec<(u32, String)>,
}

struct BatchWriter {
    bytes: Vec<u8>,
    begin_seq: u32,
    next_seq: u32,
    commands: Vec<(u32, String)>,
}

impl BatchWriter {
    fn new(first_seq: u32) -> BatchWriter {
        let begin = MsgWriter::new(
            MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            first_seq,
            0,
            SUBSYS_NFTABLES,
        );
        BatchWriter {
            bytes: begin.finish(),
            begin_seq: first_seq,
            next_seq: first_seq.wrapping_add(1),
            commands: Vec::new(),
        }
    }

    /// Appends one command; `body` writes its attributes.
    fn command(
        &mut self,
        msg: u16,
        flags: u16,
        family: Family,
        what: String,
        body: impl FnOnce(&mut MsgWriter),
    ) {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let mut m = MsgWriter::new(
            nft_type(msg),
            NLM_F_REQUEST | NLM_F_ACK | flags,
            seq,
            family.nfproto(),
            0,
        );
        body(&mut m);
        self.bytes.extend(m.finish());
        self.commands.push((seq, what));
    }

    fn finish(mut self) -> Batch {
        let end = MsgWriter::new(
            MSG_BATCH_END,
            NLM_F_REQUEST,
            self.next_seq,
            0,
            SUBSYS_NFTABLES,
        );
        self.bytes.extend(end.finish());
        Batch {
            bytes: self.bytes,
            begin_seq: self.begin_seq,
            end_seq: self.next_seq,
            commands: self.commands,
        }
    }

    /// `add table` (no error if it exists) then `delete table`: removes the table
    /// whether or not it was there, in the same transaction as what follows.
    fn clear_table(&mut self, family: Family, name: &Name) {
        self.new_table(family, name);
        self.command(
            MSG_DELTABLE,
            0,
            family,
            format!("delete table {family} {name}"),
            |m| {
                m.put_str(TABLE_NAME, name.as_str());
            },
        );
    }

    fn new_table(&mut self, family: Family, name: &Name) {
        self.command(
            MSG_NEWTABLE,
            NLM_F_CREATE,
            family,
            format!("add table {family} {name}"),
            |m| {
                m.put_str(TABLE_NAME, name.as_str());
                m.put_u32(TABLE_FLAGS, 0);
            },
        );
    }
}

/// The transaction that replaces `table`: `add table`, `delete table`, then the table
/// anew with its chains, and per rule its anonymous sets and the rule.
pub(crate) fn replace_batch(table: &Table, first_seq: u32) -> Batch {
    let (family, name) = (table.family(), table.name());
    let compiled = compile_table(table);
    let mut b = BatchWriter::new(first_seq);
    b.clear_table(family, name);
    b.new_table(family, name);
    for chain in table.chains() {
        b.command(
            MSG_NEWCHAIN,
            NLM_F_CREATE,
            family,
            format!("add chain {family} {name} {}", chain.name()),
            |m| {
                m.put_str(CHAIN_TABLE, name.as_str());
                m.put_str(CHAIN_NAME, chain.name().as_str());
                if let Some(base) = chain.base() {
                    m.begin_nest(CHAIN_HOOK);
                    m.put_u32(HOOK_HOOKNUM, base.hook.number());
                    m.put_u32(HOOK_PRIORITY, base.priority as u32);
                    if let super::model::Hook::Ingress(device) = &base.hook {
                        m.put_str(HOOK_DEV, device.as_str());
                    }
                    m.end_nest();
                    m.put_u32(
                        CHAIN_POLICY,
                        match base.policy {
                            Policy::Drop => 0,
                            Policy::Accept => 1,
                        },
                    );
                    m.put_str(CHAIN_TYPE, base.chain_type.name());
                }
            },
        );
    }
    // Set ids are local to the batch; the kernel names each set `__set<n>` itself.
    let set_id = |index: usize| index as u32 + 1;
    for (chain, rules) in table.chains().iter().zip(&compiled.rules) {
        for (k, (rule, exprs)) in chain.rules().iter().zip(rules).enumerate() {
            // Every lookup has a set of its own, created just before its rule (as nft does).
            for index in sets_used(exprs) {
                let set = &compiled.sets[index];
                let what = format!(
                    "add anonymous set {} of rule {} in chain {}",
                    index,
                    k + 1,
                    chain.name()
                );
                b.command(MSG_NEWSET, NLM_F_CREATE, family, what.clone(), |m| {
                    put_set(m, name, set, set_id(index))
                });
                b.command(
                    MSG_NEWSETELEM,
                    NLM_F_CREATE,
                    family,
                    format!("{what}: elements"),
                    |m| put_set_elements(m, name, set, set_id(index)),
                );
            }
            let what = format!(
                "rule {} of chain {family} {name} {}: {}",
                k + 1,
                chain.name(),
                render::rule(family, rule)
            );
            b.command(
                MSG_NEWRULE,
                NLM_F_CREATE | NLM_F_APPEND,
                family,
                what,
                |m| {
                    m.put_str(RULE_TABLE, name.as_str());
                    m.put_str(RULE_CHAIN, chain.name().as_str());
                    m.begin_nest(RULE_EXPRESSIONS);
                    for e in exprs {
                        put_expr(m, e, &set_id);
                    }
                    m.end_nest();
                },
            );
        }
    }
    b.finish()
}

/// The transaction that removes a table if it exists.
pub(crate) fn delete_batch(family: Family, name: &Name, first_seq: u32) -> Batch {
    let mut b = BatchWriter::new(first_seq);
    b.clear_table(family, name);
    b.finish()
}

fn sets_used(exprs: &[Expr]) -> impl Iterator<Item = usize> + '_ {
    exprs.iter().filter_map(|e| match e {
        Expr::Lookup {
            set: SetRef::Anonymous(i),
            ..
        } => Some(*i),
        _ => None,
    })
}

fn put_set(m: &mut MsgWriter, table: &Name, set: &AnonSet, id: u32) {
    m.put_str(SET_TABLE, table.as_str());
    m.put_str(SET_NAME, "__set%d");
    m.put_u32(SET_FLAGS, SET_ANONYMOUS_CONSTANT);
    m.put_u32(SET_KEY_TYPE, set.key_type);
    m.put_u32(SET_KEY_LEN, set.key_len);
    m.put_u32(SET_ID, id);
    m.begin_nest(SET_DESC);
    m.put_u32(SET_DESC_SIZE, set.elements.len() as u32);
    m.end_nest();
}

fn put_set_elements(m: &mut MsgWriter, table: &Name, set: &AnonSet, id: u32) {
    m.put_str(SET_ELEM_LIST_TABLE, table.as_str());
    m.put_str(SET_ELEM_LIST_SET, "__set%d");
    m.put_u32(SET_ELEM_LIST_SET_ID, id);
    m.begin_nest(SET_ELEM_LIST_ELEMENTS);
    for element in &set.elements {
        m.begin_nest(LIST_ELEM);
        m.begin_nest(SET_ELEM_KEY);
        m.put(DATA_VALUE, element);
        m.end_nest();
        m.end_nest();
    }
    m.end_nest();
}

/// One expression: `NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { … } }`.
pub(crate) fn put_expr(m: &mut MsgWriter, e: &Expr, set_id: &dyn Fn(usize) -> u32) {
    let name = match e {
        Expr::Payload { .. } => "payload",
        Expr::Meta { .. } => "meta",
        Expr::Cmp { .. } => "cmp",
        Expr::Bitwise { .. } => "bitwise",
        Expr::Lookup { .. } => "lookup",
        Expr::Immediate { .. } => "immediate",
        Expr::Nat { .. } => "nat",
        Expr::Masq { .. } => "masq",
        Expr::Counter => "counter",
        Expr::Other { name, .. } => name,
    };
    m.begin_nest(LIST_ELEM);
    m.put_str(EXPR_NAME, name);
    m.begin_nest(EXPR_DATA);
    match e {
        Expr::Payload {
            base,
            offset,
            len,
            dreg,
        } => {
            m.put_u32(PAYLOAD_DREG, *dreg);
            m.put_u32(PAYLOAD_BASE, *base);
            m.put_u32(PAYLOAD_OFFSET, *offset);
            m.put_u32(PAYLOAD_LEN, *len);
        }
        Expr::Meta { key, dreg } => {
            m.put_u32(META_KEY, *key);
            m.put_u32(META_DREG, *dreg);
        }
        Expr::Cmp { op, sreg, data } => {
            m.put_u32(CMP_SREG, *sreg);
            m.put_u32(CMP_OP, *op);
            put_data(m, CMP_DATA, &Data::Value(data.clone()));
        }
        Expr::Bitwise {
            sreg,
            dreg,
            mask,
            xor,
        } => {
            m.put_u32(BITWISE_SREG, *sreg);
            m.put_u32(BITWISE_DREG, *dreg);
            m.put_u32(BITWISE_LEN, mask.len() as u32);
            put_data(m, BITWISE_MASK, &Data::Value(mask.clone()));
            put_data(m, BITWISE_XOR, &Data::Value(xor.clone()));
        }
        Expr::Lookup { set, sreg, flags } => {
            m.put_u32(LOOKUP_SREG, *sreg);
            match set {
                SetRef::Anonymous(index) => {
                    m.put_str(LOOKUP_SET, "__set%d");
                    m.put_u32(LOOKUP_SET_ID, set_id(*index));
                }
                SetRef::Named(name) => m.put_str(LOOKUP_SET, name),
            }
            m.put_u32(LOOKUP_FLAGS, *flags);
        }
        Expr::Immediate { dreg, data } => {
            m.put_u32(IMMEDIATE_DREG, *dreg);
            put_data(m, IMMEDIATE_DATA, data);
        }
        Expr::Nat {
            kind,
            family,
            addr_min,
            addr_max,
            proto_min,
            proto_max,
            flags,
        } => {
            m.put_u32(NAT_TYPE, *kind);
            m.put_u32(NAT_FAMILY, *family);
            for (kind, reg) in [
                (NAT_REG_ADDR_MIN, addr_min),
                (NAT_REG_ADDR_MAX, addr_max),
                (NAT_REG_PROTO_MIN, proto_min),
                (NAT_REG_PROTO_MAX, proto_max),
                (NAT_FLAGS, flags),
            ] {
                if let Some(v) = reg {
                    m.put_u32(kind, *v);
                }
            }
        }
        Expr::Masq { flags } => {
            if let Some(flags) = flags {
                m.put_u32(MASQ_FLAGS, *flags);
            }
        }
        Expr::Counter | Expr::Other { .. } => {}
    }
    m.end_nest();
    m.end_nest();
}

/// `NFTA_DATA_VALUE` bytes or an `NFTA_DATA_VERDICT`, nested in attribute `kind`.
fn put_data(m: &mut MsgWriter, kind: u16, data: &Data) {
    m.begin_nest(kind);
    match data {
        Data::Value(bytes) => m.put(DATA_VALUE, bytes),
        Data::Verdict { code, chain } => {
            m.begin_nest(DATA_VERDICT);
            m.put_u32(VERDICT_CODE, *code as u32);
            if let Some(chain) = chain {
                m.put_str(VERDICT_CHAIN, chain);
            }
            m.end_nest();
        }
    }
    m.end_nest();
}

/// Why a transaction failed: the command the kernel refused (or the commit) and why.
#[derive(Debug)]
pub(crate) struct BatchError {
    pub(crate) command: String,
    pub(crate) error: NlError,
}

/// Sends `batch` and waits for every command's acknowledgement. The first refusal (in
/// batch order) is the error; the kernel then applied nothing.
pub(crate) fn send_batch(sock: &mut NlSocket, batch: &Batch) -> Result<(), BatchError> {
    let as_batch_error = |error| BatchError {
        command: "send the transaction".into(),
        error,
    };
    sock.reserve_buffers(batch.bytes.len(), batch.commands.len())
        .map_err(|e| as_batch_error(NlError::Io(e)))?;
    sock.send(&batch.bytes).map_err(as_batch_error)?;
    let mut pending: Vec<u32> = batch.commands.iter().map(|(seq, _)| *seq).collect();
    let mut refused: Vec<(u32, NlError)> = Vec::new();
    while !pending.is_empty() {
        for message in sock.recv().map_err(as_batch_error)? {
            if message.kind != NLMSG_ERROR {
                continue;
            }
            let outcome = message.error().map_err(as_batch_error)?;
            if message.seq == batch.begin_seq {
                // The batch as a whole (permissions, unknown subsystem, the commit).
                if let Some(error) = outcome {
                    return Err(BatchError {
                        command: "the transaction (batch begin / commit)".into(),
                        error,
                    });
                }
                continue;
            }
            if let Some(pos) = pending.iter().position(|s| *s == message.seq) {
                pending.swap_remove(pos);
                if let Some(e) = outcome {
                    refused.push((message.seq, e));
                }
            }
        }
    }
    refused.sort_by_key(|(seq, _)| seq.wrapping_sub(batch.begin_seq));
    match refused.into_iter().next() {
        None => Ok(()),
        Some((seq, error)) => {
            let command = batch
                .commands
                .iter()
                .find(|(s, _)| *s == seq)
                .map_or_else(|| format!("message {seq}"), |(_, what)| what.clone());
            Err(BatchError { command, error })
        }
    }
}

#[cfg(test)]
#[path = "netlink_tests.rs"]
mod tests;
