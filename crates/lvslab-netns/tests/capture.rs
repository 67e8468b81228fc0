//! Capture points on a real veth pair between two anonymous namespaces. Needs root: without
//! it the tests fail, saying why.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use lvslab_netns::capture::{CaptureOptions, CaptureSet};
use lvslab_netns::{set_sysctl, MacAddr, Netns};
use lvslab_pcap::decode::{decode_capture, L4Summary};
use lvslab_pcap::pcapng::{Capture, LinkType, PacketDirection};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "capture tests open AF_PACKET sockets in new network namespaces and must run as root \
         (euid 0); run `sudo cargo test -p lvslab-netns --test capture` or use the CI script"
    );
}

const A_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
// A port no tshark dissector claims, so the payload is shown as plain data.
const PORT: u16 = 40_000;

/// `a` and `b`, each with `eth0` of one veth pair, 192.0.2.1/24 and 192.0.2.2/24. IPv6 is off
/// and neighbours are static, so the only frames on the wire are the ones a test sends.
fn build_pair(tag: &str) -> (Netns, Netns) {
    let a = Netns::new_anonymous().expect("create namespace a");
    let b = Netns::new_anonymous().expect("create namespace b");
    for ns in [&a, &b] {
        for key in [
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.default.disable_ipv6",
        ] {
            set_sysctl(ns, key, "1").expect("disable IPv6");
        }
    }
    let mac_a = MacAddr::local_from_key(&format!("{tag}/a/eth0"));
    let mac_b = MacAddr::local_from_key(&format!("{tag}/b/eth0"));
    let ha = a.netlink().expect("netlink a");
    let hb = b.netlink().expect("netlink b");
    ha.add_veth("eth0", mac_a, &b, "eth0", mac_b)
        .expect("veth pair");
    ha.add_address("eth0", IpAddr::V4(A_IP), 24)
        .expect("addr a");
    hb.add_address("eth0", IpAddr::V4(B_IP), 24)
        .expect("addr b");
    ha.add_neighbour("eth0", IpAddr::V4(B_IP), mac_b)
        .expect("neigh a");
    hb.add_neighbour("eth0", IpAddr::V4(A_IP), mac_a)
        .expect("neigh b");
    ha.set_up("eth0").expect("up a");
    hb.set_up("eth0").expect("up b");
    (a, b)
}

fn udp_in(ns: &Netns, ip: Ipv4Addr, port: u16) -> UdpSocket {
    ns.run(|| UdpSocket::bind(SocketAddr::from((ip, port))))
        .expect("enter namespace")
        .expect("bind udp socket")
}

fn udp_frames_to_b(cap: &Capture, point: &str) -> usize {
    decode_capture(cap)
        .iter()
        .filter(|s| {
            s.point == point
                && matches!(&s.l4, Some(L4Summary::Udp(u)) if u.dport == PORT)
                && s.inner().is_some_and(|ip| ip.dst == B_IP)
        })
        .count()
}

#[test]
fn every_datagram_is_captured_once_at_each_end_with_its_direction() {
    require_root();
    const N: usize = 200;
    let (a, b) = build_pair("cap-exact");
    let points = [(&a, "a:eth0".to_string()), (&b, "b:eth0".to_string())];
    let set = CaptureSet::arm(&points).expect("arm capture points");
    assert_eq!(set.interfaces()[0].name, "a:eth0");
    assert_eq!(set.interfaces()[1].name, "b:eth0");

    let sender = udp_in(&a, A_IP, 0);
    let receiver = udp_in(&b, B_IP, PORT);
    receiver
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    for i in 0..N {
        let payload = format!("datagram {i:04}");
        sender
            .send_to(payload.as_bytes(), (B_IP, PORT))
            .expect("send datagram");
        // Paced by the echo-less receive, so the test is about capture, not about load.
        let (n, _) = receiver.recv_from(&mut buf).expect("datagram arrives");
        assert_eq!(&buf[..n], payload.as_bytes());
    }
    let captured = set.drain(Duration::from_millis(100)).expect("drain");

    let cap = &captured.capture;
    assert_eq!(cap.interfaces.len(), 2);
    assert_eq!(cap.interfaces[0].name, "a:eth0");
    assert_eq!(cap.interfaces[1].name, "b:eth0");
    assert!(cap
        .interfaces
        .iter()
        .all(|i| i.linktype == LinkType::Ethernet));
    for (index, want) in [
        (0u32, PacketDirection::Outbound),
        (1, PacketDirection::Inbound),
    ] {
        let frames: Vec<_> = cap.frames.iter().filter(|f| f.interface == index).collect();
        // IPv6 off and static neighbours: the datagrams are the only frames on the wire, and
        // marker frames never reach a capture.
        assert_eq!(
            frames.len(),
            N,
            "point {} saw {} frames, expected exactly {N}",
            cap.interfaces[index as usize].name,
            frames.len()
        );
        assert!(frames.iter().all(|f| f.direction == Some(want)));
        assert!(frames
            .iter()
            .all(|f| f.data.get(12..14) == Some(&[0x08, 0x00][..])));
        assert_eq!(
            udp_frames_to_b(cap, &cap.interfaces[index as usize].name),
            N
        );
        // Payloads in the order sent.
        for (i, f) in frames.iter().enumerate() {
            let want = format!("datagram {i:04}");
            assert!(f.data.ends_with(want.as_bytes()), "frame {i} out of order");
        }
    }
    // veth has tx checksumming on by default, so the sender hands the datagrams down with
    // the UDP checksum still to be filled in (CHECKSUM_PARTIAL): flagged at the sending end.
    assert!(cap
        .frames
        .iter()
        .filter(|f| f.interface == 0)
        .all(|f| f.csum_not_ready()));
    assert!(
        cap.frames.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
        "frames are ordered by timestamp"
    );

    for s in &captured.stats {
        assert_eq!(s.packets, N as u64, "{s:?}");
        assert_eq!(s.drops, 0, "{s:?}");
        assert_eq!(s.over_cap, 0, "{s:?}");
        assert!(
            s.markers >= 1,
            "each point saw at least its own marker: {s:?}"
        );
        // Every frame the kernel offered is accounted for: kept, marker, or dropped.
        assert_eq!(
            s.kernel_packets,
            s.packets + s.markers + s.drops + s.over_cap,
            "{s:?}"
        );
    }
    assert_eq!(captured.lost(), 0);

    // The file opens in tshark, with the point names and no malformed frame.
    let dir = std::env::temp_dir().join(format!("lvslab-capture-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("trial.pcapng");
    captured.write_pcapng(&file).expect("write pcapng");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "_ws.col.Info",
        ])
        .output()
        .expect("run tshark (apt-get install tshark)");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("Malformed"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * N, "{text}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("a:eth0\t")).count(),
        N
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("b:eth0\t")).count(),
        N
    );
}

#[test]
fn a_burst_of_small_frames_is_captured_or_counted_as_dropped() {
    require_root();
    // 64-byte frames: 14 Ethernet + 20 IPv4 + 8 UDP + 22 payload.
    const N: usize = 50_000;
    const PAYLOAD: [u8; 22] = [0x5a; 22];
    let (a, b) = build_pair("cap-burst");
    let points = [(&a, "a:eth0".to_string()), (&b, "b:eth0".to_string())];
    let set = CaptureSet::arm_with(&points, &CaptureOptions::default()).expect("arm");
    let sender = udp_in(&a, A_IP, 0);
    // Bound but never read: arriving datagrams are dropped by the socket, not answered with
    // ICMP, so the wire carries only the burst.
    let _receiver = udp_in(&b, B_IP, PORT);
    let start = Instant::now();
    let mut sent = 0usize;
    while sent < N && start.elapsed() < Duration::from_secs(20) {
        match sender.send_to(&PAYLOAD, (B_IP, PORT)) {
            Ok(_) => sent += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => std::thread::yield_now(),
            Err(e) => panic!("send failed after {sent} datagrams: {e}"),
        }
    }
    let send_time = start.elapsed();
    let captured = set.drain(Duration::from_millis(200)).expect("drain");
    let at_a = &captured.stats[0];
    let at_b = &captured.stats[1];
    eprintln!(
        "burst: sent {sent} x 64-byte frames in {send_time:?} ({:.0}/s); a:eth0 kept {} dropped {}; b:eth0 kept {} dropped {}",
        sent as f64 / send_time.as_secs_f64(),
        at_a.packets,
        at_a.drops,
        at_b.packets,
        at_b.drops,
    );
    assert_eq!(
        sent, N,
        "the burst must be sent whole within the time bound"
    );
    assert!(captured.capture.frames.iter().all(|f| f.data.len() == 64));
    // The sending end sees every frame before veth can drop any, so kept + dropped is exact.
    assert_eq!(
        at_a.packets + at_a.drops,
        N as u64,
        "a:eth0 accounts for every frame: {at_a:?}"
    );
    // The receiving end sees only what veth delivered (its backlog may drop), never more.
    assert!(at_b.packets + at_b.drops <= N as u64, "{at_b:?}");
    for s in &captured.stats {
        assert_eq!(
            s.kernel_packets,
            s.packets + s.markers + s.drops + s.over_cap,
            "{s:?}"
        );
    }
}

#[test]
fn over_the_cap_frames_are_counted_not_kept() {
    require_root();
    let (a, b) = build_pair("cap-cap");
    let opts = CaptureOptions {
        max_frames_per_point: 10,
        ..CaptureOptions::default()
    };
    let points = [(&a, "a:eth0".to_string())];
    let set = CaptureSet::arm_with(&points, &opts).expect("arm");
    let sender = udp_in(&a, A_IP, 0);
    let _receiver = udp_in(&b, B_IP, PORT);
    for _ in 0..25 {
        sender.send_to(b"x", (B_IP, PORT)).expect("send");
    }
    let captured = set.drain(Duration::from_millis(100)).expect("drain");
    assert_eq!(captured.capture.frames.len(), 10);
    assert_eq!(captured.stats[0].packets, 10);
    assert_eq!(captured.stats[0].over_cap, 15);
    assert_eq!(captured.lost(), 15);
}

#[test]
fn a_missing_interface_or_a_down_one_is_an_error_naming_the_point() {
    require_root();
    let (a, _b) = build_pair("cap-err");
    let err = CaptureSet::arm(&[(&a, "a:nosuch0".to_string())]).expect_err("no such interface");
    let text = err.to_string();
    assert!(text.contains("a:nosuch0"), "{text}");
    assert_eq!(err.errno(), Some(libc::ENODEV), "{text}");

    a.netlink()
        .expect("netlink")
        .set_down("eth0")
        .expect("down");
    let opts = CaptureOptions {
        arm_timeout: Duration::from_millis(300),
        ..CaptureOptions::default()
    };
    let err = CaptureSet::arm_with(&[(&a, "a:eth0".to_string())], &opts).expect_err("down");
    let text = err.to_string();
    assert!(text.contains("a:eth0"), "{text}");

    let dup = [(&a, "a:lo".to_string()), (&a, "a:lo".to_string())];
    assert!(CaptureSet::arm(&dup).is_err());
}

#[test]
fn loopback_points_capture_ethernet_framed_packets() {
    require_root();
    let a = Netns::new_anonymous().expect("namespace");
    let set = CaptureSet::arm(&[(&a, "a:lo".to_string())]).expect("arm lo");
    let rx = udp_in(&a, Ipv4Addr::LOCALHOST, PORT);
    let tx = udp_in(&a, Ipv4Addr::LOCALHOST, 0);
    tx.send_to(b"hello", (Ipv4Addr::LOCALHOST, PORT))
        .expect("send");
    let mut buf = [0u8; 16];
    rx.recv_from(&mut buf).expect("receive");
    let captured = set.drain(Duration::from_millis(50)).expect("drain");
    let cap = &captured.capture;
    assert_eq!(cap.interfaces[0].linktype, LinkType::Ethernet);
    // Loopback shows each packet twice: once leaving, once arriving.
    let udp: Vec<_> = decode_capture(cap)
        .into_iter()
        .filter(|s| matches!(&s.l4, Some(L4Summary::Udp(u)) if u.dport == PORT))
        .collect();
    assert_eq!(udp.len(), 2, "{udp:?}");
    assert_eq!(udp[0].direction, Some(PacketDirection::Outbound));
    assert_eq!(udp[1].direction, Some(PacketDirection::Inbound));
}

#[test]
fn a_tun_device_is_captured_as_raw_ip_in_both_directions() {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    require_root();
    let a = Netns::new_anonymous().expect("namespace");
    lvslab_netns::tun::create_persistent_tun(&a, "tunl0").expect("create TUN");
    // Attached, so the device has carrier and transmits (to this descriptor).
    let mut dev = lvslab_netns::tun::open_tun(&a, "tunl0").expect("attach TUN");
    let flags = nix::fcntl::fcntl(dev.as_fd(), nix::fcntl::FcntlArg::F_GETFL).expect("getfl");
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(dev.as_fd(), nix::fcntl::FcntlArg::F_SETFL(flags)).expect("setfl");
    let h = a.netlink().expect("netlink");
    h.add_address("tunl0", IpAddr::V4(A_IP), 24).expect("addr");
    h.set_up("tunl0").expect("up");

    let set = CaptureSet::arm(&[(&a, "a:tunl0".to_string())]).expect("arm TUN point");
    assert_eq!(set.interfaces()[0].linktype, LinkType::RawIp);
    let tx = udp_in(&a, A_IP, 0);
    tx.send_to(b"over tun", (B_IP, PORT)).expect("send");
    // The packet leaves through the TUN device to our descriptor (after the marker, which
    // is not IPv4); sent back in with addresses and ports swapped it arrives inbound.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 2048];
    let packet = loop {
        assert!(
            Instant::now() < deadline,
            "datagram never left through tunl0"
        );
        match dev.read(&mut buf) {
            Ok(n) if n >= 28 && buf[0] == 0x45 => break buf[..n].to_vec(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("read tunl0: {e}"),
        }
    };
    let mut reply = packet.clone();
    reply[12..16].copy_from_slice(&packet[16..20]);
    reply[16..20].copy_from_slice(&packet[12..16]);
    reply[20..22].copy_from_slice(&packet[22..24]);
    reply[22..24].copy_from_slice(&packet[20..22]);
    dev.write_all(&reply).expect("inject reply");
    let captured = set.drain(Duration::from_millis(100)).expect("drain");

    let cap = &captured.capture;
    assert_eq!(cap.interfaces[0].linktype, LinkType::RawIp);
    assert_eq!(cap.frames.len(), 2, "{:?}", cap.frames);
    assert_eq!(cap.frames[0].data, packet);
    assert_eq!(cap.frames[0].direction, Some(PacketDirection::Outbound));
    assert_eq!(cap.frames[1].data, reply);
    assert_eq!(cap.frames[1].direction, Some(PacketDirection::Inbound));
    let summaries = decode_capture(cap);
    assert!(
        matches!(&summaries[0].l4, Some(L4Summary::Udp(u)) if u.dport == PORT),
        "{summaries:?}"
    );
    assert!(captured.stats[0].markers >= 1);
    assert_eq!(captured.lost(), 0);
}
