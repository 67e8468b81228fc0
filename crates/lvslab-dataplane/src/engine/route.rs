//! Next hops: longest-prefix match over the namespace's IPv4 routes, and a neighbour cache
//! the engine fills from the kernel's table, from ARP traffic it sees and from its own ARP
//! requests, with a bounded queue of frames waiting for an answer.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use lvslab_netns::RouteInfo;

use crate::packet::MacAddr;

/// One IPv4 unicast route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network (host bits zero).
    pub dst: u32,
    /// Prefix length, 0..=32.
    pub prefix: u8,
    /// Gateway, or `None` for an on-link route.
    pub gateway: Option<Ipv4Addr>,
    /// Output interface.
    pub oif: String,
    /// Preferred source address.
    pub prefsrc: Option<Ipv4Addr>,
    /// Metric (lower wins among equal prefixes).
    pub metric: u32,
}

/// The route chosen for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// Output interface name.
    pub oif: String,
    /// The address whose MAC the frame goes to (gateway, or the destination itself).
    pub via: Ipv4Addr,
    /// The route's preferred source, if it names one.
    pub prefsrc: Option<Ipv4Addr>,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// IPv4 routes, searched by longest prefix then lowest metric.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Keeps the IPv4 unicast routes with an output interface from a netlink dump.
    pub fn from_dump(dump: &[RouteInfo]) -> RouteTable {
        let routes = dump
            .iter()
            .filter(|r| r.family == "inet" && r.kind == "unicast")
            .filter_map(|r| {
                let oif = r.oif.clone()?;
                let dst = match r.dst {
                    Some(std::net::IpAddr::V4(a)) => u32::from(a),
                    Some(std::net::IpAddr::V6(_)) => return None,
                    None => 0,
                };
                let v4 = |a: Option<std::net::IpAddr>| match a {
                    Some(std::net::IpAddr::V4(a)) => Some(a),
                    _ => None,
                };
                Some(Route {
                    dst: dst & mask(r.prefix),
                    prefix: r.prefix.min(32),
                    gateway: v4(r.gateway),
                    oif,
                    prefsrc: v4(r.prefsrc),
                    metric: r.metric.unwrap_or(0),
                })
            })
            .collect();
        RouteTable { routes }
    }

    /// The route toward `dst`, if any.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<NextHop> {
        let d = u32::from(dst);
        self.routes
            .iter()
            .filter(|r| d & mask(r.prefix) == r.dst)
            .max_by(|a, b| {
                a.prefix
                    .cmp(&b.prefix)
                    .then_with(|| b.metric.cmp(&a.metric))
            })
            .map(|r| NextHop {
                oif: r.oif.clone(),
                via: r.gateway.unwrap_or(dst),
                prefsrc: r.prefsrc,
            })
    }

    /// Number of routes kept.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no route is kept.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// Frames one unresolved neighbour may hold back (the kernel's `unres_qlen` is similar).
pub const MAX_PENDING_PER_NEIGHBOUR: usize = 64;
/// ARP requests sent for one neighbour before its queued frames are dropped.
pub const ARP_TRIES: u32 = 3;
/// Time between two ARP requests for the same neighbour.
pub const ARP_RETRY_MS: u64 = 500;

#[derive(Debug, Default)]
struct Pending {
    frames: Vec<Vec<u8>>,
    tries: u32,
    next_try_ms: u64,
}

/// What [`NeighbourCache::resolve`] decided for a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The MAC is known: send now.
    Known(MacAddr),
    /// The frame was queued; send an ARP request now when `ask` is true.
    Queued {
        /// The first frame for this neighbour: an ARP request should go out at once.
        ask: bool,
    },
    /// The queue for this neighbour is full: the frame is dropped.
    QueueFull,
}

/// What [`NeighbourCache::tick`] found due.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NeighbourTick {
    /// Neighbours due for another ARP request: (interface, address).
    pub ask: Vec<(String, Ipv4Addr)>,
    /// Frames dropped because their neighbour never answered, per interface.
    pub dropped: Vec<(String, u64)>,
}

/// Neighbours per (interface, address), and frames waiting for them.
#[derive(Debug, Default)]
pub struct NeighbourCache {
    /// Per interface, so a per-packet lookup borrows the name instead of allocating a key.
    known: HashMap<String, HashMap<Ipv4Addr, MacAddr>>,
    pending: HashMap<(String, Ipv4Addr), Pending>,
}

impl NeighbourCache {
    /// The MAC of a neighbour, if known.
    pub fn get(&self, oif: &str, ip: Ipv4Addr) -> Option<MacAddr> {
        self.known.get(oif)?.get(&ip).copied()
    }

    /// Records a neighbour and leaves frames waiting for it queued (for entries read from
    /// the kernel's table; [`NeighbourCache::learn`] releases them).
    pub fn remember(&mut self, oif: &str, ip: Ipv4Addr, mac: MacAddr) {
        self.known_on(oif).insert(ip, mac);
    }

    fn known_on(&mut self, oif: &str) -> &mut HashMap<Ipv4Addr, MacAddr> {
        if !self.known.contains_key(oif) {
            self.known.insert(oif.to_string(), HashMap::new());
        }
        self.known
            .get_mut(oif)
            .expect("the interface's map was just ensured")
    }

    /// Records a neighbour; returns the frames that were waiting for it.
    pub fn learn(&mut self, oif: &str, ip: Ipv4Addr, mac: MacAddr) -> Vec<Vec<u8>> {
        self.known_on(oif).insert(ip, mac);
        if self.pending.is_empty() {
            return Vec::new();
        }
        self.pending
            .remove(&(oif.to_string(), ip))
            .map(|p| p.frames)
            .unwrap_or_default()
    }

    /// Finds the MAC for `frame`'s next hop or queues the frame until an answer comes.
    pub fn resolve(&mut self, oif: &str, ip: Ipv4Addr, frame: &[u8], now_ms: u64) -> Resolution {
        if let Some(mac) = self.get(oif, ip) {
            return Resolution::Known(mac);
        }
        let entry = self.pending.entry((oif.to_string(), ip)).or_default();
        if entry.frames.len() >= MAX_PENDING_PER_NEIGHBOUR {
            return Resolution::QueueFull;
        }
        entry.frames.push(frame.to_vec());
        let ask = entry.tries == 0;
        if ask {
            entry.tries = 1;
            entry.next_try_ms = now_ms + ARP_RETRY_MS;
        }
        Resolution::Queued { ask }
    }

    /// Neighbours due for another ARP request, and per interface the number of frames
    /// dropped because their neighbour never answered.
    pub fn tick(&mut self, now_ms: u64) -> NeighbourTick {
        let mut ask = Vec::new();
        let mut dropped: Vec<(String, u64)> = Vec::new();
        self.pending.retain(|key, p| {
            if p.next_try_ms > now_ms {
                return true;
            }
            if p.tries >= ARP_TRIES {
                let n = p.frames.len() as u64;
                match dropped.iter_mut().find(|(oif, _)| *oif == key.0) {
                    Some((_, total)) => *total += n,
                    None => dropped.push((key.0.clone(), n)),
                }
                return false;
            }
            p.tries += 1;
            p.next_try_ms = now_ms + ARP_RETRY_MS;
            ask.push(key.clone());
            true
        });
        NeighbourTick { ask, dropped }
    }
}

/// An ARP request (who-has `target` tell `sender_ip`) from `sender_mac`, broadcast.
pub fn arp_request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&sender_ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn info(dst: Option<&str>, prefix: u8, gw: Option<&str>, oif: &str) -> RouteInfo {
        RouteInfo {
            table: 254,
            family: "inet".into(),
            kind: "unicast".into(),
            dst: dst.map(|d| d.parse().expect("test address")),
            prefix,
            gateway: gw.map(|g| g.parse().expect("test address")),
            oif: Some(oif.into()),
            prefsrc: None,
            scope: "universe".into(),
            protocol: "static".into(),
            metric: None,
        }
    }

    #[test]
    fn longest_prefix_wins_and_default_catches_the_rest() {
        let t = RouteTable::from_dump(&[
            info(None, 0, Some("192.168.80.254"), "eth0"),
            info(Some("192.168.80.0"), 24, None, "eth0"),
            info(Some("172.16.20.0"), 24, Some("10.10.0.254"), "eth1"),
        ]);
        let on_link = t.lookup("192.168.80.11".parse().expect("addr"));
        assert_eq!(
            on_link.map(|h| h.via),
            Some("192.168.80.11".parse().expect("addr"))
        );
        let gw = t
            .lookup("172.16.20.12".parse().expect("addr"))
            .expect("route");
        assert_eq!(
            (gw.oif.as_str(), gw.via),
            ("eth1", "10.10.0.254".parse().expect("addr"))
        );
        let def = t
            .lookup("198.51.100.1".parse().expect("addr"))
            .expect("route");
        assert_eq!(def.via, "192.168.80.254".parse::<Ipv4Addr>().expect("addr"));
    }

    #[test]
    fn ipv6_and_non_unicast_routes_are_ignored() {
        let mut v6 = info(Some("2001:db8::"), 32, None, "eth0");
        v6.family = "inet6".into();
        v6.dst = Some(IpAddr::V6("2001:db8::".parse().expect("addr")));
        let mut bcast = info(Some("10.0.0.255"), 32, None, "eth0");
        bcast.kind = "broadcast".into();
        assert!(RouteTable::from_dump(&[v6, bcast]).is_empty());
    }

    #[test]
    fn unresolved_neighbour_queues_boundedly_then_gives_up() {
        let mut c = NeighbourCache::default();
        let ip: Ipv4Addr = "10.0.0.1".parse().expect("addr");
        assert_eq!(
            c.resolve("eth0", ip, &[1], 0),
            Resolution::Queued { ask: true }
        );
        for _ in 1..MAX_PENDING_PER_NEIGHBOUR {
            assert_eq!(
                c.resolve("eth0", ip, &[1], 0),
                Resolution::Queued { ask: false }
            );
        }
        assert_eq!(c.resolve("eth0", ip, &[1], 0), Resolution::QueueFull);
        let mut asked = 1;
        let mut now = 0;
        let dropped = loop {
            now += ARP_RETRY_MS;
            let NeighbourTick { ask, dropped } = c.tick(now);
            asked += ask.len() as u32;
            if !dropped.is_empty() {
                break dropped;
            }
        };
        assert_eq!(asked, ARP_TRIES);
        assert_eq!(
            dropped,
            vec![("eth0".to_string(), MAX_PENDING_PER_NEIGHBOUR as u64)]
        );
    }

    #[test]
    fn learning_releases_the_queue() {
        let mut c = NeighbourCache::default();
        let ip: Ipv4Addr = "10.0.0.1".parse().expect("addr");
        c.resolve("eth0", ip, &[7], 0);
        assert_eq!(c.learn("eth0", ip, MacAddr([2; 6])), vec![vec![7]]);
        assert_eq!(
            c.resolve("eth0", ip, &[8], 0),
            Resolution::Known(MacAddr([2; 6]))
        );
    }
}
