//! One capture point: an AF_PACKET socket bound to one interface inside its namespace,
//! the marker frames that prove it armed, and reading frames from it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lvslab_pcap::pcapng::{Frame, Interface, LinkType, PacketDirection, CSUM_NOT_READY_COMMENT};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{parse_point, CaptureError, CaptureOptions, Result};
use crate::capture_sys::{self, PacketStats, ETH_P_ALL};
use crate::ns::Netns;

/// EtherType of the marker frames that prove a capture point armed (IEEE 802 "local
/// experimental EtherType 1").
pub const MARKER_ETHERTYPE: u16 = 0x88b5;

/// First bytes of a marker frame's payload; a nonce follows.
const MARKER_MAGIC: &[u8; 12] = b"lvslab-armed";

/// How long a point waits for its marker before sending another.
const MARKER_RESEND: Duration = Duration::from_millis(100);
/// ARPHRD types whose frames start with an Ethernet header (Ethernet and loopback).
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
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
    pub(super) index: u32,
    pub(super) point: String,
    ns: String,
    ifindex: u32,
    linktype: LinkType,
    snaplen: u32,
    pub(super) socket: OwnedFd,
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

pub(super) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
