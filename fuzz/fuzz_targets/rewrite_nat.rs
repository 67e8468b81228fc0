//! The NAT rewrites (`nat_request`, `nat_reply`) on any frame: see rewrite_check.rs.
#![no_main]

mod rewrite_check;

use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use lvslab_dataplane::rewrite::{nat_reply, nat_request, NatReply, NatRequest};
use rewrite_check::{check, egress, repaired, split, Shape};

fuzz_target!(|data: &[u8]| {
    let Some((settings, frame)) = split(data) else {
        return;
    };
    let mut reply = Vec::new();
    for input in [frame.to_vec(), repaired(frame)] {
        let to = NatRequest {
            real: SocketAddrV4::new(Ipv4Addr::new(172, 16, 20, 11), 8080),
            egress: egress(settings.mtu),
        };
        let mut out = input.clone();
        let v = nat_request(&mut out, &to, &mut reply);
        check("nat_request", &input, &out, v, &reply, Shape::Plain);

        let to = NatReply {
            virtual_service: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 80),
            egress: egress(settings.mtu),
            director: Ipv4Addr::new(172, 16, 20, 1),
        };
        let mut out = input.clone();
        let v = nat_reply(&mut out, &to, &mut reply);
        check("nat_reply", &input, &out, v, &reply, Shape::Plain);
    }
});
