//! The one error type of this crate.
//!
//! Every variant names the operation (written like the `ip`/`sysctl`/`nft` command it
//! stands for), the namespace it ran in, the object it touched, and keeps the kernel's
//! errno reachable through [`Error::errno`].

use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while creating, changing or reading a namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A namespace-level system call failed (unshare, setns, open, mount, unlink).
    #[error("{op} (namespace {ns}): {source}")]
    Namespace {
        /// What was attempted, e.g. `unshare(CLONE_NEWNET)`.
        op: String,
        /// Namespace label (name, path or `anon:<inode>`).
        ns: String,
        /// The underlying OS error (carries the errno).
        #[source]
        source: io::Error,
    },

    /// The kernel refused a netlink request.
    #[error("{op} (namespace {ns}): {source}{}", ext_ack_suffix(.ext_ack))]
    Netlink {
        /// The request, written as the equivalent `ip` command.
        op: String,
        /// Namespace label.
        ns: String,
        /// Interface the request was about, if any.
        iface: Option<String>,
        /// The kernel's extended-ack message, if it sent one.
        ext_ack: Option<String>,
        /// The errno the kernel returned.
        #[source]
        source: io::Error,
    },

    /// The running kernel lacks a feature the request needs (module not built or loaded).
    #[error("{op} (namespace {ns}): kernel has no {feature}: {hint} ({source})")]
    MissingKernelFeature {
        /// The request, written as the equivalent `ip` command.
        op: String,
        /// Namespace label.
        ns: String,
        /// Interface the request was about.
        iface: String,
        /// Kernel feature, e.g. `IPIP (CONFIG_NET_IPIP)`.
        feature: &'static str,
        /// What to do instead.
        hint: &'static str,
        /// The errno the kernel returned (usually EOPNOTSUPP).
        #[source]
        source: io::Error,
    },

    /// A reply from the kernel could not be understood.
    #[error("{op} (namespace {ns}): unexpected netlink reply: {detail}")]
    Protocol {
        /// The request, written as the equivalent `ip` command.
        op: String,
        /// Namespace label.
        ns: String,
        /// What was wrong with the reply.
        detail: String,
    },

    /// An interface named in a request does not exist in the namespace.
    #[error("{op} (namespace {ns}): no interface named {iface:?}")]
    NoSuchInterface {
        /// The request, written as the equivalent `ip` command.
        op: String,
        /// Namespace label.
        ns: String,
        /// The missing interface.
        iface: String,
    },

    /// A caller-supplied value is not acceptable (bad name, bad prefix length, …).
    #[error("{op}: invalid argument: {detail}")]
    InvalidArgument {
        /// The request, written as the equivalent `ip`/`sysctl` command.
        op: String,
        /// What is wrong with it.
        detail: String,
    },

    /// Reading or writing a sysctl failed.
    #[error("{op} (namespace {ns}): {source}")]
    Sysctl {
        /// e.g. `sysctl -w net.ipv4.ip_forward=1`.
        op: String,
        /// Namespace label.
        ns: String,
        /// The sysctl key as given.
        key: String,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },

    /// An ethtool ioctl failed.
    #[error("{op} (namespace {ns}): {source}")]
    Ethtool {
        /// e.g. `ethtool -K veth0 tx off`.
        op: String,
        /// Namespace label.
        ns: String,
        /// Interface the ioctl was about.
        iface: String,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },

    /// The kernel refused an nftables transaction; none of it was applied.
    #[error("{op} (namespace {ns}): {command}: {source}{}", ext_ack_suffix(.ext_ack))]
    NftTransaction {
        /// The whole operation, e.g. `nft replace table ip lvslab`.
        op: String,
        /// Namespace label.
        ns: String,
        /// The command the kernel refused, e.g. `rule 2 of chain ip lvslab postrouting: …`.
        command: String,
        /// The kernel's extended-ack message, if it sent one.
        ext_ack: Option<String>,
        /// The errno the kernel returned.
        #[source]
        source: io::Error,
    },

    /// Spawning or waiting for a program inside a namespace failed.
    #[error("run {program:?} (namespace {ns}): {source}")]
    Command {
        /// The program.
        program: String,
        /// Namespace label.
        ns: String,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },

    /// A change was requested in the host's own namespace, which this crate never modifies.
    #[error("{op}: refusing to modify the root network namespace")]
    RootIsReadOnly {
        /// The refused operation.
        op: String,
    },

    /// A worker thread that had entered a namespace panicked or went away.
    #[error("{op} (namespace {ns}): namespace worker thread {detail}")]
    Thread {
        /// What the thread was doing.
        op: String,
        /// Namespace label.
        ns: String,
        /// `panicked: <message>` or `exited`.
        detail: String,
    },
}

fn ext_ack_suffix(ext_ack: &Option<String>) -> String {
    match ext_ack {
        Some(msg) => format!(" (kernel says: {msg})"),
        None => String::new(),
    }
}

impl Error {
    /// The kernel errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Namespace { source, .. }
            | Error::Netlink { source, .. }
            | Error::MissingKernelFeature { source, .. }
            | Error::Sysctl { source, .. }
            | Error::Ethtool { source, .. }
            | Error::NftTransaction { source, .. }
            | Error::Command { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the failure is "the kernel cannot do this here", as opposed to a bug.
    pub fn is_missing_kernel_feature(&self) -> bool {
        matches!(self, Error::MissingKernelFeature { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlink_error_names_op_ns_and_errno() {
        let err = Error::Netlink {
            op: "ip link add v0 type veth peer name v1".into(),
            ns: "anon:4026532000".into(),
            iface: Some("v0".into()),
            ext_ack: Some("File exists".into()),
            source: io::Error::from_raw_os_error(libc::EEXIST),
        };
        let text = err.to_string();
        assert!(text.contains("ip link add v0"), "{text}");
        assert!(text.contains("anon:4026532000"), "{text}");
        assert!(text.contains("kernel says: File exists"), "{text}");
        assert_eq!(err.errno(), Some(libc::EEXIST));
    }

    #[test]
    fn nft_transaction_error_names_the_refused_command_and_errno() {
        let err = Error::NftTransaction {
            op: "nft replace table netdev lvslab_engine".into(),
            ns: "anon:1".into(),
            command: "add chain netdev lvslab_engine ingress_eth9".into(),
            ext_ack: None,
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        let text = err.to_string();
        assert!(
            text.contains("add chain netdev lvslab_engine ingress_eth9"),
            "{text}"
        );
        assert!(text.contains("anon:1"), "{text}");
        assert_eq!(err.errno(), Some(libc::ENOENT));
    }
}
