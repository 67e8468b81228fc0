//! ICMP in the director engine: port unreachable for requests the director rejects (no
//! destination available), as `icmp_send(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)` would send
//! it; and which tracked flow an ICMP error is about ([`flow_of_icmp_error`]), so it can be
//! translated back as `ip_vs_out_icmp` / `ip_vs_in_icmp` do.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use lvslab_spec::lb::ForwardMethod;

use crate::conn::{Conn, ConnKey, ReplyKey};
use crate::director::Director;
use crate::packet::checksum::checksum;
use crate::packet::frame::{icmp_type, QuotedPacket};
use crate::packet::{Ipv4Info, MacAddr};
use crate::rewrite::{Egress, IcmpTranslation};

/// The ICMP types IPVS relays for its connections (`ip_vs_out_icmp`/`ip_vs_in_icmp` let
/// only these through): destination unreachable (frag-needed included), source quench and
/// time exceeded.
pub const RELAYED_ERRORS: [u8; 3] = [
    icmp_type::DEST_UNREACH,
    icmp_type::SOURCE_QUENCH,
    icmp_type::TIME_EXCEEDED,
];

/// A tracked NAT/FullNAT flow an ICMP error is about, with the addresses its translation
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpFlow {
    /// From the real server's side (the real server or a router toward it) about a request
    /// the director sent it: goes to the client.
    FromRealServer {
        /// The connection's forwarding method (NAT or FullNAT).
        method: ForwardMethod,
        /// The virtual service (`VIP:vport`).
        virtual_service: SocketAddrV4,
        /// The client (`CIP:cport`).
        client: SocketAddrV4,
    },
    /// From the client's side about a reply the director sent it: goes to the real server.
    FromClient {
        /// The connection's forwarding method (NAT or FullNAT).
        method: ForwardMethod,
        /// The real server (`RIP:rport`).
        real: SocketAddrV4,
        /// The FullNAT local address (`LIP:lport`); `None` for NAT.
        local: Option<SocketAddrV4>,
    },
}

impl IcmpFlow {
    /// Where the translated error goes: the client or the real server.
    pub fn toward(&self) -> Ipv4Addr {
        match self {
            IcmpFlow::FromRealServer { client, .. } => *client.ip(),
            IcmpFlow::FromClient { real, .. } => *real.ip(),
        }
    }

    /// The rewrite that makes the receiver see its own packet quoted.
    pub fn translation(&self, egress: Egress) -> IcmpTranslation {
        match *self {
            IcmpFlow::FromRealServer {
                method: ForwardMethod::FullNat,
                virtual_service,
                client,
            } => IcmpTranslation::fullnat_from_real_server(virtual_service, client, egress),
            IcmpFlow::FromRealServer {
                virtual_service, ..
            } => IcmpTranslation::nat_from_real_server(virtual_service, egress),
            IcmpFlow::FromClient {
                real,
                local: Some(local),
                ..
            } => IcmpTranslation::fullnat_from_client(local, real, egress),
            IcmpFlow::FromClient { real, .. } => IcmpTranslation::nat_from_client(real, egress),
        }
    }
}

fn v4(addr: IpAddr, port: u16) -> Option<SocketAddrV4> {
    match addr {
        IpAddr::V4(a) => Some(SocketAddrV4::new(a, port)),
        IpAddr::V6(_) => None,
    }
}

/// Finds the NAT/FullNAT connection the packet quoted by an ICMP error belongs to, without
/// touching its state or timers (the kernel's ICMP paths only count the error).
///
/// As `ip_vs_out_icmp` does, the quoted packet is first taken as one the director sent to a
/// real server (`CIP:cport → RIP:rport` for NAT, `LIP:lport → RIP:rport` for FullNAT): with
/// its roles swapped it is the key of that real server's replies. Failing that, as in
/// `ip_vs_in_icmp`, it is taken as a reply the director sent to the client
/// (`VIP:vport → CIP:cport`), whose roles swapped give the client's connection key.
/// Templates, DR/TUN/local connections and IPv6 entries give `None`.
pub fn flow_of_icmp_error(director: &Director, quoted: &QuotedPacket) -> Option<IcmpFlow> {
    let (sport, dport) = quoted.ports?;
    let conns = director.conns();
    let reply_key = ReplyKey {
        proto: quoted.protocol,
        saddr: IpAddr::V4(quoted.dst),
        sport: dport,
        daddr: IpAddr::V4(quoted.src),
        dport: sport,
    };
    let usable = |c: &&Conn| {
        !c.flags.template && matches!(c.method, ForwardMethod::Nat | ForwardMethod::FullNat)
    };
    if let Some(c) = conns
        .lookup_reply(&reply_key)
        .and_then(|id| conns.get(id))
        .filter(usable)
    {
        return Some(IcmpFlow::FromRealServer {
            method: c.method,
            virtual_service: v4(c.key.vaddr, c.key.vport)?,
            client: v4(c.key.caddr, c.key.cport)?,
        });
    }
    let conn_key = ConnKey {
        proto: quoted.protocol,
        caddr: IpAddr::V4(quoted.dst),
        cport: dport,
        vaddr: IpAddr::V4(quoted.src),
        vport: sport,
    };
    let c = conns
        .lookup_in(&conn_key)
        .and_then(|id| conns.get(id))
        .filter(usable)?;
    let local = match (c.method, c.local) {
        (ForwardMethod::FullNat, Some((addr, port))) => Some(v4(addr, port)?),
        (ForwardMethod::FullNat, None) => return None,
        _ => None,
    };
    Some(IcmpFlow::FromClient {
        method: c.method,
        real: v4(c.daddr, c.dport)?,
        local,
    })
}

/// An ICMP error carries at most this many bytes of IP packet (RFC 1812 / the kernel's 576).
const MAX_ERROR_LEN: usize = 576;
const IP_HEADER: usize = 20;
const ICMP_HEADER: usize = 8;

/// The frame answering `frame` (whose IPv4 packet is `ip`) with ICMP destination
/// unreachable / port unreachable from `source`, sent back to the frame's sender MAC.
pub fn port_unreachable(
    frame: &[u8],
    ip: &Ipv4Info,
    our_mac: MacAddr,
    source: Ipv4Addr,
) -> Vec<u8> {
    let quoted_end = ip.end().min(frame.len());
    let quote_len = (quoted_end - ip.offset).min(MAX_ERROR_LEN - IP_HEADER - ICMP_HEADER);
    let quote = &frame[ip.offset..ip.offset + quote_len];
    let total = IP_HEADER + ICMP_HEADER + quote.len();
    let mut out = Vec::with_capacity(14 + total);
    out.extend_from_slice(&frame[6..12]);
    out.extend_from_slice(&our_mac.0);
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_start = out.len();
    out.extend_from_slice(&[0x45, 0xc0]);
    out.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
    out.extend_from_slice(&source.octets());
    out.extend_from_slice(&ip.src.octets());
    let ip_sum = checksum(&out[ip_start..ip_start + IP_HEADER]);
    out[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());
    let icmp_start = out.len();
    out.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(quote);
    let icmp_sum = checksum(&out[icmp_start..]);
    out[icmp_start + 2..icmp_start + 4].copy_from_slice(&icmp_sum.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{parse_frame, Payload, Transport};

    fn udp_frame() -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
        let mut ip = vec![0x45, 0, 0, 32, 0, 1, 0x40, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&[198, 51, 100, 10, 203, 0, 113, 10]);
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
        f
    }

    use crate::conn::TcpFlags;
    use crate::director::{FlowKey, Verdict};
    use lvslab_spec::lb::ServiceKey;
    use lvslab_spec::lb::{DestConfig, LoadBalancer, Protocol, Scheduler, ServiceConfig};

    const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
    const RIP: Ipv4Addr = Ipv4Addr::new(172, 16, 20, 11);
    const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const LIP: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 101);

    /// A director with one TCP service on VIP:80 → RIP:8080 by `method`, and one client
    /// connection from CIP:40000 scheduled; also returns its FullNAT local endpoint.
    fn director_with_conn(method: ForwardMethod) -> (Director, Option<SocketAddrV4>) {
        let mut d = Director::default();
        let key = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(VIP),
            port: 80,
        };
        let mut cfg = ServiceConfig::new(key, Scheduler::Rr);
        cfg.local_addresses = vec![IpAddr::V4(LIP)];
        d.add_service(&cfg).expect("add service");
        let mut dest = DestConfig::new(IpAddr::V4(RIP), 8080);
        dest.method = method;
        d.add_dest(&key, &dest).expect("add destination");
        let syn = FlowKey {
            protocol: Protocol::Tcp,
            saddr: IpAddr::V4(CIP),
            sport: 40000,
            daddr: IpAddr::V4(VIP),
            dport: 80,
            tcp_flags: TcpFlags(TcpFlags::SYN),
            fwmark: 0,
            len: 60,
        };
        let Verdict::Forward(f) = d.lookup_or_schedule(0, &syn) else {
            panic!("the SYN is not forwarded");
        };
        let local = f.fullnat.and_then(|(a, p)| v4(a, p));
        (d, local)
    }

    fn quoted(src: SocketAddrV4, dst: SocketAddrV4) -> QuotedPacket {
        QuotedPacket {
            offset: 42,
            header_len: 20,
            protocol: 6,
            src: *src.ip(),
            dst: *dst.ip(),
            ports: Some((src.port(), dst.port())),
        }
    }

    #[test]
    fn nat_errors_are_found_from_both_sides() {
        let (d, _) = director_with_conn(ForwardMethod::Nat);
        let client = SocketAddrV4::new(CIP, 40000);
        let real = SocketAddrV4::new(RIP, 8080);
        let vs = SocketAddrV4::new(VIP, 80);
        // What the real server got: CIP:cport → RIP:rport.
        let from_rs = flow_of_icmp_error(&d, &quoted(client, real));
        assert_eq!(
            from_rs,
            Some(IcmpFlow::FromRealServer {
                method: ForwardMethod::Nat,
                virtual_service: vs,
                client,
            })
        );
        // What the client got: VIP:vport → CIP:cport.
        let from_client = flow_of_icmp_error(&d, &quoted(vs, client));
        assert_eq!(
            from_client,
            Some(IcmpFlow::FromClient {
                method: ForwardMethod::Nat,
                real,
                local: None,
            })
        );
        let egress = Egress {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            mtu: 1500,
        };
        let flow = from_client.expect("found");
        assert_eq!(flow.toward(), RIP);
        assert_eq!(
            flow.translation(egress),
            IcmpTranslation::nat_from_client(real, egress)
        );
        // Another client port, or the real server's port as seen by nobody: no flow.
        let other = SocketAddrV4::new(CIP, 40001);
        assert_eq!(flow_of_icmp_error(&d, &quoted(other, real)), None);
        assert_eq!(flow_of_icmp_error(&d, &quoted(vs, other)), None);
        let mut udp = quoted(client, real);
        udp.protocol = 17;
        assert_eq!(flow_of_icmp_error(&d, &udp), None);
    }

    #[test]
    fn fullnat_errors_translate_both_endpoints() {
        let (d, local) = director_with_conn(ForwardMethod::FullNat);
        let local = local.expect("FullNAT local endpoint");
        let client = SocketAddrV4::new(CIP, 40000);
        let real = SocketAddrV4::new(RIP, 8080);
        let vs = SocketAddrV4::new(VIP, 80);
        let from_rs = flow_of_icmp_error(&d, &quoted(local, real)).expect("request side");
        assert_eq!(from_rs.toward(), CIP);
        let egress = Egress {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            mtu: 1500,
        };
        assert_eq!(
            from_rs.translation(egress),
            IcmpTranslation::fullnat_from_real_server(vs, client, egress)
        );
        let from_client = flow_of_icmp_error(&d, &quoted(vs, client)).expect("reply side");
        assert_eq!(
            from_client.translation(egress),
            IcmpTranslation::fullnat_from_client(local, real, egress)
        );
        // The client's own address toward the real server was never on the wire.
        assert_eq!(flow_of_icmp_error(&d, &quoted(client, real)), None);
    }

    #[test]
    fn dr_connections_are_not_translated() {
        let (d, _) = director_with_conn(ForwardMethod::Dr);
        let client = SocketAddrV4::new(CIP, 40000);
        let vs = SocketAddrV4::new(VIP, 80);
        assert_eq!(flow_of_icmp_error(&d, &quoted(vs, client)), None);
    }

    #[test]
    fn answer_parses_and_quotes_the_request() {
        let f = udp_frame();
        let Payload::Ipv4(ip) = parse_frame(&f).expect("valid").payload else {
            panic!("not ipv4");
        };
        let vip = Ipv4Addr::new(203, 0, 113, 10);
        let out = port_unreachable(&f, &ip, MacAddr([2, 0, 0, 0, 0, 1]), vip);
        assert_eq!(&out[0..6], &f[6..12]);
        let Payload::Ipv4(answer) = parse_frame(&out).expect("answer parses").payload else {
            panic!("answer not ipv4");
        };
        assert_eq!((answer.src, answer.dst), (vip, ip.src));
        let Transport::Icmp(icmp) = answer.transport else {
            panic!("not icmp");
        };
        assert_eq!((icmp.ty, icmp.code), (3, 3));
        let quoted = icmp.quoted.expect("quotes the request");
        assert_eq!(
            (quoted.src, quoted.dst, quoted.ports),
            (ip.src, vip, Some((12345, 53)))
        );
        assert_eq!(checksum(&out[34..]), 0);
    }
}
