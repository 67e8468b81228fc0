//! Byte-level tests of the nf_tables encoding: each expression kind, then whole
//! transactions. Layouts follow `nft --debug=mnl` of nft 1.0.6 for the same rules.

use std::collections::BTreeSet;

use super::*;
use crate::nft::model::{BaseChain, Chain, IfName, Match, Rule, Statement};

/// An attribute header: length (unpadded, header included) and type, host order.
fn nla(len: u16, kind: u16) -> Vec<u8> {
    [len.to_ne_bytes(), kind.to_ne_bytes()].concat()
}

/// A nested attribute header (`NLA_F_NESTED` set).
fn nest(len: u16, kind: u16) -> Vec<u8> {
    nla(len, kind | 0x8000)
}

/// A big-endian u32 attribute, as nf_tables wants its numbers.
fn u32_attr(kind: u16, v: u32) -> Vec<u8> {
    [nla(8, kind), v.to_be_bytes().to_vec()].concat()
}

/// The bytes `put_expr` writes for `e` (after the message and nfgenmsg headers).
fn expr_bytes(e: &Expr) -> Vec<u8> {
    let mut m = MsgWriter::new(0, 0, 0, 0, 0);
    put_expr(&mut m, e, &|i| i as u32 + 1);
    m.finish()[20..].to_vec()
}

#[test]
fn payload_load() {
    // ip daddr: 4 bytes at network header + 16 into register 1.
    let e = Expr::Payload {
        base: 1,
        offset: 16,
        len: 4,
        dreg: 1,
    };
    let want = [
        nest(52, 1), // NFTA_LIST_ELEM
        nla(12, 1),
        b"payload\0".to_vec(), // NFTA_EXPR_NAME
        nest(36, 2),           // NFTA_EXPR_DATA
        u32_attr(1, 1),        // NFTA_PAYLOAD_DREG = NFT_REG_1
        u32_attr(2, 1),        // NFTA_PAYLOAD_BASE = network header
        u32_attr(3, 16),       // NFTA_PAYLOAD_OFFSET
        u32_attr(4, 4),        // NFTA_PAYLOAD_LEN
    ]
    .concat();
    assert_eq!(expr_bytes(&e), want);
}

#[test]
fn meta_load() {
    // meta protocol (the EtherType) into register 1.
    let e = Expr::Meta { key: 1, dreg: 1 };
    let want = [
        nest(36, 1),
        nla(9, 1),
        b"meta\0\0\0\0".to_vec(), // "meta\0" padded to 8
        nest(20, 2),
        u32_attr(2, 1), // NFTA_META_KEY = NFT_META_PROTOCOL
        u32_attr(1, 1), // NFTA_META_DREG
    ]
    .concat();
    assert_eq!(expr_bytes(&e), want);
}

#[test]
fn cmp_with_data() {
    // == 0x0800 (IPv4), two bytes of data padded to four.
    let e = Expr::Cmp {
        op: 0,
        sreg: 1,
        data: vec![0x08, 0x00],
    };
    let want = [
        nest(44, 1),
        nla(8, 1),
        b"cmp\0".to_vec(),
        nest(32, 2),
        u32_attr(1, 1), // NFTA_CMP_SREG
        u32_attr(2, 0), // NFTA_CMP_OP = NFT_CMP_EQ
        nest(12, 3),    // NFTA_CMP_DATA
        nla(6, 1),
        vec![0x08, 0x00, 0, 0], // NFTA_DATA_VALUE 08 00 + pad
    ]
    .concat();
    assert_eq!(expr_bytes(&e), want);
}

#[test]
fn bitwise_mask_for_a_prefix() {
    // A /12 netmask: (reg & ff.f0.00.00) ^ 0.
    let e = Expr::Bitwise {
        sreg: 1,
        dreg: 1,
        mask: vec![0xff, 0xf0, 0, 0],
        xor: vec![0; 4],
    };
    let want = [
        nest(68, 1),
        nla(12, 1),
        b"bitwise\0".to_vec(),
        nest(52, 2),
        u32_attr(1, 1), // NFTA_BITWISE_SREG
        u32_attr(2, 1), // NFTA_BITWISE_DREG
        u32_attr(3, 4), // NFTA_BITWISE_LEN
        nest(12, 4),
        nla(8, 1),
        vec![0xff, 0xf0, 0, 0], // NFTA_BITWISE_MASK
        nest(12, 5),
        nla(8, 1),
        vec![0, 0, 0, 0], // NFTA_BITWISE_XOR
    ]
    .concat();
    assert_eq!(expr_bytes(&e), want);
}

#[test]
fn lookup_in_an_anonymous_set() {
    // != { … }: the set by its batch id, the kernel picks the name.
    let e = Expr::Lookup {
        set: SetRef::Anonymous(0),
        sreg: 1,
        flags: 1,
    };
    let want = [
        nest(56, 1),
        nla(11, 1),
        b"lookup\0\0".to_vec(),
        nest(40, 2),
        u32_attr(2, 1), // NFTA_LOOKUP_SREG
        nla(12, 1),
        b"__set%d\0".to_vec(), // NFTA_LOOKUP_SET
        u32_attr(4, 1),        // NFTA_LOOKUP_SET_ID (batch-local)
        u32_attr(5, 1),        // NFTA_LOOKUP_FLAGS = NFT_LOOKUP_F_INV
    ]
    .concat();
    assert_eq!(expr_bytes(&e), want);
}

#[test]
fn immediate_verdicts_and_values() {
    let drop = Expr::Immediate {
        dreg: 0,
        data: Data::Verdict {
            code: 0,
            chain: None,
        },
    };
    let want = [
        nest(48, 1),
        nla(14, 1),
        b"immediate\0\0\0".to_vec(),
        nest(28, 2),
        u32_attr(1, 0), // NFTA_IMMEDIATE_DREG = NFT_REG_VERDICT
        nest(16, 2),    // NFTA_IMMEDIATE_DATA
        nest(12, 2),    // NFTA_DATA_VERDICT
        u32_attr(1, 0), // NFTA_VERDICT_CODE = NF_DROP
    ]
    .concat();
    assert_eq!(expr_bytes(&drop), want);

    let jump = Expr::Immediate {
        dreg: 0,
        data: Data::Verdict {
            code: -3,
            chain: Some("sub".into()),
        },
    };
    let want = [
        nest(56, 1),
        nla(14, 1),
        b"immediate\0\0\0".to_vec(),
        nest(36, 2),
        u32_attr(1, 0),
        nest(24, 2),
        nest(20, 2),
        u32_attr(1, (-3i32) as u32), // NFT_JUMP
        nla(8, 2),
        b"sub\0".to_vec(), // NFTA_VERDICT_CHAIN
    ]
    .concat();
    assert_eq!(expr_bytes(&jump), want);

    let addr = Expr::Immediate {
        dreg: 1,
        data: Data::Value(vec![10, 0, 0, 2]),
    };
    let want = [
        nest(44, 1),
        nla(14, 1),
        b"immediate\0\0\0".to_vec(),
        nest(24, 2),
        u32_attr(1, 1), // into register 1
        nest(12, 2),
        nla(8, 1),
        vec![10, 0, 0, 2], // NFTA_DATA_VALUE 10.0.0.2
    ]
    .concat();
    assert_eq!(expr_bytes(&addr), want);
}

#[test]
fn nat_and_masquerade() {
    // snat to the address in register 1, range spelled out as the kernel dumps it.
    let snat = Expr::Nat {
        kind: 0,
        family: 2,
        addr_min: Some(1),
        addr_max: Some(1),
        proto_min: None,
        proto_max: None,
        flags: Some(1),
    };
    let want = [
        nest(56, 1),
        nla(8, 1),
        b"nat\0".to_vec(),
        nest(44, 2),
        u32_attr(1, 0), // NFTA_NAT_TYPE = NFT_NAT_SNAT
        u32_attr(2, 2), // NFTA_NAT_FAMILY = NFPROTO_IPV4
        u32_attr(3, 1), // NFTA_NAT_REG_ADDR_MIN
        u32_attr(4, 1), // NFTA_NAT_REG_ADDR_MAX
        u32_attr(7, 1), // NFTA_NAT_FLAGS = NF_NAT_RANGE_MAP_IPS
    ]
    .concat();
    assert_eq!(expr_bytes(&snat), want);

    let masq = Expr::Masq { flags: None };
    let want = [
        nest(20, 1),
        nla(9, 1),
        b"masq\0\0\0\0".to_vec(),
        nest(4, 2), // no attributes
    ]
    .concat();
    assert_eq!(expr_bytes(&masq), want);
}

fn name(s: &str) -> Name {
    Name::new(s).expect("valid name")
}

/// Splits a batch into (type, flags, seq, family) per message, checking the lengths.
fn headers(bytes: &[u8]) -> Vec<(u16, u16, u32, u8)> {
    crate::netlink::split_messages(bytes)
        .expect("well-formed batch")
        .iter()
        .map(|m| (m.kind, m.flags, m.seq, m.payload()[0]))
        .collect()
}

#[test]
fn a_replace_batch_is_one_transaction_with_an_ack_per_command() {
    let addrs: BTreeSet<_> = ["198.51.100.1", "198.51.100.2"]
        .iter()
        .map(|a| a.parse().expect("addr"))
        .collect();
    let rule = Rule::new(
        vec![
            Match::DaddrIn {
                addrs,
                negate: false,
            },
            Match::IpProtocol(4),
        ],
        Statement::Drop,
    )
    .expect("rule");
    let ingress = BaseChain::ingress(IfName::new("lo").expect("ifname"));
    let table = Table::new(
        Family::Netdev,
        name("lvslab_engine"),
        vec![Chain::new(name("ingress_lo"), Some(ingress), vec![rule])],
    )
    .expect("table");
    let batch = replace_batch(&table, 100);
    let (req, ack, create, append) = (0x1, 0x4, 0x400, 0x800);
    assert_eq!(
        headers(&batch.bytes),
        vec![
            (16, req, 100, 0),                    // NFNL_MSG_BATCH_BEGIN (family unspec)
            (0x0a00, req | ack | create, 101, 5), // NEWTABLE netdev
            (0x0a02, req | ack, 102, 5),          // DELTABLE
            (0x0a00, req | ack | create, 103, 5), // NEWTABLE again
            (0x0a03, req | ack | create, 104, 5), // NEWCHAIN
            (0x0a09, req | ack | create, 105, 5), // NEWSET (anonymous)
            (0x0a0c, req | ack | create, 106, 5), // NEWSETELEM
            (0x0a06, req | ack | create | append, 107, 5), // NEWRULE
            (17, req, 108, 0),                    // NFNL_MSG_BATCH_END
        ]
    );
    // The batch messages name the nf_tables subsystem in res_id (big-endian 10).
    assert_eq!(&batch.bytes[16..20], &[0, 0, 0, 10]);
    assert_eq!((batch.begin_seq, batch.end_seq), (100, 108));
    let commands: Vec<&str> = batch.commands.iter().map(|(_, w)| w.as_str()).collect();
    assert_eq!(commands[0], "add table netdev lvslab_engine");
    assert_eq!(commands[1], "delete table netdev lvslab_engine");
    assert_eq!(commands[3], "add chain netdev lvslab_engine ingress_lo");
    assert_eq!(
        commands[6],
        "rule 1 of chain netdev lvslab_engine ingress_lo: ip daddr { 198.51.100.1, 198.51.100.2 } ip protocol 4 drop"
    );
}

#[test]
fn a_base_chain_carries_its_hook_device_policy_and_type() {
    let ingress = BaseChain::ingress(IfName::new("lo").expect("ifname"));
    let table = Table::new(
        Family::Netdev,
        name("t"),
        vec![Chain::new(name("c"), Some(ingress), vec![])],
    )
    .expect("table");
    let batch = replace_batch(&table, 1);
    let messages = crate::netlink::split_messages(&batch.bytes).expect("parses");
    let chain = &messages[4];
    #[rustfmt::skip]
    let want = [
        vec![5, 0, 0, 0],                              // nfgenmsg: NFPROTO_NETDEV
        nla(6, 1), b"t\0\0\0".to_vec(),                // NFTA_CHAIN_TABLE
        nla(6, 3), b"c\0\0\0".to_vec(),                // NFTA_CHAIN_NAME
        nest(28, 4),                                   // NFTA_CHAIN_HOOK
        u32_attr(1, 0),                                //   NFTA_HOOK_HOOKNUM = NF_NETDEV_INGRESS
        u32_attr(2, 0),                                //   NFTA_HOOK_PRIORITY 0
        nla(7, 3), b"lo\0\0".to_vec(),                 //   NFTA_HOOK_DEV
        u32_attr(5, 1),                                // NFTA_CHAIN_POLICY = NF_ACCEPT
        nla(11, 7), b"filter\0\0".to_vec(),            // NFTA_CHAIN_TYPE
    ]
    .concat();
    assert_eq!(chain.payload(), want.as_slice());
}

#[test]
fn an_anonymous_set_and_its_elements() {
    let set = AnonSet {
        key_type: 7,
        key_len: 4,
        elements: vec![vec![198, 51, 100, 1], vec![198, 51, 100, 2]],
    };
    let mut m = MsgWriter::new(0, 0, 0, 0, 0);
    put_set(&mut m, &name("t"), &set, 1);
    #[rustfmt::skip]
    let want = [
        nla(6, 1), b"t\0\0\0".to_vec(),          // NFTA_SET_TABLE
        nla(12, 2), b"__set%d\0".to_vec(),       // NFTA_SET_NAME: the kernel numbers it
        u32_attr(3, 3),                          // NFTA_SET_FLAGS = ANONYMOUS | CONSTANT
        u32_attr(4, 7),                          // NFTA_SET_KEY_TYPE = nft's ipv4_addr
        u32_attr(5, 4),                          // NFTA_SET_KEY_LEN
        u32_attr(10, 1),                         // NFTA_SET_ID
        nest(12, 9), u32_attr(1, 2),             // NFTA_SET_DESC { SIZE 2 }
    ]
    .concat();
    assert_eq!(&m.finish()[20..], want.as_slice());

    let mut m = MsgWriter::new(0, 0, 0, 0, 0);
    put_set_elements(&mut m, &name("t"), &set, 1);
    #[rustfmt::skip]
    let want = [
        nla(6, 1), b"t\0\0\0".to_vec(),          // NFTA_SET_ELEM_LIST_TABLE
        nla(12, 2), b"__set%d\0".to_vec(),       // NFTA_SET_ELEM_LIST_SET
        u32_attr(4, 1),                          // NFTA_SET_ELEM_LIST_SET_ID
        nest(36, 3),                             // NFTA_SET_ELEM_LIST_ELEMENTS
        nest(16, 1), nest(12, 1), nla(8, 1), vec![198, 51, 100, 1], // elem { key { value } }
        nest(16, 1), nest(12, 1), nla(8, 1), vec![198, 51, 100, 2],
    ]
    .concat();
    assert_eq!(&m.finish()[20..], want.as_slice());
}

#[test]
fn a_delete_batch_adds_then_deletes_so_an_absent_table_is_no_error() {
    let batch = delete_batch(Family::Ip, &name("lvslab"), 7);
    let kinds: Vec<u16> = headers(&batch.bytes).iter().map(|h| h.0).collect();
    assert_eq!(kinds, vec![16, 0x0a00, 0x0a02, 17]);
}

#[test]
fn encoded_rules_decode_to_the_same_expressions() {
    use crate::nft::expr::compile_rule;
    let rule = Rule::new(
        vec![
            Match::Saddr {
                prefix: crate::nft::model::Ipv4Prefix::new("10.0.0.0".parse().expect("addr"), 12)
                    .expect("prefix"),
                negate: true,
            },
            Match::Oifname {
                name: IfName::new("eth0").expect("ifname"),
                negate: false,
            },
        ],
        Statement::Snat(
            crate::nft::model::NatTo::range(
                "10.1.0.1".parse().expect("a"),
                "10.1.0.3".parse().expect("a"),
            )
            .expect("range"),
        ),
    )
    .expect("rule");
    let exprs = compile_rule(Family::Ip, &rule, &mut Vec::new());
    let mut m = MsgWriter::new(0, 0, 0, 0, 0);
    for e in &exprs {
        put_expr(&mut m, e, &|i| i as u32 + 1);
    }
    let bytes = m.finish();
    let decoded = crate::nft::listing::decode_exprs(&bytes[20..]).expect("decodes");
    assert_eq!(decoded, exprs);
}
