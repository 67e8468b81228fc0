//! Byte-level tests of family resolution and of the kernel's answer without IPVS.
//!
//! `test_bytes` explains how the expected bytes are written.

use super::*;
use crate::codec::test_bytes::*;
use crate::wire::{split_messages, Reply};

#[test]
fn family_resolution_request_and_reply() {
    assert_eq!(
        resolve_family_message(1),
        cat(&[
            nlhdr(32, 0x10, 0x0005, 1),                 // GENL_ID_CTRL, REQUEST|ACK
            vec![3, 1, 0, 0],                           // CTRL_CMD_GETFAMILY, version 1
            nla(9, 2), b"IPVS\0".to_vec(), vec![0; 3],  // CTRL_ATTR_FAMILY_NAME + 3 pad
        ])
    );
    let reply = cat(&[
        nlhdr(48, 0x10, 0, 1),
        vec![1, 2, 0, 0],                               // CTRL_CMD_NEWFAMILY
        nla(9, 2), b"IPVS\0".to_vec(), vec![0; 3],      // FAMILY_NAME
        nla(6, 1), h16(FAM), vec![0, 0],                // FAMILY_ID (host)
        nla(8, 3), h32(1),                              // VERSION (ignored)
    ]);
    let msgs = split_messages(&reply).expect("frames");
    let Reply::Data(g) = msgs[0].reply().expect("classifies") else {
        panic!("expected a data message");
    };
    assert_eq!(parse_family_id(&g).expect("parses"), FAM);
}

#[test]
fn kernel_error_for_missing_family_is_enoent() {
    // What a kernel without IPVS answers to GETFAMILY "IPVS": NLMSG_ERROR -ENOENT, followed
    // by the echoed request header.
    let reply = cat(&[
        nlhdr(36, 2, 0x0100, 1),                        // NLMSG_ERROR, NLM_F_CAPPED
        (-2i32).to_ne_bytes().to_vec(),                 // error = -ENOENT
        nlhdr(32, 0x10, 0x0005, 1),                     // echoed request header
    ]);
    let msgs = split_messages(&reply).expect("frames");
    assert_eq!(msgs[0].reply().expect("classifies"), Reply::Error(2));
}

