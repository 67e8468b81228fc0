//! Installing a lab's `[[service]]`s on a dataplane, and one handle to drive either.
//!
//! - kernel: IPVS over generic netlink, one client per director namespace
//!   ([`lvslab_ipvs::install`] installs the lab's services);
//! - userspace: lvslab's own director engine (and tunnel endpoints on real servers).

use lvslab_dataplane::engine::{start_for_lab, UserspaceDataplane};
use lvslab_ipvs::IpvsClient;
use lvslab_netns::apply::LabInstance;
use lvslab_spec::lb::LoadBalancer;
use lvslab_spec::model::Lab;

pub use lvslab_ipvs::install::{kernel_fullnat_ruleset, KERNEL_FULLNAT_NOTE};

pub use lvslab_spec::Dataplane;

/// A running load balancer for a lab.
pub enum Balancer {
    Kernel(Vec<(String, IpvsClient)>),
    Userspace(UserspaceDataplane),
}

/// Why a balancer could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum BalancerError {
    #[error("kernel IPVS: {0}")]
    Kernel(#[from] lvslab_ipvs::install::InstallError),
    #[error("userspace dataplane: {0}")]
    Engine(String),
}

impl Balancer {
    /// Installs every service of the lab on the chosen dataplane.
    pub fn install(
        lab: &Lab,
        inst: &LabInstance,
        dataplane: Dataplane,
    ) -> Result<Balancer, BalancerError> {
        match dataplane {
            Dataplane::Userspace => start_for_lab(lab, inst)
                .map(Balancer::Userspace)
                .map_err(|e| BalancerError::Engine(e.to_string())),
            Dataplane::Kernel => lvslab_ipvs::install::install_lab(lab, inst)
                .map(Balancer::Kernel)
                .map_err(BalancerError::Kernel),
        }
    }

    /// Returns once a change made through [`Balancer::with_lb`] is in force on the
    /// packet path: at once for the kernel (netlink answers when it is applied), after the
    /// userspace engines' next re-read (and nft update) otherwise.
    pub fn settle(&self) {
        if let Balancer::Userspace(dp) = self {
            if !dp.sync(std::time::Duration::from_secs(2)) {
                tracing::warn!("userspace director did not re-read its services within 2 s");
            }
        }
    }

    /// The userspace engines' counters (drops by reason included), as text.
    pub fn stats_text(&self) -> String {
        match self {
            Balancer::Kernel(_) => {
                "kernel IPVS keeps its own counters: `lvslab ipvsadm -L -n --stats`\n".into()
            }
            Balancer::Userspace(dp) => {
                use std::fmt::Write as _;
                let stats = dp.stats();
                let mut out = String::new();
                for (node, e) in &stats.engines {
                    let _ = writeln!(
                        out,
                        "{node}: {} frames in, {} out; {} requests, {} replies; {} ICMP errors relayed; \
                         connection table {} of {} (peak {})",
                        e.rx_frames,
                        e.tx_frames,
                        e.requests,
                        e.replies,
                        e.icmp_errors_relayed,
                        e.conn_table.entries,
                        e.conn_table.limit,
                        e.conn_table.peak
                    );
                }
                for (node, e) in &stats.endpoints {
                    let _ = writeln!(
                        out,
                        "{node}: tunnel endpoint, {} frames in, {} decapsulated",
                        e.rx_frames, e.decapsulated
                    );
                }
                out.push('\n');
                out.push_str(&lvslab_dataplane::engine::render_drops(&stats));
                out
            }
        }
    }

    pub fn dataplane(&self) -> Dataplane {
        match self {
            Balancer::Kernel(_) => Dataplane::Kernel,
            Balancer::Userspace(_) => Dataplane::Userspace,
        }
    }

    /// Runs `f` on the load balancer of one director node.
    pub fn with_lb<R>(
        &mut self,
        director: &str,
        f: impl FnOnce(&mut dyn LoadBalancer) -> R,
    ) -> Option<R> {
        match self {
            Balancer::Kernel(clients) => clients
                .iter_mut()
                .find(|(d, _)| d == director)
                .map(|(_, c)| f(c as &mut dyn LoadBalancer)),
            Balancer::Userspace(dp) => {
                dp.with_director(director, |d| f(d as &mut dyn LoadBalancer))
            }
        }
    }
}
