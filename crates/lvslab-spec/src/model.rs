//! The validated lab: every reference resolved, every value typed. This is what the
//! planner, the dataplanes and the harness consume.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::Serialize;

use crate::lb::{DestConfig, Protocol, ServiceConfig};
pub use crate::vocab::{Encap, Mode};

/// What a node is in the lab's story; diagnosis and reports use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Client,
    Router,
    Firewall,
    Director,
    RealServer,
}

impl Role {
    pub const NAMES: &'static str = "client, router, firewall, director, real-server";

    /// Where the role sits on a request's path, client first: orders capture points.
    pub fn path_rank(self) -> u8 {
        match self {
            Role::Client => 0,
            Role::Router => 1,
            Role::Firewall => 2,
            Role::Director => 3,
            Role::RealServer => 4,
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "client" => Role::Client,
            "router" => Role::Router,
            "firewall" => Role::Firewall,
            "director" => Role::Director,
            "real-server" => Role::RealServer,
            _ => return None,
        })
    }
}

/// An address with its prefix length, e.g. `192.168.80.11/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn max_len(addr: &IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let m = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.len)
                };
                IpAddr::V4((u32::from(a) & m).into())
            }
            IpAddr::V6(a) => {
                let m = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.len)
                };
                IpAddr::V6((u128::from(a) & m).into())
            }
        }
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        Prefix {
            addr: *ip,
            len: self.len,
        }
        .network()
            == self.network()
            && ip.is_ipv4() == self.addr.is_ipv4()
    }

    /// Whether two prefixes share any address.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        let shorter = if self.len <= other.len { self } else { other };
        let longer = if self.len <= other.len { other } else { self };
        shorter.contains(&longer.addr)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` has no prefix length (write e.g. `{s}/24`)"))?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let len: u8 = l
            .parse()
            .map_err(|_| format!("prefix length `{l}` is not a number"))?;
        if len > Prefix::max_len(&addr) {
            return Err(format!(
                "prefix length {len} is larger than {}",
                Prefix::max_len(&addr)
            ));
        }
        Ok(Prefix { addr, len })
    }
}

/// `node:iface`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub node: String,
    pub iface: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.iface)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    pub role: Role,
    /// Addresses per interface, in file order.
    pub interfaces: IndexMap<String, Vec<Prefix>>,
    pub routes: Vec<Route>,
    pub sysctls: Vec<(String, String)>,
    pub nat: Vec<NatRule>,
    pub servers: Vec<Server>,
    pub decap: Option<Decap>,
}

impl Node {
    /// First address of an interface.
    pub fn first_address(&self, iface: &str) -> Option<IpAddr> {
        self.interfaces.get(iface)?.first().map(|p| p.addr)
    }

    /// Whether any interface holds `ip`.
    pub fn holds(&self, ip: &IpAddr) -> bool {
        self.interfaces.values().flatten().any(|p| p.addr == *ip)
    }
}

/// A main-table route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// `None` is the default route.
    pub dest: Option<Prefix>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
}

/// An nftables NAT rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NatRule {
    Masquerade {
        source: Option<Prefix>,
        not_destination: Option<Prefix>,
        out: Option<String>,
    },
    Snat {
        source: Option<Prefix>,
        not_destination: Option<Prefix>,
        out: Option<String>,
        to: IpAddr,
    },
    Dnat {
        protocol: Protocol,
        destination: IpAddr,
        port: u16,
        to: IpAddr,
        to_port: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    /// Answers every HTTP request with the node's name.
    Http,
    TcpEcho,
    UdpEcho,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub kind: ServerKind,
    pub port: u16,
    pub bind: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decap {
    pub encap: Encap,
    pub device: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
    pub mtu: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Switch {
    pub name: String,
    pub ports: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tunnel {
    pub node: String,
    pub name: String,
    pub kind: Encap,
    pub local: IpAddr,
    pub remote: IpAddr,
}

/// A virtual service with its real servers, in the order the lab file lists them (the
/// order they are added to the load balancer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub director: String,
    pub config: ServiceConfig,
    pub real_servers: Vec<RealServer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RealServer {
    /// The node that holds the real server's address, if the lab has one.
    pub node: Option<String>,
    pub config: DestConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub from: String,
    pub to: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CheckKind {
    Ping,
    Tcp { port: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub from: String,
    pub to: IpAddr,
    pub kind: CheckKind,
    pub expect_ok: bool,
    pub needs_balancer: bool,
}

/// A validated lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lab {
    pub name: String,
    pub title: String,
    pub mode: Mode,
    /// The lab file it came from.
    pub source: PathBuf,
    /// Parameter values in effect.
    pub params: IndexMap<String, String>,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub switches: Vec<Switch>,
    pub tunnels: Vec<Tunnel>,
    pub services: Vec<Service>,
    pub traffic: Option<Traffic>,
    pub checks: Vec<Check>,
    /// Capture points the lab declares (`node:iface`, `node:*`); `None`: every interface
    /// of every node.
    pub capture_points: Option<Vec<Endpoint>>,
}

impl Lab {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// `node:iface` of the interface that holds `ip`, for messages. Interfaces other than
    /// `lo` and decapsulation devices are preferred, so a VIP hidden on real servers'
    /// loopbacks is named after the director.
    pub fn label_of(&self, ip: &IpAddr) -> Option<String> {
        let mut hidden = None;
        for n in &self.nodes {
            for (iface, prefixes) in &n.interfaces {
                if prefixes.iter().any(|p| p.addr == *ip) {
                    let is_hidden =
                        iface == "lo" || n.decap.as_ref().is_some_and(|d| &d.device == iface);
                    if !is_hidden {
                        return Some(format!("{}:{}", n.name, iface));
                    }
                    hidden.get_or_insert_with(|| format!("{}:{}", n.name, iface));
                }
            }
        }
        hidden
    }

    /// The points trials capture at (`node:iface`), client side first: those the lab's
    /// `[capture]` declares (`node:*` standing for every interface of the node but `lo`),
    /// else every interface of every node but `lo`.
    pub fn points_to_capture(&self) -> Vec<String> {
        let mut nodes: Vec<_> = self.nodes.iter().collect();
        nodes.sort_by_key(|n| n.role.path_rank());
        let declared = |node: &str, iface: &str| match &self.capture_points {
            None => iface != "lo",
            Some(points) => points
                .iter()
                .any(|e| e.node == node && (e.iface == iface || (e.iface == "*" && iface != "lo"))),
        };
        let mut out = Vec::new();
        for n in nodes {
            let mut ifaces = self.node_interfaces(&n.name);
            ifaces.push("lo".to_string());
            for iface in ifaces {
                let p = format!("{}:{iface}", n.name);
                if declared(&n.name, &iface) && !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Every interface a node will have besides `lo`: link ends, switch ports, tunnels,
    /// its decapsulation device.
    pub fn node_interfaces(&self, node: &str) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.links {
            for e in [&l.a, &l.b] {
                if e.node == node {
                    out.push(e.iface.clone());
                }
            }
        }
        for s in &self.switches {
            for e in &s.ports {
                if e.node == node {
                    out.push(e.iface.clone());
                }
            }
        }
        for t in &self.tunnels {
            if t.node == node {
                out.push(t.name.clone());
            }
        }
        if let Some(d) = self.node(node).and_then(|n| n.decap.as_ref()) {
            out.push(d.device.clone());
        }
        out
    }
}
