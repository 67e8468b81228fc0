//! ARP for the addresses the engine owns (VIPs, FullNAT local addresses): the director's
//! kernel would answer them if they were configured on its interface; with the userspace
//! engine they are not, so the engine answers.

use std::net::Ipv4Addr;

use crate::packet::frame::{ETHERTYPE_ARP, ETHERTYPE_IPV4};
use crate::packet::{parse_frame, DropReason, MacAddr, Payload};

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

/// Builds into `out` the reply to an ARP request for one of `addresses`, as the kernel's
/// `arp_process` does: sent to the requester's hardware address, sender = (`our_mac`, the
/// requested address), target = the requester's (hardware, protocol) pair, so duplicate-address
/// probes from 0.0.0.0 are answered too. Anything else is a drop with its reason.
pub fn arp_reply(
    frame: &[u8],
    addresses: &[Ipv4Addr],
    our_mac: MacAddr,
    out: &mut Vec<u8>,
) -> Result<(), DropReason> {
    out.clear();
    let Payload::Arp(arp) = parse_frame(frame)?.payload else {
        return Err(DropReason::MalformedArp);
    };
    if arp.operation != ARP_REQUEST {
        return Err(DropReason::NotArpRequest);
    }
    if !addresses.contains(&arp.target_ip) {
        return Err(DropReason::NotOurAddress);
    }
    out.extend_from_slice(&arp.sender_mac.0);
    out.extend_from_slice(&our_mac.0);
    out.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    out.extend_from_slice(&[6, 4]);
    out.extend_from_slice(&ARP_REPLY.to_be_bytes());
    out.extend_from_slice(&our_mac.0);
    out.extend_from_slice(&arp.target_ip.octets());
    out.extend_from_slice(&arp.sender_mac.0);
    out.extend_from_slice(&arp.sender_ip.octets());
    Ok(())
}
