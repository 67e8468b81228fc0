//! Netfilter netlink framing: message headers with their `nfgenmsg`, and attributes
//! (TLVs, nested ones flagged `NLA_F_NESTED`) written and read back. Numbers inside
//! nf_tables attributes are big-endian; netlink's own headers are in host order.

use crate::netlink::NLMSG_HDRLEN;

/// `NFNL_SUBSYS_NFTABLES`: the high byte of every nf_tables message type.
pub(crate) const SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN`, `NFNL_MSG_BATCH_END`.
pub(crate) const MSG_BATCH_BEGIN: u16 = 16;
pub(crate) const MSG_BATCH_END: u16 = 17;
/// `NLA_F_NESTED`.
const NLA_F_NESTED: u16 = 0x8000;
/// The type bits of an attribute header.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// Size of `struct nfgenmsg`.
pub(crate) const NFGENMSG_LEN: usize = 4;

/// The message type of nf_tables command `msg` (`NFT_MSG_*`).
pub(crate) fn nft_type(msg: u16) -> u16 {
    (SUBSYS_NFTABLES << 8) | msg
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink message being written.
pub(crate) struct MsgWriter {
    bytes: Vec<u8>,
    nests: Vec<usize>,
}

impl MsgWriter {
    /// A message of `kind` with its `nfgenmsg` (family, version 0, `res_id`, which is
    /// big-endian on the wire).
    pub(crate) fn new(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> MsgWriter {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish()
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        bytes.push(family);
        bytes.push(0); // NFNETLINK_V0
        bytes.extend_from_slice(&res_id.to_be_bytes());
        MsgWriter {
            bytes,
            nests: Vec::new(),
        }
    }

    /// An attribute with raw contents (padded to four bytes).
    pub(crate) fn put(&mut self, kind: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.bytes.extend_from_slice(&len.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(data);
        self.bytes.resize(align4(self.bytes.len()), 0);
    }

    /// A big-endian 32-bit attribute.
    pub(crate) fn put_u32(&mut self, kind: u16, value: u32) {
        self.put(kind, &value.to_be_bytes());
    }

    /// A NUL-terminated string attribute.
    pub(crate) fn put_str(&mut self, kind: u16, value: &str) {
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        self.put(kind, &data);
    }

    /// Opens a nested attribute; close it with [`MsgWriter::end_nest`].
    pub(crate) fn begin_nest(&mut self, kind: u16) {
        self.nests.push(self.bytes.len());
        self.bytes.extend_from_slice(&0u16.to_ne_bytes());
        self.bytes
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    /// Closes the innermost nested attribute.
    pub(crate) fn end_nest(&mut self) {
        let start = self
            .nests
            .pop()
            .expect("end_nest is paired with begin_nest by every caller");
        let len = (self.bytes.len() - start) as u16;
        self.bytes[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// The finished message, its length filled in.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        debug_assert!(self.nests.is_empty(), "unclosed nested attribute");
        let len = self.bytes.len() as u32;
        self.bytes[..4].copy_from_slice(&len.to_ne_bytes());
        self.bytes
    }
}

/// One received attribute: its type (flags masked off) and contents.
pub(crate) type Attr<'a> = (u16, &'a [u8]);

/// The attributes of a received message or nest.
pub(crate) fn attrs(mut data: &[u8]) -> Result<Vec<Attr<'_>>, String> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            return Err(format!(
                "attribute {kind} claims {len} bytes of the {} left",
                data.len()
            ));
        }
        out.push((kind, &data[4..len]));
        data = data.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// The attributes of a whole nf_tables message, after its headers; and its family.
pub(crate) fn message_attrs(message: &[u8]) -> Result<(u8, Vec<Attr<'_>>), String> {
    let start = NLMSG_HDRLEN + NFGENMSG_LEN;
    let family = *message
        .get(NLMSG_HDRLEN)
        .ok_or_else(|| format!("message of {} bytes has no nfgenmsg", message.len()))?;
    Ok((family, attrs(message.get(start..).unwrap_or(&[]))?))
}

/// The contents of attribute `kind`, if present.
pub(crate) fn find<'a>(attrs: &[Attr<'a>], kind: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

/// A big-endian 32-bit attribute.
pub(crate) fn be32(attrs: &[Attr<'_>], kind: u16) -> Option<u32> {
    let v = find(attrs, kind)?;
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

/// A string attribute, up to its NUL.
pub(crate) fn string(attrs: &[Attr<'_>], kind: u16) -> Option<String> {
    let v = find(attrs, kind)?;
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    Some(String::from_utf8_lossy(&v[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_its_length_nfgenmsg_and_padded_attributes() {
        let mut m = MsgWriter::new(nft_type(0), 0x0405, 9, 5, 0);
        m.put_str(1, "t"); // NFTA_TABLE_NAME "t\0": 6 bytes, padded to 8
        m.begin_nest(4);
        m.put_u32(2, 0x0102_0304);
        m.end_nest();
        let bytes = m.finish();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &40u32.to_ne_bytes()[..],      // nlmsg_len: 16 + 4 + 8 + 12
            &0x0a00u16.to_ne_bytes(),      // NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE
            &0x0405u16.to_ne_bytes(),      // flags
            &9u32.to_ne_bytes(),           // seq
            &0u32.to_ne_bytes(),           // port id
            &[5, 0, 0, 0],                 // nfgenmsg: NFPROTO_NETDEV, v0, res_id 0
            &6u16.to_ne_bytes(), &1u16.to_ne_bytes(), b"t\0", &[0, 0],
            &12u16.to_ne_bytes(), &0x8004u16.to_ne_bytes(), // nested, type 4
            &8u16.to_ne_bytes(), &2u16.to_ne_bytes(), &[1, 2, 3, 4], // big-endian u32
        ]
        .concat();
        assert_eq!(bytes, want);
        let (family, top) = message_attrs(&bytes).expect("parses");
        assert_eq!(family, 5);
        assert_eq!(string(&top, 1).as_deref(), Some("t"));
        let inner = attrs(find(&top, 4).expect("nest")).expect("nest parses");
        assert_eq!(be32(&inner, 2), Some(0x0102_0304));
    }

    #[test]
    fn attribute_lengths_beyond_the_data_are_refused() {
        let data = [200u8, 0, 1, 0, 0, 0, 0, 0];
        assert!(attrs(&data).is_err());
    }
}
