//! The words every crate shares: the forwarding mode a lab shows, the tunnel
//! encapsulation, a MAC address, the dataplane that balances and the direction of a
//! packet in a flow. One definition each, so
//! the lab model, both dataplanes, the capture rules and the reports cannot drift apart.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The LVS forwarding mode a lab demonstrates (and the capture rules check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// VS/NAT: masquerading; replies cross the director.
    Nat,
    /// VS/DR: direct routing, only the destination MAC changes.
    Dr,
    /// VS/TUN: IP tunnelling to the real server.
    Tun,
    /// FullNAT: source and destination rewritten (not in mainline Linux).
    FullNat,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Nat, Mode::Dr, Mode::Tun, Mode::FullNat];

    /// Lower-case name, as lab files and rule ids (`dr.request`) spell it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Nat => "nat",
            Mode::Dr => "dr",
            Mode::Tun => "tun",
            Mode::FullNat => "fullnat",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a packet is carried to a tunnel-mode real server: the kernel's
/// `IP_VS_CONN_F_TUNNEL_TYPE_*` (`ipvsadm --tun-type`), also the kind of a lab's tunnel
/// device and of a real server's decapsulation.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Encap {
    /// IPv4 in IPv4 (IP protocol 4), the kernel's default.
    #[default]
    Ipip,
    /// Generic UDP encapsulation (IPVS destinations only; labs have no GUE devices).
    Gue,
    /// GRE (IP protocol 47) carrying IPv4 (protocol type 0x0800).
    Gre,
}

impl Encap {
    pub fn name(self) -> &'static str {
        match self {
            Encap::Ipip => "ipip",
            Encap::Gue => "gue",
            Encap::Gre => "gre",
        }
    }

    pub fn parse(s: &str) -> Option<Encap> {
        [Encap::Ipip, Encap::Gue, Encap::Gre]
            .into_iter()
            .find(|e| e.name() == s)
    }

    /// The number IPVS uses on netlink (`IPVS_DEST_ATTR_TUN_TYPE`).
    pub fn number(self) -> u8 {
        match self {
            Encap::Ipip => 0,
            Encap::Gue => 1,
            Encap::Gre => 2,
        }
    }

    pub fn from_number(n: u8) -> Option<Encap> {
        [Encap::Ipip, Encap::Gue, Encap::Gre]
            .into_iter()
            .find(|e| e.number() == n)
    }

    /// The outer header's IP protocol: 4 (IPIP), 17 (GUE runs over UDP) or 47 (GRE).
    pub fn ip_protocol(self) -> u8 {
        match self {
            Encap::Ipip => 4,
            Encap::Gue => 17,
            Encap::Gre => 47,
        }
    }
}

impl fmt::Display for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way a packet travels relative to the flow's initiator: what captures are
/// correlated into and what a lab's expectations (`expect.toml`) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the initiator (the client).
    Request,
    /// Toward the initiator.
    Reply,
}

/// Which dataplane balances a lab: the kernel's IPVS or lvslab's userspace director.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataplane {
    Kernel,
    Userspace,
}

impl Dataplane {
    pub const ALL: [Dataplane; 2] = [Dataplane::Kernel, Dataplane::Userspace];

    pub fn name(self) -> &'static str {
        match self {
            Dataplane::Kernel => "kernel",
            Dataplane::Userspace => "userspace",
        }
    }
}

impl fmt::Display for Dataplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string names no dataplane.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dataplane {0:?}: use `kernel` or `userspace`")]
pub struct ParseDataplaneError(pub String);

impl FromStr for Dataplane {
    type Err = ParseDataplaneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dataplane::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| ParseDataplaneError(s.to_string()))
    }
}

/// A 48-bit Ethernet address, printed as `02:00:5e:00:00:01`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Takes a kernel hardware address of exactly six bytes; `None` for any other length
    /// (tunnels carry IPv4 addresses there, TUN devices nothing).
    pub fn from_slice(bytes: &[u8]) -> Option<MacAddr> {
        <[u8; 6]>::try_from(bytes).ok().map(MacAddr)
    }

    /// A locally administered unicast address derived from `key` (e.g.
    /// `"<instance>/<node>/<iface>"`): equal keys give equal addresses, so captures of two
    /// runs compare equal. The first byte is `0x02` (local, unicast); the other five come
    /// from a 64-bit FNV-1a hash of the key.
    pub fn local_from_key(key: &str) -> MacAddr {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let h = hash.to_be_bytes();
        MacAddr([0x02, h[3], h[4], h[5], h[6], h[7]])
    }

    /// The address of a lab node's interface in an instance: every lab interface gets it,
    /// so captures and expectations name the same MAC.
    pub fn of_interface(instance: &str, node: &str, iface: &str) -> MacAddr {
        MacAddr::local_from_key(&format!("{instance}/{node}/{iface}"))
    }

    /// Whether the group (multicast) bit is clear.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == MacAddr::BROADCAST
    }

    /// Whether the locally-administered bit is set.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The raw bytes, for netlink attributes and frames.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {input:?}: expected six hex bytes like 02:00:5e:00:00:01")]
pub struct ParseMacError {
    /// The rejected text.
    pub input: String,
}

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError {
            input: s.to_string(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for slot in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 {
                return Err(err());
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.name()), Some(m));
        }
        for e in [Encap::Ipip, Encap::Gue, Encap::Gre] {
            assert_eq!(Encap::parse(e.name()), Some(e));
            assert_eq!(Encap::from_number(e.number()), Some(e));
        }
        for d in Dataplane::ALL {
            assert_eq!(d.name().parse::<Dataplane>(), Ok(d));
        }
        assert!("Kernel".parse::<Dataplane>().is_err());
        assert_eq!(Mode::parse("FullNAT"), None);
    }

    #[test]
    fn mac_prints_lowercase_colon_separated() {
        let mac = MacAddr([0x02, 0x00, 0x5e, 0xab, 0x0c, 0xff]);
        assert_eq!(mac.to_string(), "02:00:5e:ab:0c:ff");
        assert_eq!(format!("{mac:?}"), "02:00:5e:ab:0c:ff");
    }

    #[test]
    fn mac_parses_colon_and_dash_forms_and_round_trips() {
        let mac: MacAddr = "02:00:5E:AB:0c:ff".parse().expect("valid");
        assert_eq!(mac.0, [0x02, 0x00, 0x5e, 0xab, 0x0c, 0xff]);
        assert_eq!("02-00-5e-ab-0c-ff".parse::<MacAddr>(), Ok(mac));
        assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
    }

    #[test]
    fn mac_rejects_malformed_text() {
        for bad in [
            "",
            "02:00:5e:ab:0c",
            "02:00:5e:ab:0c:ff:00",
            "2:00:5e:ab:0c:ff",
            "02:00:5e:ab:0c:fg",
            "020:0:5e:ab:0c:ff",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mac_from_slice_needs_exactly_six_bytes() {
        assert_eq!(
            MacAddr::from_slice(&[1, 2, 3, 4, 5, 6]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(MacAddr::from_slice(&[192, 0, 2, 1]), None);
        assert_eq!(MacAddr::from_slice(&[]), None);
    }

    #[test]
    fn derived_macs_are_stable_local_unicast_and_distinct() {
        let a = MacAddr::local_from_key("nat/director/eth0");
        let b = MacAddr::local_from_key("nat/director/eth1");
        assert_eq!(a, MacAddr::local_from_key("nat/director/eth0"));
        assert_ne!(a, b);
        for mac in [a, b] {
            assert!(mac.is_unicast() && mac.is_local(), "{mac}");
        }
        // FNV-1a of the empty string is the offset basis itself.
        assert_eq!(
            MacAddr::local_from_key(""),
            MacAddr([0x02, 0xe4, 0x84, 0x22, 0x23, 0x25])
        );
    }

    #[test]
    fn mac_serde_uses_the_text_form() {
        let mac = MacAddr([0x02, 0, 0, 0, 0, 1]);
        let json = serde_json::to_string(&mac).expect("serialise");
        assert_eq!(json, "\"02:00:00:00:00:01\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&json).expect("parse"), mac);
        assert!(serde_json::from_str::<MacAddr>("\"nope\"").is_err());
    }
}
