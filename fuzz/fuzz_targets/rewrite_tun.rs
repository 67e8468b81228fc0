//! The TUN rewrites on any frame: encapsulation in IPIP, GRE and GUE (`tun_request`),
//! and decapsulation (`tun_decapsulate`) of the input and of every packet encapsulated
//! here, which must give back the packet that went in. See rewrite_check.rs.
#![no_main]

mod rewrite_check;

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use lvslab_dataplane::rewrite::{tun_decapsulate, tun_request, TunRequest, Verdict};
use lvslab_spec::lb::Encap;
use rewrite_check::{check, egress, repaired, split, Shape};

fuzz_target!(|data: &[u8]| {
    let Some((settings, frame)) = split(data) else {
        return;
    };
    let _ = tun_decapsulate(frame);
    let mut reply = Vec::new();
    for input in [frame.to_vec(), repaired(frame)] {
        for tunnel in [Encap::Ipip, Encap::Gre, Encap::Gue] {
            let to = TunRequest {
                tunnel,
                local: Ipv4Addr::new(10, 10, 0, 1),
                real: Ipv4Addr::new(172, 16, 20, 11),
                egress: egress(settings.mtu),
                pmtu_disc: settings.pmtu_disc,
                ip_id: 7,
            };
            let mut out = input.clone();
            let v = tun_request(&mut out, &to, &mut reply);
            check("tun_request", &input, &out, v, &reply, Shape::Tunnelled);
            if v == Verdict::Forward {
                // What the real server gets back is the request as the director forwards
                // it: the input's IPv4 packet with its TTL one lower.
                let inner = tun_decapsulate(&out).expect("checked above");
                let sent = &input[14..];
                assert_eq!(
                    inner.len(),
                    usize::from(u16::from_be_bytes([sent[2], sent[3]]))
                );
                assert_eq!(inner[12..20], sent[12..20], "inner addresses");
                assert_eq!(inner[8], sent[8] - 1, "inner TTL");
            }
        }
    }
});
