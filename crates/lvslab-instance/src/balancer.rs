//! Installing a lab's `[[service]]`s on a dataplane, and one handle to drive either.
//!
//! - kernel: IPVS over generic netlink, one client per director namespace (the socket is
//!   opened inside the namespace, so it talks to that namespace's IPVS);
//! - userspace: lvslab's own director engine (and tunnel endpoints on real servers).

use std::net::{IpAddr, Ipv4Addr};

use lvslab_dataplane::engine::{start_for_lab, UserspaceDataplane};
use lvslab_ipvs::IpvsClient;
use lvslab_netns::apply::LabInstance;
use lvslab_netns::nft;
use lvslab_spec::lb::{ForwardMethod, LbError, LoadBalancer};
use lvslab_spec::model::Lab;

pub use lvslab_spec::Dataplane;

/// A running load balancer for a lab.
pub enum Balancer {
    Kernel(Vec<(String, IpvsClient)>),
    Userspace(UserspaceDataplane),
}

/// How FullNAT is realised on kernel IPVS, for logs and reports.
pub const KERNEL_FULLNAT_NOTE: &str =
    "FullNAT on kernel IPVS: masquerading (-m) plus an nft SNAT rule toward the real servers, with net.ipv4.vs.conntrack=1";

/// The nft table that gives kernel IPVS masquerading the source rewrite of FullNAT:
/// traffic to each FullNAT real server leaves with a local address from the pool
/// (`table ip lvslab_fullnat`, postrouting srcnat: `ip daddr RIP tcp dport P snat to
/// A-B`). `None` when the service has no FullNAT real server or no IPv4 pool.
pub fn kernel_fullnat_ruleset(
    svc: &lvslab_spec::model::Service,
) -> Result<Option<nft::Table>, lvslab_netns::Error> {
    let pool: Vec<Ipv4Addr> = svc
        .config
        .local_addresses
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(v) => Some(*v),
            IpAddr::V6(_) => None,
        })
        .collect();
    let (Some(first), Some(last)) = (pool.iter().min(), pool.iter().max()) else {
        return Ok(None);
    };
    // A contiguous pool is one nft range; otherwise the first address serves alone.
    let contiguous = u32::from(*last) - u32::from(*first) + 1 == pool.len() as u32;
    let to = if contiguous {
        nft::NatTo::range(*first, *last)?
    } else {
        nft::NatTo::addr(pool[0])
    };
    let lvslab_spec::lb::ServiceKey::Addr { protocol, .. } = svc.config.key else {
        return Ok(None);
    };
    let mut rules = Vec::new();
    for rs in svc
        .real_servers
        .iter()
        .filter(|r| r.config.method == ForwardMethod::FullNat)
    {
        let IpAddr::V4(rip) = rs.config.addr else {
            continue;
        };
        rules.push(nft::Rule::new(
            vec![
                nft::Match::Daddr {
                    prefix: nft::Ipv4Prefix::host(rip),
                    negate: false,
                },
                nft::Match::Port {
                    protocol,
                    field: nft::PortField::Dport,
                    port: rs.config.port,
                },
            ],
            nft::Statement::Snat(to),
        )?);
    }
    if rules.is_empty() {
        return Ok(None);
    }
    let chain = nft::Chain::new(
        nft::Name::new("postrouting")?,
        Some(nft::BaseChain::srcnat()),
        rules,
    );
    nft::Table::new(
        nft::Family::Ip,
        nft::Name::new("lvslab_fullnat")?,
        vec![chain],
    )
    .map(Some)
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
                    let setup = |e: lvslab_netns::Error| BalancerError::Setup {
                        director: svc.director.clone(),
                        detail: format!("FullNAT on kernel IPVS: {e}"),
                    };
                    if let Some(table) = kernel_fullnat_ruleset(svc).map_err(setup)? {
                        let ns = inst.ns(&svc.director).ok_or_else(|| BalancerError::Setup {
                            director: svc.director.clone(),
                            detail: "no namespace".into(),
                        })?;
                        // IPVS connections get conntrack entries only with this set, and
                        // nft NAT works only on tracked packets.
                        lvslab_netns::set_sysctl(ns, "net.ipv4.vs.conntrack", "1")
                            .map_err(setup)?;
                        nft::apply(ns, &table).map_err(setup)?;
                    }
                }
                Ok(Balancer::Kernel(clients))
            }
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
            Balancer::Userspace(dp) => format!("{:#?}\n", dp.stats()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fullnat_lab_gets_a_snat_rule_per_real_server_to_the_pool() {
        let labs = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs");
        let lab = lvslab_spec::load_lab(&lvslab_spec::lab_path(&labs, "fullnat"), &[])
            .expect("fullnat lab");
        let table = kernel_fullnat_ruleset(&lab.services[0])
            .expect("valid table")
            .expect("a table");
        assert_eq!(
            nft::render::table(&table),
            "table ip lvslab_fullnat {\n\
             \tchain postrouting {\n\
             \t\ttype nat hook postrouting priority 100; policy accept;\n\
             \t\tip daddr 172.16.20.11 tcp dport 8080 snat to 10.10.0.101-10.10.0.102\n\
             \t\tip daddr 172.16.20.12 tcp dport 8080 snat to 10.10.0.101-10.10.0.102\n\
             \t}\n\
             }\n"
        );
        let nat =
            lvslab_spec::load_lab(&lvslab_spec::lab_path(&labs, "nat"), &[]).expect("nat lab");
        assert_eq!(
            kernel_fullnat_ruleset(&nat.services[0]).expect("valid"),
            None
        );
    }
}
