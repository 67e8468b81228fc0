//! The `unsafe` half of [`crate::capture`]: AF_PACKET calls that neither `nix` nor `libc`'s
//! safe wrappers cover (binding and sending with a `sockaddr_ll`, `recvmsg` with control
//! messages, `PACKET_STATISTICS`). Kept apart from `sys.rs` so each module stays small; every
//! function here is a thin, checked wrapper around one system call.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `ETH_P_ALL` in host order: every protocol.
pub const ETH_P_ALL: u16 = 0x0003;

/// What `recvmsg` told about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvInfo {
    /// Bytes copied into the buffer.
    pub caplen: usize,
    /// Length of the packet as the kernel saw it (≥ `caplen`).
    pub orig_len: usize,
    /// `sll_pkttype` (`PACKET_HOST`, …, `PACKET_OUTGOING`).
    pub pkttype: u8,
    /// `sll_protocol`, converted to host order.
    pub protocol: u16,
    /// `SCM_TIMESTAMPNS`, in nanoseconds since the epoch.
    pub ts_ns: Option<u64>,
    /// `tpacket_auxdata.tp_status`, when `PACKET_AUXDATA` is on.
    pub aux_status: Option<u32>,
}

/// Kernel counters of one packet socket (`struct tpacket_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Packets the socket was offered (delivered plus dropped).
    pub packets: u32,
    /// Packets dropped because the receive buffer was full.
    pub drops: u32,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn sockaddr_ll(ifindex: u32, protocol: u16, addr: &[u8]) -> io::Result<libc::sockaddr_ll> {
    let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if addr.len() > 8 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut sll_addr = [0u8; 8];
    sll_addr[..addr.len()].copy_from_slice(addr);
    Ok(libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: addr.len() as u8,
        sll_addr,
    })
}

/// `socket(AF_PACKET, kind | SOCK_CLOEXEC, 0)`. Protocol 0 means the socket receives
/// nothing until [`bind_ll`] names a protocol and an interface, so no frame of another
/// interface slips in between the two calls.
pub fn packet_socket(kind: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments; the returned descriptor is new and
    // owned by nobody else, so handing it to `OwnedFd` is sound.
    unsafe {
        let fd = check(libc::socket(libc::AF_PACKET, kind | libc::SOCK_CLOEXEC, 0))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// `bind(fd, {AF_PACKET, protocol, ifindex})`.
pub fn bind_ll(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    let sll = sockaddr_ll(ifindex, protocol, &[])?;
    // SAFETY: `sll` is a fully initialised `sockaddr_ll` that lives across the call, and the
    // length passed is its size.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// The ARPHRD type of the interface a packet socket is bound to (`getsockname`).
pub fn bound_hatype(fd: BorrowedFd<'_>) -> io::Result<u16> {
    let mut sll = MaybeUninit::<libc::sockaddr_ll>::zeroed();
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `sll`, which is that large and was
    // zeroed, so it is initialised whatever the kernel fills in.
    let sll = unsafe {
        check(libc::getsockname(
            fd.as_raw_fd(),
            sll.as_mut_ptr().cast(),
            &mut len,
        ))?;
        sll.assume_init()
    };
    Ok(sll.sll_hatype)
}

/// `setsockopt(fd, level, name, &value, sizeof(int))`.
pub fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a live `c_int` and its exact size is passed.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `getsockopt(fd, SOL_PACKET, PACKET_STATISTICS)`. Reading resets the kernel's counters.
pub fn packet_statistics(fd: BorrowedFd<'_>) -> io::Result<PacketStats> {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `stats` is a live `tpacket_stats` and `len` its size; the kernel writes at most
    // `len` bytes into it.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    })?;
    Ok(PacketStats {
        packets: stats.tp_packets,
        drops: stats.tp_drops,
    })
}

/// `sendto(fd, data, 0, {AF_PACKET, protocol, ifindex, addr})`.
pub fn send_ll(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    protocol: u16,
    addr: &[u8],
    data: &[u8],
) -> io::Result<()> {
    let sll = sockaddr_ll(ifindex, protocol, addr)?;
    // SAFETY: `data` and `sll` are live for the call and their true lengths are passed.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Room for `SCM_TIMESTAMPNS` and `PACKET_AUXDATA` with headroom, 8-byte aligned as
/// `cmsghdr` needs.
#[repr(C, align(8))]
struct ControlBuffer([u8; 256]);

/// One non-blocking `recvmsg(MSG_TRUNC | MSG_DONTWAIT)` into `buf`. `Ok(None)` when nothing
/// is queued.
pub fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<RecvInfo>> {
    let mut from = MaybeUninit::<libc::sockaddr_ll>::zeroed();
    let mut control = ControlBuffer([0; 256]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid `msghdr` (null pointers, zero lengths); fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = from.as_mut_ptr().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated length (`buf`,
    // `from`, `control`), all of which outlive the call.
    let n = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_TRUNC | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(err),
        };
    }
    let orig_len = n as usize;
    // SAFETY: `from` was zeroed, so it is initialised whether or not the kernel wrote it.
    let from = unsafe { from.assume_init() };
    let mut info = RecvInfo {
        caplen: orig_len.min(buf.len()),
        orig_len,
        pkttype: from.sll_pkttype,
        protocol: u16::from_be(from.sll_protocol),
        ts_ns: None,
        aux_status: None,
    };
    // SAFETY: `msg` was filled by a successful `recvmsg`, so `msg_control`/`msg_controllen`
    // describe the control messages the kernel wrote into `control`, which is still alive.
    // The CMSG_* macros stay inside that buffer; each payload is read unaligned and only
    // when its `cmsg_len` covers the type read.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            let payload =
                (header.cmsg_len as usize).saturating_sub(data.offset_from(cmsg.cast()) as usize);
            if header.cmsg_level == libc::SOL_SOCKET
                && header.cmsg_type == libc::SCM_TIMESTAMPNS
                && payload >= size_of::<libc::timespec>()
            {
                let ts = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                let ns = u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000
                    + u64::try_from(ts.tv_nsec).unwrap_or(0);
                info.ts_ns = Some(ns);
            } else if header.cmsg_level == libc::SOL_PACKET
                && header.cmsg_type == libc::PACKET_AUXDATA
                && payload >= size_of::<libc::tpacket_auxdata>()
            {
                let aux = std::ptr::read_unaligned(data.cast::<libc::tpacket_auxdata>());
                info.aux_status = Some(aux.tp_status);
                info.orig_len = info.orig_len.max(aux.tp_len as usize);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Some(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_ll_keeps_protocol_in_network_order() {
        let sll = sockaddr_ll(7, 0x88b5, &[0xff; 6]).expect("valid address");
        assert_eq!(sll.sll_protocol, 0x88b5u16.to_be());
        assert_eq!(sll.sll_ifindex, 7);
        assert_eq!(sll.sll_halen, 6);
        assert!(sockaddr_ll(1, 0, &[0; 9]).is_err());
        assert!(sockaddr_ll(u32::MAX, 0, &[]).is_err());
    }
}
