//! Test frames built by hand and checksums recomputed in full by an independent implementation
//! (etherparse), to compare the engine's incremental updates against.

#![allow(dead_code)]

use std::net::Ipv4Addr;

use etherparse::{Ipv4Header, TcpHeader, UdpHeader};

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const DIRECTOR_INSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];
pub const REAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x04];

pub const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
pub const DIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const LIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
pub const RIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);

/// The transport part of a test packet.
#[derive(Debug, Clone)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        options: Vec<u8>,
        payload: Vec<u8>,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
        zero_checksum: bool,
    },
    /// Any protocol; the payload is written as is (an ICMP payload gets its checksum filled).
    Raw { protocol: u8, payload: Vec<u8> },
}

/// An Ethernet/IPv4 test packet.
#[derive(Debug, Clone)]
pub struct Pkt {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
    pub id: u16,
    pub ip_options: Vec<u8>,
    pub l4: L4,
}

impl Pkt {
    /// A client → VIP:80 TCP segment with the given flags.
    pub fn tcp(flags: u8, payload: &[u8]) -> Self {
        Pkt {
            src_mac: CLIENT_MAC,
            dst_mac: DIRECTOR_MAC,
            src: CIP,
            dst: VIP,
            ttl: 64,
            tos: 0,
            df: true,
            id: 0x1234,
            ip_options: Vec::new(),
            l4: L4::Tcp {
                sport: 40000,
                dport: 80,
                seq: 1000,
                ack: 0,
                flags,
                options: Vec::new(),
                payload: payload.to_vec(),
            },
        }
    }

    /// A client → VIP:53 UDP datagram.
    pub fn udp(payload: &[u8], zero_checksum: bool) -> Self {
        Pkt {
            l4: L4::Udp {
                sport: 40000,
                dport: 53,
                payload: payload.to_vec(),
                zero_checksum,
            },
            ..Pkt::tcp(0, &[])
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let (protocol, mut segment) = match &self.l4 {
            L4::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                options,
                payload,
            } => {
                assert!(options.len() % 4 == 0 && options.len() <= 40);
                let mut s = Vec::new();
                s.extend_from_slice(&sport.to_be_bytes());
                s.extend_from_slice(&dport.to_be_bytes());
                s.extend_from_slice(&seq.to_be_bytes());
                s.extend_from_slice(&ack.to_be_bytes());
                s.push((((20 + options.len()) / 4) as u8) << 4);
                s.push(*flags);
                s.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
                s.extend_from_slice(options);
                s.extend_from_slice(payload);
                (6, s)
            }
            L4::Udp {
                sport,
                dport,
                payload,
                ..
            } => {
                let mut s = Vec::new();
                s.extend_from_slice(&sport.to_be_bytes());
                s.extend_from_slice(&dport.to_be_bytes());
                s.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
                s.extend_from_slice(&[0, 0]);
                s.extend_from_slice(payload);
                (17, s)
            }
            L4::Raw { protocol, payload } => (*protocol, payload.clone()),
        };
        assert!(self.ip_options.len() % 4 == 0);
        let header_len = 20 + self.ip_options.len();
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        f.extend_from_slice(&[0x08, 0x00]);
        f.push(0x40 | (header_len / 4) as u8);
        f.push(self.tos);
        f.extend_from_slice(&((header_len + segment.len()) as u16).to_be_bytes());
        f.extend_from_slice(&self.id.to_be_bytes());
        f.extend_from_slice(&[if self.df { 0x40 } else { 0 }, 0, self.ttl, protocol, 0, 0]);
        f.extend_from_slice(&self.src.octets());
        f.extend_from_slice(&self.dst.octets());
        f.extend_from_slice(&self.ip_options);
        if protocol == 1 && segment.len() >= 4 {
            segment[2..4].fill(0);
            let c = simple_checksum(&segment);
            segment[2..4].copy_from_slice(&c.to_be_bytes());
        }
        f.extend_from_slice(&segment);
        fill_checksums(&mut f);
        if let L4::Udp {
            zero_checksum: true,
            ..
        } = self.l4
        {
            f[14 + header_len + 6..14 + header_len + 8].fill(0);
        }
        f
    }
}

/// A deliberately plain RFC 1071 checksum (byte pairs, u32, fold at the end), independent of
/// the engine's.
pub fn simple_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < data.len() {
        let hi = u32::from(data[i]) << 8;
        let lo = data.get(i + 1).map_or(0, |&b| u32::from(b));
        sum += hi | lo;
        i += 2;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Full checksums of the IPv4 header and of its TCP/UDP segment, computed by etherparse.
pub struct Reference {
    pub ip: u16,
    pub transport: Option<u16>,
}

pub fn reference_checksums(frame: &[u8]) -> Reference {
    let packet = &frame[14..];
    let (ip, rest) = Ipv4Header::from_slice(packet).expect("valid IPv4 header");
    let payload_len = usize::from(ip.total_len) - ip.header_len();
    let segment = &rest[..payload_len];
    let transport = match ip.protocol.0 {
        6 => {
            let (tcp, data) = TcpHeader::from_slice(segment).expect("valid TCP header");
            Some(tcp.calc_checksum_ipv4(&ip, data).expect("fits"))
        }
        17 => {
            let (udp, data) = UdpHeader::from_slice(segment).expect("valid UDP header");
            Some(udp.calc_checksum_ipv4(&ip, data).expect("fits"))
        }
        _ => None,
    };
    Reference {
        ip: ip.calc_header_checksum(),
        transport,
    }
}

pub fn transport_checksum_at(frame: &[u8]) -> Option<usize> {
    let l4 = 14 + usize::from(frame[14] & 0x0f) * 4;
    match frame[23] {
        6 => Some(l4 + 16),
        17 => Some(l4 + 6),
        _ => None,
    }
}

fn fill_checksums(frame: &mut [u8]) {
    frame[24..26].fill(0);
    if let Some(at) = transport_checksum_at(frame) {
        frame[at..at + 2].fill(0);
    }
    let r = reference_checksums(frame);
    frame[24..26].copy_from_slice(&r.ip.to_be_bytes());
    if let (Some(at), Some(c)) = (transport_checksum_at(frame), r.transport) {
        frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// Asserts that the stored IP and TCP/UDP checksums equal a full recomputation, bit for bit.
pub fn assert_checksums_equal_full_recompute(frame: &[u8]) {
    let stored_ip = u16::from_be_bytes([frame[24], frame[25]]);
    let r = reference_checksums(frame);
    assert_eq!(stored_ip, r.ip, "IPv4 header checksum");
    if let (Some(at), Some(c)) = (transport_checksum_at(frame), r.transport) {
        let stored = u16::from_be_bytes([frame[at], frame[at + 1]]);
        assert_eq!(stored, c, "transport checksum");
    }
}

pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}
