//! Read-back of a namespace's state, for tests and diagnosis.
//!
//! Each record prints like the `ip` line it corresponds to, and a whole-namespace
//! [`NsSnapshot`] compares with `==` and explains differences with [`NsSnapshot::diff`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::mac::MacAddr;
use crate::ns::Netns;

/// One network interface (`ip -d link show`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkInfo {
    /// Interface name.
    pub name: String,
    /// Kernel interface index (namespace-local).
    pub ifindex: u32,
    /// `veth`, `bridge`, `gre`, `ipip`, `tun`, `loopback`, … or `device` when the kernel
    /// names no kind.
    pub kind: String,
    /// Ethernet address; `None` for devices without one (tunnels, TUN).
    pub mac: Option<MacAddr>,
    /// MTU in bytes.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Name of the bridge this interface is enslaved to.
    pub master: Option<String>,
}

impl fmt::Display for LinkInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "link {} ({}) mtu {} {}",
            self.name,
            self.kind,
            self.mtu,
            if self.up { "up" } else { "down" }
        )?;
        if let Some(mac) = self.mac {
            write!(f, " address {mac}")?;
        }
        if let Some(master) = &self.master {
            write!(f, " master {master}")?;
        }
        Ok(())
    }
}

/// One interface address (`ip addr show`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AddressInfo {
    /// Interface holding the address.
    pub iface: String,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// `universe`, `link`, `host`, …
    pub scope: String,
}

impl fmt::Display for AddressInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "address {}/{} dev {} scope {}",
            self.addr, self.prefix, self.iface, self.scope
        )
    }
}

/// One route (`ip route show table all`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RouteInfo {
    /// Routing table id (254 = main, 255 = local).
    pub table: u32,
    /// `inet` or `inet6`.
    pub family: String,
    /// `unicast`, `local`, `broadcast`, `multicast`, …
    pub kind: String,
    /// Destination network; `None` for the default route.
    pub dst: Option<IpAddr>,
    /// Destination prefix length.
    pub prefix: u8,
    /// Next-hop gateway.
    pub gateway: Option<IpAddr>,
    /// Output interface name.
    pub oif: Option<String>,
    /// Preferred source address.
    pub prefsrc: Option<IpAddr>,
    /// `universe`, `link`, `host`, …
    pub scope: String,
    /// Who installed it: `kernel`, `boot`, `static`, …
    pub protocol: String,
    /// Route metric (priority).
    pub metric: Option<u32>,
}

impl fmt::Display for RouteInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route table {} {}", self.table, self.kind)?;
        match self.dst {
            Some(dst) => write!(f, " {dst}/{}", self.prefix)?,
            None => write!(f, " default ({})", self.family)?,
        }
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(dev) = &self.oif {
            write!(f, " dev {dev}")?;
        }
        if let Some(src) = self.prefsrc {
            write!(f, " src {src}")?;
        }
        write!(f, " proto {} scope {}", self.protocol, self.scope)?;
        if let Some(metric) = self.metric {
            write!(f, " metric {metric}")?;
        }
        Ok(())
    }
}

/// One neighbour (ARP/NDP) entry (`ip neigh show`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NeighbourInfo {
    /// Interface the neighbour is reached through.
    pub iface: String,
    /// Its IP address.
    pub ip: IpAddr,
    /// Its link-layer address, if resolved.
    pub mac: Option<MacAddr>,
    /// `reachable`, `stale`, `permanent`, `incomplete`, …
    pub state: String,
}

impl fmt::Display for NeighbourInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "neighbour {} dev {}", self.ip, self.iface)?;
        if let Some(mac) = self.mac {
            write!(f, " lladdr {mac}")?;
        }
        write!(f, " {}", self.state)
    }
}

/// One policy-routing rule (`ip rule show`, both families).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleInfo {
    /// `inet` or `inet6`.
    pub family: String,
    /// Rule priority (lower runs first).
    pub priority: u32,
    /// `totable`, `blackhole`, …
    pub action: String,
    /// Table looked up.
    pub table: u32,
    /// `from` selector, as `addr/len`.
    pub src: Option<String>,
    /// `to` selector, as `addr/len`.
    pub dst: Option<String>,
    /// `iif` selector.
    pub iif: Option<String>,
    /// `oif` selector.
    pub oif: Option<String>,
    /// `fwmark` selector.
    pub fwmark: Option<u32>,
}

impl fmt::Display for RuleInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} {}", self.family, self.priority)?;
        if let Some(src) = &self.src {
            write!(f, " from {src}")?;
        }
        if let Some(dst) = &self.dst {
            write!(f, " to {dst}")?;
        }
        if let Some(iif) = &self.iif {
            write!(f, " iif {iif}")?;
        }
        if let Some(oif) = &self.oif {
            write!(f, " oif {oif}")?;
        }
        if let Some(mark) = self.fwmark {
            write!(f, " fwmark {mark:#x}")?;
        }
        write!(f, " {} table {}", self.action, self.table)
    }
}

/// Everything this crate can change in a namespace, read back at one moment.
///
/// Neighbour entries are left out on purpose: they come and go with traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsSnapshot {
    /// Interfaces, by index.
    pub links: Vec<LinkInfo>,
    /// Addresses, sorted.
    pub addresses: Vec<AddressInfo>,
    /// Routes of every table, sorted.
    pub routes: Vec<RouteInfo>,
    /// Policy-routing rules, sorted.
    pub rules: Vec<RuleInfo>,
    /// Every readable sysctl under `net.ipv4` and `net.ipv6.conf`, by dotted key.
    pub sysctls: BTreeMap<String, String>,
    /// The nftables ruleset read back over netlink, one line per table, chain, rule and
    /// set ([`crate::nft::Listing::lines`]).
    pub nft: Vec<String>,
}

/// Reads a whole namespace's state (see [`NsSnapshot`]). Works on [`Netns::root`] too
/// and changes nothing.
pub fn snapshot(ns: &Netns) -> Result<NsSnapshot> {
    let handle = ns.netlink()?;
    let mut links = handle.links()?;
    links.sort_by_key(|l| l.ifindex);
    let mut addresses = handle.addresses()?;
    addresses.sort();
    let mut routes = handle.all_routes()?;
    routes.sort();
    let mut rules = handle.rules()?;
    rules.sort();
    let sysctls = crate::sysctl::read_tree(ns, &["net/ipv4", "net/ipv6/conf"])?;
    let nft = crate::nft::list(ns)?.lines();
    Ok(NsSnapshot {
        links,
        addresses,
        routes,
        rules,
        sysctls,
        nft,
    })
}

impl NsSnapshot {
    /// What changed from `self` to `other`, one readable line per difference:
    /// `- x` (only in self), `+ x` (only in other), `~ x: a -> b` (changed). Empty when
    /// the snapshots are equal.
    pub fn diff(&self, other: &NsSnapshot) -> Vec<String> {
        let mut out = Vec::new();

        let before: BTreeMap<&str, &LinkInfo> =
            self.links.iter().map(|l| (l.name.as_str(), l)).collect();
        let after: BTreeMap<&str, &LinkInfo> =
            other.links.iter().map(|l| (l.name.as_str(), l)).collect();
        for (name, old) in &before {
            match after.get(name) {
                None => out.push(format!("- {old}")),
                Some(new) if old != new => out.push(format!("~ {old} -> {new}")),
                Some(_) => {}
            }
        }
        for (name, new) in &after {
            if !before.contains_key(name) {
                out.push(format!("+ {new}"));
            }
        }

        set_diff(&self.addresses, &other.addresses, &mut out);
        set_diff(&self.routes, &other.routes, &mut out);
        set_diff(&self.rules, &other.rules, &mut out);

        for (key, old) in &self.sysctls {
            match other.sysctls.get(key) {
                None => out.push(format!("- sysctl {key} = {old}")),
                Some(new) if old != new => out.push(format!("~ sysctl {key}: {old} -> {new}")),
                Some(_) => {}
            }
        }
        for (key, new) in &other.sysctls {
            if !self.sysctls.contains_key(key) {
                out.push(format!("+ sysctl {key} = {new}"));
            }
        }

        if self.nft != other.nft {
            let old: BTreeSet<&str> = self.nft.iter().map(String::as_str).collect();
            let new: BTreeSet<&str> = other.nft.iter().map(String::as_str).collect();
            let mut changed = false;
            for line in old.difference(&new) {
                out.push(format!("- nft {line}"));
                changed = true;
            }
            for line in new.difference(&old) {
                out.push(format!("+ nft {line}"));
                changed = true;
            }
            if !changed {
                out.push("~ nft ruleset: same lines, different order".into());
            }
        }
        out
    }
}

fn set_diff<T: Ord + fmt::Display>(old: &[T], new: &[T], out: &mut Vec<String>) {
    let old: BTreeSet<&T> = old.iter().collect();
    let new: BTreeSet<&T> = new.iter().collect();
    out.extend(old.difference(&new).map(|x| format!("- {x}")));
    out.extend(new.difference(&old).map(|x| format!("+ {x}")));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, ifindex: u32, mtu: u32, up: bool) -> LinkInfo {
        LinkInfo {
            name: name.into(),
            ifindex,
            kind: "veth".into(),
            mac: Some(MacAddr([0x02, 0, 0, 0, 0, ifindex as u8])),
            mtu,
            up,
            master: None,
        }
    }

    fn addr(iface: &str, ip: &str, prefix: u8) -> AddressInfo {
        AddressInfo {
            iface: iface.into(),
            addr: ip.parse().expect("test address"),
            prefix,
            scope: "universe".into(),
        }
    }

    #[test]
    fn equal_snapshots_have_an_empty_diff() {
        let snap = NsSnapshot {
            links: vec![link("eth0", 2, 1500, true)],
            addresses: vec![addr("eth0", "192.0.2.1", 24)],
            ..NsSnapshot::default()
        };
        assert_eq!(snap, snap.clone());
        assert!(snap.diff(&snap.clone()).is_empty());
    }

    #[test]
    fn diff_lists_added_removed_and_changed_items() {
        let mut before = NsSnapshot {
            links: vec![link("eth0", 2, 1500, true), link("eth1", 3, 1500, true)],
            addresses: vec![addr("eth0", "192.0.2.1", 24)],
            nft: vec!["table inet lab".into()],
            ..NsSnapshot::default()
        };
        before
            .sysctls
            .insert("net.ipv4.ip_forward".into(), "0".into());
        before
            .sysctls
            .insert("net.ipv4.conf.eth1.rp_filter".into(), "2".into());

        let mut after = before.clone();
        after.links[0].mtu = 9000;
        after.links.remove(1);
        after.links.push(link("br0", 4, 1500, false));
        after.addresses = vec![addr("eth0", "198.51.100.1", 24)];
        after
            .sysctls
            .insert("net.ipv4.ip_forward".into(), "1".into());
        after.sysctls.remove("net.ipv4.conf.eth1.rp_filter");
        after.nft = vec!["table inet lab".into(), "chain inet lab c".into()];

        let diff = before.diff(&after);
        let expected = [
            "~ link eth0 (veth) mtu 1500 up address 02:00:00:00:00:02 -> \
             link eth0 (veth) mtu 9000 up address 02:00:00:00:00:02",
            "- link eth1 (veth) mtu 1500 up address 02:00:00:00:00:03",
            "+ link br0 (veth) mtu 1500 down address 02:00:00:00:00:04",
            "- address 192.0.2.1/24 dev eth0 scope universe",
            "+ address 198.51.100.1/24 dev eth0 scope universe",
            "- sysctl net.ipv4.conf.eth1.rp_filter = 2",
            "~ sysctl net.ipv4.ip_forward: 0 -> 1",
            "+ nft chain inet lab c",
        ];
        assert_eq!(diff, expected, "{diff:#?}");
        // The reverse direction swaps every sign.
        let back = after.diff(&before);
        assert!(back.contains(&"+ link eth1 (veth) mtu 1500 up address 02:00:00:00:00:03".into()));
        assert!(back.contains(&"- nft chain inet lab c".into()));
    }

    #[test]
    fn route_lines_read_like_ip_route() {
        let route = RouteInfo {
            table: 254,
            family: "inet".into(),
            kind: "unicast".into(),
            dst: None,
            prefix: 0,
            gateway: Some("192.0.2.254".parse().expect("ip")),
            oif: Some("eth0".into()),
            prefsrc: None,
            scope: "universe".into(),
            protocol: "boot".into(),
            metric: None,
        };
        assert_eq!(
            route.to_string(),
            "route table 254 unicast default (inet) via 192.0.2.254 dev eth0 proto boot scope universe"
        );
    }

    #[test]
    fn snapshots_round_trip_through_json() {
        let mut snap = NsSnapshot {
            links: vec![link("eth0", 2, 1500, true)],
            ..NsSnapshot::default()
        };
        snap.sysctls
            .insert("net.ipv4.ip_forward".into(), "1".into());
        let json = serde_json::to_string(&snap).expect("serialise");
        let back: NsSnapshot = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, snap);
    }
}
