//! VS/DR (direct routing, `ip_vs_dr_xmit`).

use super::{finish, ipvs_transmit_checks, parse_ipv4_frame, set_macs, Egress, Verdict};

/// Where a DR request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrRequest {
    /// The egress interface and the real server's own MAC (the RIP must be on-link).
    pub egress: Egress,
}

/// Forwards a request to a DR real server (spec §2.4): the IP packet keeps its addresses and
/// ports (destination stays `VIP:vport`); only the TTL drops by one (IP header checksum
/// updated; ICMP time-exceeded / frag-needed from the VIP as in every IPVS transmit) and the
/// frame is re-addressed to the real server's MAC from the egress interface's MAC. Any IP
/// protocol passes.
pub fn dr_request(frame: &mut [u8], to: &DrRequest, reply: &mut Vec<u8>) -> Verdict {
    reply.clear();
    finish(dr_request_steps(frame, to, reply))
}

fn dr_request_steps(frame: &mut [u8], to: &DrRequest, reply: &mut Vec<u8>) -> Result<(), Verdict> {
    let mut ip = parse_ipv4_frame(frame)?;
    let vip = ip.dst;
    let mtu = usize::from(to.egress.mtu);
    ipvs_transmit_checks(frame, &mut ip, mtu, vip, reply)?;
    set_macs(frame, &to.egress);
    Ok(())
}
