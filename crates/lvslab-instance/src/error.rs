//! The one error type of this crate: each variant says which instance, node or file, and
//! keeps the underlying error reachable.

use std::path::PathBuf;

use lvslab_netns::apply::ApplyError;
use lvslab_netns::journal::{JournalError, Teardown};

use crate::balancer::BalancerError;

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("instance name `{name}` is not valid: use lowercase letters, digits and `-`, starting with a letter, at most 24 bytes")]
    InvalidName { name: String },
    #[error("{0}")]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Apply(#[from] ApplyError),
    #[error("{0}")]
    Balancer(#[from] BalancerError),
    #[error("{0}")]
    Netns(#[from] lvslab_netns::Error),
    #[error("the lab file {path} no longer loads: {detail}")]
    Lab { path: PathBuf, detail: String },
    #[error("--dataplane kernel needs IPVS in the running kernel, and this one has none (see `lvslab doctor`): use `--dataplane userspace`, or run inside the VM: `lvslab vm run -- lvslab up {lab} --dataplane kernel`")]
    NoKernelIpvs { lab: String },
    #[error("instance `{instance}` is still being made by `lvslab up` (pid {pid}); wait for it, or stop it with Ctrl-C (it then removes what it built)")]
    InProgress { instance: String, pid: i32 },
    #[error("instance `{instance}` has no node `{node}`; nodes: {nodes}")]
    NoSuchNode {
        instance: String,
        node: String,
        nodes: String,
    },
    #[error("{path} is not the namespace instance `{instance}` created ({detail}); lvslab will not use it")]
    NotOurs {
        instance: String,
        path: PathBuf,
        detail: String,
    },
    #[error("instance `{instance}`: {detail}")]
    Daemon { instance: String, detail: String },
    #[error("control socket {path}: {source}")]
    Control {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {detail}{}", teardown_note(.teardown))]
    Abandoned {
        what: String,
        detail: String,
        teardown: Teardown,
    },
    #[error("interrupted; the lab was removed{}", teardown_note(.teardown))]
    Interrupted { teardown: Teardown },
}

fn teardown_note(t: &Teardown) -> String {
    let mut out = String::new();
    for e in &t.errors {
        out.push_str(&format!("\n  teardown: {e}"));
    }
    for l in &t.left {
        out.push_str(&format!("\n  left: {l}"));
    }
    out
}
