//! The pcapng codec lvslab had before it used `pcap-file` (its writer and reader as they
//! were, unchanged but for names), kept only as the baseline of `benches/pcapng.rs`.

use std::io::Write;

use lvslab_pcap::{Capture, Frame, Interface, LinkType, PacketDirection, PcapError};

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
pub struct Writer<W: Write> {
    out: W,
    interfaces: u32,
    frames: u64,
}

impl<W: Write> Writer<W> {
    /// Starts a section (writes the Section Header Block, `shb_userappl` = "lvslab").
    pub fn new(out: W) -> Result<Self, PcapError> {
        let mut w = Writer {
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

pub fn read_pcapng(bytes: &[u8]) -> Result<Capture, PcapError> {
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

/// The capture as pcapng bytes, written the old way.
pub fn to_pcapng(cap: &Capture) -> Result<Vec<u8>, PcapError> {
    let mut w = Writer::new(Vec::new())?;
    for i in &cap.interfaces {
        w.add_interface(i)?;
    }
    for f in &cap.frames {
        w.write_frame(f)?;
    }
    w.finish()
}
