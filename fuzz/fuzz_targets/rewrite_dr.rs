//! The DR rewrite (`dr_request`) on any frame: see rewrite_check.rs.
#![no_main]

mod rewrite_check;

use libfuzzer_sys::fuzz_target;
use lvslab_dataplane::rewrite::{dr_request, DrRequest};
use rewrite_check::{check, egress, repaired, split, Shape};

fuzz_target!(|data: &[u8]| {
    let Some((settings, frame)) = split(data) else {
        return;
    };
    let mut reply = Vec::new();
    for input in [frame.to_vec(), repaired(frame)] {
        let to = DrRequest {
            egress: egress(settings.mtu),
        };
        let mut out = input.clone();
        let v = dr_request(&mut out, &to, &mut reply);
        check("dr_request", &input, &out, v, &reply, Shape::Plain);
    }
});
