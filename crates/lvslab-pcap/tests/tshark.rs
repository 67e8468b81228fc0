//! Files we write must open in tshark with no malformed packets and no errors, and keep the
//! capture-point names and nanosecond timestamps. Without tshark this test fails (it must not
//! pass by skipping).

mod common;

use std::process::Command;

use common::*;
use lvslab_pcap::pcapng::CSUM_NOT_READY_COMMENT;
use lvslab_pcap::{Capture, Frame, Interface, LinkType, PacketDirection};

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

fn tshark() -> Command {
    let mut c = Command::new("tshark");
    // No personal preferences or plugins: the same result on every machine.
    c.env(
        "WIRESHARK_CONFIG_DIR",
        std::env::temp_dir().join("lvslab-pcap-tshark-cfg"),
    );
    c
}

#[test]
fn tshark_reads_our_pcapng_without_errors() {
    let dir = std::env::temp_dir().join(format!("lvslab-pcap-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("sample.pcapng");
    let cap = sample();
    cap.write_pcapng_file(&path).expect("write pcapng");
    let classic = dir.join("sample.pcap");
    std::fs::write(&classic, cap.to_pcap(0).expect("pcap")).expect("write pcap");

    for file in [&path, &classic] {
        let out = match tshark().arg("-n").arg("-r").arg(file).output() {
            Ok(o) => o,
            Err(e) => panic!(
                "install tshark (DEBIAN_FRONTEND=noninteractive apt-get install -y tshark): {e}"
            ),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        // tshark warns when run as root; that is not about the file.
        let stderr: String = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.starts_with("Running as user"))
            .collect();
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
    let out = tshark()
        .args(["-n", "-r"])
        .arg(&path)
        .args([
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
        ])
        .output()
        .expect("install tshark");
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
    let _ = std::fs::remove_dir_all(&dir);
}
