//! pcapng (and classic `.pcap`) files, read and written through the `pcap-file` crate.
//!
//! The capture points of a lab become one Interface Description Block each, named
//! `node:iface` (option `if_name`), with nanosecond timestamps (`if_tsresol` = 9); every
//! frame is an Enhanced Packet Block with its direction (`epb_flags`) and comments
//! (`opt_comment`). Output is little-endian and byte-for-byte deterministic, so two runs of
//! the same lab compare equal. The reader accepts both byte orders and several sections.
//!
//! `pcap-file` 2 does the block framing, byte order, padding and option coding. What this
//! module adds is only what it lacks (see the crate docs for the decision and its numbers):
//! - **timestamp resolution**: `pcap-file` 2 ignores `if_tsresol`; it reads a packet's raw
//!   tick count as nanoseconds and writes nanoseconds. We write `if_tsresol` = 9 so the two
//!   agree, and on reading rescale the ticks by the interface's `if_tsresol` (tools that
//!   write microseconds, the pcapng default, would otherwise read 1000× too small);
//! - **length checks before writing**: it casts option lengths to 16 bits and block lengths
//!   to 32 bits unchecked, which would write a corrupt file; we refuse with an error;
//! - **one numbering for the whole file**: frame numbers and interface ids run across
//!   sections, the way Wireshark and tshark number them, so a finding's `frames` can be
//!   typed into `tshark -Y frame.number==N`;
//! - **blocks we do not use are skipped undecoded** (statistics, name resolution, …), so
//!   a strictness of its decoder in a block we ignore cannot refuse the file;
//! - the obsolete Packet Block's timestamp words, which it reads in the wrong order in
//!   little-endian files, and classic `.pcap` records read unchecked (its checked records
//!   refuse `orig_len > snaplen`, which every snap-length-cut capture has).

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapParser, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::packet::{PacketBlock, PacketOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::{Block, PcapNgParser, PcapNgWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use serde::{Deserialize, Serialize};

use crate::error::PcapError;

/// `if_tsresol` value for nanoseconds (10^-9 s), written for every interface.
const NANOSECOND_TSRESOL: u8 = 9;
/// `epb_flags` bits 0–1: the direction.
const EPB_FLAGS_INBOUND: u32 = 1;
const EPB_FLAGS_OUTBOUND: u32 = 2;

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
        w.finish()
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

    /// Parses pcapng bytes. Multiple sections are merged; blocks that carry no packets or
    /// interfaces are skipped.
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
        if starts_with_section_header(&bytes) {
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
        let header = PcapHeader {
            snaplen: iface.snaplen,
            datalink: DataLink::from(u32::from(iface.linktype.number())),
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
            // Version 2.4, no time zone correction or accuracy.
            ..PcapHeader::default()
        };
        let io = |e| pcap_file_write_error("classic pcap", e);
        let mut w = PcapWriter::with_header(Vec::new(), header).map_err(io)?;
        for f in self.frames.iter().filter(|f| f.interface == interface) {
            let ts_sec = u32::try_from(f.ts_ns / 1_000_000_000).map_err(|_| PcapError::Encode {
                what: "classic pcap timestamp".into(),
                why: format!("{} ns is past 2106", f.ts_ns),
            })?;
            let incl_len = len_u32(f.data.len(), "frame")?;
            // Raw records: the checked ones refuse a frame longer than the snap length, which
            // the pcapng side allows (the snap length there only describes the capture).
            w.write_raw_packet(&RawPcapPacket {
                ts_sec,
                ts_frac: (f.ts_ns % 1_000_000_000) as u32,
                incl_len,
                orig_len: f.orig_len.max(incl_len),
                data: Cow::Borrowed(&f.data),
            })
            .map_err(io)?;
        }
        Ok(w.into_writer())
    }
}

fn starts_with_section_header(bytes: &[u8]) -> bool {
    // The block type reads the same in both byte orders.
    bytes.get(..4) == Some(&SECTION_HEADER_BLOCK.to_le_bytes()[..])
}

fn len_u32(n: usize, what: &str) -> Result<u32, PcapError> {
    u32::try_from(n).map_err(|_| PcapError::Encode {
        what: what.into(),
        why: format!("{n} bytes do not fit a 32-bit length"),
    })
}

/// Bytes an option with a `len`-byte value takes, after checking the value fits the 16-bit
/// length field (`pcap-file` would truncate the length and write a corrupt block).
fn option_size(code: &str, len: usize) -> Result<u64, PcapError> {
    if len > usize::from(u16::MAX) {
        return Err(PcapError::Encode {
            what: format!("pcapng option {code}"),
            why: format!("{len} bytes exceed 65535"),
        });
    }
    Ok(4 + padded(len))
}

fn padded(len: usize) -> u64 {
    (len as u64).div_ceil(4) * 4
}

fn pcap_file_write_error(what: &'static str, e: pcap_file::PcapError) -> PcapError {
    match e {
        pcap_file::PcapError::IoError(source) => PcapError::Write { what, source },
        other => PcapError::Encode {
            what: what.into(),
            why: other.to_string(),
        },
    }
}

/// Streaming pcapng writer: one section, interfaces added before the frames that use them.
pub struct PcapngWriter<W: Write> {
    out: PcapNgWriter<W>,
    interfaces: u32,
    frames: u64,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a section (writes the Section Header Block, `shb_userappl` = "lvslab").
    pub fn new(out: W) -> Result<Self, PcapError> {
        let section = SectionHeaderBlock {
            endianness: Endianness::Little,
            options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
                "lvslab",
            ))],
            // Version 1.0; section length unknown (-1), so the file can be streamed.
            ..SectionHeaderBlock::default()
        };
        let out = PcapNgWriter::with_section_header(out, section)
            .map_err(|e| pcap_file_write_error("pcapng section header", e))?;
        Ok(PcapngWriter {
            out,
            interfaces: 0,
            frames: 0,
        })
    }

    /// Writes an Interface Description Block; returns the interface id frames must use.
    pub fn add_interface(&mut self, iface: &Interface) -> Result<u32, PcapError> {
        option_size("if_name", iface.name.len())?;
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::from(u32::from(iface.linktype.number())),
            snaplen: iface.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed(&iface.name)),
                InterfaceDescriptionOption::IfTsResol(NANOSECOND_TSRESOL),
            ],
        };
        self.out
            .write_pcapng_block(idb)
            .map_err(|e| pcap_file_write_error("pcapng interface description", e))?;
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
        // Block header and trailer, the fixed EPB fields, the data, then the options.
        let mut block_len = 12 + 20 + padded(frame.data.len());
        let mut options = Vec::new();
        if let Some(d) = frame.direction {
            options.push(EnhancedPacketOption::Flags(match d {
                PacketDirection::Inbound => EPB_FLAGS_INBOUND,
                PacketDirection::Outbound => EPB_FLAGS_OUTBOUND,
            }));
            block_len += 8;
        }
        for c in &frame.comments {
            block_len += option_size("opt_comment", c.len())?;
            options.push(EnhancedPacketOption::Comment(Cow::Borrowed(c)));
        }
        if !options.is_empty() {
            block_len += 4;
        }
        if block_len > u64::from(u32::MAX) {
            return Err(PcapError::Encode {
                what: format!("pcapng block of frame {}", self.frames + 1),
                why: format!("{block_len} bytes do not fit a 32-bit block length"),
            });
        }
        let epb = EnhancedPacketBlock {
            interface_id: frame.interface,
            timestamp: Duration::from_nanos(frame.ts_ns),
            original_len: frame.orig_len.max(caplen),
            data: Cow::Borrowed(&frame.data),
            options,
        };
        self.out
            .write_pcapng_block(epb)
            .map_err(|e| pcap_file_write_error("pcapng block", e))?;
        self.frames += 1;
        Ok(())
    }

    /// Flushes and returns the sink.
    pub fn finish(mut self) -> Result<W, PcapError> {
        self.out
            .get_mut()
            .flush()
            .map_err(|source| PcapError::Write {
                what: "pcapng",
                source,
            })?;
        Ok(self.out.into_inner())
    }
}

fn malformed(format: &'static str, offset: usize, e: pcap_file::PcapError) -> PcapError {
    let what = match e {
        pcap_file::PcapError::IncompleteBuffer => "truncated: runs past the end of the data".into(),
        pcap_file::PcapError::Utf8Error(u) => format!("option text is not UTF-8: {u}"),
        other => other.to_string(),
    };
    PcapError::Malformed {
        format,
        offset,
        what,
    }
}

/// What the reader keeps of one interface of the current section.
struct SectionInterface {
    /// Timestamp units per second (`if_tsresol`; the pcapng default is microseconds).
    units_per_sec: u128,
    snaplen: u32,
}

fn units_per_sec(if_tsresol: u8) -> u128 {
    let exp = u32::from(if_tsresol & 0x7F);
    let base: u128 = if if_tsresol & 0x80 == 0 { 10 } else { 2 };
    base.checked_pow(exp).unwrap_or(u128::MAX)
}

fn ts_to_ns(raw: u64, units_per_sec: u128) -> u64 {
    let ns = u128::from(raw) * 1_000_000_000 / units_per_sec.max(1);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

fn direction_of(epb_flags: u32) -> Option<PacketDirection> {
    match epb_flags & 3 {
        EPB_FLAGS_INBOUND => Some(PacketDirection::Inbound),
        EPB_FLAGS_OUTBOUND => Some(PacketDirection::Outbound),
        _ => None,
    }
}

/// The reader's state across blocks: interfaces of the current section and where its
/// interface ids start in the whole file.
#[derive(Default)]
struct PcapngReader {
    cap: Capture,
    section: Vec<SectionInterface>,
    base: u32,
}

impl PcapngReader {
    fn new_section(&mut self) {
        self.base = u32::try_from(self.cap.interfaces.len()).unwrap_or(u32::MAX);
        self.section.clear();
    }

    fn interface(&mut self, idb: InterfaceDescriptionBlock) {
        let mut name = String::new();
        let mut units = units_per_sec(6);
        for opt in idb.options {
            match opt {
                InterfaceDescriptionOption::IfName(n) => name = n.into_owned(),
                InterfaceDescriptionOption::IfTsResol(r) => units = units_per_sec(r),
                _ => {}
            }
        }
        self.cap.interfaces.push(Interface {
            name,
            linktype: LinkType::from_number(u32::from(idb.linktype) as u16),
            snaplen: idb.snaplen,
        });
        self.section.push(SectionInterface {
            units_per_sec: units,
            snaplen: idb.snaplen,
        });
    }

    /// A frame on section-local interface `local` with its raw tick count.
    fn frame(
        &self,
        local: u32,
        raw_ts: u64,
        orig_len: u32,
        data: &[u8],
    ) -> Result<Frame, PcapError> {
        let iface =
            self.section
                .get(local as usize)
                .ok_or_else(|| PcapError::UnknownInterface {
                    frame: self.cap.frames.len() as u64 + 1,
                    interface: local,
                    known: self.section.len(),
                })?;
        Ok(Frame {
            interface: self.base + local,
            ts_ns: ts_to_ns(raw_ts, iface.units_per_sec),
            orig_len,
            data: data.to_vec(),
            direction: None,
            comments: Vec::new(),
        })
    }

    fn enhanced_packet(&mut self, epb: EnhancedPacketBlock) -> Result<(), PcapError> {
        // pcap-file 2 hands the raw tick count over as if it were nanoseconds.
        let raw_ts = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
        let mut frame = self.frame(epb.interface_id, raw_ts, epb.original_len, &epb.data)?;
        for opt in epb.options {
            match opt {
                EnhancedPacketOption::Comment(c) => frame.comments.push(c.into_owned()),
                EnhancedPacketOption::Flags(f) => frame.direction = direction_of(f),
                _ => {}
            }
        }
        self.cap.frames.push(frame);
        Ok(())
    }

    fn simple_packet(&mut self, spb: SimplePacketBlock) -> Result<(), PcapError> {
        // The block's data runs to its end, padding included: the captured length is the
        // original length cut by the snap length of interface 0 (0 = no limit).
        let snaplen = match self.section.first().map(|i| i.snaplen) {
            Some(0) | None => u32::MAX,
            Some(s) => s,
        };
        let caplen = (spb.original_len.min(snaplen) as usize).min(spb.data.len());
        let frame = self.frame(0, 0, spb.original_len, &spb.data[..caplen])?;
        self.cap.frames.push(frame);
        Ok(())
    }

    fn packet(&mut self, pb: PacketBlock, endianness: Endianness) -> Result<(), PcapError> {
        // The block stores the high timestamp word first; pcap-file 2 reads both words as
        // one 64-bit integer, which swaps them in little-endian sections.
        let raw_ts = match endianness {
            Endianness::Little => pb.timestamp.rotate_left(32),
            Endianness::Big => pb.timestamp,
        };
        let mut frame = self.frame(
            u32::from(pb.interface_id),
            raw_ts,
            pb.original_len,
            &pb.data,
        )?;
        for opt in pb.options {
            match opt {
                PacketOption::Comment(c) => frame.comments.push(c.into_owned()),
                PacketOption::Flags(f) => frame.direction = direction_of(f),
                _ => {}
            }
        }
        self.cap.frames.push(frame);
        Ok(())
    }
}

/// Block type at the start of `rest`, read in the section's byte order.
fn peek_block_type(rest: &[u8], endianness: Endianness) -> Option<u32> {
    let b: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    Some(match endianness {
        Endianness::Little => u32::from_le_bytes(b),
        Endianness::Big => u32::from_be_bytes(b),
    })
}

fn read_pcapng(bytes: &[u8]) -> Result<Capture, PcapError> {
    if !starts_with_section_header(bytes) {
        return Err(PcapError::Malformed {
            format: "pcapng",
            offset: 0,
            what: "file does not start with a Section Header Block".into(),
        });
    }
    let (mut rest, mut parser) = PcapNgParser::new(bytes).map_err(|e| malformed("pcapng", 0, e))?;
    let mut reader = PcapngReader::default();
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let endianness = parser.section().endianness;
        let used = matches!(
            peek_block_type(rest, endianness),
            Some(
                SECTION_HEADER_BLOCK
                    | INTERFACE_DESCRIPTION_BLOCK
                    | ENHANCED_PACKET_BLOCK
                    | SIMPLE_PACKET_BLOCK
                    | PACKET_BLOCK
            )
        );
        if !used {
            // Framing checked, body not decoded.
            let (next, _) = parser
                .next_raw_block(rest)
                .map_err(|e| malformed("pcapng", offset, e))?;
            rest = next;
            continue;
        }
        let (next, block) = parser
            .next_block(rest)
            .map_err(|e| malformed("pcapng", offset, e))?;
        match block {
            Block::SectionHeader(_) => reader.new_section(),
            Block::InterfaceDescription(idb) => reader.interface(idb),
            Block::EnhancedPacket(epb) => reader.enhanced_packet(epb)?,
            Block::SimplePacket(spb) => reader.simple_packet(spb)?,
            Block::Packet(pb) => reader.packet(pb, endianness)?,
            _ => {}
        }
        rest = next;
    }
    Ok(reader.cap)
}

/// Parses a classic pcap file (micro- or nanosecond, either byte order) into a one-interface
/// capture named `name`.
pub fn read_pcap(bytes: &[u8], name: &str) -> Result<Capture, PcapError> {
    let (mut rest, parser) = PcapParser::new(bytes).map_err(|e| match e {
        pcap_file::PcapError::InvalidField(_) => PcapError::Malformed {
            format: "pcap",
            offset: 0,
            what: "not a pcap or pcapng file (unknown magic)".into(),
        },
        other => malformed("pcap", 0, other),
    })?;
    let header = parser.header();
    let mut cap = Capture {
        interfaces: vec![Interface {
            name: name.to_string(),
            // The link type is the low 16 bits; the high ones carry FCS details.
            linktype: LinkType::from_number(u32::from(header.datalink) as u16),
            snaplen: header.snaplen,
        }],
        frames: Vec::new(),
    };
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        // Raw records: the checked ones refuse `orig_len > snaplen`, which is what a frame
        // cut by the snap length looks like.
        let (next, record) = parser
            .next_raw_packet(rest)
            .map_err(|e| malformed("pcap", offset, e))?;
        let frac_ns = match header.ts_resolution {
            TsResolution::NanoSecond => u64::from(record.ts_frac),
            TsResolution::MicroSecond => u64::from(record.ts_frac) * 1000,
        };
        cap.frames.push(Frame {
            interface: 0,
            ts_ns: u64::from(record.ts_sec) * 1_000_000_000 + frac_ns,
            orig_len: record.orig_len,
            data: record.data.into_owned(),
            direction: None,
            comments: Vec::new(),
        });
        rest = next;
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
