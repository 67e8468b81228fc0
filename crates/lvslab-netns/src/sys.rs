//! The crate's only `unsafe`: two ioctls that neither `nix` nor the netlink crates wrap.
//!
//! Both take a `struct ifreq`, which is laid out here by hand (40 bytes on 64-bit Linux:
//! a 16-byte name followed by a 24-byte union).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SIOCETHTOOL` from `<linux/sockios.h>`.
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `TUNSETIFF` = `_IOW('T', 202, int)` from `<linux/if_tun.h>`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `TUNSETPERSIST` = `_IOW('T', 203, int)` from `<linux/if_tun.h>`.
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
/// `IFF_TUN` from `<linux/if_tun.h>`.
pub const IFF_TUN: libc::c_short = 0x0001;
/// `IFF_NO_PI` from `<linux/if_tun.h>`: frames without the 4-byte packet-info prefix.
pub const IFF_NO_PI: libc::c_short = 0x1000;

/// `ETHTOOL_GTXCSUM`: read the tx checksum offload flag.
pub const ETHTOOL_GTXCSUM: u32 = 0x16;
/// `ETHTOOL_STXCSUM`: set the tx checksum offload flag.
pub const ETHTOOL_STXCSUM: u32 = 0x17;

const IFNAMSIZ: usize = 16;

#[repr(C)]
struct IfreqData {
    name: [u8; IFNAMSIZ],
    data: *mut libc::c_void,
    pad: [u8; 16],
}

#[repr(C)]
struct IfreqFlags {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    pad: [u8; 22],
}

/// `struct ethtool_value` from `<linux/ethtool.h>`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Copies an interface name into the fixed, NUL-terminated `ifr_name` field.
fn ifr_name(name: &str) -> io::Result<[u8; IFNAMSIZ]> {
    let bytes = name.as_bytes();
    if bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut out = [0u8; IFNAMSIZ];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// Runs one `ethtool_value` command (`ETHTOOL_G*`/`ETHTOOL_S*`) on `iface`.
///
/// `sock` must be a socket created in the namespace that holds `iface`: the kernel looks
/// the name up in the socket's namespace. Returns the value the kernel left in `data`.
pub fn ethtool_value(sock: BorrowedFd<'_>, iface: &str, cmd: u32, data: u32) -> io::Result<u32> {
    let mut value = EthtoolValue { cmd, data };
    let mut req = IfreqData {
        name: ifr_name(iface)?,
        data: (&mut value as *mut EthtoolValue).cast(),
        pad: [0; 16],
    };
    // SAFETY: `req` is a properly sized `struct ifreq` whose `ifr_data` points at
    // `value`, a live `struct ethtool_value` that outlives the call; the kernel reads
    // and writes only those two objects.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut req as *mut IfreqData) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.data)
}

/// Attaches an open `/dev/net/tun` descriptor to a TUN/TAP device called `name`
/// (created if missing, in the namespace of the calling thread). Returns the name the
/// kernel used.
pub fn tun_set_iff(tun: BorrowedFd<'_>, name: &str, flags: libc::c_short) -> io::Result<String> {
    let mut req = IfreqFlags {
        name: ifr_name(name)?,
        flags,
        pad: [0; 22],
    };
    // SAFETY: `req` is a properly sized `struct ifreq`; TUNSETIFF reads the name and
    // flags and writes the chosen name back into the same struct.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut req as *mut IfreqFlags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = req.name.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
    Ok(String::from_utf8_lossy(&req.name[..len]).into_owned())
}

// Used by the TUN-device helpers (`tun.rs`), which the provisioner wires in.
#[allow(dead_code)]
/// Makes the TUN/TAP device attached to `tun` outlive the descriptor (`on`), or go away
/// with it again (`!on`).
pub fn tun_set_persist(tun: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: TUNSETPERSIST takes its argument by value (an int flag), not a pointer;
    // the descriptor is valid for the duration of the call.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETPERSIST, libc::c_ulong::from(on)) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<IfreqData>(), 40);
        assert_eq!(std::mem::size_of::<IfreqFlags>(), 40);
    }

    #[test]
    fn interface_names_must_fit_ifnamsiz() {
        assert!(ifr_name("veth-director0").is_ok());
        assert!(ifr_name("0123456789abcde").is_ok());
        assert!(ifr_name("0123456789abcdef").is_err());
        assert!(ifr_name("a\0b").is_err());
    }
}
