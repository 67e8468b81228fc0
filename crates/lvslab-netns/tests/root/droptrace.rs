//! The kernel's drop reasons recorded in a trace instance of lvslab's own.

use std::net::UdpSocket;

use lvslab_netns::droptrace::{DropTrace, DropTraceError, SightingKind};
use lvslab_netns::Netns;

use crate::require_root;

/// A datagram to a port nobody listens on, inside a namespace of the test's own, is
/// dropped with the kernel's reason NO_SOCKET, after a sighting on that namespace's `lo`;
/// the trace instance is gone afterwards.
#[test]
fn a_datagram_to_a_closed_port_is_dropped_with_no_socket() {
    require_root();
    let trace = match DropTrace::start() {
        Ok(t) => t,
        Err(DropTraceError::NoTracefs) => {
            panic!("tracefs is not mounted here: mount -t tracefs nodev /sys/kernel/tracing")
        }
        Err(e) => panic!("start the trace: {e}"),
    };
    let ns = Netns::new_anonymous().expect("namespace");
    let payload = b"lvslab droptrace probe 0123456789";
    ns.run(|| {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.send_to(payload, "127.0.0.1:9")
    })
    .expect("enter the namespace")
    .expect("send");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let instances_before = std::fs::read_dir("/sys/kernel/tracing/instances")
        .map(|d| d.count())
        .unwrap_or(0);
    let record = trace.stop().expect("read the trace");
    let instances_after = std::fs::read_dir("/sys/kernel/tracing/instances")
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        instances_after + 1,
        instances_before,
        "the instance is removed"
    );
    // UDP header + payload + IPv4 header, as netif_receive_skb counts it.
    let ip_len = (20 + 8 + payload.len()) as u32;
    let seen = record
        .sightings
        .iter()
        .find(|s| s.dev == "lo" && s.kind == SightingKind::Received && s.len == ip_len)
        .unwrap_or_else(|| panic!("no sighting of the datagram on lo: {record:#?}"));
    let drop = record
        .drops
        .iter()
        .find(|d| d.skb == seen.skb && d.ts_ns >= seen.ts_ns)
        .unwrap_or_else(|| panic!("the datagram's skb was not dropped: {record:#?}"));
    assert_eq!(drop.reason, "NO_SOCKET", "{drop:?}");
    assert!(drop.function.contains("udp"), "{drop:?}");
}
