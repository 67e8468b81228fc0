//! Synthetic lab traffic for the tests: packets built with etherparse, wrapped in optional
//! IPIP/GRE outer headers, and captured at named points into one pcapng-shaped [`Capture`].
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use etherparse::{EtherType, Ethernet2Header, IpHeaders, IpNumber, Ipv4Header, PacketBuilder};
use lvslab_pcap::{Capture, Frame, Interface, MacAddr};

pub const CLIENT: [u8; 4] = [198, 51, 100, 7];
pub const VIP: [u8; 4] = [192, 168, 80, 66];
pub const DIP: [u8; 4] = [192, 168, 80, 10];
pub const RIP1: [u8; 4] = [192, 168, 80, 11];
pub const RIP2: [u8; 4] = [192, 168, 80, 12];
pub const LIP: [u8; 4] = [192, 168, 80, 10];

pub const MAC_ROUTER: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
pub const MAC_DIR0: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
pub const MAC_DIR1: [u8; 6] = [2, 0, 0, 0, 1, 0x10];
pub const MAC_RS1: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
pub const MAC_RS2: [u8; 6] = [2, 0, 0, 0, 0, 0x12];

/// How an outer header carries the packet.
#[derive(Clone, Copy, Debug)]
pub enum OuterKind {
    Ipip,
    Gre,
}

#[derive(Clone, Debug)]
pub struct Outer {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub ttl: u8,
    pub id: u16,
    pub kind: OuterKind,
}

/// A TCP segment as seen at one point.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub outer: Vec<Outer>,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub ttl: u8,
    pub id: u16,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub payload: Vec<u8>,
}

impl Pkt {
    pub fn tcp(src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32) -> Pkt {
        Pkt {
            src_mac: MAC_ROUTER,
            dst_mac: MAC_DIR0,
            outer: Vec::new(),
            src: src.0,
            dst: dst.0,
            ttl: 64,
            id: 1,
            sport: src.1,
            dport: dst.1,
            seq,
            ack: None,
            syn: false,
            payload: Vec::new(),
        }
    }
    pub fn syn(mut self) -> Self {
        self.syn = true;
        self
    }
    pub fn ack(mut self, n: u32) -> Self {
        self.ack = Some(n);
        self
    }
    pub fn data(mut self, d: &[u8]) -> Self {
        self.payload = d.to_vec();
        self
    }
    pub fn ttl(mut self, t: u8) -> Self {
        self.ttl = t;
        self
    }
    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }
    pub fn macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Self {
        self.src_mac = src;
        self.dst_mac = dst;
        self
    }
    pub fn src(mut self, a: [u8; 4], port: u16) -> Self {
        self.src = a;
        self.sport = port;
        self
    }
    pub fn dst(mut self, a: [u8; 4], port: u16) -> Self {
        self.dst = a;
        self.dport = port;
        self
    }
    pub fn encap(mut self, o: Outer) -> Self {
        self.outer.insert(0, o);
        self
    }

    /// The IPv4 packet (no link layer).
    pub fn ip_bytes(&self) -> Vec<u8> {
        let mut h =
            Ipv4Header::new(0, self.ttl, IpNumber::TCP, self.src, self.dst).expect("valid header");
        h.identification = self.id;
        let mut b = PacketBuilder::ip(IpHeaders::Ipv4(h, Default::default()))
            .tcp(self.sport, self.dport, self.seq, 64240);
        if self.syn {
            b = b.syn();
        }
        if let Some(a) = self.ack {
            b = b.ack(a);
        }
        let mut v = Vec::new();
        b.write(&mut v, &self.payload).expect("build");
        for o in self.outer.iter().rev() {
            let mut body = Vec::new();
            let proto = match o.kind {
                OuterKind::Ipip => IpNumber::IPV4,
                OuterKind::Gre => {
                    body.extend_from_slice(&[0, 0, 0x08, 0x00]);
                    IpNumber::GRE
                }
            };
            body.extend_from_slice(&v);
            let mut oh = Ipv4Header::new(body.len() as u16, o.ttl, proto, o.src, o.dst)
                .expect("valid outer");
            oh.identification = o.id;
            oh.header_checksum = oh.calc_header_checksum();
            let mut w = oh.to_bytes().to_vec();
            w.extend_from_slice(&body);
            v = w;
        }
        v
    }

    /// The Ethernet frame.
    pub fn frame(&self) -> Vec<u8> {
        let eth = Ethernet2Header {
            source: self.src_mac,
            destination: self.dst_mac,
            ether_type: EtherType::IPV4,
        };
        let mut v = eth.to_bytes().to_vec();
        v.extend_from_slice(&self.ip_bytes());
        v
    }
}

/// Captures at named points; frame numbers are 1-based in `see` order, timestamps 10 µs apart.
#[derive(Default)]
pub struct Cap {
    pub cap: Capture,
    ids: BTreeMap<String, u32>,
}

impl Cap {
    pub fn see(&mut self, point: &str, p: &Pkt) -> u64 {
        let n = self.ids.len() as u32;
        let id = *self.ids.entry(point.to_string()).or_insert_with(|| {
            self.cap.interfaces.push(Interface::ethernet(point));
            n
        });
        let ts = 1_700_000_000_000_000_000 + 10_000 * self.cap.frames.len() as u64;
        self.cap.frames.push(Frame::new(id, ts, p.frame()));
        self.cap.frames.len() as u64
    }

    pub fn see_all(steps: &[(&str, Pkt)]) -> Cap {
        let mut c = Cap::default();
        for (point, p) in steps {
            c.see(point, p);
        }
        c
    }
}

pub fn ip(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

pub fn mac(m: [u8; 6]) -> MacAddr {
    MacAddr(m)
}

/// One pcapng block in little-endian byte order, for hand-made files: type, total length,
/// `body` padded to 4 bytes, total length again.
pub fn le_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (padded + 12) as u32;
    let mut b = Vec::with_capacity(padded + 12);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

/// One pcapng option in little-endian byte order, value padded to 4 bytes.
pub fn le_option(code: u16, value: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(&code.to_le_bytes());
    o.extend_from_slice(&(value.len() as u16).to_le_bytes());
    o.extend_from_slice(value);
    o.resize(4 + value.len().div_ceil(4) * 4, 0);
    o
}
