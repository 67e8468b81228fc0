//! The lab file as written (`labs/<lab>/lab.toml`): serde structs that mirror the TOML.
//!
//! Values that other parts refer to carry their source span so that validation errors can
//! point at the exact line and column. Unknown fields are rejected everywhere.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// A string with the place it came from in the file.
pub type SpannedStr = Spanned<String>;

/// Top level of `lab.toml`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    /// Name, title and the forwarding mode the lab demonstrates.
    pub lab: LabMeta,
    /// Parameters a user may set with `--param NAME=VALUE`; `${NAME}` in any string value is
    /// replaced by the chosen value before the file is read.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, ParamDecl>")]
    pub params: IndexMap<SpannedStr, ParamDecl>,
    /// The hosts of the lab; each becomes one network namespace.
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeFile>,
    /// Point-to-point cables (a veth pair between two nodes).
    #[serde(default, rename = "link")]
    pub links: Vec<LinkFile>,
    /// Switched segments (a bridge in a namespace of its own, one veth per port).
    #[serde(default, rename = "switch")]
    pub switches: Vec<SwitchFile>,
    /// Tunnel interfaces (GRE or IPIP) on a node.
    #[serde(default, rename = "tunnel")]
    pub tunnels: Vec<TunnelFile>,
    /// Virtual services the lab's director balances.
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceFile>,
    /// What `lvslab traffic` sends when not told otherwise.
    pub traffic: Option<TrafficFile>,
    /// Reachability checks run after `up` and in every trial.
    #[serde(default, rename = "check")]
    pub checks: Vec<CheckFile>,
    /// Where trials capture packets; every interface of every node when absent.
    pub capture: Option<CaptureFile>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureFile {
    /// Capture points, `node:iface` each (`node:*` for every interface of a node).
    #[schemars(with = "Vec<String>")]
    pub points: Vec<SpannedStr>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabMeta {
    /// Short name, used as the default instance name (`[a-z0-9-]`, at most 12 bytes).
    #[schemars(with = "String")]
    pub name: SpannedStr,
    /// One line saying what the lab shows.
    pub title: String,
    /// Forwarding mode demonstrated: `nat`, `dr`, `tun` or `fullnat`.
    #[schemars(with = "String")]
    pub mode: SpannedStr,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    /// Value used when the user sets none.
    #[schemars(with = "String")]
    pub default: SpannedStr,
    /// Every accepted value (letters, digits, `_`, `.` and `-`: values are pasted into
    /// the file and into instance names).
    #[schemars(with = "Vec<String>")]
    pub allowed: Vec<SpannedStr>,
    /// What the parameter changes.
    #[serde(default)]
    pub help: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// Node name (`[a-z0-9-]`, at most 10 bytes so derived names fit the kernel's limits).
    #[schemars(with = "String")]
    pub name: SpannedStr,
    /// What the node is in the story: client, router, firewall, director, real-server, switch.
    #[schemars(with = "String")]
    pub role: SpannedStr,
    /// Addresses per interface, e.g. `{ eth0 = ["192.168.80.11/24"], lo = ["192.168.80.66/32"] }`.
    /// Interface names are 1 to 15 letters, digits, `_`, `.` or `-`, not starting with `-`.
    /// Every interface named here must be a link end, switch port, tunnel, `lo`, or the
    /// node's decapsulation device.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, Vec<String>>")]
    pub interfaces: IndexMap<SpannedStr, Vec<SpannedStr>>,
    /// Routes of the main table.
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    /// Per-namespace sysctls, e.g. `{ "net.ipv4.ip_forward" = 1 }`: `net.` keys; in
    /// `net.ipv4.conf.<iface>.…` the interface is one of the node's, `all` or `default`.
    /// Values are checked against the kernel's ranges (`rp_filter` 0–2, `arp_ignore` 0–8,
    /// …); other keys take 32-bit integers separated by single spaces.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub sysctls: IndexMap<SpannedStr, Spanned<SysctlValue>>,
    /// Address translation rules (nftables).
    #[serde(default)]
    pub nat: Vec<NatFile>,
    /// Programs the node runs, e.g. `{ kind = "http", port = 8080 }`.
    #[serde(default)]
    pub servers: Vec<ServerFile>,
    /// A real server in TUN mode: the device that receives decapsulated packets.
    pub decap: Option<DecapFile>,
}

/// A sysctl value may be written as a number or a string. Booleans and floats are read
/// only to be refused with a message that says what the sysctl takes.
#[derive(Debug, Deserialize, JsonSchema, Clone, PartialEq)]
#[serde(untagged)]
pub enum SysctlValue {
    Int(i64),
    Str(String),
    Bool(bool),
    Float(f64),
}

impl SysctlValue {
    /// The value as written to `/proc/sys` (only integers and strings pass validation).
    pub fn as_string(&self) -> String {
        match self {
            SysctlValue::Int(i) => i.to_string(),
            SysctlValue::Str(s) => s.clone(),
            SysctlValue::Bool(b) => b.to_string(),
            SysctlValue::Float(f) => f.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// `default`, or a prefix such as `192.0.2.2/32`.
    #[schemars(with = "String")]
    pub to: SpannedStr,
    /// Gateway: an address or `node:iface` (that interface's first address).
    #[schemars(with = "Option<String>")]
    pub via: Option<SpannedStr>,
    /// Output interface.
    #[schemars(with = "Option<String>")]
    pub dev: Option<SpannedStr>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatFile {
    /// `masquerade`, `snat` or `dnat`.
    #[schemars(with = "String")]
    pub kind: SpannedStr,
    /// Match: source prefix.
    #[schemars(with = "Option<String>")]
    pub source: Option<SpannedStr>,
    /// Match: source prefixes *not* matched (the article's `! -d 192.168.10.0/24`).
    #[schemars(with = "Option<String>")]
    pub not_destination: Option<SpannedStr>,
    /// Match: destination address (or `node:iface`).
    #[schemars(with = "Option<String>")]
    pub destination: Option<SpannedStr>,
    /// Match: protocol (`tcp`/`udp`), needed with `port`.
    #[schemars(with = "Option<String>")]
    pub protocol: Option<SpannedStr>,
    /// Match: destination port.
    pub port: Option<u16>,
    /// Match: output interface (masquerade/snat).
    #[schemars(with = "Option<String>")]
    pub out: Option<SpannedStr>,
    /// snat/dnat: the new address (or `node:iface`).
    #[schemars(with = "Option<String>")]
    pub to: Option<SpannedStr>,
    /// dnat: the new port.
    pub to_port: Option<u16>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// `http` (answers every request with the node name), `tcp-echo` or `udp-echo`.
    #[schemars(with = "String")]
    pub kind: SpannedStr,
    /// Port to listen on (not 0).
    #[schemars(with = "u16")]
    pub port: Spanned<u16>,
    /// Address to bind (default: every address).
    #[schemars(with = "Option<String>")]
    pub bind: Option<SpannedStr>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecapFile {
    /// Encapsulation received: `ipip` or `gre`.
    #[schemars(with = "String")]
    pub encap: SpannedStr,
    /// Device that holds the VIP and receives the inner packets: `tunl0`, the ipip
    /// module's own device (the article's).
    #[schemars(with = "String")]
    pub device: SpannedStr,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkFile {
    /// The two ends, `node:iface` each.
    #[schemars(with = "[String; 2]")]
    pub ends: [SpannedStr; 2],
    /// MTU of both ends (68 to 65535, what a veth takes).
    #[schemars(with = "Option<u32>")]
    pub mtu: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchFile {
    /// Segment name (`[a-z0-9-]`, at most 10 bytes).
    #[schemars(with = "String")]
    pub name: SpannedStr,
    /// Node interfaces plugged into the switch, `node:iface` each.
    #[schemars(with = "Vec<String>")]
    pub ports: Vec<SpannedStr>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TunnelFile {
    /// Node the tunnel interface lives on.
    #[schemars(with = "String")]
    pub node: SpannedStr,
    /// Interface name.
    #[schemars(with = "String")]
    pub name: SpannedStr,
    /// `gre` or `ipip`.
    #[schemars(with = "String")]
    pub kind: SpannedStr,
    /// Outer source: address or `node:iface`.
    #[schemars(with = "String")]
    pub local: SpannedStr,
    /// Outer destination: address or `node:iface`.
    #[schemars(with = "String")]
    pub remote: SpannedStr,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// The node that balances (runs IPVS or the userspace engine).
    #[schemars(with = "String")]
    pub director: SpannedStr,
    /// Virtual address: an address or `node:iface`.
    #[schemars(with = "String")]
    pub vip: SpannedStr,
    /// `tcp` or `udp`.
    #[schemars(with = "String")]
    pub protocol: SpannedStr,
    pub port: u16,
    /// Scheduler name as `ipvsadm -s` takes it.
    #[schemars(with = "String")]
    pub scheduler: SpannedStr,
    /// Persistence timeout in seconds (`-p`); absent = not persistent.
    pub persistence: Option<u32>,
    /// Persistence netmask (`-M`), e.g. `255.255.255.0`.
    #[schemars(with = "Option<String>")]
    pub netmask: Option<SpannedStr>,
    /// FullNAT local-address pool (addresses or `node:iface`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub local_addresses: Vec<SpannedStr>,
    /// Destinations.
    #[serde(rename = "real_server")]
    pub real_servers: Vec<RealServerFile>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RealServerFile {
    /// Address or `node:iface`.
    #[schemars(with = "String")]
    pub address: SpannedStr,
    /// Port on the real server (NAT/FullNAT may differ from the service port).
    pub port: u16,
    /// `nat` (-m), `dr` (-g), `tun` (-i) or `fullnat`.
    #[schemars(with = "String")]
    pub method: SpannedStr,
    /// Weight (default 1).
    pub weight: Option<u32>,
    /// Tunnel encapsulation for `tun`: `ipip` or `gre`.
    #[schemars(with = "Option<String>")]
    pub tunnel: Option<SpannedStr>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficFile {
    /// Node that sends.
    #[schemars(with = "String")]
    pub from: SpannedStr,
    /// Address or `node:iface` it sends to.
    #[schemars(with = "String")]
    pub to: SpannedStr,
    /// Destination port (not 0).
    #[schemars(with = "u16")]
    pub port: Spanned<u16>,
    /// `tcp` or `udp`.
    #[schemars(with = "String")]
    pub protocol: SpannedStr,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckFile {
    /// Node that probes.
    #[schemars(with = "String")]
    pub from: SpannedStr,
    /// Address or `node:iface` probed.
    #[schemars(with = "String")]
    pub to: SpannedStr,
    /// `ping` (ICMP echo) or `tcp` (connect to `port`).
    #[schemars(with = "String")]
    pub kind: SpannedStr,
    /// Port a `tcp` check connects to (not 0).
    #[schemars(with = "Option<u16>")]
    pub port: Option<Spanned<u16>>,
    /// `true` (default) when the probe must succeed, `false` when it must fail.
    #[serde(default = "yes")]
    pub expect_ok: bool,
    /// Checks that need the load balancer (e.g. a request to the VIP) run only once it is
    /// installed.
    #[serde(default)]
    pub needs_balancer: bool,
}

fn yes() -> bool {
    true
}
