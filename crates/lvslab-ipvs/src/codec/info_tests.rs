//! Byte-level tests of the GET_INFO and timeout requests and replies.
//!
//! `test_bytes` explains how the expected bytes are written.

use super::*;
use crate::codec::test_bytes::*;

#[test]
fn config_and_info_requests() {
    // ipvsadm --set 900 120 300
    let set = Request::set_timeouts(&Timeouts {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
    });
    assert_eq!(
        set.to_message(FAM, 2),
        cat(&[
            nlhdr(44, FAM, 0x0005, 2),
            vec![12, 1, 0, 0],                          // SET_CONFIG
            nla(8, 4), h32(900),                        // TIMEOUT_TCP
            nla(8, 5), h32(120),                        // TIMEOUT_TCP_FIN
            nla(8, 6), h32(300),                        // TIMEOUT_UDP
        ])
    );
    assert_eq!(
        Request::get_timeouts().to_message(FAM, 3),
        cat(&[nlhdr(20, FAM, 0x0005, 3), vec![13, 1, 0, 0]]) // GET_CONFIG
    );
    assert_eq!(
        Request::get_info().to_message(FAM, 4),
        cat(&[nlhdr(20, FAM, 0x0005, 4), vec![15, 1, 0, 0]]) // GET_INFO
    );
}

#[test]
fn parses_info_and_config_replies_with_reply_command_numbers() {
    let info = cat(&[
        nla(8, 1), h32(0x0001_0201),                    // VERSION 1.2.1
        nla(8, 2), h32(4096),                           // CONN_TAB_SIZE
    ]);
    let g = GenlMessage {
        cmd: 14, // SET_INFO
        version: 1,
        attrs: &info,
    };
    let got = parse_info_reply(&g).expect("parses");
    assert_eq!(got.version, "1.2.1");
    assert_eq!(got.conn_table_size, 4096);
    assert!(parse_info_reply(&GenlMessage { cmd: 15, ..g }).is_err());

    let cfg = cat(&[
        nla(8, 4), h32(900),
        nla(8, 5), h32(120),
        nla(8, 6), h32(300),
    ]);
    let g = GenlMessage {
        cmd: 12, // SET_CONFIG
        version: 1,
        attrs: &cfg,
    };
    assert_eq!(
        parse_timeouts_reply(&g).expect("parses"),
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
}

