//! Cross-checks with Wireshark's own tools, both ways: files we write must open in tshark
//! with no malformed packets and no errors, keeping capture-point names, nanosecond
//! timestamps, directions and comments; and files written by dumpcap, tshark and editcap
//! (and hand-made ones with the rarer blocks) must read here exactly as tshark reads them.
//! Without tshark or editcap these tests fail (they must not pass by skipping).

mod common;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use lvslab_pcap::pcapng::CSUM_NOT_READY_COMMENT;
use lvslab_pcap::{Capture, Frame, Interface, LinkType, PacketDirection};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};

const NAT_FIXTURE: &str = "tests/fixtures/nat-userspace-2flows.pcapng";
/// Four UDP/ICMP frames on `lo`, written by dumpcap 4.0 (its options, an Interface
/// Statistics Block at the end).
const DUMPCAP_FIXTURE: &str = "tests/fixtures/dumpcap-lo-udp.pcapng";

fn sample() -> Capture {
    let mut c = Cap::default();
    let syn = Pkt::tcp((CLIENT, 40000), (VIP, 80), 1000)
        .syn()
        .ttl(63)
        .id(100);
    c.see("director:eth0", &syn);
    c.see(
        "director:eth0",
        &syn.clone().encap(Outer {
            src: DIP,
            dst: RIP1,
            ttl: 62,
            id: 7,
            kind: OuterKind::Ipip,
        }),
    );
    c.see(
        "rs1:eth0",
        &syn.clone().encap(Outer {
            src: DIP,
            dst: RIP1,
            ttl: 62,
            id: 8,
            kind: OuterKind::Gre,
        }),
    );
    c.see(
        "rs1:eth0",
        &Pkt::tcp((VIP, 80), (CLIENT, 40000), 5000)
            .syn()
            .ack(1001)
            .data(b"hello"),
    );
    let mut cap = c.cap;
    cap.frames[0].direction = Some(PacketDirection::Inbound);
    // A raw-IP capture point (a GRE device) with direction and comments.
    cap.interfaces.push(Interface {
        name: "director:tun1".into(),
        linktype: LinkType::RawIp,
        snaplen: 65535,
    });
    let raw = Pkt::tcp((CLIENT, 40001), (VIP, 80), 77).syn().ip_bytes();
    let mut f = Frame::new(2, 1_700_000_001_000_000_001, raw);
    f.direction = Some(PacketDirection::Outbound);
    f.comments = vec!["a comment".into(), CSUM_NOT_READY_COMMENT.into()];
    cap.frames.push(f);
    cap
}

/// A fresh directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("lvslab-pcap-tshark-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs one of Wireshark's tools; a missing tool fails the test with how to install it.
fn run(tool: &str, args: &[&str], files: &[&Path]) -> Output {
    let mut c = Command::new(tool);
    // No personal preferences or plugins: the same result on every machine.
    c.env(
        "WIRESHARK_CONFIG_DIR",
        std::env::temp_dir().join("lvslab-pcap-tshark-cfg"),
    );
    c.args(args);
    for (i, f) in files.iter().enumerate() {
        // Files go after the flag that names them: "-r FILE", "-w FILE", or bare.
        let flag = ["-r", "-w"].get(i).filter(|_| tool == "tshark");
        if let Some(flag) = flag {
            c.arg(flag);
        }
        c.arg(f);
    }
    match c.output() {
        Ok(o) => o,
        Err(e) => panic!(
            "{tool} is needed by this test and could not be run ({e}); install it: \
             DEBIAN_FRONTEND=noninteractive apt-get install -y tshark"
        ),
    }
}

/// What a tool wrote on stderr, minus tshark's warning about running as root.
fn complaints(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("Running as user"))
        .collect()
}

/// One frame as a reader sees it; compared between tshark and us.
#[derive(Debug, PartialEq)]
struct Seen {
    interface: String,
    ts_ns: u64,
    cap_len: usize,
    orig_len: u32,
    direction: Option<PacketDirection>,
    comments: Vec<String>,
}

fn parse_epoch_ns(s: &str) -> u64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    sec.parse::<u64>().expect("seconds") * 1_000_000_000 + frac.parse::<u64>().expect("fraction")
}

fn tshark_view(path: &Path) -> Vec<Seen> {
    let fields = [
        "frame.interface_name",
        "frame.time_epoch",
        "frame.cap_len",
        "frame.len",
        "frame.packet_flags_direction",
        "frame.comment",
    ];
    let mut args = vec!["-n", "-T", "fields", "-E", "separator=|"];
    for f in &fields {
        args.extend(["-e", f]);
    }
    let out = run("tshark", &args, &[path]);
    assert!(
        out.status.success(),
        "tshark failed on {path:?}: {}",
        complaints(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: Vec<&str> = line.split('|').collect();
            assert_eq!(v.len(), fields.len(), "{line}");
            Seen {
                interface: v[0].to_string(),
                // A Simple Packet Block has no timestamp: tshark shows none, we give 0.
                ts_ns: if v[1].is_empty() {
                    0
                } else {
                    parse_epoch_ns(v[1])
                },
                cap_len: v[2].parse().expect("cap_len"),
                orig_len: v[3].parse().expect("len"),
                direction: match v[4] {
                    "0x00000001" => Some(PacketDirection::Inbound),
                    "0x00000002" => Some(PacketDirection::Outbound),
                    _ => None,
                },
                comments: if v[5].is_empty() {
                    Vec::new()
                } else {
                    v[5].split(',').map(str::to_string).collect()
                },
            }
        })
        .collect()
}

fn our_view(cap: &Capture) -> Vec<Seen> {
    cap.frames
        .iter()
        .map(|f| Seen {
            interface: match cap.interfaces[f.interface as usize].name.as_str() {
                // What tshark calls an interface without `if_name`.
                "" => "unknown".into(),
                name => name.into(),
            },
            ts_ns: f.ts_ns,
            cap_len: f.data.len(),
            orig_len: f.orig_len,
            direction: f.direction,
            comments: f.comments.clone(),
        })
        .collect()
}

/// Reads `path` here and in tshark; every frame must agree, and there must be frames.
fn assert_reads_like_tshark(path: &Path) -> Capture {
    let cap = Capture::read_file(path).expect("our reader");
    let ours = our_view(&cap);
    assert!(!ours.is_empty(), "{path:?} has no frames");
    assert_eq!(ours, tshark_view(path), "{path:?}");
    cap
}

#[test]
fn tshark_reads_our_pcapng_without_errors() {
    let dir = scratch("ours");
    let path = dir.join("sample.pcapng");
    let cap = sample();
    cap.write_pcapng_file(&path).expect("write pcapng");
    let classic = dir.join("sample.pcap");
    std::fs::write(&classic, cap.to_pcap(0).expect("pcap")).expect("write pcap");

    for file in [&path, &classic] {
        let out = run("tshark", &["-n"], &[file]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = complaints(&out);
        assert!(out.status.success(), "tshark failed on {file:?}: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "tshark complained on {file:?}: {stderr}"
        );
        assert!(
            !stdout.contains("Malformed"),
            "malformed packet in {file:?}:\n{stdout}"
        );
        let expected_frames = if file == &path {
            cap.frames.len()
        } else {
            cap.frames.iter().filter(|f| f.interface == 0).count()
        };
        assert_eq!(stdout.lines().count(), expected_frames, "{stdout}");
    }

    // Interface names, nanosecond timestamps, comments and the inner packets survive.
    let out = run(
        "tshark",
        &[
            "-n",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "frame.interface_name",
            "-e",
            "frame.time_epoch",
            "-e",
            "ip.proto",
            "-e",
            "frame.comment",
        ],
        &[&path],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("director:eth0|1700000000.000000000|6"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("director:eth0|1700000000.000010000|4,6"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("rs1:eth0|1700000000.000020000|47,6"),
        "{}",
        lines[2]
    );
    assert!(
        lines[4].starts_with("director:tun1|1700000001.000000001|6|a comment"),
        "{}",
        lines[4]
    );
    // And every field of every frame, directions included, is what we wrote.
    assert_eq!(tshark_view(&path), our_view(&cap));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_from_lvslab_and_dumpcap_read_as_tshark_reads_them() {
    let nat = assert_reads_like_tshark(Path::new(NAT_FIXTURE));
    assert!(nat.frames.iter().all(|f| f.direction.is_some()));
    let dumpcap = assert_reads_like_tshark(Path::new(DUMPCAP_FIXTURE));
    assert_eq!(dumpcap.interfaces.len(), 1);
    assert_eq!(dumpcap.interfaces[0].name, "lo");
    assert_eq!(dumpcap.frames.len(), 4);
}

#[test]
fn what_tshark_writes_from_our_file_reads_back_equal() {
    let dir = scratch("rewrite");
    let ours = dir.join("ours.pcapng");
    let theirs = dir.join("theirs.pcapng");
    let cap = sample();
    cap.write_pcapng_file(&ours).expect("write");
    // tshark's own writer: its section options, each interface's options copied.
    let out = run("tshark", &["-F", "pcapng"], &[&ours, &theirs]);
    assert!(out.status.success(), "tshark -w: {}", complaints(&out));
    let back = assert_reads_like_tshark(&theirs);
    assert_eq!(back, cap);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn microsecond_files_from_tshark_and_editcap_keep_their_time() {
    let dir = scratch("usec");
    let ours = dir.join("ours.pcapng");
    let classic = dir.join("usec.pcap");
    let ng = dir.join("usec.pcapng");
    let mut cap = sample();
    // One interface only: a classic file holds one link type.
    cap.interfaces.truncate(1);
    cap.frames.retain(|f| f.interface == 0);
    for (i, f) in cap.frames.iter_mut().enumerate() {
        f.ts_ns += 123_456_789 * (i as u64 + 1);
    }
    cap.write_pcapng_file(&ours).expect("write");
    let out = run("tshark", &["-F", "pcap"], &[&ours, &classic]);
    assert!(out.status.success(), "tshark -F pcap: {}", complaints(&out));
    // editcap writes an interface with no if_tsresol: the pcapng default, microseconds.
    let out = run("editcap", &["-F", "pcapng"], &[&classic, &ng]);
    assert!(out.status.success(), "editcap: {}", complaints(&out));

    let from_ng = assert_reads_like_tshark(&ng);
    let from_classic = Capture::read_file(&classic).expect("classic");
    assert_eq!(from_classic.interfaces[0].name, "usec");
    for back in [&from_ng, &from_classic] {
        assert_eq!(back.frames.len(), cap.frames.len());
        for (b, f) in back.frames.iter().zip(&cap.frames) {
            assert_eq!(b.ts_ns, f.ts_ns / 1000 * 1000, "microseconds kept");
            assert_eq!(b.data, f.data);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// pcap-file 2 writes a packet's tick count as nanoseconds whatever `if_tsresol` says, so
/// a test that wants `units` ticks hands it that many "nanoseconds".
fn ticks(units: u64) -> Duration {
    Duration::from_nanos(units)
}

/// A frame of `frame` bytes on section-local interface `interface_id`.
fn epb<'a>(
    frame: &'a [u8],
    interface_id: u32,
    timestamp: Duration,
    options: Vec<EnhancedPacketOption<'a>>,
) -> EnhancedPacketBlock<'a> {
    EnhancedPacketBlock {
        interface_id,
        timestamp,
        original_len: frame.len() as u32,
        data: Cow::Borrowed(frame),
        options,
    }
}

fn idb(name: &'static str, tsresol: Option<u8>) -> InterfaceDescriptionBlock<'static> {
    InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: std::iter::once(InterfaceDescriptionOption::IfName(Cow::Borrowed(name)))
            .chain(tsresol.map(InterfaceDescriptionOption::IfTsResol))
            .collect(),
    }
}

#[test]
fn big_endian_file_with_other_resolutions_reads_as_tshark_reads_it() {
    let dir = scratch("bigendian");
    let path = dir.join("bigendian.pcapng");
    let frame = Pkt::tcp((CLIENT, 40000), (VIP, 80), 1).syn().frame();
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Big).expect("shb");
    // Microseconds said explicitly, the default (microseconds), binary (2^-10 s).
    w.write_pcapng_block(idb("be:eth0", Some(6))).expect("idb");
    w.write_pcapng_block(idb("be:eth1", None)).expect("idb");
    w.write_pcapng_block(idb("be:eth2", Some(0x80 | 10)))
        .expect("idb");
    let flags = vec![EnhancedPacketOption::Flags(1)];
    let comment = vec![EnhancedPacketOption::Comment("big-endian".into())];
    for block in [
        epb(&frame, 0, ticks(1_700_000_000_000_001), flags),
        epb(&frame, 1, ticks(1_700_000_000_000_002), comment),
        epb(&frame, 2, ticks(1_700_000_000 * 1024 + 512), vec![]),
    ] {
        w.write_pcapng_block(block).expect("epb");
    }
    std::fs::write(&path, w.into_inner()).expect("write");

    let cap = assert_reads_like_tshark(&path);
    let ts: Vec<u64> = cap.frames.iter().map(|f| f.ts_ns).collect();
    assert_eq!(
        ts,
        [
            1_700_000_000_000_001_000,
            1_700_000_000_000_002_000,
            1_700_000_000_500_000_000
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn obsolete_packet_and_simple_packet_blocks_read_as_tshark_reads_them() {
    let dir = scratch("oldblocks");
    let path = dir.join("oldblocks.pcapng");
    let frame = Pkt::tcp((CLIENT, 40000), (VIP, 80), 1).syn().frame();
    let mut bytes = Capture {
        interfaces: vec![Interface::ethernet("hand:eth0")],
        frames: Vec::new(),
    }
    .to_pcapng()
    .expect("header");
    // Packet Block (type 2): interface, drops, timestamp high word then low word.
    let ts: u64 = 1_700_000_000_123_456_789;
    let mut pb = Vec::new();
    pb.extend_from_slice(&0u16.to_le_bytes());
    pb.extend_from_slice(&0u16.to_le_bytes());
    pb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    pb.extend_from_slice(&(ts as u32).to_le_bytes());
    pb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    pb.extend_from_slice(&(frame.len() as u32 + 10).to_le_bytes());
    pb.extend_from_slice(&frame);
    pb.resize(20 + frame.len().div_ceil(4) * 4, 0);
    pb.extend(le_option(2, &2u32.to_le_bytes()));
    pb.extend(le_option(1, b"old block"));
    pb.extend(le_option(0, &[]));
    bytes.extend(le_block(2, &pb));
    // Simple Packet Block (type 3): original length, then the data up to the block's end.
    let mut spb = (frame.len() as u32).to_le_bytes().to_vec();
    spb.extend_from_slice(&frame);
    bytes.extend(le_block(3, &spb));
    std::fs::write(&path, &bytes).expect("write");

    let cap = assert_reads_like_tshark(&path);
    assert_eq!(cap.frames.len(), 2);
    assert_eq!(cap.frames[0].ts_ns, ts);
    assert_eq!(cap.frames[0].direction, Some(PacketDirection::Outbound));
    assert_eq!(cap.frames[0].comments, ["old block"]);
    assert_eq!(cap.frames[1].data, frame, "padding is not data");
    let _ = std::fs::remove_dir_all(&dir);
}
