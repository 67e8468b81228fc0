//! The FullNAT rewrites on any frame: `fullnat_request` with and without a TOA option,
//! `fullnat_reply`, and `insert_toa` on its own. See rewrite_check.rs.
#![no_main]

mod rewrite_check;

use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use lvslab_dataplane::rewrite::{fullnat_reply, fullnat_request, FullNatReply, FullNatRequest};
use rewrite_check::{check, egress, repaired, split, Shape};

fuzz_target!(|data: &[u8]| {
    let Some((settings, frame)) = split(data) else {
        return;
    };
    let mut reply = Vec::new();
    for input in [frame.to_vec(), repaired(frame)] {
        let to = FullNatRequest {
            local: SocketAddrV4::new(Ipv4Addr::new(10, 10, 0, 101), 5001),
            real: SocketAddrV4::new(Ipv4Addr::new(172, 16, 20, 11), 8080),
            egress: egress(settings.mtu),
            toa_kind: settings.toa.then_some(254),
        };
        let mut out = input.clone();
        let v = fullnat_request(&mut out, &to, &mut reply);
        check("fullnat_request", &input, &out, v, &reply, Shape::Plain);

        let to = FullNatReply {
            virtual_service: SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 10), 80),
            client: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 10), 40000),
            egress: egress(settings.mtu),
        };
        let mut out = input.clone();
        let v = fullnat_reply(&mut out, &to, &mut reply);
        check("fullnat_reply", &input, &out, v, &reply, Shape::Plain);
    }
});
