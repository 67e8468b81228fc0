//! The userspace tunnel endpoint of a TUN-mode real server whose kernel has no ipip/gre.
//!
//! In the real server's namespace: an AF_PACKET socket on its Ethernet interface takes IPv4
//! packets of the lab's encapsulation (protocol 4 IPIP, or 47 GRE carrying IPv4) addressed
//! to one of the server's addresses; an nft `netdev` ingress rule drops those same packets
//! before the kernel, which would answer "protocol unreachable"; the inner packet
//! ([`tun_decapsulate`]) is written to the persistent TUN device that holds the VIP
//! (`tunl0`), so the server's own kernel receives it there and answers the client directly
//! with the VIP as source — what the kernel's `ipip`/`ip_gre` modules would do.
//!
//! The socket takes `ETH_P_ALL`, not `ETH_P_IP`: only the all-protocols taps run before the
//! netdev ingress hook; a socket for one EtherType is served after it and would never see
//! the frames the nft rule drops (measured: zero frames with `ETH_P_IP`).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use lvslab_netns::{nft, Netns};
use lvslab_spec::model::Encap;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::director_engine::lock;
use super::sys::{PacketSocket, ETH_P_ALL};
use super::view::{endpoint_ruleset, table_name};
use super::{EndpointStats, EngineError};
use crate::packet::{parse_frame, Payload};
use crate::rewrite::tun_decapsulate;

/// Largest frame read.
const RX_BUFFER: usize = 65_536 + 14;

/// A running tunnel endpoint; stopping (or dropping) it joins its thread, which removes
/// its nft table.
pub struct TunnelEndpoint {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<EndpointStats>>,
}

impl TunnelEndpoint {
    /// Starts the endpoint in `ns` (node `node`): frames of `encap` arriving on `iface`
    /// for the node's own addresses are decapsulated into the TUN device `device`.
    pub fn start(
        node: &str,
        ns: &Netns,
        iface: &str,
        device: &str,
        encap: Encap,
    ) -> Result<TunnelEndpoint, EngineError> {
        let netns_err = |op: String| {
            let node = node.to_string();
            move |source| EngineError::Netns {
                node,
                op,
                source: Box::new(source),
            }
        };
        let handle = ns.netlink().map_err(netns_err("open netlink".into()))?;
        let link = handle
            .link(iface)
            .map_err(netns_err(format!("find interface {iface}")))?;
        let addrs: Vec<Ipv4Addr> = handle
            .addresses()
            .map_err(netns_err("list addresses".into()))?
            .into_iter()
            .filter(|a| a.iface == iface)
            .filter_map(|a| match a.addr {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        if addrs.is_empty() {
            return Err(EngineError::Config {
                detail: format!(
                    "{node}: interface {iface} has no IPv4 address to receive tunnels on"
                ),
            });
        }
        let tun = lvslab_netns::tun::open_tun(ns, device)
            .map_err(netns_err(format!("open TUN device {device}")))?;
        let sock = ns
            .run(|| PacketSocket::open(link.ifindex, ETH_P_ALL))
            .map_err(netns_err("enter namespace to open AF_PACKET socket".into()))?
            .map_err(|source| EngineError::Socket {
                node: node.to_string(),
                iface: iface.to_string(),
                op: "open AF_PACKET socket",
                source,
            })?;
        let ip_proto = encap.ip_protocol();
        let table = endpoint_ruleset(iface, ip_proto, &addrs)
            .map_err(netns_err(format!("nft table for interface {iface}")))?;
        nft::apply(ns, &table)
            .map_err(netns_err("install nft netdev table lvslab_engine".into()))?;
        let own_ns = ns
            .try_clone()
            .map_err(netns_err("clone namespace handle".into()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(EndpointStats::default()));
        let (stop_flag, shared, label) = (stop.clone(), stats.clone(), node.to_string());
        let thread = std::thread::Builder::new()
            .name(format!("tunnel endpoint {node}"))
            .spawn(move || {
                let mut ep = Endpoint {
                    sock,
                    tun,
                    addrs,
                    ip_proto,
                    stats: EndpointStats::default(),
                };
                ep.run(&stop_flag, &shared);
                if let Err(e) = nft::delete_table(&own_ns, nft::Family::Netdev, &table_name()) {
                    tracing::warn!("{label}: remove nft table lvslab_engine: {e}");
                }
            })
            .map_err(|source| EngineError::Thread {
                node: node.to_string(),
                source,
            })?;
        Ok(TunnelEndpoint {
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// A copy of the counters.
    pub fn stats(&self) -> EndpointStats {
        lock(&self.stats).clone()
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("tunnel endpoint thread panicked");
            }
        }
    }
}

impl Drop for TunnelEndpoint {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Endpoint {
    sock: PacketSocket,
    tun: std::fs::File,
    addrs: Vec<Ipv4Addr>,
    ip_proto: u8,
    stats: EndpointStats,
}

impl Endpoint {
    fn run(&mut self, stop: &AtomicBool, shared: &Mutex<EndpointStats>) {
        let mut buf = vec![0u8; RX_BUFFER];
        while !stop.load(Ordering::Relaxed) {
            let readable = {
                let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(50u8)) {
                    Ok(n) => n > 0,
                    Err(nix::errno::Errno::EINTR) => false,
                    Err(e) => {
                        tracing::error!("tunnel endpoint poll failed: {e}");
                        break;
                    }
                }
            };
            if readable {
                for _ in 0..64 {
                    match self.sock.recv(&mut buf) {
                        Ok(Some(rx)) if rx.outgoing => {}
                        Ok(Some(rx)) if rx.truncated => {
                            self.stats.rx_frames += 1;
                            self.stats
                                .drops
                                .record(crate::packet::DropReason::Truncated);
                        }
                        Ok(Some(rx)) => self.on_frame(&buf[..rx.len]),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!("tunnel endpoint recv: {e}");
                            break;
                        }
                    }
                }
            }
            *lock(shared) = self.stats.clone();
        }
        *lock(shared) = self.stats.clone();
    }

    fn on_frame(&mut self, frame: &[u8]) {
        self.stats.rx_frames += 1;
        let ip = match parse_frame(frame) {
            Ok(info) => match info.payload {
                Payload::Ipv4(ip) => ip,
                Payload::Arp(_) | Payload::Other => return,
            },
            Err(reason) => {
                self.stats.drops.record(reason);
                return;
            }
        };
        if ip.protocol != self.ip_proto || !self.addrs.contains(&ip.dst) {
            return;
        }
        match tun_decapsulate(frame) {
            Ok(inner) => match self.tun.write(inner) {
                Ok(_) => self.stats.decapsulated += 1,
                Err(e) => {
                    self.stats
                        .drops
                        .record(crate::packet::DropReason::SendFailed);
                    tracing::debug!("tunnel endpoint write to TUN: {e}");
                }
            },
            Err(reason) => self.stats.drops.record(reason),
        }
    }
}
