//! A running instance, opened again by a later command: its lab, its nodes' namespaces
//! (only the ones its journal proves are its own), and `ipvsadm` on its directors.

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use lvslab_netns::apply::LabInstance;
use lvslab_netns::journal::{Journal, JournalState};
use lvslab_netns::plan::{plan, DecapImpl, PlanOptions};
use lvslab_netns::Netns;
use lvslab_spec::model::Lab;
use lvslab_spec::Dataplane;

use crate::control::{self, Reply, Request};
use crate::{check_instance_name, InstanceError};

/// How long `lvslab ipvsadm` waits for the daemon's answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// An instance that `up` made, as its journal records it.
#[derive(Debug)]
pub struct Instance {
    journal: Journal,
    lab: Lab,
}

/// What an ipvsadm command printed and its exit status, from either dataplane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsadmOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

impl From<Reply> for IpvsadmOutput {
    fn from(r: Reply) -> Self {
        IpvsadmOutput {
            stdout: r.stdout,
            stderr: r.stderr,
            exit_code: r.exit_code,
        }
    }
}

impl Instance {
    /// Opens an instance by name (its journal must be trustworthy and its lab file load).
    pub fn open(name: &str) -> Result<Instance, InstanceError> {
        check_instance_name(name)?;
        let journal = Journal::open(name)?;
        let lab =
            lvslab_spec::load_lab(&journal.state.lab_file, &journal.state.params).map_err(|e| {
                InstanceError::Lab {
                    path: journal.state.lab_file.clone(),
                    detail: e.to_string(),
                }
            })?;
        Ok(Instance { journal, lab })
    }

    pub fn name(&self) -> &str {
        &self.journal.state.instance
    }

    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    pub fn dataplane(&self) -> Dataplane {
        self.journal.state.dataplane
    }

    pub fn state(&self) -> &JournalState {
        &self.journal.state
    }

    /// The instance's folder (journal, control socket, daemon log).
    pub fn dir(&self) -> &Path {
        self.journal.dir()
    }

    /// The nodes (and switches) the instance has namespaces for.
    pub fn nodes(&self) -> Vec<&str> {
        self.journal
            .state
            .namespaces
            .iter()
            .map(|n| n.node.as_str())
            .collect()
    }

    /// The namespace of a node, if it is the one the instance created.
    pub fn node(&self, node: &str) -> Result<Netns, InstanceError> {
        let rec = self
            .journal
            .state
            .namespaces
            .iter()
            .find(|n| n.node == node)
            .ok_or_else(|| InstanceError::NoSuchNode {
                instance: self.name().to_string(),
                node: node.to_string(),
                nodes: self.nodes().join(", "),
            })?;
        let not_ours = |detail: String| InstanceError::NotOurs {
            instance: self.name().to_string(),
            path: rec.path.clone(),
            detail,
        };
        let ns = Netns::open(&rec.path)?;
        match rec.ns_inode {
            Some(ino) if ino == ns.inode() => Ok(ns),
            Some(ino) => Err(not_ours(format!(
                "it holds namespace inode {}, the instance made {ino}",
                ns.inode()
            ))),
            None => Err(not_ours(
                "its journal (from an older lvslab) records no identity".into(),
            )),
        }
    }

    /// Every namespace of the instance, verified, as a built lab the daemon can use.
    pub fn attach(&self) -> Result<LabInstance, InstanceError> {
        let decap = DecapImpl::for_dataplane(self.dataplane());
        let p = plan(
            &self.lab,
            &PlanOptions {
                instance: self.name().to_string(),
                decap,
                run: None,
            },
        )?;
        let mut namespaces = IndexMap::new();
        for rec in &self.journal.state.namespaces {
            namespaces.insert(rec.node.clone(), self.node(&rec.node)?);
        }
        Ok(LabInstance::attach(p, namespaces))
    }

    /// The director node an ipvsadm command is for: the one given, else the director of
    /// the lab's first service.
    pub fn director(&self, given: Option<&str>) -> Result<String, InstanceError> {
        if let Some(d) = given {
            return Ok(d.to_string());
        }
        self.lab
            .services
            .first()
            .map(|s| s.director.clone())
            .ok_or_else(|| InstanceError::Daemon {
                instance: self.name().to_string(),
                detail:
                    "the lab has no [[service]], so no default director: name one with --director"
                        .into(),
            })
    }

    /// Runs ipvsadm's command line against a director: kernel IPVS in the director's
    /// namespace, or the userspace director through the daemon.
    pub fn ipvsadm(
        &self,
        director: Option<&str>,
        args: &[String],
    ) -> Result<IpvsadmOutput, InstanceError> {
        let director = self.director(director)?;
        match self.dataplane() {
            Dataplane::Kernel => {
                let ns = self.node(&director)?;
                let mut client = ns.run(lvslab_ipvs::IpvsClient::connect)?.map_err(|e| {
                    InstanceError::Daemon {
                        instance: self.name().to_string(),
                        detail: format!("kernel IPVS in `{director}`: {e}"),
                    }
                })?;
                let o = lvslab_ipvsadm::run(args, &mut client);
                Ok(IpvsadmOutput {
                    stdout: o.stdout,
                    stderr: o.stderr,
                    exit_code: o.exit_code,
                })
            }
            Dataplane::Userspace => control::send(
                self.dir(),
                &Request::Ipvsadm {
                    director: Some(director),
                    args: args.to_vec(),
                },
                CONTROL_TIMEOUT,
            )
            .map(IpvsadmOutput::from),
        }
    }

    /// The userspace engines' counters as the daemon renders them.
    pub fn stats(&self) -> Result<IpvsadmOutput, InstanceError> {
        control::send(self.dir(), &Request::Stats, CONTROL_TIMEOUT).map(IpvsadmOutput::from)
    }
}
