//! The engine's only unsafe code: AF_PACKET sockets with auxiliary data.
//!
//! Receive path: non-blocking `recvmmsg` of up to 64 frames per socket per wake-up after
//! `poll` ([`PacketSocket::recv_batch`]); send path: frames queued per interface and sent
//! with one `sendmmsg` per batch ([`PacketSocket::send_batch`]). Measured in
//! `benches/dataplane.rs`: one syscall per batch instead of per frame, an 8 MiB receive
//! buffer and `PACKET_IGNORE_OUTGOING` (the engine's own transmissions no longer come back
//! to it) took userspace NAT from about 0.75× to above 1× the kernel's nft `dnat` path.
//! Still not a TPACKET_V3 ring: a ring would add a second unsafe protocol (blocks handed
//! back and forth with the kernel) for the copy it saves. `recvmsg`/`recvmmsg` give per
//! frame `PACKET_AUXDATA` (whether the checksum is still pending,
//! `TP_STATUS_CSUMNOTREADY`) and `sockaddr_ll.sll_pkttype` (`PACKET_OUTGOING` marks frames
//! this namespace sent, on kernels without `PACKET_IGNORE_OUTGOING`).
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// EtherType that asks for every frame (`ETH_P_ALL`).
pub const ETH_P_ALL: u16 = 0x0003;

/// `PACKET_IGNORE_OUTGOING` (Linux 4.20, `linux/if_packet.h`).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// Receive buffer asked for on every socket: about 10,000 small frames (each costs its
/// buffer's truesize, ~0.8 KiB for a 64-byte frame).
const RCVBUF_BYTES: libc::c_int = 8 << 20;

fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One frame taken from a [`PacketSocket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The frame was longer than the buffer (only `len` bytes of it are there).
    pub truncated: bool,
    /// The frame was sent by this namespace (`PACKET_OUTGOING`), not received.
    pub outgoing: bool,
    /// The frame is addressed to another host's MAC (`PACKET_OTHERHOST`: a switch flooded
    /// it); the namespace's kernel ignores such frames.
    pub other_host: bool,
    /// The sender left the TCP/UDP checksum to hardware that never ran (veth): only the
    /// pseudo-header sum is in the field.
    pub csum_not_ready: bool,
}

/// An AF_PACKET raw socket bound to one interface. It belongs to the namespace of the
/// thread that opened it, and may be used from any thread afterwards.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a non-blocking socket for `protocol` (an EtherType, e.g. [`ETH_P_ALL`]) on the
    /// interface `ifindex` of the calling thread's namespace, with `PACKET_AUXDATA` on.
    /// Only `ETH_P_ALL` sockets see frames an nft `netdev` ingress rule drops.
    pub fn open(ifindex: u32, protocol: u16) -> io::Result<PacketSocket> {
        let ifindex = i32::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        // Protocol 0 at creation: the socket receives nothing until it is bound to the
        // interface, so no frame of another interface slips in between.
        // SAFETY: plain syscall with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just created and own exclusively.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_int_option(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)?;
        // Frames this namespace sends (the engine's own included) would otherwise come back
        // on the same socket and cost a receive each only to be skipped; kernels before 4.20
        // lack the option, and the `outgoing` flag still marks such frames there.
        let _ = set_int_option(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
        // A burst that arrives while the thread is off the CPU waits here instead of being
        // dropped; forcing needs CAP_NET_ADMIN, the plain option is capped by rmem_max.
        if set_int_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF_BYTES).is_err() {
            let _ = set_int_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF_BYTES);
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = protocol.to_be();
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a valid sockaddr_ll and its exact size is passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket { fd })
    }

    /// Takes one frame into `buf` without blocking; `None` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        // SAFETY: plain data; all-zero is valid.
        let mut from: libc::sockaddr_ll = unsafe { zeroed() };
        // u64 elements keep the control buffer aligned for cmsghdr.
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: plain data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>();
        // SAFETY: every pointer in `msg` refers to a live local or to `buf`, with its size.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => Ok(None),
                _ => Err(err),
            };
        }
        let full_len = n.unsigned_abs();
        Ok(Some(Received {
            len: full_len.min(buf.len()),
            truncated: full_len > buf.len(),
            outgoing: from.sll_pkttype == libc::PACKET_OUTGOING,
            other_host: from.sll_pkttype == libc::PACKET_OTHERHOST,
            csum_not_ready: csum_not_ready(&msg),
        }))
    }

    /// Takes up to [`RxBatch::capacity`] frames with one `recvmmsg` without blocking;
    /// returns how many (0 when nothing is queued). Frame `k` is [`RxBatch::frame`]`(k)`.
    pub fn recv_batch(&self, batch: &mut RxBatch) -> io::Result<usize> {
        batch.count = 0;
        let slots = batch.capacity();
        let slot_len = batch.slot_len;
        // The headers point into the batch's own buffers, which are never resized, and are
        // rebuilt on every call so nothing self-referential is kept between calls.
        for k in 0..slots {
            batch.iovs[k] = libc::iovec {
                iov_base: batch.data[k * slot_len..].as_mut_ptr().cast(),
                iov_len: slot_len,
            };
        }
        for k in 0..slots {
            // SAFETY: plain data; all-zero is valid.
            let mut hdr: libc::mmsghdr = unsafe { zeroed() };
            hdr.msg_hdr.msg_name = (&mut batch.from[k] as *mut libc::sockaddr_ll).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            hdr.msg_hdr.msg_iov = &mut batch.iovs[k];
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_control = batch.control[k].as_mut_ptr().cast();
            hdr.msg_hdr.msg_controllen = size_of::<[u64; 16]>();
            batch.hdrs[k] = hdr;
        }
        // SAFETY: `hdrs` holds `slots` headers whose pointers all refer to live buffers of
        // the batch with their sizes (the iovecs, sockaddrs and control buffers above).
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                batch.hdrs.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        let n = n.unsigned_abs() as usize;
        for k in 0..n {
            let hdr = &batch.hdrs[k];
            let full_len = hdr.msg_len as usize;
            batch.meta[k] = Received {
                len: full_len.min(slot_len),
                truncated: full_len > slot_len || hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                outgoing: batch.from[k].sll_pkttype == libc::PACKET_OUTGOING,
                other_host: batch.from[k].sll_pkttype == libc::PACKET_OTHERHOST,
                csum_not_ready: csum_not_ready(&hdr.msg_hdr),
            };
        }
        batch.count = n;
        Ok(n)
    }

    /// Sends the first `count` frames queued in `queue` with one `sendmmsg` per call (more
    /// if the kernel takes fewer), then empties it. Returns (sent, failed); a frame the
    /// kernel refuses is counted failed and skipped, as a failed `send` would be.
    pub fn send_batch(&self, queue: &mut TxQueue) -> (u64, u64) {
        let (mut sent, mut failed) = (0u64, 0u64);
        let total = queue.ends.len();
        let mut first = 0;
        while first < total {
            let count = total - first;
            for k in 0..count {
                let start = if first + k == 0 {
                    0
                } else {
                    queue.ends[first + k - 1]
                };
                let end = queue.ends[first + k];
                queue.iovs[k] = libc::iovec {
                    iov_base: queue.data[start..end].as_ptr().cast_mut().cast(),
                    iov_len: end - start,
                };
            }
            for k in 0..count {
                // SAFETY: plain data; all-zero is valid.
                let mut hdr: libc::mmsghdr = unsafe { zeroed() };
                hdr.msg_hdr.msg_iov = &mut queue.iovs[k];
                hdr.msg_hdr.msg_iovlen = 1;
                queue.hdrs[k] = hdr;
            }
            // SAFETY: `hdrs[..count]` point at iovecs over live slices of `queue.data`
            // (only read by the kernel) with their lengths.
            let n = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    queue.hdrs.as_mut_ptr(),
                    count as libc::c_uint,
                    0,
                )
            };
            if n <= 0 {
                // The first frame was refused: count it and go on with the next.
                failed += 1;
                first += 1;
            } else {
                sent += n.unsigned_abs() as u64;
                first += n.unsigned_abs() as usize;
            }
        }
        queue.clear();
        (sent, failed)
    }

    /// Sends one whole Ethernet frame out of the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is a live slice and its length is passed.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether the `PACKET_AUXDATA` of a received message says the checksum is still pending.
fn csum_not_ready(msg: &libc::msghdr) -> bool {
    let mut pending = false;
    // SAFETY: `msg` was filled by recvmsg/recvmmsg; the CMSG macros walk only inside
    // msg_control/msg_controllen, and each data pointer is read only when the header says it
    // holds a tpacket_auxdata (read unaligned, as the kernel does not promise alignment
    // beyond the cmsg header).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let wanted = libc::CMSG_LEN(size_of::<libc::tpacket_auxdata>() as u32) as usize;
            if header.cmsg_level == libc::SOL_PACKET
                && header.cmsg_type == libc::PACKET_AUXDATA
                && header.cmsg_len >= wanted
            {
                let aux: libc::tpacket_auxdata =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                pending = aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0;
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    pending
}

/// Buffers for [`PacketSocket::recv_batch`]: fixed slots, allocated once.
pub struct RxBatch {
    data: Vec<u8>,
    slot_len: usize,
    from: Vec<libc::sockaddr_ll>,
    control: Vec<[u64; 16]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    meta: Vec<Received>,
    count: usize,
}

// SAFETY: the raw pointers inside the iovec/mmsghdr arrays are only scratch space, rewritten
// before every use from the batch's own buffers; nothing is shared between threads.
#[allow(unsafe_code)]
unsafe impl Send for RxBatch {}

impl std::fmt::Debug for RxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxBatch")
            .field("slots", &self.capacity())
            .field("slot_len", &self.slot_len)
            .field("count", &self.count)
            .finish()
    }
}

impl RxBatch {
    /// `slots` frames of up to `slot_len` bytes each.
    pub fn new(slots: usize, slot_len: usize) -> RxBatch {
        let slots = slots.max(1);
        RxBatch {
            data: vec![0; slots * slot_len],
            slot_len,
            // SAFETY: plain data; all-zero is valid.
            from: vec![unsafe { zeroed() }; slots],
            control: vec![[0; 16]; slots],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                slots
            ],
            // SAFETY: plain data; all-zero is valid.
            hdrs: vec![unsafe { zeroed() }; slots],
            meta: vec![
                Received {
                    len: 0,
                    truncated: false,
                    outgoing: false,
                    other_host: false,
                    csum_not_ready: false
                };
                slots
            ],
            count: 0,
        }
    }

    /// How many frames one call can take.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Frames taken by the latest [`PacketSocket::recv_batch`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the latest call took nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Frame `k` of the latest call (`k < len()`): its bytes and what the kernel said.
    pub fn frame(&self, k: usize) -> (&[u8], Received) {
        let meta = self.meta[k];
        let start = k * self.slot_len;
        (&self.data[start..start + meta.len], meta)
    }
}

/// Frames waiting for one [`PacketSocket::send_batch`], stored back to back.
pub struct TxQueue {
    data: Vec<u8>,
    ends: Vec<usize>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: as for RxBatch: the pointer arrays are scratch space rebuilt before every use.
#[allow(unsafe_code)]
unsafe impl Send for TxQueue {}

impl std::fmt::Debug for TxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxQueue")
            .field("frames", &self.ends.len())
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl TxQueue {
    /// Room for `frames` frames per flush (more are accepted; the queue grows).
    pub fn new(frames: usize) -> TxQueue {
        TxQueue {
            data: Vec::with_capacity(frames * 128),
            ends: Vec::with_capacity(frames),
            iovs: Vec::with_capacity(frames),
            hdrs: Vec::with_capacity(frames),
        }
    }

    /// Appends a copy of `frame`.
    pub fn push(&mut self, frame: &[u8]) {
        self.data.extend_from_slice(frame);
        self.ends.push(self.data.len());
        // SAFETY: plain data; all-zero is valid.
        self.hdrs.push(unsafe { zeroed() });
        self.iovs.push(libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
    }

    /// Overwrites the destination MAC (first 6 bytes) of the frame pushed last.
    pub fn set_last_dst_mac(&mut self, mac: [u8; 6]) {
        let start = match self.ends.len() {
            0 => return,
            1 => 0,
            n => self.ends[n - 2],
        };
        if self.data.len() >= start + 6 {
            self.data[start..start + 6].copy_from_slice(&mac);
        }
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        self.iovs.clear();
        self.hdrs.clear();
    }
}
