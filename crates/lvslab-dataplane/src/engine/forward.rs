//! The engine's forwarding half: what it does with the director's decision for a request,
//! a reply or an ICMP error (the rewrite of the forwarding method), the next hop, and the
//! neighbour queue in front of the wire. Every way a frame can end here without being
//! sent is counted under its [`DropReason`].

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use lvslab_spec::lb::ForwardMethod;

use super::director_engine::{learn_kernel_neighbours, local_v4, lock, Worker, TOA_KIND};
use super::icmp::{flow_of_icmp_error, port_unreachable};
use super::route::{NextHop, Resolution, RouteTable};
use crate::conn::{ConnId, TcpFlags};
use crate::director::{ReplyVerdict, Verdict as Decision};
use crate::packet::frame::QuotedPacket;
use crate::packet::{DropReason, Ipv4Info, Transport};
use crate::rewrite::{
    dr_request, fullnat_reply, fullnat_request, nat_reply, nat_request, translate_icmp_error,
    tun_request, DrRequest, Egress, FullNatReply, FullNatRequest, IcmpTranslation, NatReply,
    NatRequest, TunRequest, Verdict,
};

/// Routes and local addresses are re-read at most this often when a lookup fails.
const ROUTE_REFRESH_MS: u64 = 1_000;

impl Worker {
    /// An ICMP error quoting a packet of a virtual service or of one of its NAT/FullNAT real
    /// servers (the frames the nft table keeps from the kernel), received on interface `i`:
    /// translated back if it is about a tracked connection; otherwise forwarded untouched as
    /// the kernel's forwarding path would, or dropped if addressed to the director itself.
    pub(super) fn on_icmp_error(
        &mut self,
        i: usize,
        frame: &mut [u8],
        ip: &Ipv4Info,
        quoted: &QuotedPacket,
    ) {
        let flow = flow_of_icmp_error(&lock(&self.director), quoted);
        let toward = match &flow {
            Some(f) => f.toward(),
            None if self.local.contains(&ip.dst) || self.view.arp_addresses.contains(&ip.dst) => {
                self.drop_at(i, DropReason::NoConnection);
                return;
            }
            None => ip.dst,
        };
        let Some((oif, hop)) = self.next_hop(toward) else {
            self.drop_at(i, DropReason::NoRoute);
            return;
        };
        let egress = self.egress(oif, &hop);
        let how = match &flow {
            Some(f) => {
                self.stats.icmp_errors_relayed += 1;
                f.translation(egress)
            }
            None => {
                self.stats.forwarded_untouched += 1;
                IcmpTranslation {
                    outer_src: None,
                    outer_dst: None,
                    quoted_src: None,
                    quoted_dst: None,
                    egress,
                }
            }
        };
        match translate_icmp_error(frame, &how) {
            Verdict::Forward => self.transmit(oif, hop.via, frame),
            Verdict::DropWithReply(reason) | Verdict::Drop(reason) => self.drop_at(i, reason),
        }
    }

    /// Whether a FullNAT packet of connection `conn` gets a TOA option: with
    /// [`super::EngineOptions::toa`], a TCP SYN, and the first non-SYN segment after it
    /// (the handshake's final ACK, the first segment acknowledging the real server's ISN).
    fn wants_toa(&mut self, conn: ConnId, transport: &Transport) -> bool {
        let Transport::Tcp(tcp) = transport else {
            return false;
        };
        if !self.options.toa {
            return false;
        }
        let flags = TcpFlags(tcp.flags);
        if flags.syn() {
            self.toa_pending.insert(conn);
            true
        } else {
            flags.ack() && self.toa_pending.remove(&conn)
        }
    }

    fn next_hop(&mut self, dst: Ipv4Addr) -> Option<(usize, NextHop)> {
        let mut hop = self.routes.lookup(dst);
        let now = self.now_ms();
        if hop.is_none() && now >= self.routes_read_ms + ROUTE_REFRESH_MS {
            self.routes_read_ms = now;
            if let Ok(dump) = self.handle.routes() {
                self.routes = RouteTable::from_dump(&dump);
            }
            if let Ok(addrs) = self.handle.addresses() {
                self.local = local_v4(&addrs);
            }
            hop = self.routes.lookup(dst);
        }
        let hop = hop?;
        Some((self.iface_index(&hop.oif)?, hop))
    }

    fn egress(&self, oif: usize, hop: &NextHop) -> Egress {
        let iface = &self.ifaces[oif];
        Egress {
            src_mac: iface.mac,
            dst_mac: self.neigh.get(&iface.name, hop.via).unwrap_or_default(),
            mtu: iface.mtu,
        }
    }

    /// Carries out the director's decision for a request received on interface `i`.
    pub(super) fn on_decision(
        &mut self,
        i: usize,
        frame: &mut Vec<u8>,
        ip: &Ipv4Info,
        decision: Decision,
    ) {
        let f = match decision {
            Decision::Forward(f) => f,
            Decision::NotOurs => {
                self.drop_at(i, DropReason::NoConnection);
                return;
            }
            Decision::Reject => {
                self.stats.rejects += 1;
                self.drop_at(i, DropReason::NoDestination);
                let out = port_unreachable(frame, ip, self.ifaces[i].mac, ip.dst);
                self.send(i, &out);
                return;
            }
            Decision::Drop(reason) => {
                self.drop_at(i, reason.into());
                return;
            }
        };
        // An IPv6 real server for an IPv4 packet: nothing the engine can route.
        let IpAddr::V4(rip) = f.daddr else {
            self.drop_at(i, DropReason::NoRoute);
            return;
        };
        let Some((oif, hop)) = self.next_hop(rip) else {
            self.drop_at(i, DropReason::NoRoute);
            return;
        };
        let egress = self.egress(oif, &hop);
        let mut reply = std::mem::take(&mut self.reply);
        let real = SocketAddrV4::new(rip, f.dport);
        let verdict = match f.method {
            ForwardMethod::Nat => nat_request(frame, &NatRequest { real, egress }, &mut reply),
            ForwardMethod::Dr => dr_request(frame, &DrRequest { egress }, &mut reply),
            ForwardMethod::Tunnel => {
                let local = hop
                    .prefsrc
                    .or_else(|| self.ifaces[oif].source_for(hop.via))
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                self.ip_id = self.ip_id.wrapping_add(1);
                let to = TunRequest {
                    tunnel: f.tun_type,
                    local,
                    real: rip,
                    egress,
                    pmtu_disc: true,
                    ip_id: self.ip_id,
                };
                tun_request(frame, &to, &mut reply)
            }
            ForwardMethod::FullNat => {
                let Some((IpAddr::V4(lip), lport)) = f.fullnat else {
                    self.drop_at(i, DropReason::NoLocalPort);
                    self.reply = reply;
                    return;
                };
                let toa = self.wants_toa(f.conn, &ip.transport);
                let to = FullNatRequest {
                    local: SocketAddrV4::new(lip, lport),
                    real,
                    egress,
                    toa_kind: toa.then_some(TOA_KIND),
                };
                fullnat_request(frame, &to, &mut reply)
            }
            ForwardMethod::Local => {
                self.drop_at(i, DropReason::LocalDelivery);
                self.reply = reply;
                return;
            }
        };
        self.finish(i, oif, &hop, frame, verdict, &reply);
        self.reply = reply;
    }

    /// Carries out the director's decision for a real server's packet received on `i`.
    pub(super) fn on_reply(
        &mut self,
        i: usize,
        frame: &mut [u8],
        ip: &Ipv4Info,
        decision: ReplyVerdict,
    ) {
        let mut reply = std::mem::take(&mut self.reply);
        match decision {
            ReplyVerdict::Reply {
                src: (IpAddr::V4(vip), vport),
                dst,
                ..
            } => {
                let virtual_service = SocketAddrV4::new(vip, vport);
                let client = match dst {
                    Some((IpAddr::V4(c), cport)) => Some(SocketAddrV4::new(c, cport)),
                    Some((IpAddr::V6(_), _)) => {
                        self.drop_at(i, DropReason::NoRoute);
                        self.reply = reply;
                        return;
                    }
                    None => None,
                };
                let toward = client.map_or(ip.dst, |c| *c.ip());
                let Some((oif, hop)) = self.next_hop(toward) else {
                    self.drop_at(i, DropReason::NoRoute);
                    self.reply = reply;
                    return;
                };
                let egress = self.egress(oif, &hop);
                let verdict = match client {
                    None => {
                        let director = self.ifaces[i].source_for(ip.src).unwrap_or(ip.dst);
                        let to = NatReply {
                            virtual_service,
                            egress,
                            director,
                        };
                        nat_reply(frame, &to, &mut reply)
                    }
                    Some(client) => {
                        let to = FullNatReply {
                            virtual_service,
                            client,
                            egress,
                        };
                        fullnat_reply(frame, &to, &mut reply)
                    }
                };
                self.finish(i, oif, &hop, frame, verdict, &reply);
            }
            // An IPv6 virtual service answering an IPv4 packet: nothing to route.
            ReplyVerdict::Reply { .. } => self.drop_at(i, DropReason::NoRoute),
            ReplyVerdict::NoConn if self.local.contains(&ip.dst) => {
                self.drop_at(i, DropReason::NoConnection);
            }
            ReplyVerdict::NoConn => {
                // The kernel would forward it untouched (ip_forward=1 on a NAT director).
                match self.next_hop(ip.dst) {
                    Some((oif, hop)) => {
                        self.stats.forwarded_untouched += 1;
                        let egress = self.egress(oif, &hop);
                        let verdict = dr_request(frame, &DrRequest { egress }, &mut reply);
                        self.finish(i, oif, &hop, frame, verdict, &reply);
                    }
                    None => self.drop_at(i, DropReason::NoRoute),
                }
            }
            ReplyVerdict::Reject => {
                self.stats.rejects += 1;
                self.drop_at(i, DropReason::NoConnection);
                let from = self.ifaces[i].source_for(ip.src).unwrap_or(ip.dst);
                let out = port_unreachable(frame, ip, self.ifaces[i].mac, from);
                self.send(i, &out);
            }
        }
        self.reply = reply;
    }

    fn finish(
        &mut self,
        i: usize,
        oif: usize,
        hop: &NextHop,
        frame: &[u8],
        verdict: Verdict,
        reply: &[u8],
    ) {
        match verdict {
            Verdict::Forward => self.transmit(oif, hop.via, frame),
            Verdict::DropWithReply(reason) => {
                self.drop_at(i, reason);
                self.send(i, reply);
            }
            Verdict::Drop(reason) => self.drop_at(i, reason),
        }
    }

    /// Sends `frame` toward `via` out of interface `oif`, or queues it until `via`'s MAC is
    /// known.
    pub(super) fn transmit(&mut self, oif: usize, via: Ipv4Addr, frame: &[u8]) {
        let now = self.now_ms();
        match self.neigh.resolve(&self.ifaces[oif].name, via, frame, now) {
            Resolution::Known(mac) => {
                let tx = &mut self.ifaces[oif].tx;
                tx.push(frame);
                if frame[0..6] != mac.0 {
                    tx.set_last_dst_mac(mac.0);
                }
            }
            Resolution::Queued { ask: true } => {
                let name = self.ifaces[oif].name.clone();
                // The kernel may already know it (static entries, earlier traffic).
                learn_kernel_neighbours(&self.handle, &mut self.neigh);
                if let Some(mac) = self.neigh.get(&name, via) {
                    for mut waiting in self.neigh.learn(&name, via, mac) {
                        waiting[0..6].copy_from_slice(&mac.0);
                        self.send(oif, &waiting);
                    }
                } else {
                    self.send_arp_request(oif, via);
                }
            }
            Resolution::Queued { ask: false } => {}
            Resolution::QueueFull => self.drop_at(oif, DropReason::NeighbourQueueFull),
        }
    }
}
