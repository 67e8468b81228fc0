//! ICMP port unreachable for requests the director rejects (no destination available), as
//! `icmp_send(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)` would send it.

use std::net::Ipv4Addr;

use crate::packet::checksum::checksum;
use crate::packet::{Ipv4Info, MacAddr};

/// An ICMP error carries at most this many bytes of IP packet (RFC 1812 / the kernel's 576).
const MAX_ERROR_LEN: usize = 576;
const IP_HEADER: usize = 20;
const ICMP_HEADER: usize = 8;

/// The frame answering `frame` (whose IPv4 packet is `ip`) with ICMP destination
/// unreachable / port unreachable from `source`, sent back to the frame's sender MAC.
pub fn port_unreachable(
    frame: &[u8],
    ip: &Ipv4Info,
    our_mac: MacAddr,
    source: Ipv4Addr,
) -> Vec<u8> {
    let quoted_end = ip.end().min(frame.len());
    let quote_len = (quoted_end - ip.offset).min(MAX_ERROR_LEN - IP_HEADER - ICMP_HEADER);
    let quote = &frame[ip.offset..ip.offset + quote_len];
    let total = IP_HEADER + ICMP_HEADER + quote.len();
    let mut out = Vec::with_capacity(14 + total);
    out.extend_from_slice(&frame[6..12]);
    out.extend_from_slice(&our_mac);
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_start = out.len();
    out.extend_from_slice(&[0x45, 0xc0]);
    out.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
    out.extend_from_slice(&source.octets());
    out.extend_from_slice(&ip.src.octets());
    let ip_sum = checksum(&out[ip_start..ip_start + IP_HEADER]);
    out[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());
    let icmp_start = out.len();
    out.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(quote);
    let icmp_sum = checksum(&out[icmp_start..]);
    out[icmp_start + 2..icmp_start + 4].copy_from_slice(&icmp_sum.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{parse_frame, Payload, Transport};

    fn udp_frame() -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
        let mut ip = vec![0x45, 0, 0, 32, 0, 1, 0x40, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&[198, 51, 100, 10, 203, 0, 113, 10]);
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
        f
    }

    #[test]
    fn answer_parses_and_quotes_the_request() {
        let f = udp_frame();
        let Payload::Ipv4(ip) = parse_frame(&f).expect("valid").payload else {
            panic!("not ipv4");
        };
        let vip = Ipv4Addr::new(203, 0, 113, 10);
        let out = port_unreachable(&f, &ip, [2, 0, 0, 0, 0, 1], vip);
        assert_eq!(&out[0..6], &f[6..12]);
        let Payload::Ipv4(answer) = parse_frame(&out).expect("answer parses").payload else {
            panic!("answer not ipv4");
        };
        assert_eq!((answer.src, answer.dst), (vip, ip.src));
        let Transport::Icmp(icmp) = answer.transport else {
            panic!("not icmp");
        };
        assert_eq!((icmp.ty, icmp.code), (3, 3));
        let quoted = icmp.quoted.expect("quotes the request");
        assert_eq!(
            (quoted.src, quoted.dst, quoted.ports),
            (ip.src, vip, Some((12345, 53)))
        );
        assert_eq!(checksum(&out[34..]), 0);
    }
}
