//! lvslab-pcap: the offline half of the capture/assertion pipeline.
//!
//! capture files ([`pcapng`]) → per-frame summaries ([`decode`]) → one hop ladder per flow
//! ([`correlate`], [`ladder`]) → findings against the forwarding-mode rules ([`rules`]) →
//! reports ([`report`]). Pure: no root, no I/O beyond reading and writing files.

pub mod correlate;
pub mod decode;
pub mod error;
pub mod ladder;
pub mod pcapng;
pub mod rules;

pub use correlate::{correlate, CorrelateOptions, Direction, Flow, Hop};
pub use decode::{decode_capture, decode_frame, Mac, PacketSummary};
pub use error::PcapError;
pub use pcapng::{Capture, Frame, Interface, LinkType, PacketDirection, PcapngWriter};
pub use rules::{
    check, check_distribution, CheckOutcome, Director, FieldDiff, Finding, Mode, RealServer, Roles,
    TunEncap,
};
