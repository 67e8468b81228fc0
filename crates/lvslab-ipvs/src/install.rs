//! Installing a lab's `[[service]]`s on kernel IPVS: one client per director namespace
//! (the socket is opened inside it, so it talks to that namespace's IPVS), each service
//! and real server added as ipvsadm would, and FullNAT realised the way production users
//! do on mainline kernels (masquerading plus an nft SNAT rule toward the real servers).

use std::net::{IpAddr, Ipv4Addr};

use lvslab_netns::apply::LabInstance;
use lvslab_netns::nft;
use lvslab_spec::lb::{ForwardMethod, LbError, LoadBalancer};
use lvslab_spec::model::Lab;

use crate::IpvsClient;

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

/// Why a lab's services could not be installed on kernel IPVS.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{director}: {what}: {source}")]
    Lb {
        director: String,
        what: String,
        #[source]
        source: LbError,
    },
    #[error("{director}: {detail}")]
    Setup { director: String, detail: String },
}

/// Installs every service of the lab on the kernel IPVS of its director's namespace;
/// returns the client of each director.
pub fn install_lab(
    lab: &Lab,
    inst: &LabInstance,
) -> Result<Vec<(String, IpvsClient)>, InstallError> {
    let mut clients: Vec<(String, IpvsClient)> = Vec::new();
    for svc in &lab.services {
        if !clients.iter().any(|(d, _)| d == &svc.director) {
            let ns = inst.ns(&svc.director).ok_or_else(|| InstallError::Setup {
                director: svc.director.clone(),
                detail: "no namespace".into(),
            })?;
            let client = ns
                .run(IpvsClient::connect)
                .map_err(|e| InstallError::Setup {
                    director: svc.director.clone(),
                    detail: e.to_string(),
                })?
                .map_err(|e| InstallError::Setup {
                    director: svc.director.clone(),
                    detail: e.to_string(),
                })?;
            clients.push((svc.director.clone(), client));
        }
        let (_, client) = clients
            .iter_mut()
            .find(|(d, _)| d == &svc.director)
            .ok_or_else(|| InstallError::Setup {
                director: svc.director.clone(),
                detail: "client vanished".into(),
            })?;
        let lb_err = |what: String| {
            let director = svc.director.clone();
            move |source| InstallError::Lb {
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
        let setup = |e: lvslab_netns::Error| InstallError::Setup {
            director: svc.director.clone(),
            detail: format!("FullNAT on kernel IPVS: {e}"),
        };
        if let Some(table) = kernel_fullnat_ruleset(svc).map_err(setup)? {
            let ns = inst.ns(&svc.director).ok_or_else(|| InstallError::Setup {
                director: svc.director.clone(),
                detail: "no namespace".into(),
            })?;
            // IPVS connections get conntrack entries only with this set, and
            // nft NAT works only on tracked packets.
            lvslab_netns::set_sysctl(ns, "net.ipv4.vs.conntrack", "1").map_err(setup)?;
            nft::apply(ns, &table).map_err(setup)?;
        }
    }
    Ok(clients)
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
