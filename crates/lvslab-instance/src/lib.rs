//! lvslab-instance: a lab instance that outlives the command that started it.
//!
//! `lvslab up` builds a lab in named namespaces, installs its load balancer and starts a
//! background process (the daemon: the lab's servers and, with the userspace dataplane,
//! the director engine) that `lvslab down` stops. This crate owns that lifecycle for every
//! caller (the CLI, the harness, the daemon itself):
//! - [`up`], [`down`], [`down_all`], [`status`]: the lifecycle, journalled so that a crash
//!   at any point can be undone ([`lvslab_netns::journal`]);
//! - [`Instance`]: a running instance opened again (its lab, its nodes, `ipvsadm` on it);
//! - [`daemon`]: the background process, and [`control`]: its socket protocol;
//! - [`balancer`]: either dataplane behind one handle.
//!
//! It builds on lvslab-netns (namespaces, the journal, the lab's servers), lvslab-ipvs and
//! lvslab-dataplane (the two dataplanes, behind [`balancer`]) and lvslab-ipvsadm (the
//! command line run on an instance). It must never remove or signal anything it cannot
//! prove it created: it acts only on what the journal records with a matching identity
//! (namespace and mount-point inodes, process start time and executable), never by name
//! or name prefix.

pub mod balancer;
pub mod control;
pub mod daemon;
mod error;
mod instance;
mod lifecycle;
mod name;
mod status;

pub use error::InstanceError;
pub use instance::{Instance, IpvsadmOutput};
pub use lifecycle::{down, down_all, up, DownAllReport, DownReport, UpOptions, UpReport};
pub use name::{check_instance_name, MAX_INSTANCE_NAME};
pub use status::{status, InstanceState, InstanceStatus, NsStatus, ProcStatus, StatusReport};

/// Name of the file the daemon writes once its servers listen.
pub const READY_FILE: &str = "ready";
/// The daemon's output, in the instance's folder.
pub const DAEMON_LOG: &str = "daemon.log";
