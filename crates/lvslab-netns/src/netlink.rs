//! Blocking netlink sockets: send a request, read its acknowledgements or its dump.
//!
//! [`NlSocket`] is the one piece of socket plumbing of this crate: it speaks raw netlink
//! messages of any protocol (route netlink for [`crate::rtnl`], netfilter netlink for
//! [`crate::nft`]). [`RouteSocket`] adds the (de)serialisation of `netlink-packet-route`.
//! Blocking keeps the API synchronous without a runtime, so callers may use it from any
//! thread, including inside their own async runtime.

use std::io;
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;
use rtnetlink::packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Flag on an `NLMSG_ERROR` saying extended-ack attributes follow (`NLM_F_ACK_TLVS`).
const NLM_F_ACK_TLVS: u16 = 0x200;
/// Flag on an `NLMSG_ERROR` saying the echoed request was cut to its header.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLMSGERR_ATTR_MSG`: human-readable error string.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Size of `struct nlmsghdr`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// `NLMSG_NOOP`, `NLMSG_ERROR`, `NLMSG_DONE`: the control message types.
pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
/// Receive buffer; dumps arrive in datagrams of at most a few pages.
const RECV_BUF: usize = 64 * 1024;
/// How often a dump that the kernel flags as interrupted is retried.
const DUMP_RETRIES: usize = 5;
/// Send buffer beyond the request itself (the kernel's own accounting).
const SEND_HEADROOM: usize = 64 * 1024;
/// What one queued acknowledgement costs the receive buffer: its socket buffer's
/// truesize, not its 36 bytes.
const REPLY_TRUESIZE: usize = 2048;
/// A kernel that has not answered by then never will: the request fails instead of
/// hanging its caller.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request failed, before the caller adds its own context.
#[derive(Debug)]
pub(crate) enum NlError {
    /// The kernel answered with an error.
    Kernel {
        source: io::Error,
        ext_ack: Option<String>,
    },
    /// The socket itself failed.
    Io(io::Error),
    /// The reply made no sense.
    Protocol(String),
}

/// One netlink message as received: its header fields and all of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawMessage {
    pub(crate) kind: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    /// The whole message, header included.
    pub(crate) bytes: Vec<u8>,
}

impl RawMessage {
    /// The bytes after the netlink header.
    pub(crate) fn payload(&self) -> &[u8] {
        self.bytes.get(NLMSG_HDRLEN..).unwrap_or(&[])
    }

    /// For an `NLMSG_ERROR`: `None` for an acknowledgement (code 0), else the kernel's
    /// error. Other message types give `None`.
    pub(crate) fn error(&self) -> Result<Option<NlError>, NlError> {
        if self.kind != NLMSG_ERROR {
            return Ok(None);
        }
        let payload = self.payload();
        let code = payload
            .get(..4)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| NlError::Protocol("error message without an error code".into()))?;
        if code == 0 {
            return Ok(None);
        }
        Ok(Some(NlError::Kernel {
            source: io::Error::from_raw_os_error(code.saturating_neg()),
            ext_ack: ext_ack_message(self.flags, &payload[4..]),
        }))
    }
}

/// A netlink socket of one protocol, opened in whatever namespace the creating thread
/// was in.
#[derive(Debug)]
pub(crate) struct NlSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl NlSocket {
    /// Opens a socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`, …) in the
    /// calling thread's namespace.
    pub(crate) fn open(protocol: isize) -> io::Result<NlSocket> {
        let mut socket = Socket::new(protocol)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Both are best effort: they only improve error messages.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        let timeout = TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0);
        setsockopt(&socket, sockopt::ReceiveTimeout, &timeout).map_err(io::Error::from)?;
        Ok(NlSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// A fresh sequence number for the next request.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Records that sequence numbers up to `seq` are taken (by a batch built from
    /// [`NlSocket::next_seq`] on).
    pub(crate) fn seqs_used_up_to(&mut self, seq: u32) {
        self.seq = seq;
    }

    /// Makes room for a request of `send` bytes and `replies` answers to it (a batch
    /// with an acknowledgement per command): the kernel refuses a datagram larger than
    /// the send buffer, and drops answers that overflow the receive buffer. Beyond the
    /// system's limits this needs `CAP_NET_ADMIN` (the `*FORCE` options), which a
    /// namespace builder has; without it the plain options are tried.
    pub(crate) fn reserve_buffers(&self, send: usize, replies: usize) -> io::Result<()> {
        let send = send.saturating_add(SEND_HEADROOM);
        let recv = replies
            .saturating_mul(REPLY_TRUESIZE)
            .saturating_add(RECV_BUF);
        if setsockopt(&self.socket, sockopt::SndBufForce, &send).is_err() {
            setsockopt(&self.socket, sockopt::SndBuf, &send).map_err(io::Error::from)?;
        }
        if setsockopt(&self.socket, sockopt::RcvBufForce, &recv).is_err() {
            setsockopt(&self.socket, sockopt::RcvBuf, &recv).map_err(io::Error::from)?;
        }
        Ok(())
    }

    /// Sends one datagram (one request, or a whole batch of them).
    pub(crate) fn send(&self, bytes: &[u8]) -> Result<(), NlError> {
        self.socket.send(bytes, 0).map_err(NlError::Io)?;
        Ok(())
    }

    /// Reads one datagram and splits it into messages.
    pub(crate) fn recv(&mut self) -> Result<Vec<RawMessage>, NlError> {
        self.buf.clear();
        self.buf.reserve(RECV_BUF);
        let len = loop {
            match self.socket.recv(&mut self.buf, libc::MSG_TRUNC) {
                Ok(len) => break len,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(NlError::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer from the kernel within {REPLY_TIMEOUT:?}"),
                    )))
                }
                Err(e) => return Err(NlError::Io(e)),
            }
        };
        if len > self.buf.len() {
            return Err(NlError::Protocol(format!(
                "datagram of {len} bytes did not fit the {} byte buffer",
                self.buf.len()
            )));
        }
        split_messages(&self.buf[..len])
    }

    /// Sends the request `build(seq)` (which must ask for an acknowledgement) and
    /// returns the replies that came before the acknowledgement.
    pub(crate) fn request(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
    ) -> Result<Vec<RawMessage>, NlError> {
        let seq = self.next_seq();
        self.send(&build(seq))?;
        let mut replies = Vec::new();
        loop {
            for message in self.recv()? {
                if message.seq != seq {
                    continue;
                }
                match message.kind {
                    NLMSG_ERROR => {
                        return match message.error()? {
                            None => Ok(replies),
                            Some(e) => Err(e),
                        }
                    }
                    NLMSG_DONE => {
                        return Err(NlError::Protocol(
                            "expected an acknowledgement, got the end of a dump".into(),
                        ))
                    }
                    NLMSG_NOOP => {}
                    _ => replies.push(message),
                }
            }
        }
    }

    /// Sends the dump request `build(seq)` and collects every reply until `NLMSG_DONE`,
    /// starting over when the kernel says the dump was interrupted by a change.
    pub(crate) fn dump(
        &mut self,
        build: impl Fn(u32) -> Vec<u8>,
    ) -> Result<Vec<RawMessage>, NlError> {
        for _ in 0..DUMP_RETRIES {
            let (items, interrupted) = self.dump_once(&build)?;
            if !interrupted {
                return Ok(items);
            }
        }
        Err(NlError::Protocol(format!(
            "dump interrupted {DUMP_RETRIES} times in a row (state kept changing)"
        )))
    }

    fn dump_once(
        &mut self,
        build: &impl Fn(u32) -> Vec<u8>,
    ) -> Result<(Vec<RawMessage>, bool), NlError> {
        let seq = self.next_seq();
        self.send(&build(seq))?;
        let mut items = Vec::new();
        let mut interrupted = false;
        loop {
            for message in self.recv()? {
                if message.seq != seq {
                    continue;
                }
                interrupted |= message.flags & NLM_F_DUMP_INTR != 0;
                match message.kind {
                    NLMSG_DONE => {
                        // A dump that failed half-way ends with its errno here.
                        let code = message
                            .payload()
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        if code != 0 {
                            return Err(NlError::Kernel {
                                source: io::Error::from_raw_os_error(code.saturating_neg()),
                                ext_ack: None,
                            });
                        }
                        return Ok((items, interrupted));
                    }
                    NLMSG_ERROR => {
                        if let Some(e) = message.error()? {
                            return Err(e);
                        }
                    }
                    NLMSG_NOOP => {}
                    _ => items.push(message),
                }
            }
        }
    }
}

/// A route-netlink socket: [`NlSocket`] plus `netlink-packet-route` messages.
#[derive(Debug)]
pub(crate) struct RouteSocket {
    inner: NlSocket,
}

impl RouteSocket {
    /// Opens the socket in the calling thread's namespace.
    pub(crate) fn open() -> io::Result<RouteSocket> {
        Ok(RouteSocket {
            inner: NlSocket::open(NETLINK_ROUTE)?,
        })
    }

    /// Sends a request that expects only an acknowledgement.
    pub(crate) fn ack(&mut self, message: RouteNetlinkMessage, flags: u16) -> Result<(), NlError> {
        self.inner
            .request(|seq| serialize(message, NLM_F_REQUEST | NLM_F_ACK | flags, seq))
            .map(|_echoes| ())
    }

    /// Sends a dump request and collects every reply until `NLMSG_DONE`.
    pub(crate) fn dump(
        &mut self,
        message: &RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        let raw = self
            .inner
            .dump(|seq| serialize(message.clone(), NLM_F_REQUEST | NLM_F_DUMP, seq))?;
        raw.iter()
            .map(|m| {
                let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&m.bytes)
                    .map_err(|e| NlError::Protocol(format!("cannot decode message: {e}")))?;
                match message.payload {
                    NetlinkPayload::InnerMessage(item) => Ok(item),
                    other => Err(NlError::Protocol(format!(
                        "unexpected message type {} in dump",
                        other.message_type()
                    ))),
                }
            })
            .collect()
    }
}

fn serialize(message: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    packet.finalize();
    let mut bytes = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut bytes);
    bytes
}

/// Splits a datagram into its messages, checking every length against what arrived.
pub(crate) fn split_messages(mut data: &[u8]) -> Result<Vec<RawMessage>, NlError> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(NlError::Protocol(format!(
                "message length {len} outside the {} bytes received",
                data.len()
            )));
        }
        out.push(RawMessage {
            kind: u16::from_ne_bytes([data[4], data[5]]),
            flags: u16::from_ne_bytes([data[6], data[7]]),
            seq: u32::from_ne_bytes([data[8], data[9], data[10], data[11]]),
            bytes: data[..len].to_vec(),
        });
        let aligned = (len + 3) & !3;
        data = data.get(aligned..).unwrap_or(&[]);
    }
    Ok(out)
}

/// Finds the kernel's `NLMSGERR_ATTR_MSG` string in the bytes after an error code.
///
/// `echoed` is the original request as echoed back: its header alone when the kernel set
/// `NLM_F_CAPPED`, otherwise the whole request (whose length its header gives).
pub(crate) fn ext_ack_message(flags: u16, echoed: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || echoed.len() < NLMSG_HDRLEN {
        return None;
    }
    let skip = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let len = u32::from_ne_bytes([echoed[0], echoed[1], echoed[2], echoed[3]]) as usize;
        (len + 3) & !3
    };
    let mut tlvs = echoed.get(skip..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            let msg = String::from_utf8_lossy(&text[..end]).trim().to_string();
            return (!msg.is_empty()).then_some(msg);
        }
        tlvs = tlvs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(kind: u16, payload: &[u8]) -> Vec<u8> {
        let len = (4 + payload.len()) as u16;
        let mut out = Vec::new();
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(payload);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn header(len: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out
    }

    #[test]
    fn ext_ack_message_is_found_after_a_capped_header() {
        let mut echoed = vec![0u8; NLMSG_HDRLEN];
        echoed[0] = 36; // original request length; ignored when capped
        echoed.extend(tlv(2, &7u32.to_ne_bytes())); // NLMSGERR_ATTR_OFFS
        echoed.extend(tlv(NLMSGERR_ATTR_MSG, b"Unknown device type\0"));
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS | NLM_F_CAPPED, &echoed).as_deref(),
            Some("Unknown device type")
        );
    }

    #[test]
    fn ext_ack_message_skips_an_uncapped_request() {
        let mut echoed = vec![0u8; 24];
        echoed[..4].copy_from_slice(&22u32.to_ne_bytes()); // padded to 24
        echoed.extend(tlv(NLMSGERR_ATTR_MSG, b"File exists\0"));
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS, &echoed).as_deref(),
            Some("File exists")
        );
    }

    #[test]
    fn ext_ack_message_needs_the_tlv_flag_and_sane_lengths() {
        let mut echoed = vec![0u8; NLMSG_HDRLEN];
        echoed.extend(tlv(NLMSGERR_ATTR_MSG, b"x\0"));
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &echoed), None);
        let mut broken = vec![0u8; NLMSG_HDRLEN];
        broken.extend_from_slice(&[200, 0, 1, 0]);
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS | NLM_F_CAPPED, &broken),
            None
        );
    }

    #[test]
    fn split_messages_rejects_lengths_beyond_the_datagram() {
        let mut data = vec![0u8; 16];
        data[..4].copy_from_slice(&64u32.to_ne_bytes());
        assert!(matches!(split_messages(&data), Err(NlError::Protocol(_))));
    }

    #[test]
    fn split_messages_reads_headers_and_pads_to_four_bytes() {
        // A 17-byte message (one payload byte, padded to 20) and then an empty one.
        let mut data = header(17, 0x0a00, 0x2, 7);
        data.extend_from_slice(&[0xaa, 0, 0, 0]);
        data.extend(header(16, NLMSG_DONE, 0, 8));
        let got = split_messages(&data).expect("valid datagram");
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].kind, got[0].flags, got[0].seq), (0x0a00, 0x2, 7));
        assert_eq!(got[0].payload(), &[0xaa]);
        assert_eq!((got[1].kind, got[1].seq), (NLMSG_DONE, 8));
        assert!(got[1].payload().is_empty());
    }

    #[test]
    fn error_messages_give_the_errno_and_acks_give_none() {
        let ack_of = |code: i32| {
            let mut m = header(36, NLMSG_ERROR, NLM_F_CAPPED, 5);
            m.extend_from_slice(&code.to_ne_bytes());
            m.extend(header(16, 0x0a06, 0x5, 5)); // the echoed request header
            split_messages(&m).expect("valid").remove(0)
        };
        assert!(matches!(ack_of(0).error(), Ok(None)));
        match ack_of(-libc::ENOENT).error() {
            Ok(Some(NlError::Kernel { source, ext_ack })) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
                assert_eq!(ext_ack, None);
            }
            other => panic!("expected a kernel error, got {other:?}"),
        }
        assert_eq!(
            ack_of(0).seq,
            5,
            "an acknowledgement carries its request's seq"
        );
    }
}
