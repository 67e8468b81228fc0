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

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lvslab_pcap::pcapng::{
    Capture, Frame, Interface, LinkType, PacketDirection, CSUM_NOT_READY_COMMENT, DEFAULT_SNAPLEN,
};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::capture_sys::{self, PacketStats, ETH_P_ALL};
use crate::ns::Netns;

/// EtherType of the marker frames that prove a capture point armed (IEEE 802 "local
/// experimental EtherType 1").
pub const MARKER_ETHERTYPE: u16 = 0x88b5;

/// First bytes of a marker frame's payload; a nonce follows.
const MARKER_MAGIC: &[u8; 12] = b"lvslab-armed";

/// How long a point waits for its marker before sending another.
const MARKER_RESEND: Duration = Duration::from_millis(100);

/// At most this many frames are read from one socket per wake-up, so one busy point
/// cannot starve the others.
const READ_BATCH: usize = 4096;

/// After a wake-up that found frames, the capture thread waits this long before polling
/// again, so frames are read in batches instead of costing a thread wake-up each (which
/// slows the traffic being captured on a small machine). The socket buffer holds far more
/// than this many milliseconds of traffic.
const BATCH_DELAY: Duration = Duration::from_millis(1);

/// Safety bound for the final drain of one socket (traffic should have stopped by then).
const FINAL_DRAIN_LIMIT: usize = 2_000_000;

/// ARPHRD types whose frames start with an Ethernet header (Ethernet and loopback).
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;

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

/// One packet read from a capture socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A frame of the capture.
    Frame(Frame),
    /// A marker frame (never part of a capture) carrying this nonce.
    Marker(u64),
}

/// One armed-or-arming capture point: an AF_PACKET socket bound to one interface of one
/// namespace, plus the socket that sends its marker frames.
#[derive(Debug)]
pub struct CaptureSocket {
    index: u32,
    point: String,
    ns: String,
    ifindex: u32,
    linktype: LinkType,
    snaplen: u32,
    socket: OwnedFd,
    sender: OwnedFd,
    buf: Vec<u8>,
}

impl CaptureSocket {
    /// Opens capture point `point` (`node:iface`; the interface is looked up in `ns`).
    /// Frames will carry interface number `index`.
    pub fn open(
        ns: &Netns,
        point: &str,
        index: u32,
        opts: &CaptureOptions,
    ) -> Result<CaptureSocket> {
        let (_, iface) = parse_point(point)?;
        let label = ns.label().to_string();
        let sock_err = |op: String| {
            let point = point.to_string();
            let ns = label.clone();
            move |source: io::Error| CaptureError::Socket {
                op,
                point,
                ns,
                source,
            }
        };
        // Everything that looks the interface up or creates a socket runs inside the
        // namespace; the sockets stay bound to it afterwards.
        let opened = ns.run(|| -> Result<(u32, LinkType, OwnedFd, OwnedFd)> {
            let ifindex = nix::net::if_::if_nametoindex(iface)
                .map_err(|e| sock_err(format!("if_nametoindex {iface}"))(e.into()))?;
            let probe = capture_sys::packet_socket(libc::SOCK_RAW)
                .map_err(sock_err("socket AF_PACKET".into()))?;
            capture_sys::bind_ll(probe.as_fd(), ifindex, ETH_P_ALL)
                .map_err(sock_err(format!("bind AF_PACKET {iface}")))?;
            let hatype = capture_sys::bound_hatype(probe.as_fd())
                .map_err(sock_err(format!("getsockname AF_PACKET {iface}")))?;
            let (linktype, kind, socket) = if hatype == ARPHRD_ETHER || hatype == ARPHRD_LOOPBACK {
                (LinkType::Ethernet, libc::SOCK_RAW, probe)
            } else {
                // No Ethernet header: a cooked socket hands over the packet from its network
                // header on, which is exactly LINKTYPE_RAW.
                drop(probe);
                let s = capture_sys::packet_socket(libc::SOCK_DGRAM)
                    .map_err(sock_err("socket AF_PACKET SOCK_DGRAM".into()))?;
                capture_sys::bind_ll(s.as_fd(), ifindex, ETH_P_ALL)
                    .map_err(sock_err(format!("bind AF_PACKET {iface}")))?;
                (LinkType::RawIp, libc::SOCK_DGRAM, s)
            };
            let rcvbuf = libc::c_int::try_from(opts.rcvbuf_bytes).unwrap_or(libc::c_int::MAX);
            for (level, name, value, what) in [
                (
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    rcvbuf,
                    "SO_RCVBUFFORCE",
                ),
                (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS"),
                (libc::SOL_PACKET, libc::PACKET_AUXDATA, 1, "PACKET_AUXDATA"),
            ] {
                capture_sys::set_int_option(socket.as_fd(), level, name, value)
                    .map_err(sock_err(format!("setsockopt {what}")))?;
            }
            let sender = capture_sys::packet_socket(kind)
                .map_err(sock_err("socket AF_PACKET (marker sender)".into()))?;
            Ok((ifindex, linktype, socket, sender))
        })??;
        let (ifindex, linktype, socket, sender) = opened;
        let snaplen = opts.snaplen.max(64);
        Ok(CaptureSocket {
            index,
            point: point.to_string(),
            ns: label,
            ifindex,
            linktype,
            snaplen,
            socket,
            sender,
            buf: vec![0; snaplen as usize],
        })
    }

    /// `node:iface`.
    pub fn point(&self) -> &str {
        &self.point
    }

    /// The pcapng interface description of this point.
    pub fn interface(&self) -> Interface {
        Interface {
            name: self.point.clone(),
            linktype: self.linktype,
            snaplen: self.snaplen,
        }
    }

    fn error(&self, op: &str, source: io::Error) -> CaptureError {
        CaptureError::Socket {
            op: op.to_string(),
            point: self.point.clone(),
            ns: self.ns.clone(),
            source,
        }
    }

    /// Sends one marker frame carrying `nonce` out of the interface.
    pub fn send_marker(&self, nonce: u64) -> Result<()> {
        let mut payload = Vec::with_capacity(64);
        payload.extend_from_slice(MARKER_MAGIC);
        payload.extend_from_slice(&nonce.to_be_bytes());
        let broadcast = [0xff; 6];
        let result = match self.linktype {
            LinkType::Ethernet => {
                // Source all-zero: bridges drop such frames instead of learning a false
                // location, so markers never travel beyond the next hop.
                let mut frame = Vec::with_capacity(14 + 46);
                frame.extend_from_slice(&broadcast);
                frame.extend_from_slice(&[0; 6]);
                frame.extend_from_slice(&MARKER_ETHERTYPE.to_be_bytes());
                frame.extend_from_slice(&payload);
                frame.resize(60, 0);
                capture_sys::send_ll(
                    self.sender.as_fd(),
                    self.ifindex,
                    MARKER_ETHERTYPE,
                    &broadcast,
                    &frame,
                )
            }
            _ => capture_sys::send_ll(
                self.sender.as_fd(),
                self.ifindex,
                MARKER_ETHERTYPE,
                &[],
                &payload,
            ),
        };
        result.map_err(|e| self.error("send marker frame", e))
    }

    /// Reads one queued packet without blocking; `Ok(None)` when none is queued.
    pub fn try_recv(&mut self) -> Result<Option<Received>> {
        loop {
            let info = match capture_sys::recv_packet(self.socket.as_fd(), &mut self.buf) {
                Ok(Some(info)) => info,
                Ok(None) => return Ok(None),
                // The interface went down (or was deleted) under the socket: the kernel
                // reports that once; the socket resumes when it comes back up.
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => continue,
                Err(e) => return Err(self.error("recvmsg", e)),
            };
            let data = &self.buf[..info.caplen];
            if info.protocol == MARKER_ETHERTYPE {
                if let Some(nonce) = marker_nonce(self.linktype, data) {
                    return Ok(Some(Received::Marker(nonce)));
                }
            }
            let direction = if info.pkttype == libc::PACKET_OUTGOING {
                PacketDirection::Outbound
            } else {
                PacketDirection::Inbound
            };
            let mut comments = Vec::new();
            if info
                .aux_status
                .is_some_and(|s| s & libc::TP_STATUS_CSUMNOTREADY != 0)
            {
                comments.push(CSUM_NOT_READY_COMMENT.to_string());
            }
            let ts_ns = info.ts_ns.unwrap_or_else(now_ns);
            return Ok(Some(Received::Frame(Frame {
                interface: self.index,
                ts_ns,
                orig_len: u32::try_from(info.orig_len).unwrap_or(u32::MAX),
                data: data.to_vec(),
                direction: Some(direction),
                comments,
            })));
        }
    }

    /// Waits until a packet is queued or `timeout` passes; `true` if one is queued.
    pub fn wait_readable(&self, timeout: Duration) -> Result<bool> {
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(self.error("poll", e.into())),
        }
    }

    /// Sends markers carrying `nonce` until this socket has seen one, or `timeout` passes.
    /// Frames read meanwhile are real traffic and are appended to `keep`; every marker
    /// (this one or another capture's) is dropped and counted in the return value.
    pub fn prove_armed(
        &mut self,
        nonce: u64,
        timeout: Duration,
        keep: &mut Vec<Frame>,
    ) -> Result<u64> {
        let start = Instant::now();
        let mut markers = 0;
        loop {
            if let Err(e) = self.send_marker(nonce) {
                // A device that cannot send at all (the kernel's GRE fallback `gre0` has
                // no remote to send to) cannot be proven with a marker; a packet socket
                // receives from the moment its bind returned, which it has.
                if markers == 0 && e.errno() == Some(libc::EINVAL) {
                    return Ok(0);
                }
                return Err(e);
            }
            let resend_at = Instant::now() + MARKER_RESEND;
            loop {
                match self.try_recv()? {
                    Some(Received::Marker(n)) => {
                        markers += 1;
                        if n == nonce {
                            return Ok(markers);
                        }
                    }
                    Some(Received::Frame(f)) => keep.push(f),
                    None => {
                        let now = Instant::now();
                        if now.duration_since(start) >= timeout {
                            return Err(CaptureError::NotArmed {
                                point: self.point.clone(),
                                ns: self.ns.clone(),
                                waited: timeout,
                            });
                        }
                        if now >= resend_at {
                            break;
                        }
                        self.wait_readable(resend_at - now)?;
                    }
                }
            }
        }
    }

    /// The kernel's counters since the previous call (reading resets them).
    pub fn kernel_stats(&self) -> Result<PacketStats> {
        capture_sys::packet_statistics(self.socket.as_fd())
            .map_err(|e| self.error("getsockopt PACKET_STATISTICS", e))
    }
}

fn marker_nonce(linktype: LinkType, data: &[u8]) -> Option<u64> {
    let payload = match linktype {
        LinkType::Ethernet => data.get(14..)?,
        _ => data,
    };
    let rest = payload.strip_prefix(MARKER_MAGIC.as_slice())?;
    let nonce: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(nonce))
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A nonce no other capture running now is likely to use.
fn fresh_nonce(index: u32) -> u64 {
    let mut x = now_ns() ^ (u64::from(std::process::id()) << 32) ^ u64::from(index);
    // splitmix64 finaliser: spreads the bits so nearby inputs differ everywhere.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// State of one point inside the capture thread.
struct PointState {
    socket: CaptureSocket,
    frames: Vec<Frame>,
    over_cap: u64,
    markers: u64,
}

impl PointState {
    /// Reads up to `limit` queued packets; `true` if the socket may have more.
    fn read(&mut self, limit: usize, cap: usize) -> Result<bool> {
        for _ in 0..limit {
            match self.socket.try_recv()? {
                None => return Ok(false),
                Some(Received::Marker(_)) => self.markers += 1,
                Some(Received::Frame(f)) => {
                    if self.frames.len() < cap {
                        self.frames.push(f);
                    } else {
                        self.over_cap += 1;
                    }
                }
            }
        }
        Ok(true)
    }
}

/// Reads every point until woken through `wake`, then reads what is still queued.
fn capture_loop(mut points: Vec<PointState>, wake: OwnedFd, cap: usize) -> Result<Vec<PointState>> {
    loop {
        let (ready, woken) = {
            let mut fds: Vec<PollFd<'_>> = points
                .iter()
                .map(|p| PollFd::new(p.socket.socket.as_fd(), PollFlags::POLLIN))
                .collect();
            fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    return Err(CaptureError::Thread {
                        detail: format!("poll: {e}"),
                    })
                }
            }
            let any = PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP;
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| r.intersects(any)))
                .collect();
            let woken = ready.last().copied().unwrap_or(false);
            (ready, woken)
        };
        for (p, _) in points.iter_mut().zip(&ready).filter(|(_, r)| **r) {
            p.read(READ_BATCH, cap)?;
        }
        if woken {
            for p in &mut points {
                p.read(FINAL_DRAIN_LIMIT, cap)?;
            }
            return Ok(points);
        }
        thread::sleep(BATCH_DELAY);
    }
}

/// A running capture over several points; see the module docs.
#[derive(Debug)]
pub struct CaptureSet {
    interfaces: Vec<Interface>,
    worker: Option<JoinHandle<Result<Vec<PointState>>>>,
    wake: Option<OwnedFd>,
}

impl std::fmt::Debug for PointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PointState({})", self.socket.point)
    }
}

impl CaptureSet {
    /// Opens and arms every point with [`CaptureOptions::default`].
    pub fn arm(points: &[(&Netns, String)]) -> Result<CaptureSet> {
        Self::arm_with(points, &CaptureOptions::default())
    }

    /// Opens one socket per point inside its namespace, proves each receives (marker
    /// frame), then starts the background thread that reads them all until
    /// [`CaptureSet::drain`].
    pub fn arm_with(points: &[(&Netns, String)], opts: &CaptureOptions) -> Result<CaptureSet> {
        let mut seen = HashSet::new();
        for (_, point) in points {
            parse_point(point)?;
            if !seen.insert(point.as_str()) {
                return Err(CaptureError::BadPoint {
                    point: point.clone(),
                    why: "given twice".into(),
                });
            }
        }
        let mut states = Vec::with_capacity(points.len());
        for (index, (ns, point)) in points.iter().enumerate() {
            let index = u32::try_from(index).map_err(|_| CaptureError::BadPoint {
                point: point.clone(),
                why: "too many capture points".into(),
            })?;
            states.push(PointState {
                socket: CaptureSocket::open(ns, point, index, opts)?,
                frames: Vec::new(),
                over_cap: 0,
                markers: 0,
            });
        }
        let cap = opts.max_frames_per_point;
        for state in &mut states {
            let nonce = fresh_nonce(state.socket.index);
            let mut early = Vec::new();
            state.markers += state
                .socket
                .prove_armed(nonce, opts.arm_timeout, &mut early)?;
            for f in early {
                if state.frames.len() < cap {
                    state.frames.push(f);
                } else {
                    state.over_cap += 1;
                }
            }
        }
        let interfaces = states.iter().map(|s| s.socket.interface()).collect();
        let (wake_rx, wake_tx) = nix::unistd::pipe().map_err(|e| CaptureError::Thread {
            detail: format!("pipe: {e}"),
        })?;
        let worker = thread::Builder::new()
            .name("lvslab capture".into())
            .spawn(move || capture_loop(states, wake_rx, cap))
            .map_err(|e| CaptureError::Thread {
                detail: format!("spawn: {e}"),
            })?;
        Ok(CaptureSet {
            interfaces,
            worker: Some(worker),
            wake: Some(wake_tx),
        })
    }

    /// The points' interface descriptions, in the order given to [`CaptureSet::arm`].
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn stop(&mut self) -> Result<Vec<PointState>> {
        if let Some(wake) = self.wake.take() {
            nix::unistd::write(&wake, b"x").map_err(|e| CaptureError::Thread {
                detail: format!("wake capture thread: {e}"),
            })?;
        }
        let worker = self.worker.take().ok_or_else(|| CaptureError::Thread {
            detail: "already drained".into(),
        })?;
        worker.join().map_err(|_| CaptureError::Thread {
            detail: "panicked".into(),
        })?
    }

    /// Waits `settle` (for frames still in flight), stops the thread after it has read
    /// everything still queued, and returns the capture with per-point counters.
    pub fn drain(mut self, settle: Duration) -> Result<Captured> {
        thread::sleep(settle);
        let points = self.stop()?;
        let mut stats = Vec::with_capacity(points.len());
        let mut frames = Vec::new();
        for p in points {
            let kernel = p.socket.kernel_stats()?;
            stats.push(PointStats {
                point: p.socket.point.clone(),
                packets: p.frames.len() as u64,
                drops: u64::from(kernel.drops),
                over_cap: p.over_cap,
                kernel_packets: u64::from(kernel.packets),
                markers: p.markers,
            });
            frames.extend(p.frames);
        }
        // Stable: frames of one point with equal timestamps keep their arrival order.
        frames.sort_by_key(|f| (f.ts_ns, f.interface));
        Ok(Captured {
            capture: Capture {
                interfaces: std::mem::take(&mut self.interfaces),
                frames,
            },
            stats,
        })
    }
}

impl Drop for CaptureSet {
    fn drop(&mut self) {
        // Not drained: stop the thread anyway so no reader outlives the set.
        if self.worker.is_some() {
            let _ = self.stop();
        }
    }
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
    fn markers_are_recognised_only_with_the_magic() {
        let mut eth = vec![0xff; 6];
        eth.extend_from_slice(&[0; 6]);
        eth.extend_from_slice(&MARKER_ETHERTYPE.to_be_bytes());
        eth.extend_from_slice(MARKER_MAGIC);
        eth.extend_from_slice(&42u64.to_be_bytes());
        assert_eq!(marker_nonce(LinkType::Ethernet, &eth), Some(42));
        assert_eq!(marker_nonce(LinkType::RawIp, &eth[14..]), Some(42));
        assert_eq!(marker_nonce(LinkType::Ethernet, &eth[..20]), None);
        let mut other = eth.clone();
        other[14] ^= 1;
        assert_eq!(marker_nonce(LinkType::Ethernet, &other), None);
    }

    #[test]
    fn nonces_differ_between_points() {
        assert_ne!(fresh_nonce(0), fresh_nonce(1));
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
