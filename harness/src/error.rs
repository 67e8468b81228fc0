//! The harness's own failures (outside what a trial finds in a lab): files it reads and
//! writes, captures it arms, the VM it shares a folder with. Each says which object.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Json {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the lab cannot be checked packet by packet: {0}")]
    Roles(#[from] lvslab_pcap::RolesError),
    #[error("{0}")]
    Expectations(#[from] lvslab_spec::SpecErrors),
    #[error("capture point {point}: no namespace for node {node}")]
    NoNamespace { point: String, node: String },
    #[error("arm captures: {0}")]
    Capture(#[from] lvslab_netns::capture::CaptureError),
    #[error("the VM can share one writable folder and it is already {shared}: the captures must go under it (set {env})")]
    VmShare { shared: PathBuf, env: &'static str },
    #[error("`{program}` failed: {detail}")]
    Command { program: String, detail: String },
}

/// `map_err` helper for file operations.
pub(crate) fn io(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> HarnessError {
    let path = path.to_path_buf();
    move |source| HarnessError::Io { op, path, source }
}
