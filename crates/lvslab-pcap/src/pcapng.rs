//! Our own pcapng writer and reader, plus a classic `.pcap` writer and reader.
//!
//! Why our own: the capture points of a lab become one Interface Description Block each, named
//! `node:iface` (option `if_name`), with nanosecond timestamps (`if_tsresol` = 9), and the
//! output must be byte-for-byte deterministic so two runs of the same lab compare equal.
//! Everything is written little-endian; the reader accepts both byte orders.
//!
//! Frame numbers are 1-based over all packet blocks of the file, the way Wireshark and tshark
//! number them, so a finding's `frames` can be typed into `tshark -Y frame.number==N`.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::PcapError;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const OBSOLETE_PB: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;

/// Default snap length written into Interface Description Blocks.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Comment our capture side attaches to a frame whose TCP/UDP checksum was not yet computed
/// when it was captured (AF_PACKET `TP_STATUS_CSUMNOTREADY`). pcapng has no standard flag for
/// it, and a comment keeps the file readable by every tool.
pub const CSUM_NOT_READY_COMMENT: &str = "lvslab:csum-not-ready";

/// Link-layer type of a capture interface (the pcap `LINKTYPE_*` registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): veth, bridges.
    Ethernet,
    /// `LINKTYPE_RAW` (101): bare IPv4/IPv6 packets, e.g. a GRE or TUN device.
    RawIp,
    /// Any other link type, kept by number so files round-trip.
    Other(u16),
}

impl LinkType {
    /// The registry number written to disk.
    pub fn number(self) -> u16 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::Other(n) => n,
        }
    }

    /// The link type for a registry number.
    pub fn from_number(n: u16) -> Self {
        match n {
            1 => LinkType::Ethernet,
            101 => LinkType::RawIp,
            n => LinkType::Other(n),
        }
    }
}

/// One capture point: an interface of a lab node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// `node:iface`, e.g. `director:eth0`.
    pub name: String,
    /// What the frames start with.
    pub linktype: LinkType,
    /// Largest number of bytes kept per frame.
    pub snaplen: u32,
}

impl Interface {
    /// An Ethernet capture point with the default snap length.
    pub fn ethernet(name: impl Into<String>) -> Self {
        Interface {
            name: name.into(),
            linktype: LinkType::Ethernet,
            snaplen: DEFAULT_SNAPLEN,
        }
    }
}

/// Which way a frame crossed the interface (pcapng `epb_flags` bits 0–1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PacketDirection {
    /// Received on the interface.
    Inbound,
    /// Sent from the interface.
    Outbound,
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Index into [`Capture::interfaces`].
    pub interface: u32,
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire (may exceed `data.len()` when the snap length cut it).
    pub orig_len: u32,
    /// The captured bytes, starting at the link-layer header.
    pub data: Vec<u8>,
    /// Direction if the capture side knew it.
    pub direction: Option<PacketDirection>,
    /// `opt_comment` options, in order.
    pub comments: Vec<String>,
}

impl Frame {
    /// A frame captured whole, with no direction and no comment.
    pub fn new(interface: u32, ts_ns: u64, data: Vec<u8>) -> Self {
        Frame {
            interface,
            ts_ns,
            orig_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            data,
            direction: None,
            comments: Vec::new(),
        }
    }

    /// Whether the capture side flagged the frame's L4 checksum as not yet computed.
    pub fn csum_not_ready(&self) -> bool {
        self.comments.iter().any(|c| c == CSUM_NOT_READY_COMMENT)
    }
}

/// A whole capture: interfaces plus frames in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// Capture points, in IDB order (a frame's `interface` indexes this).
    pub interfaces: Vec<Interface>,
    /// Frames in file order; frame number = index + 1.
    pub frames: Vec<Frame>,
}

impl Capture {
    /// Encodes the capture as pcapng bytes (deterministic: same capture, same bytes).
    pub fn to_pcapng(&self) -> Result<Vec<u8>, PcapError> {
        let mut w = PcapngWriter::new(Vec::new())?;
        for i in &self.interfaces {
            w.add_interface(i)?;
        }
        for f in &self.frames {
            w.write_frame(f)?;
        }
        Ok(w.into_inner())
    }

    /// Writes the capture as a pcapng file.
    pub fn write_pcapng_file(&self, path: &Path) -> Result<(), PcapError> {
        let bytes = self.to_pcapng()?;
        std::fs::write(path, bytes).map_err(|source| PcapError::WriteFile {
            what: "pcapng",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses pcapng bytes. Multiple sections are merged; unknown blocks are skipped.
    pub fn from_pcapng(bytes: &[u8]) -> Result<Capture, PcapError> {
        read_pcapng(bytes)
    }

    /// Reads a pcapng or classic pcap file (told apart by the first four bytes). A classic
    /// file's single interface is named after the file stem.
    pub fn read_file(path: &Path) -> Result<Capture, PcapError> {
        let bytes = std::fs::read(path).map_err(|source| PcapError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.len() >= 4 && u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == SHB {
            read_pcapng(&bytes)
        } else {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            read_pcap(&bytes, &name)
        }
    }

    /// Encodes the frames of one interface as a classic nanosecond `.pcap` (which can hold
    /// only one link type and no interface names or comments).
    pub fn to_pcap(&self, interface: u32) -> Result<Vec<u8>, PcapError> {
        let iface = self
            .interfaces
            .get(interface as usize)
            .ok_or(PcapError::UnknownInterface {
                frame: 0,
                interface,
                known: self.interfaces.len(),
            })?;
        let mut out = Vec::new();
        // Magic 0xa1b23c4d marks nanosecond timestamps.
        out.extend_from_slice(&0xA1B2_3C4Du32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&iface.snaplen.to_le_bytes());
        out.extend_from_slice(&u32::from(iface.linktype.number()).to_le_bytes());
        for f in self.frames.iter().filter(|f| f.interface == interface) {
            let secs = u32::try_from(f.ts_ns / 1_000_000_000).map_err(|_| PcapError::Encode {
                what: "classic pcap timestamp".into(),
                why: format!("{} ns is past 2106", f.ts_ns),
            })?;
            let caplen = len_u32(f.data.len(), "frame")?;
            out.extend_from_slice(&secs.to_le_bytes());
            out.extend_from_slice(&((f.ts_ns % 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&caplen.to_le_bytes());
            out.extend_from_slice(&f.orig_len.max(caplen).to_le_bytes());
            out.extend_from_slice(&f.data);
        }
        Ok(out)
    }
}

fn len_u32(n: usize, what: &str) -> Result<u32, PcapError> {
    u32::try_from(n).map_err(|_| PcapError::Encode {
        what: what.into(),
        why: format!("{n} bytes do not fit a 32-bit length"),
    })
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

fn push_option(body: &mut Vec<u8>, code: u16, value: &[u8]) -> Result<(), PcapError> {
    let len = u16::try_from(value.len()).map_err(|_| PcapError::Encode {
        what: format!("pcapng option {code}"),
        why: format!("{} bytes exceed 65535", value.len()),
    })?;
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(value);
    body.extend(std::iter::repeat_n(0u8, pad4(value.len())));
    Ok(())
}

fn end_options(body: &mut Vec<u8>) {
    body.extend_from_slice(&OPT_END.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
}

/// Streaming pcapng writer: one section, interfaces added before the frames that use them.
pub struct PcapngWriter<W: Write> {
    out: W,
    interfaces: u32,
    frames: u64,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a section (writes the Section Header Block, `shb_userappl` = "lvslab").
    pub fn new(out: W) -> Result<Self, PcapError> {
        let mut w = PcapngWriter {
            out,
            interfaces: 0,
            frames: 0,
        };
        let mut body = Vec::new();
        body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        // Section length unknown: -1, so the file can be streamed.
        body.extend_from_slice(&(-1i64).to_le_bytes());
        push_option(&mut body, SHB_USERAPPL, b"lvslab")?;
        end_options(&mut body);
        w.block(SHB, &body)?;
        Ok(w)
    }

    fn block(&mut self, kind: u32, body: &[u8]) -> Result<(), PcapError> {
        let total = len_u32(body.len() + 12, "pcapng block")?;
        let io = |source| PcapError::Write {
            what: "pcapng block",
            source,
        };
        self.out.write_all(&kind.to_le_bytes()).map_err(io)?;
        self.out.write_all(&total.to_le_bytes()).map_err(io)?;
        self.out.write_all(body).map_err(io)?;
        self.out.write_all(&total.to_le_bytes()).map_err(io)?;
        Ok(())
    }

    /// Writes an Interface Description Block; returns the interface id frames must use.
    pub fn add_interface(&mut self, iface: &Interface) -> Result<u32, PcapError> {
        let mut body = Vec::new();
        body.extend_from_slice(&iface.linktype.number().to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&iface.snaplen.to_le_bytes());
        push_option(&mut body, IF_NAME, iface.name.as_bytes())?;
        push_option(&mut body, IF_TSRESOL, &[9])?;
        end_options(&mut body);
        self.block(IDB, &body)?;
        let id = self.interfaces;
        self.interfaces += 1;
        Ok(id)
    }

    /// Writes an Enhanced Packet Block for `frame`.
    pub fn write_frame(&mut self, frame: &Frame) -> Result<(), PcapError> {
        if frame.interface >= self.interfaces {
            return Err(PcapError::UnknownInterface {
                frame: self.frames + 1,
                interface: frame.interface,
                known: self.interfaces as usize,
            });
        }
        let caplen = len_u32(frame.data.len(), "frame")?;
        let mut body = Vec::with_capacity(frame.data.len() + 64);
        body.extend_from_slice(&frame.interface.to_le_bytes());
        body.extend_from_slice(&((frame.ts_ns >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(frame.ts_ns as u32).to_le_bytes());
        body.extend_from_slice(&caplen.to_le_bytes());
        body.extend_from_slice(&frame.orig_len.max(caplen).to_le_bytes());
        body.extend_from_slice(&frame.data);
        body.extend(std::iter::repeat_n(0u8, pad4(frame.data.len())));
        let mut any_option = false;
        if let Some(d) = frame.direction {
            let bits: u32 = match d {
                PacketDirection::Inbound => 1,
                PacketDirection::Outbound => 2,
            };
            push_option(&mut body, EPB_FLAGS, &bits.to_le_bytes())?;
            any_option = true;
        }
        for c in &frame.comments {
            push_option(&mut body, OPT_COMMENT, c.as_bytes())?;
            any_option = true;
        }
        if any_option {
            end_options(&mut body);
        }
        self.block(EPB, &body)?;
        self.frames += 1;
        Ok(())
    }

    /// Flushes and returns the sink.
    pub fn finish(mut self) -> Result<W, PcapError> {
        self.out.flush().map_err(|source| PcapError::Write {
            what: "pcapng",
            source,
        })?;
        Ok(self.out)
    }

    fn into_inner(self) -> W {
        self.out
    }
}

/// Byte-order-aware cursor over a pcapng section.
#[derive(Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }
}

struct ReadIface {
    iface: Interface,
    /// Timestamp units per second.
    units_per_sec: u128,
}

fn malformed(offset: usize, what: impl Into<String>) -> PcapError {
    PcapError::Malformed {
        format: "pcapng",
        offset,
        what: what.into(),
    }
}

/// Options of a block body from `start` to its end: (code, value) pairs.
fn parse_options(
    e: Endian,
    body: &[u8],
    start: usize,
    file_offset: usize,
) -> Result<Vec<(u16, &[u8])>, PcapError> {
    let mut opts = Vec::new();
    let mut at = start;
    while at + 4 <= body.len() {
        let code = e.u16(body, at).unwrap_or(0);
        let len = e.u16(body, at + 2).unwrap_or(0) as usize;
        if code == OPT_END {
            break;
        }
        let value = body
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| malformed(file_offset + at, format!("option {code} overruns block")))?;
        opts.push((code, value));
        at += 4 + len + pad4(len);
    }
    Ok(opts)
}

fn ts_to_ns(raw: u64, units_per_sec: u128) -> u64 {
    let ns = u128::from(raw) * 1_000_000_000 / units_per_sec.max(1);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

fn read_pcapng(bytes: &[u8]) -> Result<Capture, PcapError> {
    let mut cap = Capture::default();
    let mut section: Vec<ReadIface> = Vec::new();
    // Interfaces of earlier sections stay in `cap.interfaces`; this maps section-local ids.
    let mut base = 0u32;
    let mut e = Endian { big: false };
    let mut at = 0usize;
    while at < bytes.len() {
        if bytes.len() - at < 12 {
            return Err(malformed(at, "truncated block header"));
        }
        let le_kind = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        if le_kind == SHB {
            let magic = bytes
                .get(at + 8..at + 12)
                .ok_or_else(|| malformed(at, "truncated section header"))?;
            e = match u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]) {
                BYTE_ORDER_MAGIC => Endian { big: false },
                0x4D3C_2B1A => Endian { big: true },
                m => return Err(malformed(at + 8, format!("bad byte-order magic {m:#010x}"))),
            };
            base = u32::try_from(cap.interfaces.len()).unwrap_or(u32::MAX);
            section.clear();
        } else if at == 0 {
            return Err(malformed(
                0,
                "file does not start with a Section Header Block",
            ));
        }
        let kind = e.u32(bytes, at).unwrap_or(0);
        let total = e.u32(bytes, at + 4).unwrap_or(0) as usize;
        if total < 12 || total % 4 != 0 || at + total > bytes.len() {
            return Err(malformed(at, format!("bad block length {total}")));
        }
        if e.u32(bytes, at + total - 4) != Some(total as u32) {
            return Err(malformed(at, "trailing block length differs from leading"));
        }
        let body = &bytes[at + 8..at + total - 4];
        match kind {
            IDB => {
                let linktype = e
                    .u16(body, 0)
                    .ok_or_else(|| malformed(at, "truncated interface description"))?;
                let snaplen = e.u32(body, 4).unwrap_or(0);
                let mut name = String::new();
                let mut units_per_sec: u128 = 1_000_000;
                for (code, v) in parse_options(e, body, 8, at + 8)? {
                    match code {
                        IF_NAME => name = String::from_utf8_lossy(v).into_owned(),
                        IF_TSRESOL => {
                            let r = v.first().copied().unwrap_or(6);
                            let exp = u32::from(r & 0x7F);
                            units_per_sec = if r & 0x80 == 0 {
                                10u128.checked_pow(exp).unwrap_or(u128::MAX)
                            } else {
                                2u128.checked_pow(exp).unwrap_or(u128::MAX)
                            };
                        }
                        _ => {}
                    }
                }
                let iface = Interface {
                    name,
                    linktype: LinkType::from_number(linktype),
                    snaplen,
                };
                cap.interfaces.push(iface.clone());
                section.push(ReadIface {
                    iface,
                    units_per_sec,
                });
            }
            EPB | SPB | OBSOLETE_PB => {
                let number = cap.frames.len() as u64 + 1;
                let (iface_id, raw_ts, caplen, orig, data_at) = match kind {
                    EPB => {
                        let id = e.u32(body, 0);
                        let hi = e.u32(body, 4);
                        let lo = e.u32(body, 8);
                        let cl = e.u32(body, 12);
                        let ol = e.u32(body, 16);
                        match (id, hi, lo, cl, ol) {
                            (Some(id), Some(hi), Some(lo), Some(cl), Some(ol)) => {
                                (id, (u64::from(hi) << 32) | u64::from(lo), cl, ol, 20)
                            }
                            _ => return Err(malformed(at, "truncated enhanced packet block")),
                        }
                    }
                    SPB => {
                        let ol = e
                            .u32(body, 0)
                            .ok_or_else(|| malformed(at, "truncated simple packet block"))?;
                        let snap = section.first().map(|i| i.iface.snaplen).unwrap_or(ol);
                        let cl = ol.min(snap).min((body.len() - 4) as u32);
                        (0, 0, cl, ol, 4)
                    }
                    _ => {
                        let id = e.u16(body, 0).map(u32::from);
                        let hi = e.u32(body, 4);
                        let lo = e.u32(body, 8);
                        let cl = e.u32(body, 12);
                        let ol = e.u32(body, 16);
                        match (id, hi, lo, cl, ol) {
                            (Some(id), Some(hi), Some(lo), Some(cl), Some(ol)) => {
                                (id, (u64::from(hi) << 32) | u64::from(lo), cl, ol, 20)
                            }
                            _ => return Err(malformed(at, "truncated packet block")),
                        }
                    }
                };
                let ri = section
                    .get(iface_id as usize)
                    .ok_or(PcapError::UnknownInterface {
                        frame: number,
                        interface: iface_id,
                        known: section.len(),
                    })?;
                let caplen = caplen as usize;
                let data = body
                    .get(data_at..data_at + caplen)
                    .ok_or_else(|| malformed(at, format!("frame {number}: data overruns block")))?
                    .to_vec();
                let mut frame = Frame {
                    interface: base + iface_id,
                    ts_ns: ts_to_ns(raw_ts, ri.units_per_sec),
                    orig_len: orig,
                    data,
                    direction: None,
                    comments: Vec::new(),
                };
                if kind == EPB {
                    let opt_at = data_at + caplen + pad4(caplen);
                    for (code, v) in parse_options(e, body, opt_at, at + 8)? {
                        match code {
                            OPT_COMMENT => frame.comments.push(String::from_utf8_lossy(v).into()),
                            EPB_FLAGS => {
                                frame.direction = match e.u32(v, 0).map(|f| f & 3) {
                                    Some(1) => Some(PacketDirection::Inbound),
                                    Some(2) => Some(PacketDirection::Outbound),
                                    _ => None,
                                }
                            }
                            _ => {}
                        }
                    }
                }
                cap.frames.push(frame);
            }
            _ => {}
        }
        at += total;
    }
    Ok(cap)
}

/// Parses a classic pcap file (micro- or nanosecond, either byte order) into a one-interface
/// capture named `name`.
pub fn read_pcap(bytes: &[u8], name: &str) -> Result<Capture, PcapError> {
    let bad = |offset: usize, what: &str| PcapError::Malformed {
        format: "pcap",
        offset,
        what: what.to_string(),
    };
    let magic = bytes
        .get(0..4)
        .ok_or_else(|| bad(0, "shorter than a file header"))?;
    let (e, nanos) = match u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]) {
        0xA1B2_C3D4 => (Endian { big: false }, false),
        0xA1B2_3C4D => (Endian { big: false }, true),
        0xD4C3_B2A1 => (Endian { big: true }, false),
        0x4D3C_B2A1 => (Endian { big: true }, true),
        _ => return Err(bad(0, "not a pcap or pcapng file (unknown magic)")),
    };
    let snaplen = e
        .u32(bytes, 16)
        .ok_or_else(|| bad(0, "shorter than a file header"))?;
    let linktype = e
        .u32(bytes, 20)
        .ok_or_else(|| bad(0, "shorter than a file header"))?;
    let mut cap = Capture {
        interfaces: vec![Interface {
            name: name.to_string(),
            linktype: LinkType::from_number(linktype as u16),
            snaplen,
        }],
        frames: Vec::new(),
    };
    let mut at = 24;
    while at < bytes.len() {
        let (Some(sec), Some(frac), Some(cl), Some(ol)) = (
            e.u32(bytes, at),
            e.u32(bytes, at + 4),
            e.u32(bytes, at + 8),
            e.u32(bytes, at + 12),
        ) else {
            return Err(bad(at, "truncated record header"));
        };
        let data = bytes
            .get(at + 16..at + 16 + cl as usize)
            .ok_or_else(|| bad(at, "record data overruns file"))?;
        let frac_ns = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        cap.frames.push(Frame {
            interface: 0,
            ts_ns: u64::from(sec) * 1_000_000_000 + frac_ns,
            orig_len: ol,
            data: data.to_vec(),
            direction: None,
            comments: Vec::new(),
        });
        at += 16 + cl as usize;
    }
    Ok(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Capture {
        Capture {
            interfaces: vec![
                Interface::ethernet("client:eth0"),
                Interface {
                    name: "director:tun1".into(),
                    linktype: LinkType::RawIp,
                    snaplen: 1500,
                },
            ],
            frames: vec![
                Frame::new(0, 1_700_000_000_123_456_789, vec![1, 2, 3, 4, 5]),
                Frame {
                    interface: 1,
                    ts_ns: 1_700_000_000_123_457_000,
                    orig_len: 9000,
                    data: vec![0x45; 7],
                    direction: Some(PacketDirection::Outbound),
                    comments: vec!["first".into(), CSUM_NOT_READY_COMMENT.into()],
                },
            ],
        }
    }

    #[test]
    fn round_trip_keeps_everything() {
        let cap = sample();
        let bytes = cap.to_pcapng().expect("encode");
        assert_eq!(Capture::from_pcapng(&bytes).expect("decode"), cap);
        assert!(cap.frames[1].csum_not_ready());
        assert!(!cap.frames[0].csum_not_ready());
    }

    #[test]
    fn output_is_deterministic_and_aligned() {
        let a = sample().to_pcapng().expect("encode");
        let b = sample().to_pcapng().expect("encode");
        assert_eq!(a, b);
        assert_eq!(a.len() % 4, 0);
    }

    #[test]
    fn classic_pcap_round_trip() {
        let cap = sample();
        let bytes = cap.to_pcap(0).expect("encode");
        let back = read_pcap(&bytes, "client:eth0").expect("decode");
        assert_eq!(back.frames.len(), 1);
        assert_eq!(back.frames[0].data, cap.frames[0].data);
        assert_eq!(back.frames[0].ts_ns, cap.frames[0].ts_ns);
        assert_eq!(back.interfaces[0].linktype, LinkType::Ethernet);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let bytes = sample().to_pcapng().expect("encode");
        for cut in 0..bytes.len() {
            let _ = Capture::from_pcapng(&bytes[..cut]);
        }
        assert!(Capture::from_pcapng(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn frame_on_undescribed_interface_is_refused() {
        let mut w = PcapngWriter::new(Vec::new()).expect("shb");
        let err = w
            .write_frame(&Frame::new(0, 0, vec![0]))
            .expect_err("interface 0 was never added");
        assert!(matches!(
            err,
            PcapError::UnknownInterface { interface: 0, .. }
        ));
    }

    #[test]
    fn microsecond_resolution_is_converted() {
        assert_eq!(ts_to_ns(1_500_000, 1_000_000), 1_500_000_000);
    }
}
