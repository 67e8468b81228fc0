//! Per-hop packet capture: one AF_PACKET socket per capture point `node:iface`, opened inside
//! the node's namespace, proven armed before traffic starts and drained after it ends.
//!
//! How frames are received: a plain `SOCK_RAW` packet socket (`SOCK_DGRAM` for devices
//! without an Ethernet header, whose frames become raw IP) with a large forced receive buffer
//! ([`CaptureOptions::rcvbuf_bytes`], `SO_RCVBUFFORCE`) read by one background thread with
//! `poll` + `recvmsg`. Not a TPACKET_V3 ring: at the rates a lab trial sends (thousands of
//! packets, not millions per second) the socket buffer absorbs any burst while the thread
//! catches up, `recvmsg` hands over the direction (`sll_pkttype`), the nanosecond timestamp
//! (`SO_TIMESTAMPNS`) and the checksum state (`PACKET_AUXDATA`) with no shared-memory ring
//! to map and walk, and every loss still shows in `PACKET_STATISTICS`. The capture benchmark
//! (`benches/capture.rs`, BENCHMARKS.md "Capture") measures the rate one point sustains.
//!
//! "Proven armed": after opening, each point sends one marker frame (EtherType
//! [`MARKER_ETHERTYPE`], from the IEEE local-experimental range) out of its interface from a
//! second packet socket and waits until its own capture socket has seen it; marker frames are
//! then dropped from every capture (counted in [`PointStats::markers`]).
//!
//! Determinism: interfaces are in the order the points were given, frames are ordered by
//! timestamp and then point order, and nothing random is written. Timestamps are the kernel's
//! real receive/transmit times, so two runs differ in timestamps only.
//!
//! This module holds the errors, options, counters and the `node:iface` syntax; `socket`
//! is one capture point ([`CaptureSocket`]: open, arm, receive) and `set` runs many of
//! them on one background thread ([`CaptureSet`]: arm all, read, drain).

use std::io;
use std::path::Path;
use std::time::Duration;

use lvslab_pcap::pcapng::{Capture, DEFAULT_SNAPLEN};

mod set;
mod socket;

pub use set::CaptureSet;
pub use socket::{CaptureSocket, Received, MARKER_ETHERTYPE};

/// Everything that can go wrong while capturing.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A capture point is not written `node:iface`, or is given twice.
    #[error("capture point {point:?}: {why}")]
    BadPoint {
        /// The point as given.
        point: String,
        /// What is wrong with it.
        why: String,
    },
    /// A socket call on a capture point failed.
    #[error("{op} for capture point {point} (namespace {ns}): {source}")]
    Socket {
        /// The call, e.g. `bind AF_PACKET eth0`.
        op: String,
        /// `node:iface`.
        point: String,
        /// Namespace label.
        ns: String,
        /// The OS error (keeps the errno).
        #[source]
        source: io::Error,
    },
    /// The marker frame never came back: the socket cannot be shown to receive.
    #[error(
        "capture point {point} (namespace {ns}) not armed: its marker frame was not seen within {waited:?} \
         (is the interface up?)"
    )]
    NotArmed {
        /// `node:iface`.
        point: String,
        /// Namespace label.
        ns: String,
        /// How long arming waited.
        waited: Duration,
    },
    /// Entering the namespace failed.
    #[error(transparent)]
    Netns(#[from] crate::Error),
    /// The background capture thread could not start or died.
    #[error("capture thread: {detail}")]
    Thread {
        /// What happened.
        detail: String,
    },
}

impl CaptureError {
    /// The OS errno behind the error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            CaptureError::Socket { source, .. } => source.raw_os_error(),
            CaptureError::Netns(e) => e.errno(),
            _ => None,
        }
    }
}

/// Result alias of this module.
pub type Result<T, E = CaptureError> = std::result::Result<T, E>;
/// Tunables of a capture; [`Default`] suits lab trials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Bytes kept per frame.
    pub snaplen: u32,
    /// Receive buffer forced on each socket (`SO_RCVBUFFORCE`); what absorbs bursts.
    pub rcvbuf_bytes: usize,
    /// Frames kept per point; more are read and counted in [`PointStats::over_cap`].
    pub max_frames_per_point: usize,
    /// How long arming waits for a point's marker frame.
    pub arm_timeout: Duration,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            snaplen: DEFAULT_SNAPLEN,
            rcvbuf_bytes: 64 << 20,
            max_frames_per_point: 200_000,
            arm_timeout: Duration::from_secs(3),
        }
    }
}

/// Counters of one capture point over the whole capture.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PointStats {
    /// `node:iface`.
    pub point: String,
    /// Frames kept in the capture.
    pub packets: u64,
    /// Frames the kernel dropped because the socket buffer was full (`tp_drops`).
    pub drops: u64,
    /// Frames read but not kept because [`CaptureOptions::max_frames_per_point`] was reached.
    pub over_cap: u64,
    /// Frames the kernel offered the socket (`tp_packets`, markers and drops included).
    pub kernel_packets: u64,
    /// Marker frames removed from the capture.
    pub markers: u64,
}

impl PointStats {
    /// Frames that happened but are missing from the capture.
    pub fn lost(&self) -> u64 {
        self.drops + self.over_cap
    }
}

/// What [`CaptureSet::drain`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// One interface per point (in the order given), frames by timestamp then point.
    pub capture: Capture,
    /// Per-point counters, in point order.
    pub stats: Vec<PointStats>,
}

impl Captured {
    /// Frames lost over all points (kernel drops plus frames over the cap).
    pub fn lost(&self) -> u64 {
        self.stats.iter().map(PointStats::lost).sum()
    }

    /// Writes the capture as pcapng.
    pub fn write_pcapng(&self, path: &Path) -> Result<(), lvslab_pcap::PcapError> {
        self.capture.write_pcapng_file(path)
    }
}

/// Splits `node:iface`, checking both halves are plain names.
pub fn parse_point(point: &str) -> Result<(&str, &str)> {
    let bad = |why: &str| CaptureError::BadPoint {
        point: point.to_string(),
        why: why.to_string(),
    };
    let (node, iface) = point
        .split_once(':')
        .ok_or_else(|| bad("expected node:iface, e.g. director:eth0"))?;
    if node.is_empty() || iface.is_empty() {
        return Err(bad("expected node:iface, e.g. director:eth0"));
    }
    if iface.len() >= 16 || iface.contains(['/', ':', '\0']) || iface.contains(char::is_whitespace)
    {
        return Err(bad("interface name is not a valid Linux interface name"));
    }
    Ok((node, iface))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_node_colon_iface() {
        assert_eq!(
            parse_point("director:eth0").expect("valid"),
            ("director", "eth0")
        );
        for bad in [
            "director",
            ":eth0",
            "director:",
            "a:0123456789abcdef",
            "a:b c",
        ] {
            assert!(parse_point(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn lost_adds_drops_and_frames_over_the_cap() {
        let s = PointStats {
            point: "a:eth0".into(),
            packets: 10,
            drops: 2,
            over_cap: 3,
            kernel_packets: 15,
            markers: 1,
        };
        assert_eq!(s.lost(), 5);
    }
}
