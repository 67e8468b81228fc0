//! Exit statuses, what a run prints, and the error a refused command line carries.

/// Exit status of ipvsadm's own checks (`fail(2, …)`).
pub const EXIT_USAGE: i32 = 2;
/// Exit status when option parsing fails or the dataplane refuses a change (ipvsadm
/// returns -1 from `main`).
pub const EXIT_FAILED: i32 = 255;
/// Exit status when a listing cannot be read (ipvsadm's `exit(1)`).
pub const EXIT_LIST_FAILED: i32 = 1;

/// Program name used in messages that name the program.
pub(crate) const PROGRAM: &str = "lvslab ipvsadm";

/// What a run printed and its exit status, as ipvsadm would have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Standard output (listings, help).
    pub stdout: String,
    /// Standard error (messages, one per line).
    pub stderr: String,
    /// Exit status (see the module documentation).
    pub exit_code: i32,
}

impl Outcome {
    pub(crate) fn ok(stdout: String) -> Self {
        Outcome {
            stdout,
            stderr: String::new(),
            exit_code: 0,
        }
    }

    pub(crate) fn error(message: &str, exit_code: i32) -> Self {
        Outcome {
            stdout: String::new(),
            stderr: format!("{message}\n"),
            exit_code,
        }
    }
}

/// A command line ipvsadm would reject, with its message and exit status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// The message, as ipvsadm words it (possibly several lines, no final newline).
    pub message: String,
    /// [`EXIT_USAGE`] or [`EXIT_FAILED`].
    pub exit_code: i32,
}

impl UsageError {
    pub(crate) fn fail(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            exit_code: EXIT_USAGE,
        }
    }

    pub(crate) fn popt(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            exit_code: EXIT_FAILED,
        }
    }

    pub(crate) fn try_help() -> Self {
        Self::popt(format!(
            "Try `{PROGRAM} -h' or '{PROGRAM} --help' for more information."
        ))
    }

    pub(crate) fn unsupported(what: &str) -> Self {
        Self::fail(format!("{what} is not supported by {PROGRAM}"))
    }
}
