//! pcapng round trips: captures survive write → read unchanged (directions, interface names,
//! nanosecond timestamps, comments), writing is deterministic and byte-identical to what
//! lvslab wrote before it used `pcap-file`, several sections read as one file, blocks we do
//! not use cannot refuse a file, and no input makes the reader panic. (Cross-checks with
//! Wireshark's tools are in `tshark.rs`.)

mod common;

use std::borrow::Cow;
use std::time::Duration;

use common::{le_block, le_option};
use lvslab_pcap::pcapng::CSUM_NOT_READY_COMMENT;
use lvslab_pcap::{Capture, Frame, Interface, LinkType, PacketDirection, PcapError};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};
use proptest::prelude::*;

/// Written by lvslab's own pcapng writer before the switch to `pcap-file`.
const NAT_FIXTURE: &[u8] = include_bytes!("fixtures/nat-userspace-2flows.pcapng");

fn every_feature() -> Capture {
    Capture {
        interfaces: vec![
            Interface::ethernet("client:eth0"),
            Interface {
                name: "director:tun1".into(),
                linktype: LinkType::RawIp,
                snaplen: 1500,
            },
            Interface {
                name: "rs1:any".into(),
                linktype: LinkType::Other(113),
                snaplen: 0,
            },
        ],
        frames: vec![
            Frame {
                direction: Some(PacketDirection::Inbound),
                ..Frame::new(0, 1_700_000_000_123_456_789, vec![1, 2, 3, 4, 5])
            },
            Frame {
                interface: 1,
                ts_ns: 1_700_000_000_123_456_791,
                orig_len: 9000,
                data: vec![0x45; 7],
                direction: Some(PacketDirection::Outbound),
                comments: vec![
                    "first".into(),
                    CSUM_NOT_READY_COMMENT.into(),
                    "ünïcödé".into(),
                ],
            },
            Frame {
                comments: vec![String::new()],
                ..Frame::new(2, u64::MAX, Vec::new())
            },
            Frame::new(0, 0, vec![0xff; 1514]),
        ],
    }
}

#[test]
fn round_trip_keeps_directions_names_nanoseconds_and_comments() {
    let cap = every_feature();
    let back = Capture::from_pcapng(&cap.to_pcapng().expect("encode")).expect("decode");
    let names: Vec<&str> = back.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["client:eth0", "director:tun1", "rs1:any"]);
    let directions: Vec<_> = back.frames.iter().map(|f| f.direction).collect();
    assert_eq!(
        directions,
        [
            Some(PacketDirection::Inbound),
            Some(PacketDirection::Outbound),
            None,
            None
        ]
    );
    let ts: Vec<u64> = back.frames.iter().map(|f| f.ts_ns).collect();
    assert_eq!(
        ts,
        [
            1_700_000_000_123_456_789,
            1_700_000_000_123_456_791,
            u64::MAX,
            0
        ]
    );
    assert_eq!(
        back.frames[1].comments,
        ["first", CSUM_NOT_READY_COMMENT, "ünïcödé"]
    );
    assert!(back.frames[1].csum_not_ready());
    assert_eq!(back.frames[2].comments, [""]);
    assert_eq!(back, cap, "and everything else");
}

#[test]
fn lvslab_fixture_is_rewritten_byte_for_byte() {
    let cap = Capture::from_pcapng(NAT_FIXTURE).expect("decode");
    assert!(cap.frames.len() > 10, "{} frames", cap.frames.len());
    assert!(cap.frames.iter().all(|f| f.direction.is_some()));
    assert_eq!(cap.to_pcapng().expect("encode"), NAT_FIXTURE);
}

#[test]
fn several_sections_number_interfaces_and_frames_across_the_file() {
    // Interface ids are per section (pcapng); ours run across the file. (tshark 4.0 is no
    // oracle here: it names a later section's frame after the file-wide interface with the
    // same number but times it with the section's own interface.)
    let frame = [0u8; 60];
    let epb = |interface_id, ns| EnhancedPacketBlock {
        interface_id,
        // pcap-file 2 writes a tick count given as nanoseconds, whatever if_tsresol says.
        timestamp: Duration::from_nanos(ns),
        original_len: 60,
        data: Cow::Borrowed(&frame[..]),
        options: vec![],
    };
    let idb = |name: &'static str, tsresol: u8| InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![
            InterfaceDescriptionOption::IfName(Cow::Borrowed(name)),
            InterfaceDescriptionOption::IfTsResol(tsresol),
        ],
    };
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Big).expect("shb");
    w.write_pcapng_block(idb("a:eth0", 9)).expect("idb");
    w.write_pcapng_block(epb(0, 5)).expect("epb");
    let second = SectionHeaderBlock {
        endianness: Endianness::Little,
        ..Default::default()
    };
    w.write_pcapng_block(second).expect("shb");
    w.write_pcapng_block(idb("b:eth0", 6)).expect("idb");
    w.write_pcapng_block(idb("b:eth1", 3)).expect("idb");
    w.write_pcapng_block(epb(1, 7)).expect("epb");
    w.write_pcapng_block(epb(0, 8)).expect("epb");
    let cap = Capture::from_pcapng(&w.into_inner()).expect("decode");
    let names: Vec<&str> = cap.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a:eth0", "b:eth0", "b:eth1"]);
    let seen: Vec<(u32, u64)> = cap.frames.iter().map(|f| (f.interface, f.ts_ns)).collect();
    assert_eq!(seen, [(0, 5), (2, 7_000_000), (1, 8_000)]);
}

#[test]
fn blocks_we_do_not_use_are_skipped_even_when_their_insides_are_bad() {
    let cap = every_feature();
    let mut bytes = cap.to_pcapng().expect("encode");
    // Interface Statistics Block whose comment is not UTF-8 (pcap-file's decoder refuses
    // that), a Name Resolution Block, and a block type nobody knows.
    let mut isb = vec![0u8; 12];
    isb.extend(le_option(1, &[0xff, 0xfe, 0x80]));
    isb.extend(le_option(0, &[]));
    bytes.extend(le_block(5, &isb));
    bytes.extend(le_block(
        4,
        &[1, 0, 5, 0, 198, 51, 100, 7, b'c', 0, 0, 0, 0, 0, 0, 0],
    ));
    bytes.extend(le_block(0x0BAD_F00D, &[0xde, 0xad]));
    bytes.extend(cap.to_pcapng().expect("encode")); // and a second section
    let back = Capture::from_pcapng(&bytes).expect("decode");
    assert_eq!(back.interfaces.len(), 2 * cap.interfaces.len());
    assert_eq!(back.frames.len(), 2 * cap.frames.len());
    assert_eq!(back.frames[..cap.frames.len()], cap.frames[..]);
    assert_eq!(back.frames[cap.frames.len()].interface, 3);
}

#[test]
fn text_that_is_not_utf8_and_if_tzone_are_refused() {
    // What the crate docs say is stricter than the reader before pcap-file.
    let shb = &every_feature().to_pcapng().expect("encode")[..44];
    let idb = |options: &[u8]| {
        let mut body = vec![1, 0, 0, 0, 0, 0, 4, 0];
        body.extend_from_slice(options);
        le_block(1, &body)
    };
    let epb_with_comment = |comment: &[u8]| {
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&[4, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]);
        body.extend(le_option(1, comment));
        body.extend(le_option(0, &[]));
        le_block(6, &body)
    };
    let file = |blocks: &[Vec<u8>]| [shb.to_vec(), blocks.concat()].concat();
    let fine = file(&[idb(&[]), epb_with_comment("ok".as_bytes())]);
    assert_eq!(
        Capture::from_pcapng(&fine).expect("fine").frames[0].comments,
        ["ok"]
    );
    // Each refused at the block that holds it: the EPB after a 20-byte IDB, or the IDB.
    for (what, bad, at) in [
        (
            "comment",
            file(&[idb(&[]), epb_with_comment(&[0xff, 0xfe])]),
            64,
        ),
        (
            "if_name",
            file(&[idb(&[le_option(2, &[0xc3]), le_option(0, &[])].concat())]),
            44,
        ),
        (
            "if_tzone",
            file(&[idb(&[le_option(10, &[0; 4]), le_option(0, &[])].concat())]),
            44,
        ),
    ] {
        let err = Capture::from_pcapng(&bad).expect_err(what);
        assert!(
            matches!(err, PcapError::Malformed { offset, .. } if offset == at),
            "{what}: {err}"
        );
    }
}

#[test]
fn what_does_not_fit_the_format_is_refused_not_truncated() {
    let mut cap = every_feature();
    cap.frames[0].comments = vec!["x".repeat(70_000)];
    let err = cap.to_pcapng().expect_err("a comment over 65535 bytes");
    assert!(
        matches!(&err, PcapError::Encode { what, .. } if what.contains("opt_comment")),
        "{err}"
    );
    let mut cap = every_feature();
    cap.interfaces[1].name = "n".repeat(65_536);
    let err = cap.to_pcapng().expect_err("a name over 65535 bytes");
    assert!(
        matches!(&err, PcapError::Encode { what, .. } if what.contains("if_name")),
        "{err}"
    );
}

#[test]
fn bad_files_are_errors_that_say_where() {
    let bytes = every_feature().to_pcapng().expect("encode");
    let err = Capture::from_pcapng(&bytes[..bytes.len() - 3]).expect_err("truncated");
    let trailer: [u8; 4] = bytes[bytes.len() - 4..].try_into().expect("4 bytes");
    let last_block = bytes.len() - u32::from_le_bytes(trailer) as usize;
    assert!(
        matches!(err, PcapError::Malformed { format: "pcapng", offset, .. } if offset == last_block),
        "{err}"
    );
    let len_at =
        |at: usize| u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
    let idb_at = len_at(0);
    let err = Capture::from_pcapng(&bytes[idb_at..]).expect_err("no section header");
    assert!(
        matches!(err, PcapError::Malformed { offset: 0, .. }),
        "{err}"
    );
    let mut bad = bytes.clone();
    // The interface block's trailing length.
    bad[idb_at + len_at(idb_at) - 1] ^= 0x40;
    let err = Capture::from_pcapng(&bad).expect_err("lengths differ");
    assert!(
        matches!(err, PcapError::Malformed { offset, .. } if offset == idb_at),
        "{err}"
    );
}

fn capture() -> impl Strategy<Value = Capture> {
    let iface = ("[a-z]{1,8}:[a-z0-9]{1,6}", prop::bool::ANY).prop_map(|(name, raw)| Interface {
        name,
        linktype: if raw {
            LinkType::RawIp
        } else {
            LinkType::Ethernet
        },
        snaplen: 262_144,
    });
    prop::collection::vec(iface, 1..4).prop_flat_map(|ifaces| {
        let n = ifaces.len() as u32;
        let frame = (
            0..n,
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..200),
            prop::option::of(prop::bool::ANY),
            prop::collection::vec("[ -~]{0,20}", 0..3),
            0u32..100,
        )
            .prop_map(|(interface, ts_ns, data, dir, comments, extra)| Frame {
                interface,
                ts_ns,
                orig_len: data.len() as u32 + extra,
                data,
                direction: dir.map(|o| {
                    if o {
                        PacketDirection::Outbound
                    } else {
                        PacketDirection::Inbound
                    }
                }),
                comments,
            });
        (Just(ifaces), prop::collection::vec(frame, 0..20))
            .prop_map(|(interfaces, frames)| Capture { interfaces, frames })
    })
}

proptest! {
    #[test]
    fn write_read_round_trip(cap in capture()) {
        let bytes = cap.to_pcapng().expect("encode");
        prop_assert_eq!(&bytes, &cap.to_pcapng().expect("encode again"));
        let back = Capture::from_pcapng(&bytes).expect("decode");
        prop_assert_eq!(back, cap);
    }

    #[test]
    fn reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Capture::from_pcapng(&bytes);
        let _ = lvslab_pcap::pcapng::read_pcap(&bytes, "x");
    }

    /// Random bytes rarely get past the first block; changed bytes of a real file reach
    /// every block decoder.
    #[test]
    fn reader_never_panics_on_a_damaged_file(
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = NAT_FIXTURE[..4096].to_vec();
        for (at, value) in changes {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(1 + cut.index(bytes.len()));
        let _ = Capture::from_pcapng(&bytes);
    }
}
