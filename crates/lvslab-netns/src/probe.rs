//! What this machine and kernel can do, each gap with a reason and a way around it.
//!
//! Probes that create anything do so in a throwaway anonymous namespace, never in the
//! host's namespace; everything they make disappears with that namespace.

use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sys::socket::{self, AddressFamily, SockFlag, SockProtocol, SockType};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::mac::MacAddr;
use crate::ns::Netns;
use crate::sys;

/// One capability and whether it is usable here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// Short name: `root`, `netns`, `veth`, `bridge`, `ipip`, `gre`, `ipvs`, `nft`,
    /// `af_packet`, `tun`, `qemu`, `kvm`.
    pub name: String,
    /// Whether it works.
    pub available: bool,
    /// What was found; for a missing feature, why and what to do instead.
    pub detail: String,
}

impl Feature {
    fn yes(name: &str, detail: impl Into<String>) -> Feature {
        Feature {
            name: name.into(),
            available: true,
            detail: detail.into(),
        }
    }

    fn no(name: &str, detail: impl Into<String>) -> Feature {
        Feature {
            name: name.into(),
            available: false,
            detail: detail.into(),
        }
    }
}

/// Looks a feature up by name in a [`probe`] result.
pub fn find<'a>(features: &'a [Feature], name: &str) -> Option<&'a Feature> {
    features.iter().find(|f| f.name == name)
}

const VM_HINT: &str = "run kernel trials in the VM (`lvslab vm run`)";

/// A feature probe.
type Probe = fn() -> Feature;

/// Every probe, by name, in the order reports list them.
const PROBES: [(&str, Probe); 12] = [
    ("root", probe_root),
    ("netns", probe_netns),
    ("veth", probe_veth),
    ("bridge", probe_bridge),
    ("ipip", probe_ipip),
    ("gre", probe_gre),
    ("ipvs", probe_ipvs),
    ("nft", probe_nft),
    ("af_packet", probe_af_packet),
    ("tun", probe_tun),
    ("qemu", probe_qemu),
    ("kvm", probe_kvm),
];

/// Probes everything, in a fixed order.
pub fn probe() -> Vec<Feature> {
    probe_some(&PROBES.map(|(n, _)| n))
}

/// Probes only the named features (unknown names are left out), concurrently: each
/// probe works in a scratch namespace of its own, and `lvslab up` should not wait for
/// features its lab does not use.
pub fn probe_some(names: &[&str]) -> Vec<Feature> {
    let chosen: Vec<Probe> = PROBES
        .iter()
        .filter(|(n, _)| names.contains(n))
        .map(|(_, f)| *f)
        .collect();
    std::thread::scope(|scope| {
        let running: Vec<_> = chosen.iter().map(|f| scope.spawn(*f)).collect();
        running
            .into_iter()
            .zip(&chosen)
            .filter_map(|(h, _)| h.join().ok())
            .collect()
    })
}

fn probe_root() -> Feature {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        Feature::yes("root", "running as root (euid 0)")
    } else {
        Feature::no(
            "root",
            format!("running as euid {euid}: labs need root (run as root or with sudo)"),
        )
    }
}

/// A throwaway namespace for a probe, or the probe's "missing" answer.
fn scratch(name: &str) -> Result<Netns, Feature> {
    Netns::new_anonymous().map_err(|e| {
        Feature::no(
            name,
            format!("cannot create a network namespace to test in: {e}"),
        )
    })
}

fn probe_netns() -> Feature {
    match Netns::new_anonymous() {
        Ok(ns) => Feature::yes("netns", format!("created {}", ns.label())),
        Err(e) => Feature::no(
            "netns",
            format!("cannot create network namespaces ({e}): needs root and CONFIG_NET_NS"),
        ),
    }
}

fn link_probe(name: &str, make: impl FnOnce(&Netns) -> crate::Result<()>) -> Feature {
    let ns = match scratch(name) {
        Ok(ns) => ns,
        Err(missing) => return missing,
    };
    match make(&ns) {
        Ok(()) => Feature::yes(name, "created one in a throwaway namespace"),
        Err(Error::MissingKernelFeature { feature, hint, .. }) => {
            Feature::no(name, format!("kernel has no {feature}: {hint}"))
        }
        Err(e) => Feature::no(name, format!("test creation failed: {e}")),
    }
}

fn probe_veth() -> Feature {
    link_probe("veth", |ns| {
        ns.netlink()?.add_veth(
            "probe0",
            MacAddr::local_from_key("probe/veth/0"),
            ns,
            "probe1",
            MacAddr::local_from_key("probe/veth/1"),
        )
    })
}

fn probe_bridge() -> Feature {
    link_probe("bridge", |ns| {
        ns.netlink()?
            .add_bridge("probebr0", MacAddr::local_from_key("probe/bridge"))
    })
}

// Tunnel end points for the probe only: documentation addresses, in a namespace with no
// routes, so nothing can leave.
const PROBE_LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PROBE_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn probe_ipip() -> Feature {
    link_probe("ipip", |ns| {
        ns.netlink()?
            .add_ipip("probetun0", PROBE_LOCAL, PROBE_REMOTE, 64)
    })
}

fn probe_gre() -> Feature {
    link_probe("gre", |ns| {
        ns.netlink()?
            .add_gre("probegre0", PROBE_LOCAL, PROBE_REMOTE, 64)
    })
}

fn probe_ipvs() -> Feature {
    let ns = match scratch("ipvs") {
        Ok(ns) => ns,
        Err(missing) => return missing,
    };
    match ns.run(|| genl_family_exists("IPVS")) {
        Ok(Ok(true)) => Feature::yes("ipvs", "generic netlink family IPVS resolves"),
        Ok(Ok(false)) => Feature::no(
            "ipvs",
            format!(
                "kernel has no IPVS (CONFIG_IP_VS; generic netlink family \"IPVS\" unknown): \
                 use the userspace dataplane or {VM_HINT}"
            ),
        ),
        Ok(Err(e)) => Feature::no("ipvs", format!("generic netlink query failed: {e}")),
        Err(e) => Feature::no("ipvs", format!("probe failed: {e}")),
    }
}

fn probe_nft() -> Feature {
    let ns = match scratch("nft") {
        Ok(ns) => ns,
        Err(missing) => return missing,
    };
    let installed = probe_table().and_then(|table| {
        crate::nft::apply(&ns, &table)?;
        Ok((crate::nft::list(&ns)?, crate::nft::expected(&table)))
    });
    match installed {
        Ok((listing, want)) if listing.tables == std::slice::from_ref(&want) => Feature::yes(
            "nft",
            "nf_tables takes and lists back a table over netlink (NETLINK_NETFILTER)",
        ),
        Ok((listing, _)) => Feature::no(
            "nft",
            format!("nf_tables accepted a table but lists back something else:\n{listing}"),
        ),
        Err(e) => Feature::no(
            "nft",
            format!("nf_tables over netlink failed ({e}): the kernel needs CONFIG_NF_TABLES"),
        ),
    }
}

/// A small table with a base chain and a rule, as NAT rules and the engine use them.
fn probe_table() -> crate::Result<crate::nft::Table> {
    use crate::nft::{BaseChain, Chain, Family, Match, Name, Rule, Statement, Table};
    let rule = Rule::new(vec![Match::IpProtocol(17)], Statement::Accept)?;
    Table::new(
        Family::Ip,
        Name::new("lvslab_probe")?,
        vec![Chain::new(
            Name::new("postrouting")?,
            Some(BaseChain::srcnat()),
            vec![rule],
        )],
    )
}

fn probe_af_packet() -> Feature {
    let ns = match scratch("af_packet") {
        Ok(ns) => ns,
        Err(missing) => return missing,
    };
    let opened = ns.run(|| {
        socket::socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::EthAll,
        )
    });
    match opened {
        Ok(Ok(_socket)) => Feature::yes("af_packet", "opened a raw packet socket"),
        Ok(Err(errno)) => Feature::no(
            "af_packet",
            format!("socket(AF_PACKET) failed: {errno}: kernel needs CONFIG_PACKET and root"),
        ),
        Err(e) => Feature::no("af_packet", format!("probe failed: {e}")),
    }
}

fn probe_tun() -> Feature {
    let ns = match scratch("tun") {
        Ok(ns) => ns,
        Err(missing) => return missing,
    };
    let made = ns.run(|| -> std::io::Result<String> {
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        // The device lives only as long as `dev` is open.
        sys::tun_set_iff(dev.as_fd(), "probetun0", sys::IFF_TUN | sys::IFF_NO_PI)
    });
    match made {
        Ok(Ok(name)) => Feature::yes("tun", format!("created TUN device {name} via /dev/net/tun")),
        Ok(Err(e)) => Feature::no(
            "tun",
            format!(
                "cannot create a TUN device via /dev/net/tun ({e}): kernel needs CONFIG_TUN \
                 (modprobe tun) and the device node (mknod /dev/net/tun c 10 200)"
            ),
        ),
        Err(e) => Feature::no("tun", format!("probe failed: {e}")),
    }
}

fn probe_qemu() -> Feature {
    match find_on_path("qemu-system-x86_64") {
        Some(path) => Feature::yes("qemu", path.display().to_string()),
        None => Feature::no(
            "qemu",
            "qemu-system-x86_64 not on PATH: apt-get install qemu-system-x86 (needed for `lvslab vm`)",
        ),
    }
}

fn probe_kvm() -> Feature {
    match OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        Ok(_) => Feature::yes("kvm", "/dev/kvm is usable"),
        Err(e) => Feature::no(
            "kvm",
            format!("/dev/kvm not usable ({e}): the VM falls back to slow emulation (TCG)"),
        ),
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Asks the generic-netlink controller whether a family is registered, from the calling
/// thread's namespace. `Ok(false)` when the kernel answers ENOENT.
pub fn genl_family_exists(name: &str) -> std::io::Result<bool> {
    use rtnetlink::sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

    const GENL_ID_CTRL: u16 = 0x10;
    const CTRL_CMD_GETFAMILY: u8 = 3;
    const CTRL_ATTR_FAMILY_NAME: u16 = 2;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 1;

    let mut socket = Socket::new(NETLINK_GENERIC)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let request = genl_getfamily_request(
        name,
        GENL_ID_CTRL,
        NLM_F_REQUEST,
        CTRL_CMD_GETFAMILY,
        CTRL_ATTR_FAMILY_NAME,
    );
    socket.send(&request, 0)?;
    let mut reply = Vec::with_capacity(8192);
    socket.recv(&mut reply, 0)?;
    if reply.len() < 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "short generic netlink reply",
        ));
    }
    let kind = u16::from_ne_bytes([reply[4], reply[5]]);
    if kind == GENL_ID_CTRL {
        return Ok(true);
    }
    if kind == NLMSG_ERROR {
        let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
        return match -code {
            0 => Ok(true),
            libc::ENOENT => Ok(false),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        };
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("unexpected generic netlink reply type {kind}"),
    ))
}

/// `nlmsghdr` + `genlmsghdr` + one `CTRL_ATTR_FAMILY_NAME` attribute.
fn genl_getfamily_request(name: &str, msg_type: u16, flags: u16, cmd: u8, attr: u16) -> Vec<u8> {
    let attr_len = 4 + name.len() + 1;
    let padded = (attr_len + 3) & !3;
    let total = 16 + 4 + padded;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_ne_bytes());
    out.extend_from_slice(&msg_type.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    out.extend_from_slice(&0u32.to_ne_bytes()); // port id: kernel fills it in
    out.extend_from_slice(&[cmd, 1, 0, 0]); // genlmsghdr: cmd, version 1, reserved
    out.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    out.extend_from_slice(&attr.to_ne_bytes());
    out.extend_from_slice(name.as_bytes());
    out.resize(total, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getfamily_request_bytes() {
        let bytes = genl_getfamily_request("IPVS", 0x10, 1, 3, 2);
        let mut expected = Vec::new();
        expected.extend_from_slice(&32u32.to_ne_bytes()); // 16 + 4 + 12
        expected.extend_from_slice(&0x10u16.to_ne_bytes());
        expected.extend_from_slice(&1u16.to_ne_bytes());
        expected.extend_from_slice(&1u32.to_ne_bytes());
        expected.extend_from_slice(&0u32.to_ne_bytes());
        expected.extend_from_slice(&[3, 1, 0, 0]);
        expected.extend_from_slice(&9u16.to_ne_bytes()); // 4 + "IPVS\0"
        expected.extend_from_slice(&2u16.to_ne_bytes());
        expected.extend_from_slice(b"IPVS\0\0\0\0");
        assert_eq!(bytes, expected);
    }

    #[test]
    fn find_looks_features_up_by_name() {
        let features = vec![Feature::yes("veth", "ok"), Feature::no("gre", "missing")];
        assert!(find(&features, "veth").is_some_and(|f| f.available));
        assert!(find(&features, "gre").is_some_and(|f| !f.available));
        assert!(find(&features, "kvm").is_none());
    }
}
