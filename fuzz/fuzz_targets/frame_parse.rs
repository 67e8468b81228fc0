//! `parse_frame` (and `parse_ipv4` at every offset) on any bytes: never a panic, and a
//! frame that parses keeps the promise rewrites rely on, every offset in its summary inside
//! the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvslab_dataplane::packet::{parse_frame, parse_ipv4, Ipv4Info, Payload, Transport};

fn check_ipv4(data: &[u8], ip: &Ipv4Info) {
    assert!(ip.header_len >= 20, "header length {}", ip.header_len);
    assert!(ip.transport_offset() <= ip.end(), "header past the packet");
    assert!(ip.end() <= data.len(), "packet past the frame");
    match ip.transport {
        Transport::Tcp(t) => {
            assert!(t.header_len >= 20, "TCP header length {}", t.header_len);
            assert!(
                ip.transport_offset() + t.header_len <= ip.end(),
                "TCP header past the packet"
            );
        }
        Transport::Udp(_) => assert!(ip.transport_offset() + 8 <= ip.end(), "UDP header"),
        Transport::Icmp(icmp) => {
            assert!(ip.transport_offset() + 8 <= ip.end(), "ICMP header");
            if let Some(q) = icmp.quoted {
                assert!(
                    q.offset >= ip.transport_offset() + 8,
                    "quoted packet before its error"
                );
                assert!(
                    q.offset + q.header_len <= ip.end(),
                    "quoted header past the packet"
                );
                if q.ports.is_some() {
                    assert!(q.offset + q.header_len + 4 <= ip.end(), "quoted ports");
                }
            }
        }
        Transport::Other => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = parse_frame(data) {
        if let Payload::Ipv4(ip) = info.payload {
            assert_eq!(ip.offset, 14);
            check_ipv4(data, &ip);
        }
    }
    for offset in 0..data.len().min(64) {
        if let Ok(ip) = parse_ipv4(data, offset) {
            assert_eq!(ip.offset, offset);
            check_ipv4(data, &ip);
        }
    }
});
