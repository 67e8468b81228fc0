//! What the engine takes from the namespace's stack: a snapshot of the configured services
//! (which frames are requests, which are replies, which addresses ARP is answered for), and
//! the nft `netdev` ingress table that keeps those frames from the kernel.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use lvslab_netns::nft::{
    BaseChain, Chain, Family, IfName, Ipv4Prefix, Match, Name, PayloadBase, PortField, Rule,
    Statement, Table,
};
use lvslab_spec::lb::{ForwardMethod, Protocol, ServiceKey, ServiceStatus};

use crate::packet::frame::QuotedPacket;

/// nft table the engine and the tunnel endpoint own in their namespaces.
pub const NFT_TABLE: &str = "lvslab_engine";

/// `(protocol number, address, port)`; port 0 stands for every port.
pub type Endpoint = (u8, Ipv4Addr, u16);

/// The services as the data path needs them, rebuilt whenever the configuration changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceView {
    /// Virtual services: frames to these are requests.
    pub services: BTreeSet<Endpoint>,
    /// NAT real servers: frames from these (not to the director itself) are replies.
    pub nat_reals: BTreeSet<Endpoint>,
    /// FullNAT real servers with the local addresses of their service: frames from the
    /// former to one of the latter are replies.
    pub fullnat_reals: BTreeSet<(Endpoint, Ipv4Addr)>,
    /// Addresses the engine answers ARP for (VIPs and FullNAT local addresses).
    pub arp_addresses: BTreeSet<Ipv4Addr>,
    /// Virtual services with NAT or FullNAT destinations, whose replies the director
    /// rewrites: ICMP errors quoting such a reply come back through the director.
    pub translated_services: BTreeSet<Endpoint>,
}

fn v4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

fn has_ports(proto: u8) -> bool {
    proto == Protocol::Tcp.number() || proto == Protocol::Udp.number()
}

impl ServiceView {
    /// Builds the view from the director's listing. IPv6 and firewall-mark services are
    /// left out: AF_PACKET frames carry no mark, and the engine's rewrites are IPv4 only.
    pub fn from_listing(list: &[ServiceStatus]) -> ServiceView {
        let mut view = ServiceView::default();
        for s in list {
            let ServiceKey::Addr {
                protocol,
                addr,
                port,
            } = s.config.key
            else {
                continue;
            };
            let (Some(vip), proto) = (v4(addr), protocol.number()) else {
                continue;
            };
            if !has_ports(proto) {
                continue;
            }
            view.services.insert((proto, vip, port));
            view.arp_addresses.insert(vip);
            let lips: Vec<Ipv4Addr> = s
                .config
                .local_addresses
                .iter()
                .filter_map(|a| v4(*a))
                .collect();
            for d in &s.dests {
                let Some(rip) = v4(d.config.addr) else {
                    continue;
                };
                let real = (proto, rip, d.config.port);
                match d.config.method {
                    ForwardMethod::Nat => {
                        view.nat_reals.insert(real);
                        view.translated_services.insert((proto, vip, port));
                    }
                    ForwardMethod::FullNat => {
                        view.translated_services.insert((proto, vip, port));
                        for lip in &lips {
                            view.fullnat_reals.insert((real, *lip));
                        }
                    }
                    ForwardMethod::Dr | ForwardMethod::Tunnel | ForwardMethod::Local => {}
                }
            }
            if s.dests
                .iter()
                .any(|d| d.config.method == ForwardMethod::FullNat)
            {
                view.arp_addresses.extend(lips);
            }
        }
        view
    }

    /// Whether a packet to `(proto, dst, dport)` is a request for a virtual service.
    pub fn is_request(&self, proto: u8, dst: Ipv4Addr, dport: u16) -> bool {
        self.services.contains(&(proto, dst, dport)) || self.services.contains(&(proto, dst, 0))
    }

    /// Whether a packet from `(proto, src, sport)` to `dst` is a real server's reply.
    /// `local` are the director's own addresses: NAT real servers' answers to the
    /// director's own connections belong to its kernel.
    pub fn is_reply(
        &self,
        proto: u8,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        local: &[Ipv4Addr],
    ) -> bool {
        let real = (proto, src, sport);
        (self.nat_reals.contains(&real) && !local.contains(&dst))
            || self.fullnat_reals.contains(&(real, dst))
    }
}

impl ServiceView {
    /// Whether an ICMP error quoting `quoted` may be about a NAT/FullNAT connection: the
    /// quoted packet went to a NAT/FullNAT real server (an error from its side) or came
    /// from a virtual service with such destinations (an error from the client's side).
    /// These are the errors [`director_ruleset`] keeps from the kernel.
    pub fn is_icmp_error_about_service(&self, quoted: &QuotedPacket) -> bool {
        let Some((sport, dport)) = quoted.ports else {
            return false;
        };
        let to_real = (quoted.protocol, quoted.dst, dport);
        let from_service = (quoted.protocol, quoted.src, sport);
        self.nat_reals.contains(&to_real)
            || self.fullnat_reals.iter().any(|(real, _)| *real == to_real)
            || self.translated_services.contains(&from_service)
            || self
                .translated_services
                .contains(&(quoted.protocol, quoted.src, 0))
    }

    /// The real servers whose quoted requests the engine translates, without duplicates.
    fn translated_reals(&self) -> BTreeSet<Endpoint> {
        let mut reals = self.nat_reals.clone();
        reals.extend(self.fullnat_reals.iter().map(|(real, _)| *real));
        reals
    }
}

/// The engine's table name, as the nft model takes it.
pub fn table_name() -> Name {
    Name::new(NFT_TABLE).expect("NFT_TABLE is a valid nft name")
}

/// ICMP types whose errors IPVS relays (`ip_vs_{in,out}_icmp` handle only these):
/// destination unreachable, source quench, time exceeded.
const RELAYED_ICMP_ERRORS: [u8; 3] = [3, 4, 11];

/// The matches for an ICMP error relayed by IPVS quoting an option-less IPv4 header of
/// protocol `proto`. The quoted header starts 8 bytes into the ICMP message, so the raw
/// `@th` offsets (in bits) are: IHL/version at 64, protocol at 136, source at 160,
/// destination at 192, quoted ports at 224 and 240.
fn icmp_error_quoting(proto: u8) -> Vec<Match> {
    vec![
        Match::IcmpType(RELAYED_ICMP_ERRORS.into_iter().collect()),
        raw(64, 8, 0x45),
        raw(136, 8, u64::from(proto)),
    ]
}

/// `@th,OFFSET,LEN VALUE`; every call passes constants or values that fit their width.
fn raw(offset: u32, len: u32, value: u64) -> Match {
    Match::raw(PayloadBase::Transport, offset, len, value)
        .expect("the engine's raw matches fit their widths")
}

fn host(addr: Ipv4Addr) -> Ipv4Prefix {
    Ipv4Prefix::host(addr)
}

fn drop_rule(matches: Vec<Match>) -> Result<Rule, lvslab_netns::Error> {
    Rule::new(matches, Statement::Drop)
}

/// The director's table: per interface an ingress chain dropping exactly the frames the
/// engine handles (AF_PACKET has already seen them), so the namespace's own stack neither
/// answers nor forwards them. [`lvslab_netns::nft::apply`] replaces any previous version
/// of the table in one transaction.
pub fn director_ruleset(
    view: &ServiceView,
    ifaces: &[String],
    local: &[Ipv4Addr],
) -> Result<Table, lvslab_netns::Error> {
    let mut rules = Vec::new();
    // Every entry is TCP or UDP (`from_listing` keeps only those); one that were not
    // is left to the kernel rather than dropped by a rule without its port.
    let port = |proto: u8, field, port| {
        Protocol::from_number(proto).map(|protocol| Match::Port {
            protocol,
            field,
            port,
        })
    };
    for &(proto, vip, p) in &view.services {
        let daddr = Match::Daddr {
            prefix: host(vip),
            negate: false,
        };
        if p == 0 {
            rules.push(drop_rule(vec![daddr, Match::IpProtocol(proto)])?);
        } else if let Some(dport) = port(proto, PortField::Dport, p) {
            rules.push(drop_rule(vec![daddr, dport])?);
        }
    }
    for &(proto, rip, p) in &view.nat_reals {
        let Some(sport) = port(proto, PortField::Sport, p) else {
            continue;
        };
        let saddr = Match::Saddr {
            prefix: host(rip),
            negate: false,
        };
        let mut m = vec![saddr, sport];
        if !local.is_empty() {
            m.push(Match::DaddrIn {
                addrs: local.iter().copied().collect(),
                negate: true,
            });
        }
        rules.push(drop_rule(m)?);
    }
    for &((proto, rip, p), lip) in &view.fullnat_reals {
        let Some(sport) = port(proto, PortField::Sport, p) else {
            continue;
        };
        let saddr = Match::Saddr {
            prefix: host(rip),
            negate: false,
        };
        let daddr = Match::Daddr {
            prefix: host(lip),
            negate: false,
        };
        rules.push(drop_rule(vec![saddr, daddr, sport])?);
    }
    // ICMP errors about the engine's connections: the kernel would forward (or swallow)
    // them untranslated. Quoted destination = a real server: from the real server's side;
    // quoted source = a virtual service: from the client's side.
    for (proto, rip, p) in view.translated_reals() {
        let mut m = icmp_error_quoting(proto);
        m.push(raw(192, 32, u64::from(u32::from(rip))));
        if p != 0 {
            m.push(raw(240, 16, u64::from(p)));
        }
        rules.push(drop_rule(m)?);
    }
    for &(proto, vip, p) in &view.translated_services {
        let mut m = icmp_error_quoting(proto);
        m.push(raw(160, 32, u64::from(u32::from(vip))));
        if p != 0 {
            m.push(raw(224, 16, u64::from(p)));
        }
        rules.push(drop_rule(m)?);
    }
    ingress_table(ifaces, &rules)
}

/// The tunnel endpoint's table: tunnelled packets (`ip_proto`: 4 IPIP, 47 GRE) to the
/// real server's addresses are dropped before its kernel, which has no ipip/gre and would
/// answer "protocol unreachable".
pub fn endpoint_ruleset(
    iface: &str,
    ip_proto: u8,
    addrs: &[Ipv4Addr],
) -> Result<Table, lvslab_netns::Error> {
    let rule = drop_rule(vec![
        Match::DaddrIn {
            addrs: addrs.iter().copied().collect(),
            negate: false,
        },
        Match::IpProtocol(ip_proto),
    ])?;
    ingress_table(&[iface.to_string()], &[rule])
}

/// One `ingress_<iface>` chain per interface (`ingress_<k>` when the interface name does
/// not make an nft name), each with all `rules`.
fn ingress_table(ifaces: &[String], rules: &[Rule]) -> Result<Table, lvslab_netns::Error> {
    let mut chains = Vec::new();
    for (k, iface) in ifaces.iter().enumerate() {
        let name = Name::new(&format!("ingress_{iface}"))
            .or_else(|_| Name::new(&format!("ingress_{k}")))?;
        let device = IfName::new(iface)?;
        chains.push(Chain::new(
            name,
            Some(BaseChain::ingress(device)),
            rules.to_vec(),
        ));
    }
    Table::new(Family::Netdev, table_name(), chains)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvslab_spec::lb::{DestConfig, DestStatus, Scheduler, ServiceConfig, Stats};

    /// The table as nft syntax, for assertions on its rules.
    fn text(table: &Result<Table, lvslab_netns::Error>) -> String {
        lvslab_netns::nft::render::table(table.as_ref().expect("valid table"))
    }

    fn status(method: ForwardMethod, rport: u16, lips: &[&str]) -> ServiceStatus {
        let key = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "203.0.113.10".parse().expect("addr"),
            port: 80,
        };
        let mut config = ServiceConfig::new(key, Scheduler::Rr);
        config.local_addresses = lips.iter().map(|a| a.parse().expect("addr")).collect();
        let mut dest = DestConfig::new("172.16.20.11".parse().expect("addr"), rport);
        dest.method = method;
        ServiceStatus {
            config,
            stats: Stats::default(),
            dests: vec![DestStatus {
                config: dest,
                active_conns: 0,
                inactive_conns: 0,
                persist_conns: 0,
                stats: Stats::default(),
            }],
        }
    }

    #[test]
    fn nat_view_marks_replies_except_to_the_director() {
        let v = ServiceView::from_listing(&[status(ForwardMethod::Nat, 8080, &[])]);
        let vip: Ipv4Addr = "203.0.113.10".parse().expect("addr");
        let rip: Ipv4Addr = "172.16.20.11".parse().expect("addr");
        let client: Ipv4Addr = "198.51.100.1".parse().expect("addr");
        assert!(v.is_request(6, vip, 80));
        assert!(!v.is_request(17, vip, 80));
        assert!(v.is_reply(6, rip, 8080, client, &[vip]));
        assert!(!v.is_reply(6, rip, 8080, vip, &[vip]));
        let rules = text(&director_ruleset(&v, &["eth0".into()], &[vip]));
        assert!(
            rules.contains("ip daddr 203.0.113.10 tcp dport 80 drop"),
            "{rules}"
        );
        assert!(
            rules.contains("ip saddr 172.16.20.11 tcp sport 8080 ip daddr != 203.0.113.10 drop"),
            "{rules}"
        );
        assert!(rules.contains("chain ingress_eth0 {"), "{rules}");
        assert!(rules.contains("hook ingress device \"eth0\""), "{rules}");
    }

    #[test]
    fn fullnat_view_answers_arp_for_local_addresses() {
        let v =
            ServiceView::from_listing(&[status(ForwardMethod::FullNat, 8080, &["10.10.0.101"])]);
        let lip: Ipv4Addr = "10.10.0.101".parse().expect("addr");
        assert!(v.arp_addresses.contains(&lip));
        assert!(v.is_reply(6, "172.16.20.11".parse().expect("addr"), 8080, lip, &[]));
        let rules = text(&director_ruleset(&v, &["eth1".into()], &[]));
        assert!(
            rules.contains("ip saddr 172.16.20.11 ip daddr 10.10.0.101 tcp sport 8080 drop"),
            "{rules}"
        );
    }

    fn quoted(src: &str, sport: u16, dst: &str, dport: u16) -> QuotedPacket {
        QuotedPacket {
            offset: 42,
            header_len: 20,
            protocol: 6,
            src: src.parse().expect("addr"),
            dst: dst.parse().expect("addr"),
            ports: Some((sport, dport)),
        }
    }

    #[test]
    fn icmp_errors_quoting_nat_traffic_are_the_engines() {
        let v = ServiceView::from_listing(&[status(ForwardMethod::Nat, 8080, &[])]);
        // From the real server's side: quotes CIP:cport → RIP:rport.
        assert!(v.is_icmp_error_about_service(&quoted(
            "198.51.100.1",
            40000,
            "172.16.20.11",
            8080
        )));
        // From the client's side: quotes VIP:vport → CIP:cport.
        assert!(v.is_icmp_error_about_service(&quoted("203.0.113.10", 80, "198.51.100.1", 40000)));
        assert!(!v.is_icmp_error_about_service(&quoted("198.51.100.1", 40000, "172.16.20.11", 22)));
        let rules = text(&director_ruleset(&v, &["eth0".into()], &[]));
        // 172.16.20.11 = 0xac10140b, 203.0.113.10 = 0xcb00710a; 8080 = 0x1f90, 80 = 0x50.
        let quoting = "icmp type { 3, 4, 11 } @th,64,8 0x45 @th,136,8 0x6";
        assert!(
            rules.contains(&format!(
                "{quoting} @th,192,32 0xac10140b @th,240,16 0x1f90 drop"
            )),
            "{rules}"
        );
        assert!(
            rules.contains(&format!(
                "{quoting} @th,160,32 0xcb00710a @th,224,16 0x50 drop"
            )),
            "{rules}"
        );
    }

    #[test]
    fn icmp_errors_about_dr_services_stay_with_the_kernel() {
        let v = ServiceView::from_listing(&[status(ForwardMethod::Dr, 80, &[])]);
        assert!(!v.is_icmp_error_about_service(&quoted("203.0.113.10", 80, "198.51.100.1", 40000)));
        let rules = text(&director_ruleset(&v, &["eth0".into()], &[]));
        assert!(!rules.contains("icmp"), "{rules}");
    }

    #[test]
    fn endpoint_rules_drop_only_the_tunnel_protocol() {
        let r = text(&endpoint_ruleset(
            "eth0",
            47,
            &["198.51.100.1".parse().expect("addr")],
        ));
        assert!(
            r.contains("ip daddr 198.51.100.1 ip protocol 47 drop"),
            "{r}"
        );
        assert!(r.starts_with("table netdev lvslab_engine {"), "{r}");
        let two = ["198.51.100.1", "198.51.100.2"].map(|a| a.parse().expect("addr"));
        let r = text(&endpoint_ruleset("eth0", 4, &two));
        assert!(
            r.contains("ip daddr { 198.51.100.1, 198.51.100.2 } ip protocol 4 drop"),
            "{r}"
        );
    }

    #[test]
    fn interfaces_nft_cannot_name_get_numbered_chains_or_an_error() {
        let v = ServiceView::from_listing(&[status(ForwardMethod::Nat, 8080, &[])]);
        let rules = text(&director_ruleset(
            &v,
            &["eth0".into(), "veth@1".into()],
            &[],
        ));
        assert!(rules.contains("chain ingress_1 {"), "{rules}");
        assert!(rules.contains("device \"veth@1\""), "{rules}");
        let err = director_ruleset(&v, &["bad\"name".into()], &[]).expect_err("unquotable");
        assert!(err.to_string().contains("bad\\\"name"), "{err}");
    }
}
