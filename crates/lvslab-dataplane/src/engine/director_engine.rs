//! The engine in a director's namespace: one AF_PACKET socket per interface, one thread.
//!
//! Per frame: ARP for the addresses it serves (and learning neighbours from any ARP it
//! sees); IPv4 to a virtual service → [`Director::lookup_or_schedule`] → the rewrite of the
//! destination's forwarding method → out of the interface the route names; IPv4 from a
//! NAT/FullNAT real server → [`Director::lookup_reply`] → reverse rewrite → toward the
//! client; an ICMP error (dest-unreachable, source-quench, time-exceeded) quoting a packet
//! of a NAT/FullNAT connection → [`flow_of_icmp_error`] → [`translate_icmp_error`] → to the
//! client or the real server, each seeing its own packet quoted. With
//! [`EngineOptions::toa`], FullNAT SYNs and first ACKs carry the client's address in a TOA
//! option. Everything else is left to the namespace's kernel, which never sees the frames
//! the engine handles thanks to the nft `netdev` ingress table kept in step with the
//! services (checked every [`TICK_MS`]).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use lvslab_netns::{nft, Netns, NsHandle};
use lvslab_spec::lb::{LoadBalancer, Protocol};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::icmp::RELAYED_ERRORS;
use super::route::{arp_request, NeighbourCache, RouteTable};
use super::sys::{PacketSocket, Received, RxBatch, TxQueue, ETH_P_ALL};
use super::view::{director_ruleset, table_name, ServiceView};
use super::{ConnTableStats, EngineError, EngineOptions, EngineStats};
use crate::conn::{ConnId, TcpFlags};
use crate::director::{Director, FlowKey};
use crate::packet::frame::{ETHERTYPE_ARP, ETHERTYPE_IPV4};
use crate::packet::{
    mangle, parse_frame, ArpInfo, DropCounters, DropReason, Ipv4Info, MacAddr, Payload, Transport,
};
use crate::rewrite::arp_reply;

/// Housekeeping period: connection expiry, service/nft sync, ARP retries, stats.
pub const TICK_MS: u64 = 100;
/// Frames taken from one socket before the others get their turn.
const BATCH: usize = 64;
/// Largest frame read (a 64 KiB GSO packet plus its Ethernet header).
const RX_BUFFER: usize = 65_536 + 14;
/// EtherType of IPv6, which the director's kernel takes (neighbour discovery and the like).
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// TOA option kind inserted with [`EngineOptions::toa`] (Alibaba LVS and DPVS use 254).
pub const TOA_KIND: u8 = 254;

pub(super) struct Iface {
    pub(super) name: String,
    pub(super) mac: MacAddr,
    pub(super) mtu: u16,
    addrs: Vec<(Ipv4Addr, u8)>,
    sock: PacketSocket,
    /// Frames to send, flushed with one `sendmmsg` after each received batch and tick.
    pub(super) tx: TxQueue,
}

impl Iface {
    /// The address to speak from toward `peer`: one on `peer`'s subnet, else the first.
    pub(super) fn source_for(&self, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        let on_subnet = self.addrs.iter().find(|(a, len)| {
            let mask = if *len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from((*len).min(32)))
            };
            *len < 32 && u32::from(*a) & mask == u32::from(peer) & mask
        });
        on_subnet.or(self.addrs.first()).map(|(a, _)| *a)
    }
}

/// A running director engine; [`DirectorEngine::stop`] (or drop) joins it.
pub(crate) struct DirectorEngine {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<EngineStats>>,
}

impl DirectorEngine {
    /// Opens the sockets and installs the nft table in `ns`, then starts the thread.
    pub(crate) fn start(
        node: &str,
        ns: &Netns,
        director: Arc<Mutex<Director>>,
        options: EngineOptions,
    ) -> Result<DirectorEngine, EngineError> {
        let netns_err = |op: &str| {
            let (node, op) = (node.to_string(), op.to_string());
            move |source| EngineError::Netns {
                node,
                op,
                source: Box::new(source),
            }
        };
        let handle = ns.netlink().map_err(netns_err("open netlink"))?;
        let links = handle.links().map_err(netns_err("list links"))?;
        let addresses = handle.addresses().map_err(netns_err("list addresses"))?;
        let wanted: Vec<_> = links
            .into_iter()
            .filter(|l| l.name != "lo" && l.mac.is_some())
            .collect();
        let socks = ns
            .run(|| {
                wanted
                    .iter()
                    .map(|l| (l.name.clone(), PacketSocket::open(l.ifindex, ETH_P_ALL)))
                    .collect::<Vec<_>>()
            })
            .map_err(netns_err("enter namespace to open AF_PACKET sockets"))?;
        let mut ifaces = Vec::new();
        for (link, (name, sock)) in wanted.iter().zip(socks) {
            let sock = sock.map_err(|source| EngineError::Socket {
                node: node.to_string(),
                iface: name.clone(),
                op: "open AF_PACKET socket",
                source,
            })?;
            let addrs = addresses
                .iter()
                .filter(|a| a.iface == link.name)
                .filter_map(|a| match a.addr {
                    IpAddr::V4(v4) => Some((v4, a.prefix)),
                    IpAddr::V6(_) => None,
                })
                .collect();
            ifaces.push(Iface {
                name,
                mac: link.mac.unwrap_or_default(),
                mtu: u16::try_from(link.mtu).unwrap_or(u16::MAX),
                addrs,
                sock,
                tx: TxQueue::new(BATCH),
            });
        }
        let local = local_v4(&addresses);
        let routes = RouteTable::from_dump(&handle.routes().map_err(netns_err("list routes"))?);
        let mut neigh = NeighbourCache::default();
        learn_kernel_neighbours(&handle, &mut neigh);

        let view = ServiceView::from_listing(&lock(&director).list().map_err(|source| {
            EngineError::Balancer {
                node: node.to_string(),
                op: "list services".into(),
                source,
            }
        })?);
        let names: Vec<String> = ifaces.iter().map(|i| i.name.clone()).collect();
        let ruleset = director_ruleset(&view, &names, &local)
            .map_err(netns_err("nft table for the interfaces"))?;
        nft::apply(ns, &ruleset).map_err(netns_err("install nft netdev table lvslab_engine"))?;

        let stop = Arc::new(AtomicBool::new(false));
        let initial = EngineStats {
            interface_drops: names
                .iter()
                .map(|n| (n.clone(), DropCounters::default()))
                .collect(),
            ..EngineStats::default()
        };
        let stats = Arc::new(Mutex::new(initial.clone()));
        let own_ns = ns
            .try_clone()
            .map_err(netns_err("clone namespace handle"))?;
        let mut worker = Worker {
            node: node.to_string(),
            ns: own_ns,
            handle,
            ifaces,
            local,
            routes,
            routes_read_ms: 0,
            neigh,
            director,
            view,
            ruleset,
            stats: initial,
            shared: stats.clone(),
            clock: Instant::now(),
            ip_id: 1,
            reply: Vec::new(),
            options,
            toa_pending: HashSet::new(),
            evictions_counted: 0,
        };
        let stop_flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("engine {node}"))
            .spawn(move || worker.run(&stop_flag))
            .map_err(|source| EngineError::Thread {
                node: node.to_string(),
                source,
            })?;
        Ok(DirectorEngine {
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// A copy of the counters (published every tick).
    pub(crate) fn stats(&self) -> EngineStats {
        lock(&self.stats).clone()
    }

    /// Stops the thread, which removes its nft table, and waits for it.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("engine thread panicked");
            }
        }
    }
}

impl Drop for DirectorEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Locks a mutex, taking over the data if a panicking thread poisoned it (the director's
/// state stays consistent per call, so it remains usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn local_v4(addresses: &[lvslab_netns::AddressInfo]) -> Vec<Ipv4Addr> {
    addresses
        .iter()
        .filter_map(|a| match a.addr {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect()
}

pub(super) fn learn_kernel_neighbours(handle: &NsHandle, neigh: &mut NeighbourCache) {
    let Ok(list) = handle.neighbours() else {
        return;
    };
    for n in list {
        let (IpAddr::V4(ip), Some(mac)) = (n.ip, n.mac) else {
            continue;
        };
        let state = n.state.to_ascii_lowercase();
        if state.contains("failed") || state.contains("incomplete") {
            continue;
        }
        neigh.remember(&n.iface, ip, mac);
    }
}

/// The engine thread's state. The receiving half is here, the forwarding half in
/// [`super::forward`].
pub(super) struct Worker {
    node: String,
    ns: Netns,
    pub(super) handle: NsHandle,
    pub(super) ifaces: Vec<Iface>,
    pub(super) local: Vec<Ipv4Addr>,
    pub(super) routes: RouteTable,
    pub(super) routes_read_ms: u64,
    pub(super) neigh: NeighbourCache,
    pub(super) director: Arc<Mutex<Director>>,
    pub(super) view: ServiceView,
    ruleset: nft::Table,
    pub(super) stats: EngineStats,
    shared: Arc<Mutex<EngineStats>>,
    clock: Instant,
    pub(super) ip_id: u16,
    pub(super) reply: Vec<u8>,
    pub(super) options: EngineOptions,
    /// FullNAT TCP connections whose SYN got a TOA option and whose first ACK has not
    /// been forwarded yet (pruned every tick of entries the director dropped).
    pub(super) toa_pending: HashSet<ConnId>,
    /// The director's half-open evictions already counted in `stats.drops`.
    evictions_counted: u64,
}

impl Worker {
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn run(&mut self, stop: &AtomicBool) {
        let mut batch = RxBatch::new(BATCH, RX_BUFFER);
        let mut frame = Vec::with_capacity(RX_BUFFER);
        let mut last_tick = 0;
        while !stop.load(Ordering::Relaxed) {
            let ready: Vec<bool> = {
                let mut fds: Vec<PollFd> = self
                    .ifaces
                    .iter()
                    .map(|i| PollFd::new(i.sock.as_fd(), PollFlags::POLLIN))
                    .collect();
                match poll(&mut fds, PollTimeout::from(20u8)) {
                    Ok(_) => fds
                        .iter()
                        .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                        .collect(),
                    Err(nix::errno::Errno::EINTR) => vec![false; fds.len()],
                    Err(e) => {
                        tracing::error!("{}: engine poll failed: {e}", self.node);
                        break;
                    }
                }
            };
            let got_frames = ready.iter().any(|&r| r);
            for (i, r) in ready.into_iter().enumerate() {
                if !r {
                    continue;
                }
                match self.ifaces[i].sock.recv_batch(&mut batch) {
                    Ok(n) => {
                        for k in 0..n {
                            let (bytes, rx) = batch.frame(k);
                            frame.clear();
                            frame.extend_from_slice(bytes);
                            self.on_frame(i, &mut frame, rx);
                        }
                    }
                    Err(e) => {
                        tracing::warn!("{}: recv on {}: {e}", self.node, self.ifaces[i].name);
                    }
                }
                self.flush();
            }
            if got_frames {
                self.publish();
            }
            let now = self.now_ms();
            if now >= last_tick + TICK_MS {
                last_tick = now;
                self.tick(now);
            }
        }
        self.flush();
        if let Err(e) = nft::delete_table(&self.ns, nft::Family::Netdev, &table_name()) {
            tracing::warn!("{}: remove nft table lvslab_engine: {e}", self.node);
        }
        self.publish();
    }

    fn publish(&self) {
        *lock(&self.shared) = self.stats.clone();
    }

    fn tick(&mut self, now: u64) {
        let listing = {
            let mut d = lock(&self.director);
            d.expire(now);
            self.toa_pending.retain(|id| d.conns().get(*id).is_some());
            self.stats.conn_table = ConnTableStats {
                entries: d.conns().len(),
                peak: d.conns().peak_len(),
                limit: d.config().max_conns,
            };
            let evicted = d.half_open_evicted();
            // Entries, not frames: counted for the engine, at no interface.
            let new = evicted.saturating_sub(self.evictions_counted);
            self.stats.drops.add(DropReason::HalfOpenEvicted, new);
            self.evictions_counted = evicted;
            d.list()
        };
        if let Ok(list) = listing {
            let view = ServiceView::from_listing(&list);
            if view != self.view {
                self.view = view;
                let names: Vec<String> = self.ifaces.iter().map(|i| i.name.clone()).collect();
                match director_ruleset(&self.view, &names, &self.local) {
                    Ok(ruleset) if ruleset != self.ruleset => {
                        match nft::apply(&self.ns, &ruleset) {
                            Ok(()) => {
                                self.ruleset = ruleset;
                                self.stats.nft_updates += 1;
                            }
                            Err(e) => tracing::warn!("{}: update nft table: {e}", self.node),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("{}: build nft table: {e}", self.node),
                }
            }
        }
        let super::route::NeighbourTick { ask, dropped } = self.neigh.tick(now);
        for (oif, n) in dropped {
            if let Some(i) = self.iface_index(&oif) {
                self.drop_n_at(i, DropReason::NeighbourUnresolved, n);
            }
        }
        self.stats.ticks += 1;
        for (oif, ip) in ask {
            if let Some(i) = self.iface_index(&oif) {
                self.send_arp_request(i, ip);
            }
        }
        self.flush();
        self.publish();
    }

    pub(super) fn iface_index(&self, name: &str) -> Option<usize> {
        self.ifaces.iter().position(|i| i.name == name)
    }

    /// Queues `frame` on interface `i`; [`Worker::flush`] sends it.
    pub(super) fn send(&mut self, i: usize, frame: &[u8]) {
        self.ifaces[i].tx.push(frame);
    }

    /// Sends every queued frame, one `sendmmsg` per interface.
    fn flush(&mut self) {
        for i in 0..self.ifaces.len() {
            let iface = &mut self.ifaces[i];
            if iface.tx.is_empty() {
                continue;
            }
            let (sent, failed) = iface.sock.send_batch(&mut iface.tx);
            self.stats.tx_frames += sent;
            if failed > 0 {
                tracing::debug!("{}: send on {}: {failed} refused", self.node, iface.name);
                self.drop_n_at(i, DropReason::SendFailed, failed);
            }
        }
    }

    /// Counts a frame dropped at interface `i` (where it came in, or was to leave).
    pub(super) fn drop_at(&mut self, i: usize, reason: DropReason) {
        self.drop_n_at(i, reason, 1);
    }

    fn drop_n_at(&mut self, i: usize, reason: DropReason, n: u64) {
        self.stats.drops.add(reason, n);
        if let Some((_, d)) = self.stats.interface_drops.get_mut(i) {
            d.add(reason, n);
        }
    }

    pub(super) fn send_arp_request(&mut self, i: usize, target: Ipv4Addr) {
        let Some(src) = self.ifaces[i].source_for(target) else {
            return;
        };
        let req = arp_request(self.ifaces[i].mac, src, target);
        self.stats.arp_requests += 1;
        self.send(i, &req);
    }

    /// Which frames are the engine's: those the namespace's kernel would take too (not
    /// its own, not addressed to another host's MAC), IPv4 and ARP. Frames it cannot parse
    /// are dropped by reason; other EtherTypes are the kernel's, and counted when sent
    /// to this interface's MAC with a type the kernel has no use for either.
    fn on_frame(&mut self, i: usize, frame: &mut Vec<u8>, rx: Received) {
        if rx.outgoing || rx.other_host {
            return;
        }
        self.stats.rx_frames += 1;
        if rx.truncated {
            self.drop_at(i, DropReason::Truncated);
            return;
        }
        let info = match parse_frame(frame) {
            Ok(info) => info,
            Err(reason) => {
                self.drop_at(i, reason);
                return;
            }
        };
        match info.payload {
            Payload::Arp(arp) => self.on_arp(i, frame, &arp),
            Payload::Ipv4(ip) => self.on_ipv4(i, frame, ip, rx.csum_not_ready),
            Payload::Other => {
                let known = [ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_IPV6];
                if info.dst_mac == self.ifaces[i].mac && !known.contains(&info.ethertype) {
                    self.drop_at(i, DropReason::UnsupportedEthertype);
                }
            }
        }
    }

    fn on_arp(&mut self, i: usize, frame: &[u8], arp: &ArpInfo) {
        let unicast = arp.sender_mac.is_unicast() && arp.sender_mac != MacAddr::ZERO;
        if !arp.sender_ip.is_unspecified() && unicast {
            let name = self.ifaces[i].name.clone();
            for mut waiting in self.neigh.learn(&name, arp.sender_ip, arp.sender_mac) {
                waiting[0..6].copy_from_slice(&arp.sender_mac.0);
                self.send(i, &waiting);
            }
        }
        if arp.operation == 1 && self.view.arp_addresses.contains(&arp.target_ip) {
            let addrs: Vec<Ipv4Addr> = self.view.arp_addresses.iter().copied().collect();
            let mut out = Vec::new();
            match arp_reply(frame, &addrs, self.ifaces[i].mac, &mut out) {
                Ok(()) => {
                    self.stats.arp_replies += 1;
                    self.send(i, &out);
                }
                Err(reason) => self.drop_at(i, reason),
            }
        }
    }

    fn on_ipv4(&mut self, i: usize, frame: &mut Vec<u8>, mut ip: Ipv4Info, csum_not_ready: bool) {
        if let Transport::Icmp(icmp) = ip.transport {
            if let Some(quoted) = icmp.quoted.filter(|_| RELAYED_ERRORS.contains(&icmp.ty)) {
                if self.view.is_icmp_error_about_service(&quoted) {
                    self.on_icmp_error(i, frame, &ip, &quoted);
                }
                return;
            }
        }
        let Some((sport, dport)) = ip.ports() else {
            let to_vip = self.view.arp_addresses.contains(&ip.dst);
            if to_vip && !matches!(ip.transport, Transport::Icmp(_)) {
                // Not balanced (no ports): the namespace's kernel gets it and at most
                // answers "protocol unreachable"; counted so the refusal is visible.
                self.drop_at(i, DropReason::UnknownProtocol);
            }
            return;
        };
        let proto = ip.protocol;
        let request = self.view.is_request(proto, ip.dst, dport);
        if !request
            && !self
                .view
                .is_reply(proto, ip.src, sport, ip.dst, &self.local)
        {
            return;
        }
        let Some(protocol) = Protocol::from_number(proto) else {
            return;
        };
        if csum_not_ready {
            if let Err(reason) = mangle::complete_transport_checksum(frame, &mut ip) {
                self.drop_at(i, reason);
                return;
            }
            self.stats.checksums_completed += 1;
        }
        let tcp_flags = match ip.transport {
            Transport::Tcp(t) => TcpFlags(t.flags),
            _ => TcpFlags(0),
        };
        let key = FlowKey {
            protocol,
            saddr: IpAddr::V4(ip.src),
            sport,
            daddr: IpAddr::V4(ip.dst),
            dport,
            tcp_flags,
            fwmark: 0,
            len: u32::try_from(ip.total_len).unwrap_or(u32::MAX),
        };
        let now = self.now_ms();
        if request {
            self.stats.requests += 1;
            let decision = lock(&self.director).lookup_or_schedule(now, &key);
            self.on_decision(i, frame, &ip, decision);
        } else {
            self.stats.replies += 1;
            let decision = lock(&self.director).lookup_reply(now, &key);
            self.on_reply(i, frame, &ip, decision);
        }
    }
}
