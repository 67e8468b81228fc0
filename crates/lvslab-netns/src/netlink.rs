//! A blocking route-netlink socket: send one request, read its acknowledgement or dump.
//!
//! Blocking keeps the API synchronous without a runtime, so callers may use it from any
//! thread, including inside their own async runtime. Messages are built and parsed with
//! `netlink-packet-route`.

use std::io;

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
const NLMSG_HDRLEN: usize = 16;
/// Receive buffer; dumps arrive in datagrams of at most a few pages.
const RECV_BUF: usize = 64 * 1024;
/// How often a dump that the kernel flags as interrupted is retried.
const DUMP_RETRIES: usize = 5;

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

/// One route-netlink socket, opened in whatever namespace the creating thread was in.
#[derive(Debug)]
pub(crate) struct RouteSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl RouteSocket {
    /// Opens the socket in the calling thread's namespace.
    pub(crate) fn open() -> io::Result<RouteSocket> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Both are best effort: they only improve error messages.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        Ok(RouteSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Sends a request that expects only an acknowledgement.
    pub(crate) fn ack(&mut self, message: RouteNetlinkMessage, flags: u16) -> Result<(), NlError> {
        let seq = self.send(message, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        loop {
            for (header, payload) in self.recv_batch()? {
                if header.sequence_number != seq {
                    continue;
                }
                match payload {
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            None => Ok(()),
                            Some(_) => Err(kernel_error(&header, &err)),
                        }
                    }
                    NetlinkPayload::InnerMessage(_) | NetlinkPayload::Noop => {}
                    other => {
                        return Err(NlError::Protocol(format!(
                            "expected an acknowledgement, got message type {}",
                            other.message_type()
                        )))
                    }
                }
            }
        }
    }

    /// Sends a dump request and collects every reply until `NLMSG_DONE`.
    pub(crate) fn dump(
        &mut self,
        message: &RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        for _ in 0..DUMP_RETRIES {
            let (items, interrupted) = self.dump_once(message.clone())?;
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
        message: RouteNetlinkMessage,
    ) -> Result<(Vec<RouteNetlinkMessage>, bool), NlError> {
        let seq = self.send(message, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut items = Vec::new();
        let mut interrupted = false;
        loop {
            for (header, payload) in self.recv_batch()? {
                if header.sequence_number != seq {
                    continue;
                }
                interrupted |= header.flags & NLM_F_DUMP_INTR != 0;
                match payload {
                    NetlinkPayload::InnerMessage(item) => items.push(item),
                    NetlinkPayload::Done(_) => return Ok((items, interrupted)),
                    NetlinkPayload::Error(err) => {
                        if err.code.is_some() {
                            return Err(kernel_error(&header, &err));
                        }
                    }
                    NetlinkPayload::Noop => {}
                    other => {
                        return Err(NlError::Protocol(format!(
                            "unexpected message type {} in dump",
                            other.message_type()
                        )))
                    }
                }
            }
        }
    }

    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> Result<u32, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut bytes = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0).map_err(NlError::Io)?;
        Ok(self.seq)
    }

    /// Reads one datagram and splits it into messages.
    #[allow(clippy::type_complexity)]
    fn recv_batch(
        &mut self,
    ) -> Result<Vec<(NetlinkHeader, NetlinkPayload<RouteNetlinkMessage>)>, NlError> {
        self.buf.clear();
        self.buf.reserve(RECV_BUF);
        let len = loop {
            match self.socket.recv(&mut self.buf, libc::MSG_TRUNC) {
                Ok(len) => break len,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
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
}

#[allow(clippy::type_complexity)]
fn split_messages(
    mut data: &[u8],
) -> Result<Vec<(NetlinkHeader, NetlinkPayload<RouteNetlinkMessage>)>, NlError> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(NlError::Protocol(format!(
                "message length {len} outside the {} bytes received",
                data.len()
            )));
        }
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[..len])
            .map_err(|e| NlError::Protocol(format!("cannot decode message: {e}")))?;
        out.push(message.into_parts());
        let aligned = (len + 3) & !3;
        data = data.get(aligned..).unwrap_or(&[]);
    }
    Ok(out)
}

fn kernel_error(header: &NetlinkHeader, err: &rtnetlink::packet_core::ErrorMessage) -> NlError {
    NlError::Kernel {
        source: err.to_io(),
        ext_ack: ext_ack_message(header.flags, &err.header),
    }
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
}
