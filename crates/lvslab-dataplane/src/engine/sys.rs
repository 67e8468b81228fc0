//! The engine's only unsafe code: AF_PACKET sockets with auxiliary data.
//!
//! Receive path: plain non-blocking `recvmsg` in batches (up to 64 frames per socket per
//! wake-up) after `poll`, not a TPACKET_V3 ring. Chosen for simplicity, not from a
//! measurement against a ring: lab traffic is small (the end-to-end tests move about 1,200
//! frames per lab, all labs together finishing in under two seconds), and a ring would add
//! a second unsafe protocol (blocks handed back and forth with the kernel). `recvmsg` also
//! gives per frame `PACKET_AUXDATA` (whether the checksum is still pending,
//! `TP_STATUS_CSUMNOTREADY`) and `sockaddr_ll.sll_pkttype` (`PACKET_OUTGOING` marks frames
//! this namespace sent). A ring is the upgrade path if throughput ever matters.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// EtherType that asks for every frame (`ETH_P_ALL`).
pub const ETH_P_ALL: u16 = 0x0003;

/// One frame taken from a [`PacketSocket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The frame was longer than the buffer (only `len` bytes of it are there).
    pub truncated: bool,
    /// The frame was sent by this namespace (`PACKET_OUTGOING`), not received.
    pub outgoing: bool,
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
        let on: libc::c_int = 1;
        // SAFETY: `on` outlives the call and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
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
        let mut csum_not_ready = false;
        // SAFETY: `msg` was filled by recvmsg; the CMSG macros walk only inside
        // msg_control/msg_controllen, and each data pointer is read only when the header
        // says it holds a tpacket_auxdata (read unaligned, as the kernel does not promise
        // alignment beyond the cmsg header).
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let header = &*cmsg;
                let wanted = libc::CMSG_LEN(size_of::<libc::tpacket_auxdata>() as u32) as usize;
                if header.cmsg_level == libc::SOL_PACKET
                    && header.cmsg_type == libc::PACKET_AUXDATA
                    && header.cmsg_len >= wanted
                {
                    let aux: libc::tpacket_auxdata =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    csum_not_ready = aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0;
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok(Some(Received {
            len: full_len.min(buf.len()),
            truncated: full_len > buf.len(),
            outgoing: from.sll_pkttype == libc::PACKET_OUTGOING,
            csum_not_ready,
        }))
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
