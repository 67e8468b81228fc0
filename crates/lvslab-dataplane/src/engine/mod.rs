//! The userspace dataplane's engine: the director's packet I/O and the real servers'
//! userspace tunnel endpoints, started for a built lab by [`start_for_lab`].
//!
//! - [`director_engine`]: AF_PACKET on every interface of a director's namespace, ARP for
//!   the served addresses, next hops resolved by the engine itself, per-packet decisions
//!   from the [`Director`] and the rewrites of [`crate::rewrite`] (ICMP errors about its
//!   NAT/FullNAT connections translated back, [`icmp`]); an nft `netdev` table
//!   (`lvslab_engine`) keeps the handled frames from the namespace's kernel.
//! - [`tunnel_endpoint`]: decapsulation into a TUN device on TUN-mode real servers.
//! - [`view`]: which frames are the engine's, and the nft rulesets that say so.
//! - `forward`: the engine's forwarding half (decisions → rewrites → next hop).
//! - [`route`]: longest-prefix routes, the neighbour cache and its pending queue.
//! - [`stats`]: the counters, drops by reason, and their table ([`render_drops`]).
//! - [`sys`]: the AF_PACKET socket (the only unsafe code).

pub mod director_engine;
mod forward;
pub mod icmp;
pub mod route;
pub mod stats;
pub mod sys;
pub mod tunnel_endpoint;
pub mod view;

use std::sync::{Arc, Mutex};

use lvslab_netns::apply::LabInstance;
use lvslab_spec::lb::{LbError, LoadBalancer};
use lvslab_spec::model::{Lab, Role};

use crate::director::{Director, DirectorConfig, DEFAULT_MAX_CONNS};
use director_engine::{lock, DirectorEngine};
pub use stats::{render_drops, ConnTableStats, DataplaneStats, EndpointStats, EngineStats};
pub use sys::PacketSocket;
pub use tunnel_endpoint::TunnelEndpoint;

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A namespace operation (netlink, nft, TUN, entering it) failed.
    #[error("{node}: {op}: {source}")]
    Netns {
        /// Node whose namespace it was.
        node: String,
        /// What was being done.
        op: String,
        /// The underlying error (with its errno).
        #[source]
        source: Box<lvslab_netns::Error>,
    },
    /// A socket operation failed.
    #[error("{node}: {op} on {iface}: {source}")]
    Socket {
        /// Node whose namespace it was.
        node: String,
        /// Interface.
        iface: String,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Configuring the director from the lab failed.
    #[error("director {node}: {op}: {source}")]
    Balancer {
        /// Director node.
        node: String,
        /// What was being done.
        op: String,
        /// The director's error.
        #[source]
        source: LbError,
    },
    /// The lab and the instance do not fit together.
    #[error("{detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// A thread could not be started.
    #[error("{node}: start engine thread: {source}")]
    Thread {
        /// Node.
        node: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Settings of the director engines of a [`UserspaceDataplane`].
///
/// `toa` (off by default): insert the TOA TCP option (kind [`director_engine::TOA_KIND`],
/// 254 as Alibaba LVS and DPVS use; 8 bytes: kind, length 8, the client's port, the
/// client's IPv4 address) into the SYN and the first ACK of every FullNAT connection, so a
/// real server with a TOA module can learn the client's address. It applies to every
/// FullNAT service of the engine; other methods are unaffected.
///
/// `max_conns`: the bound on each director's connection table
/// ([`DirectorConfig::max_conns`], default [`DEFAULT_MAX_CONNS`]). At the bound a new
/// connection takes the place of the oldest half-open one, or is refused when there is
/// none; both are counted (`half_open_evicted`, `conn_table_full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Insert the TOA option into FullNAT connections' SYN and first ACK.
    pub toa: bool,
    /// Bound on each director's connection table (persistence templates included).
    pub max_conns: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            toa: false,
            max_conns: DEFAULT_MAX_CONNS,
        }
    }
}

/// The userspace dataplane of one lab instance: a director (with its engine) per director
/// node, and a tunnel endpoint per decapsulating real server. Dropping it stops every
/// thread and removes the nft tables it installed.
pub struct UserspaceDataplane {
    directors: Vec<(String, Arc<Mutex<Director>>)>,
    engines: Vec<(String, DirectorEngine)>,
    endpoints: Vec<(String, TunnelEndpoint)>,
}

impl std::fmt::Debug for UserspaceDataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserspaceDataplane")
            .field("directors", &self.director_nodes())
            .field(
                "endpoints",
                &self.endpoints.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl UserspaceDataplane {
    /// The director nodes, in lab-file order.
    pub fn director_nodes(&self) -> Vec<&str> {
        self.directors.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Runs `f` on the director of `director_node` (its [`LoadBalancer`] implementation
    /// takes ipvsadm's commands); `None` if there is no such director. The engine picks
    /// up service changes within one housekeeping tick.
    pub fn with_director<R>(
        &self,
        director_node: &str,
        f: impl FnOnce(&mut Director) -> R,
    ) -> Option<R> {
        let (_, d) = self.directors.iter().find(|(n, _)| n == director_node)?;
        Some(f(&mut lock(d)))
    }

    /// A shared handle on the director of `director_node`, for callers that keep it.
    pub fn director(&self, director_node: &str) -> Option<Arc<Mutex<Director>>> {
        self.directors
            .iter()
            .find(|(n, _)| n == director_node)
            .map(|(_, d)| d.clone())
    }

    /// The engines' and endpoints' counters (updated every housekeeping tick).
    pub fn stats(&self) -> DataplaneStats {
        DataplaneStats {
            engines: self
                .engines
                .iter()
                .map(|(n, e)| (n.clone(), e.stats()))
                .collect(),
            endpoints: self
                .endpoints
                .iter()
                .map(|(n, e)| (n.clone(), e.stats()))
                .collect(),
        }
    }

    /// Waits until every engine has re-read its director's services since this call (two
    /// ticks: one may have been under way), so a change made through `with_director` is
    /// in force, nft rules included. `false` if that took longer than `timeout`.
    pub fn sync(&self, timeout: std::time::Duration) -> bool {
        let start: Vec<u64> = self.engines.iter().map(|(_, e)| e.stats().ticks).collect();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let done = self
                .engines
                .iter()
                .zip(&start)
                .all(|((_, e), t0)| e.stats().ticks >= t0 + 2);
            if done {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Stops everything (as drop does).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        for (_, e) in &mut self.engines {
            e.stop();
        }
        for (_, e) in &mut self.endpoints {
            e.stop();
        }
        self.engines.clear();
        self.endpoints.clear();
    }
}

impl Drop for UserspaceDataplane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the userspace dataplane for a built lab: for each director named by the lab's
/// `[[service]]`s a [`Director`] configured through [`LoadBalancer`] in lab-file order
/// (services, then each service's real servers, so listings come out newest first as the
/// kernel's do) and its engine in the director's namespace; and a tunnel endpoint on every
/// real server with `decap`, on its Ethernet interface, feeding its decapsulation device.
pub fn start_for_lab(lab: &Lab, inst: &LabInstance) -> Result<UserspaceDataplane, EngineError> {
    start_for_lab_with(lab, inst, EngineOptions::default())
}

/// [`start_for_lab`] with engine settings other than the defaults.
pub fn start_for_lab_with(
    lab: &Lab,
    inst: &LabInstance,
    options: EngineOptions,
) -> Result<UserspaceDataplane, EngineError> {
    let mut dp = UserspaceDataplane {
        directors: Vec::new(),
        engines: Vec::new(),
        endpoints: Vec::new(),
    };
    for svc in &lab.services {
        let director = match dp.directors.iter().find(|(n, _)| *n == svc.director) {
            Some((_, d)) => d.clone(),
            None => {
                let d = Arc::new(Mutex::new(Director::new(DirectorConfig {
                    max_conns: options.max_conns,
                    ..DirectorConfig::default()
                })));
                dp.directors.push((svc.director.clone(), d.clone()));
                d
            }
        };
        let mut d = lock(&director);
        let balancer_err = |op: String| {
            let node = svc.director.clone();
            move |source| EngineError::Balancer { node, op, source }
        };
        d.add_service(&svc.config)
            .map_err(balancer_err(format!("add service {}", svc.config.key)))?;
        for rs in &svc.real_servers {
            d.add_dest(&svc.config.key, &rs.config)
                .map_err(balancer_err(format!(
                    "add destination {}:{} to {}",
                    rs.config.addr, rs.config.port, svc.config.key
                )))?;
        }
    }
    let nodes: Vec<(String, Arc<Mutex<Director>>)> = dp.directors.clone();
    for (node, director) in nodes {
        let ns = inst.ns(&node).ok_or_else(|| EngineError::Config {
            detail: format!(
                "lab {}: director {node} has no namespace in the instance",
                lab.name
            ),
        })?;
        let engine = DirectorEngine::start(&node, ns, director, options)?;
        dp.engines.push((node, engine));
    }
    for node in &lab.nodes {
        let Some(decap) = &node.decap else {
            continue;
        };
        if node.role != Role::RealServer {
            continue;
        }
        let ns = inst.ns(&node.name).ok_or_else(|| EngineError::Config {
            detail: format!(
                "lab {}: real server {} has no namespace",
                lab.name, node.name
            ),
        })?;
        let iface = node
            .interfaces
            .iter()
            .find(|(name, addrs)| {
                name.as_str() != "lo" && **name != decap.device && !addrs.is_empty()
            })
            .map(|(name, _)| name.clone())
            .ok_or_else(|| EngineError::Config {
                detail: format!(
                    "lab {}: real server {} has no Ethernet interface with an address",
                    lab.name, node.name
                ),
            })?;
        let ep = TunnelEndpoint::start(&node.name, ns, &iface, &decap.device, decap.encap)?;
        dp.endpoints.push((node.name.clone(), ep));
    }
    Ok(dp)
}
