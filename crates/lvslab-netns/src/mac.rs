//! Ethernet (MAC) addresses: parse, print, and derive deterministic lab addresses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 48-bit Ethernet address, printed as `02:00:5e:00:00:01`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Takes the first six bytes of a kernel hardware address; `None` for any other
    /// length (tunnels carry IPv4 addresses there, TUN devices nothing).
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

    /// Whether the group (multicast) bit is clear.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }

    /// Whether the locally-administered bit is set.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The raw bytes, for netlink attributes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
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
    fn prints_lowercase_colon_separated() {
        let mac = MacAddr([0x02, 0x00, 0x5e, 0xab, 0x0c, 0xff]);
        assert_eq!(mac.to_string(), "02:00:5e:ab:0c:ff");
        assert_eq!(format!("{mac:?}"), "02:00:5e:ab:0c:ff");
    }

    #[test]
    fn parses_colon_and_dash_forms_and_round_trips() {
        let mac: MacAddr = "02:00:5E:AB:0c:ff".parse().expect("valid");
        assert_eq!(mac.0, [0x02, 0x00, 0x5e, 0xab, 0x0c, 0xff]);
        assert_eq!("02-00-5e-ab-0c-ff".parse::<MacAddr>(), Ok(mac));
        assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
    }

    #[test]
    fn rejects_malformed_text() {
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
    fn from_slice_needs_exactly_six_bytes() {
        assert_eq!(
            MacAddr::from_slice(&[1, 2, 3, 4, 5, 6]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(MacAddr::from_slice(&[192, 0, 2, 1]), None);
        assert_eq!(MacAddr::from_slice(&[]), None);
    }

    #[test]
    fn derived_addresses_are_stable_local_unicast_and_distinct() {
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
    fn serde_uses_the_text_form() {
        let mac = MacAddr([0x02, 0, 0, 0, 0, 1]);
        let json = serde_json::to_string(&mac).expect("serialise");
        assert_eq!(json, "\"02:00:00:00:00:01\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&json).expect("parse"), mac);
        assert!(serde_json::from_str::<MacAddr>("\"nope\"").is_err());
    }
}
