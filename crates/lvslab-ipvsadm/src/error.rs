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

/// A command line ipvsadm would reject: its message, its exit status and the argument or
/// option at fault.
///
/// The message's first line is ipvsadm's own text wherever ipvsadm has one (so scripts and
/// eyes trained on ipvsadm recognise it); the lines after it say what is wrong with which
/// word and how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// The message (possibly several lines, no final newline).
    pub message: String,
    /// [`EXIT_USAGE`] or [`EXIT_FAILED`].
    pub exit_code: i32,
    /// The argument or option at fault as the command line wrote it (`-w`, `3x`,
    /// `--bogus`), or ipvsadm's name for a missing option (`real-server`). The message
    /// names it, except where ipvsadm's exact text is kept for an unknown scheduler (the
    /// kernel's `Scheduler or persistence engine not found`, which ipvsadm prints).
    pub culprit: String,
}

impl UsageError {
    /// ipvsadm's `fail(2, …)`: a check on what the options say.
    pub(crate) fn fail(culprit: impl Into<String>, message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            exit_code: EXIT_USAGE,
            culprit: culprit.into(),
        }
    }

    /// popt could not read the words at all (ipvsadm returns -1).
    pub(crate) fn popt(culprit: impl Into<String>, message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            exit_code: EXIT_FAILED,
            culprit: culprit.into(),
        }
    }

    /// Adds a line saying what is wrong or how to fix it.
    pub(crate) fn hint(mut self, line: impl AsRef<str>) -> Self {
        self.message.push('\n');
        self.message.push_str(line.as_ref());
        self
    }

    /// Ends with ipvsadm's pointer to the help.
    pub(crate) fn try_help(self) -> Self {
        self.hint(format!(
            "Try `{PROGRAM} -h' or '{PROGRAM} --help' for more information."
        ))
    }

    /// An ipvsadm option lvslab does not implement.
    pub(crate) fn unsupported(culprit: &str, what: &str) -> Self {
        Self::fail(culprit, format!("{what} is not supported by {PROGRAM}")).hint(
            "lvslab runs ipvsadm's service and real-server commands, listings, --set, -Z \
             and -C",
        )
    }
}

/// A word of the command line quoted the way ipvsadm quotes in its messages.
pub(crate) fn quoted(word: &str) -> String {
    format!("`{word}'")
}
