//! lvslab-netns: network namespaces and the kernel plumbing a lab is built from.
//!
//! - [`ns`]: namespaces held by fd ([`Netns`]), code and programs run inside them
//!   ([`Netns::run`], [`NsThread`], [`Netns::spawn`]). `setns` never touches the caller's
//!   thread and nothing forks.
//! - [`rtnl`]: links, addresses, routes, neighbours over route netlink ([`NsHandle`]).
//! - [`sysctl`]: per-namespace sysctls.
//! - [`nft`]: nftables rulesets as a validated model, installed and read back over
//!   netfilter netlink.
//! - [`dump`]: read-back records and whole-namespace [`NsSnapshot`]s with diffs.
//! - [`probe`]: which kernel and machine features are available, with reasons.
//!
//! Nothing in this crate modifies the host's own namespace: [`Netns::root`] is read-only.

pub mod capture;
mod capture_sys;
pub mod dump;
pub mod error;
pub mod mac;
pub mod named;
mod netlink;
pub mod nft;
pub mod ns;
pub mod probe;
pub mod rtnl;
mod sys;
pub mod sysctl;

// Provisioning: lab → plan → applied instance, its journal, its servers and probes.
pub mod apply;
pub mod journal;
pub mod plan;
pub mod traffic;
pub mod tun;

pub use dump::{snapshot, AddressInfo, LinkInfo, NeighbourInfo, NsSnapshot, RouteInfo, RuleInfo};
pub use error::{Error, Result};
pub use mac::MacAddr;
pub use ns::{Netns, NsThread};
pub use probe::{probe, Feature};
pub use rtnl::NsHandle;
pub use sysctl::{get_sysctl, set_sysctl};
