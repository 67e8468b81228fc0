//! Netlink and generic-netlink framing: message headers, attributes, nests.
//!
//! Pure byte code with no socket: everything here turns values into bytes or bytes into
//! borrowed views, so it is tested without a kernel. IPVS-specific meaning lives in
//! [`crate::codec`].

use std::fmt;

/// `NLMSG_ERROR`: an error or, with errno 0, an acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `GENL_ID_CTRL`: the generic netlink controller family (resolves family names).
pub const GENL_ID_CTRL: u16 = 0x10;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x0001;
/// `NLM_F_MULTI`: part of a multipart (dump) reply.
pub const NLM_F_MULTI: u16 = 0x0002;
/// `NLM_F_ACK`: ask for an acknowledgement.
pub const NLM_F_ACK: u16 = 0x0004;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x0300;

/// `NLA_F_NESTED`: set by some senders on nest headers; the kernel's IPVS replies omit it.
pub const NLA_F_NESTED: u16 = 0x8000;
/// `NLA_F_NET_BYTEORDER`.
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
/// Mask that leaves only the attribute type number.
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDR_LEN: usize = 16;
/// Size of `struct genlmsghdr`.
pub const GENL_HDR_LEN: usize = 4;
/// Size of `struct nlattr`.
pub const NLA_HDR_LEN: usize = 4;

/// Rounds up to netlink's 4-byte alignment.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A malformed netlink buffer, with what was being read and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed netlink data at byte {offset}: {what}")]
pub struct WireError {
    /// Byte offset into the buffer being parsed.
    pub offset: usize,
    /// What did not fit.
    pub what: String,
}

impl WireError {
    fn new(offset: usize, what: impl Into<String>) -> Self {
        WireError {
            offset,
            what: what.into(),
        }
    }
}

/// Builds a run of netlink attributes, with nests, into a byte vector.
#[derive(Debug, Default, Clone)]
pub struct AttrWriter {
    buf: Vec<u8>,
    open_nests: Vec<usize>,
}

impl AttrWriter {
    /// An empty attribute run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one attribute with a raw payload (padded to 4 bytes; the length field
    /// counts the unpadded payload, as the kernel expects).
    pub fn put(&mut self, ty: u16, payload: &[u8]) -> &mut Self {
        let len = NLA_HDR_LEN + payload.len();
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// A `u8` attribute.
    pub fn put_u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.put(ty, &[v])
    }

    /// A `u16` attribute in host byte order.
    pub fn put_u16(&mut self, ty: u16, v: u16) -> &mut Self {
        self.put(ty, &v.to_ne_bytes())
    }

    /// A `u16` attribute in network byte order (ports).
    pub fn put_be16(&mut self, ty: u16, v: u16) -> &mut Self {
        self.put(ty, &v.to_be_bytes())
    }

    /// A `u32` attribute in host byte order.
    pub fn put_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.put(ty, &v.to_ne_bytes())
    }

    /// A `u64` attribute in host byte order.
    pub fn put_u64(&mut self, ty: u16, v: u64) -> &mut Self {
        self.put(ty, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    pub fn put_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut payload = Vec::with_capacity(s.len() + 1);
        payload.extend_from_slice(s.as_bytes());
        payload.push(0);
        self.put(ty, &payload)
    }

    /// Opens a nest; attributes put until [`AttrWriter::end_nest`] go inside it.
    /// The type is written without `NLA_F_NESTED`, as libnl-based ipvsadm builds do.
    pub fn begin_nest(&mut self, ty: u16) -> &mut Self {
        self.open_nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self
    }

    /// Closes the innermost open nest and fixes up its length.
    pub fn end_nest(&mut self) -> &mut Self {
        if let Some(start) = self.open_nests.pop() {
            let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The finished bytes (any nest still open is closed first).
    pub fn finish(mut self) -> Vec<u8> {
        while !self.open_nests.is_empty() {
            self.end_nest();
        }
        self.buf
    }
}

/// One attribute seen by [`Attrs`]: its type (flag bits removed) and payload.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Type number with `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` masked off.
    pub ty: u16,
    /// Payload without header or padding.
    pub payload: &'a [u8],
    /// Offset of the attribute header in the buffer that was iterated (for error messages).
    pub offset: usize,
}

impl fmt::Debug for Attr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Attr(type {}, {} bytes)", self.ty, self.payload.len())
    }
}

impl<'a> Attr<'a> {
    fn fixed<const N: usize>(&self, name: &str) -> Result<[u8; N], WireError> {
        self.payload.try_into().map_err(|_| {
            WireError::new(
                self.offset,
                format!(
                    "attribute {name} (type {}) has {} bytes, expected {N}",
                    self.ty,
                    self.payload.len()
                ),
            )
        })
    }

    /// Reads a `u8`.
    pub fn u8(&self, name: &str) -> Result<u8, WireError> {
        Ok(self.fixed::<1>(name)?[0])
    }

    /// Reads a host-order `u16`.
    pub fn u16(&self, name: &str) -> Result<u16, WireError> {
        Ok(u16::from_ne_bytes(self.fixed(name)?))
    }

    /// Reads a network-order `u16`.
    pub fn be16(&self, name: &str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.fixed(name)?))
    }

    /// Reads a host-order `u32`.
    pub fn u32(&self, name: &str) -> Result<u32, WireError> {
        Ok(u32::from_ne_bytes(self.fixed(name)?))
    }

    /// Reads a host-order counter that may be 32 or 64 bits wide (IPVS stats mix both).
    pub fn counter(&self, name: &str) -> Result<u64, WireError> {
        match self.payload.len() {
            4 => self.u32(name).map(u64::from),
            _ => Ok(u64::from_ne_bytes(self.fixed(name)?)),
        }
    }

    /// Reads a NUL-terminated (or unterminated) UTF-8 string.
    pub fn string(&self, name: &str) -> Result<String, WireError> {
        let bytes = match self.payload.iter().position(|&b| b == 0) {
            Some(nul) => &self.payload[..nul],
            None => self.payload,
        };
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| {
            WireError::new(
                self.offset,
                format!("attribute {name} (type {}) is not UTF-8", self.ty),
            )
        })
    }

    /// Iterates the attributes nested in this one (whether or not `NLA_F_NESTED` was set).
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.payload)
    }
}

/// Iterator over a run of attributes. Yields an error (once) on a truncated attribute.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Attrs<'a> {
    /// Iterates the attributes in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs {
            buf,
            pos: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < NLA_HDR_LEN {
            self.failed = true;
            return Some(Err(WireError::new(
                self.pos,
                format!("{} trailing bytes, too short for an attribute", rest.len()),
            )));
        }
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDR_LEN || len > rest.len() {
            self.failed = true;
            return Some(Err(WireError::new(
                self.pos,
                format!(
                    "attribute type {ty} claims {len} bytes, {} available",
                    rest.len()
                ),
            )));
        }
        let attr = Attr {
            ty,
            payload: &rest[NLA_HDR_LEN..len],
            offset: self.pos,
        };
        self.pos += align4(len).min(rest.len());
        Some(Ok(attr))
    }
}

/// Builds a complete netlink message: `nlmsghdr` + `genlmsghdr` + attributes.
/// `pid` 0 lets the kernel route the reply to this socket.
pub fn genl_message(
    family: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    attrs: &[u8],
) -> Vec<u8> {
    let len = NLMSG_HDR_LEN + GENL_HDR_LEN + attrs.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    out.extend_from_slice(&family.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[cmd, version, 0, 0]);
    out.extend_from_slice(attrs);
    out
}

/// One netlink message in a received buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMessage<'a> {
    /// `nlmsg_type`: a family id, `NLMSG_ERROR` or `NLMSG_DONE`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
    /// Everything after the 16-byte header.
    pub payload: &'a [u8],
}

/// What a received message means to a requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A generic netlink data message.
    Data(GenlMessage<'a>),
    /// `NLMSG_ERROR` with errno 0.
    Ack,
    /// `NLMSG_ERROR` with a (positive) errno.
    Error(i32),
    /// `NLMSG_DONE` (end of dump); a non-zero errno in it is reported as `Error`.
    Done,
}

/// A generic netlink message body: command, version and its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenlMessage<'a> {
    /// `genlmsghdr.cmd`.
    pub cmd: u8,
    /// `genlmsghdr.version`.
    pub version: u8,
    /// The top-level attribute bytes.
    pub attrs: &'a [u8],
}

impl<'a> GenlMessage<'a> {
    /// Iterates the top-level attributes.
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs::new(self.attrs)
    }
}

impl<'a> NlMessage<'a> {
    /// Classifies the message (data, ack, error, done).
    pub fn reply(&self) -> Result<Reply<'a>, WireError> {
        match self.ty {
            NLMSG_ERROR | NLMSG_DONE => {
                // DONE may carry no payload at all on old kernels.
                let errno = match self.payload.get(..4) {
                    Some(b) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                    None if self.ty == NLMSG_DONE => 0,
                    None => {
                        return Err(WireError::new(
                            NLMSG_HDR_LEN,
                            "NLMSG_ERROR without an error code",
                        ))
                    }
                };
                Ok(match (self.ty, errno) {
                    (_, e) if e != 0 => Reply::Error(e.saturating_neg()),
                    (NLMSG_ERROR, _) => Reply::Ack,
                    _ => Reply::Done,
                })
            }
            _ => {
                if self.payload.len() < GENL_HDR_LEN {
                    return Err(WireError::new(
                        NLMSG_HDR_LEN,
                        format!(
                            "message type {} has {} payload bytes, too short for a genl header",
                            self.ty,
                            self.payload.len()
                        ),
                    ));
                }
                Ok(Reply::Data(GenlMessage {
                    cmd: self.payload[0],
                    version: self.payload[1],
                    attrs: &self.payload[GENL_HDR_LEN..],
                }))
            }
        }
    }
}

/// Splits a received datagram into its netlink messages.
pub fn split_messages(buf: &[u8]) -> Result<Vec<NlMessage<'_>>, WireError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < NLMSG_HDR_LEN {
            return Err(WireError::new(
                pos,
                format!(
                    "{} trailing bytes, too short for a message header",
                    rest.len()
                ),
            ));
        }
        let word = |i: usize| u32::from_ne_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let len = usize::try_from(word(0)).unwrap_or(usize::MAX);
        if len < NLMSG_HDR_LEN || len > rest.len() {
            return Err(WireError::new(
                pos,
                format!("message claims {len} bytes, {} available", rest.len()),
            ));
        }
        out.push(NlMessage {
            ty: u16::from_ne_bytes([rest[4], rest[5]]),
            flags: u16::from_ne_bytes([rest[6], rest[7]]),
            seq: word(8),
            pid: word(12),
            payload: &rest[NLMSG_HDR_LEN..len],
        });
        pos += align4(len).min(rest.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_but_length_is_unpadded() {
        let mut w = AttrWriter::new();
        w.put_str(6, "rr");
        let bytes = w.finish();
        assert_eq!(
            bytes,
            [
                [7u8, 0].as_slice(), // nla_len 7 = 4 header + "rr\0"
                &6u16.to_ne_bytes(), // nla_type 6
                b"rr\0",
                &[0], // one pad byte to 8
            ]
            .concat()
        );
    }

    #[test]
    fn nests_get_their_total_length() {
        let mut w = AttrWriter::new();
        w.begin_nest(1).put_u16(1, 2).end_nest();
        let bytes = w.finish();
        assert_eq!(&bytes[..2], &12u16.to_ne_bytes()); // 4 nest header + 8 for the u16 attr
        let attrs: Vec<_> = Attrs::new(&bytes).collect::<Result<_, _>>().expect("valid");
        assert_eq!(attrs.len(), 1);
        let inner: Vec<_> = attrs[0].nested().collect::<Result<_, _>>().expect("valid");
        assert_eq!(inner[0].u16("AF").expect("u16"), 2);
    }

    #[test]
    fn nested_flag_is_masked_off_types() {
        let mut bytes = 8u16.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&(1u16 | NLA_F_NESTED).to_ne_bytes());
        bytes.extend_from_slice(&[0; 4]);
        let a = Attrs::new(&bytes).next().expect("one").expect("valid");
        assert_eq!(a.ty, 1);
    }

    #[test]
    fn truncated_attribute_is_an_error_not_a_panic() {
        let bytes = [20u8, 0, 1, 0, 0, 0];
        let mut it = Attrs::new(&bytes);
        assert!(it.next().expect("item").is_err());
        assert!(it.next().is_none());
        assert!(Attrs::new(&[1, 2]).next().expect("item").is_err());
        assert!(split_messages(&[1, 2, 3]).is_err());
        let mut bad_len = vec![0u8; 16];
        bad_len[0] = 200;
        assert!(split_messages(&bad_len).is_err());
    }

    #[test]
    fn error_and_done_classification() {
        let mut err = genl_message(NLMSG_ERROR, 0, 7, 0, 0, &[]);
        // The ERROR payload starts with a negative errno where genl_message put cmd/version.
        err.truncate(NLMSG_HDR_LEN);
        err.extend_from_slice(&(-17i32).to_ne_bytes());
        err[0] = 20;
        let msgs = split_messages(&err).expect("valid");
        assert_eq!(msgs[0].seq, 7);
        assert_eq!(msgs[0].reply().expect("valid"), Reply::Error(17));
        let mut done = err.clone();
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        done[16..20].copy_from_slice(&0i32.to_ne_bytes());
        assert_eq!(
            split_messages(&done).expect("valid")[0]
                .reply()
                .expect("valid"),
            Reply::Done
        );
    }
}
