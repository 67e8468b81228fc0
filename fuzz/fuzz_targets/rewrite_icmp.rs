//! ICMP error translation (`translate_icmp_error`, both NAT directions and FullNAT) and
//! the ARP reply on any frame. See rewrite_check.rs.
#![no_main]

mod rewrite_check;

use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use lvslab_dataplane::packet::parse_frame;
use lvslab_dataplane::rewrite::{arp_reply, translate_icmp_error, IcmpTranslation};
use lvslab_spec::MacAddr;
use rewrite_check::{check, egress, repaired, split, Shape};

fuzz_target!(|data: &[u8]| {
    let Some((settings, frame)) = split(data) else {
        return;
    };
    let vip = Ipv4Addr::new(192, 0, 2, 10);
    for input in [frame.to_vec(), repaired(frame)] {
        let translations = [
            IcmpTranslation::nat_from_real_server(SocketAddrV4::new(vip, 80), egress(settings.mtu)),
            IcmpTranslation::nat_from_client(
                SocketAddrV4::new(Ipv4Addr::new(172, 16, 20, 11), 8080),
                egress(settings.mtu),
            ),
            IcmpTranslation {
                outer_src: Some(Ipv4Addr::new(10, 10, 0, 1)),
                outer_dst: Some(Ipv4Addr::new(172, 16, 20, 11)),
                quoted_src: Some(SocketAddrV4::new(Ipv4Addr::new(172, 16, 20, 11), 8080)),
                quoted_dst: Some(SocketAddrV4::new(Ipv4Addr::new(10, 10, 0, 101), 5001)),
                egress: egress(settings.mtu),
            },
        ];
        for how in &translations {
            let mut out = input.clone();
            let v = translate_icmp_error(&mut out, how);
            check("translate_icmp_error", &input, &out, v, &[], Shape::Plain);
        }
        let mut out = Vec::new();
        if arp_reply(&input, &[vip], MacAddr([0x02, 0, 0, 0, 0, 0x02]), &mut out).is_ok() {
            assert!(
                parse_frame(&out).is_ok(),
                "arp_reply built a frame that does not parse"
            );
        }
    }
});
