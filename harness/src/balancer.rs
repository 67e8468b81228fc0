//! Installing a lab's `[[service]]`s on a dataplane, and one handle to drive either.
//!
//! - kernel: IPVS over generic netlink, one client per director namespace (the socket is
//!   opened inside the namespace, so it talks to that namespace's IPVS);
//! - userspace: lvslab's own director engine (and tunnel endpoints on real servers).

use lvslab_dataplane::engine::{start_for_lab, UserspaceDataplane};
use lvslab_ipvs::IpvsClient;
use lvslab_netns::apply::LabInstance;
use lvslab_spec::lb::{ForwardMethod, LbError, LoadBalancer};
use lvslab_spec::model::Lab;

/// Which dataplane balances the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataplane {
    Kernel,
    Userspace,
}

impl Dataplane {
    pub fn name(self) -> &'static str {
        match self {
            Dataplane::Kernel => "kernel",
            Dataplane::Userspace => "userspace",
        }
    }
}

/// A running load balancer for a lab.
pub enum Balancer {
    Kernel(Vec<(String, IpvsClient)>),
    Userspace(UserspaceDataplane),
}

/// Why a balancer could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum BalancerError {
    #[error("{director}: {what}: {source}")]
    Lb {
        director: String,
        what: String,
        #[source]
        source: LbError,
    },
    #[error("{director}: {detail}")]
    Setup { director: String, detail: String },
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
            Dataplane::Kernel => {
                let mut clients: Vec<(String, IpvsClient)> = Vec::new();
                for svc in &lab.services {
                    if !clients.iter().any(|(d, _)| d == &svc.director) {
                        let ns = inst.ns(&svc.director).ok_or_else(|| BalancerError::Setup {
                            director: svc.director.clone(),
                            detail: "no namespace".into(),
                        })?;
                        let client = ns
                            .run(IpvsClient::connect)
                            .map_err(|e| BalancerError::Setup {
                                director: svc.director.clone(),
                                detail: e.to_string(),
                            })?
                            .map_err(|e| BalancerError::Setup {
                                director: svc.director.clone(),
                                detail: e.to_string(),
                            })?;
                        clients.push((svc.director.clone(), client));
                    }
                    let (_, client) = clients
                        .iter_mut()
                        .find(|(d, _)| d == &svc.director)
                        .ok_or_else(|| BalancerError::Setup {
                            director: svc.director.clone(),
                            detail: "client vanished".into(),
                        })?;
                    let lb_err = |what: String| {
                        let director = svc.director.clone();
                        move |source| BalancerError::Lb {
                            director,
                            what,
                            source,
                        }
                    };
                    client
                        .add_service(&svc.config)
                        .map_err(lb_err(format!("add service {}", svc.config.key)))?;
                    for rs in &svc.real_servers {
                        let mut dest = rs.config.clone();
                        // Kernel IPVS has no FullNAT: the director masquerades and an nft
                        // SNAT rule (installed with the lab) rewrites the source.
                        if dest.method == ForwardMethod::FullNat {
                            dest.method = ForwardMethod::Nat;
                        }
                        client
                            .add_dest(&svc.config.key, &dest)
                            .map_err(lb_err(format!(
                                "add real server {}:{}",
                                dest.addr, dest.port
                            )))?;
                    }
                }
                Ok(Balancer::Kernel(clients))
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
