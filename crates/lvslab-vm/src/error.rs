//! Errors of the VM runner: each names the operation and the object it failed on.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while fetching a kernel or running a guest.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// A filesystem operation on the host failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("create directory", "read", …).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The underlying error, errno included.
        #[source]
        source: std::io::Error,
    },
    /// A helper program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program's name.
        program: String,
        /// The underlying error, errno included.
        #[source]
        source: std::io::Error,
    },
    /// A helper program ran and reported failure.
    #[error("{program} failed ({status}): {detail}")]
    Tool {
        /// The command line, shortened to what identifies it.
        program: String,
        /// How it ended.
        status: String,
        /// The tail of what it printed.
        detail: String,
    },
    /// A required program or file is missing on the host.
    #[error("{what} is missing: {hint}")]
    Missing {
        /// What is missing.
        what: String,
        /// How to get it.
        hint: String,
    },
    /// No kernel package matching the wanted pattern is known to apt.
    #[error("no linux-image-*-amd64 package found by apt-cache (even after apt-get update)")]
    NoKernelPackage,
    /// No kernel has been fetched into the cache yet.
    #[error("no kernel in the VM cache {0} (run `lvslab vm fetch` or .ci/vm-setup.sh)")]
    NotFetched(PathBuf),
    /// The cache holds something we do not understand.
    #[error("VM cache entry {path} is damaged: {detail}")]
    BadCache {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The caller asked for something that cannot be expressed to the guest.
    #[error("invalid run request: {0}")]
    InvalidRequest(String),
    /// The guest ran past its time limit; qemu was killed.
    #[error(
        "the VM did not finish within {limit:?} (qemu killed); last console lines:\n{console_tail}"
    )]
    Timeout {
        /// The limit that was exceeded.
        limit: Duration,
        /// The end of the guest's console, for diagnosis.
        console_tail: String,
    },
    /// The guest's setup failed before the command could run.
    #[error("guest setup failed: {message}; last console lines:\n{console_tail}")]
    GuestSetup {
        /// What the guest reported.
        message: String,
        /// The end of the guest's console.
        console_tail: String,
    },
    /// qemu ended without the guest reporting an exit status.
    #[error("qemu exited ({status}) before the guest reported an exit status; qemu said: {qemu_log}; last console lines:\n{console_tail}")]
    NoStatus {
        /// How qemu ended.
        status: String,
        /// qemu's own messages.
        qemu_log: String,
        /// The end of the guest's console.
        console_tail: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = VmError> = std::result::Result<T, E>;

impl VmError {
    /// Whether the guest's kernel died (a panic or oops on the console) before the command
    /// could report: a crash of the emulated machine, not of what it was asked to run, which
    /// a fresh guest may well not repeat.
    pub fn guest_kernel_died(&self) -> bool {
        match self {
            VmError::NoStatus { console_tail, .. } | VmError::Timeout { console_tail, .. } => {
                console_tail.contains("Kernel panic") || console_tail.contains("end trace")
            }
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        VmError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_guest_kernel_is_told_apart_from_a_failing_command() {
        let died = VmError::NoStatus {
            status: "exit status: 0".into(),
            qemu_log: String::new(),
            console_tail: "[ 2.37] RIP: 0010:hrtimer_start_range_ns\n[ 2.37] Kernel panic - not syncing: Fatal exception in interrupt".into(),
        };
        assert!(died.guest_kernel_died());
        let quiet = VmError::NoStatus {
            status: "exit status: 1".into(),
            qemu_log: "could not open kernel".into(),
            console_tail: String::new(),
        };
        assert!(!quiet.guest_kernel_died());
        let setup = VmError::GuestSetup {
            message: "modprobe ip_vs failed".into(),
            console_tail: "Kernel panic".into(),
        };
        assert!(!setup.guest_kernel_died());
    }
}
