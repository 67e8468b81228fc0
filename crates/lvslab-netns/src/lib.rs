//! lvslab-netns: network namespaces and the kernel plumbing a lab is built from.
//!
//! Its one job: build a lab's namespaces and everything inside them (links, addresses,
//! routes, neighbours, sysctls, nftables), read them back, capture their traffic, and
//! remove them again.
//! - [`ns`]: namespaces held by fd ([`Netns`]), code and programs run inside them
//!   ([`Netns::run`], [`NsThread`], [`Netns::spawn`]). `setns` never touches the caller's
//!   thread and nothing forks.
//! - [`rtnl`]: links, addresses, routes, neighbours and rules over route netlink
//!   ([`NsHandle`]), one module per `ip` subcommand.
//! - [`sysctl`]: per-namespace sysctls.
//! - [`nft`]: nftables rulesets as a validated model, installed and read back over
//!   netfilter netlink.
//! - [`dump`]: read-back records and whole-namespace [`NsSnapshot`]s with diffs.
//! - [`probe`](mod@probe): which kernel and machine features are available, with reasons.
//! - [`capture`]: per-hop AF_PACKET capture, proven armed, into a pcapng capture.
//! - Provisioning: [`plan`] (lab → ordered steps, pure), [`apply`] (steps → a built
//!   instance, or nothing), [`named`] (named namespaces it can prove it made),
//!   [`journal`] (the undo journal of an instance), [`traffic`] (the lab's servers and
//!   probes), [`tun`] (persistent TUN devices).
//!
//! It builds on lvslab-spec (the lab model) and lvslab-pcap (the capture format) and talks
//! to the kernel only through netlink, sockets and `/proc/sys`: no `ip`, `nft` or
//! `tcpdump` programs. It must never modify the host's own namespace: [`Netns::root`] is
//! read-only, every change happens in a namespace it created, and it removes only
//! namespaces whose recorded identity still matches.

pub mod capture;
mod capture_sys;
pub mod droptrace;
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
