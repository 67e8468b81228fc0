//! lvslab-harness: the trials behind `cargo test` and `lvslab test`.
//!
//! Its one job: run a lab as a trial (build it, read it back against its model, send its
//! traffic, capture every hop, judge, diagnose, tear down) and return one typed
//! [`TrialOutcome`], so both entry points run the same code. It builds labs with
//! lvslab-netns in anonymous namespaces (the plan-replay trial also through
//! `lvslab plan | bash`, in named namespaces that it removes again), balances with
//! lvslab-instance's [`balancer`](lvslab_instance::balancer), runs kernel trials in the VM
//! through lvslab-vm, and has captures judged by lvslab-pcap's one trial check. It must
//! never leave anything behind or change the host's namespace, and never pass or fail a
//! capture by rules of its own: what a capture must show is decided in lvslab-pcap, from
//! the lab model; the diagnosis here only names the likely cause of a failure.
//!
//! Skips are decided when trials are collected ([`collect`]), with the reason; running a
//! trial whose requirement is missing fails with that reason instead of passing.

pub mod checks;
pub mod diagnose;
mod error;
pub mod outcome;
pub mod packets;
pub mod report;
pub mod traffic;
pub mod trials;
pub mod verify;

pub use error::HarnessError;
pub use outcome::{Check, Failure, Status, TrialOutcome};
pub use trials::{collect, run_trial, TrialKind, TrialSpec};
