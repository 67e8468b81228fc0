//! lvslab-pcap: the offline half of the capture/assertion pipeline.
//!
//! capture files ([`pcapng`]) → per-frame summaries ([`decode`]) → one hop ladder per flow
//! ([`correlate`]) → findings against the forwarding-mode rules ([`rules`]) → reports
//! ([`report`]). Pure: no root, no I/O beyond reading and writing files.

pub mod decode;
pub mod error;
pub mod pcapng;

pub use decode::{decode_capture, decode_frame, Mac, PacketSummary};
pub use error::PcapError;
pub use pcapng::{Capture, Frame, Interface, LinkType, PacketDirection, PcapngWriter};
