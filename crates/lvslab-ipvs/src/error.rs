//! Errors of the kernel IPVS client, and their mapping onto the shared [`LbError`].

use std::io;

use lvslab_spec::lb::LbError;

use crate::codec::{DecodeError, EncodeError};

/// Linux errno numbers the IPVS control path returns.
pub mod errno {
    /// Operation not permitted (no `CAP_NET_ADMIN` over the netns).
    pub const EPERM: i32 = 1;
    /// Scheduler/PE unknown (service commands) or destination unknown (dest commands).
    pub const ENOENT: i32 = 2;
    /// Service not found.
    pub const ESRCH: i32 = 3;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Busy.
    pub const EBUSY: i32 = 16;
    /// Service or destination already exists.
    pub const EEXIST: i32 = 17;
    /// Malformed or inconsistent request.
    pub const EINVAL: i32 = 22;
    /// Negative weight, or lower threshold above upper.
    pub const ERANGE: i32 = 34;
    /// Operation not supported.
    pub const EOPNOTSUPP: i32 = 95;
    /// Address family not supported.
    pub const EAFNOSUPPORT: i32 = 97;
}

/// The symbolic name of an errno IPVS commonly returns (`"errno N"` otherwise).
pub fn errno_name(e: i32) -> String {
    let name = match e {
        errno::EPERM => "EPERM",
        errno::ENOENT => "ENOENT",
        errno::ESRCH => "ESRCH",
        errno::ENOMEM => "ENOMEM",
        errno::EBUSY => "EBUSY",
        errno::EEXIST => "EEXIST",
        errno::EINVAL => "EINVAL",
        errno::ERANGE => "ERANGE",
        errno::EOPNOTSUPP => "EOPNOTSUPP",
        errno::EAFNOSUPPORT => "EAFNOSUPPORT",
        _ => return format!("errno {e}"),
    };
    format!("{name} (errno {e})")
}

/// What went wrong talking to the kernel's IPVS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The generic netlink family "IPVS" does not exist in this kernel/namespace.
    #[error("kernel IPVS is unavailable: {0}")]
    Unavailable(String),
    /// The kernel answered the request with an error.
    #[error("{op}: kernel returned {}: {}", errno_name(*errno), io::Error::from_raw_os_error(*errno))]
    Kernel {
        /// The operation and its object, e.g. `add service TCP 192.0.2.1:80`.
        op: String,
        /// Positive errno.
        errno: i32,
    },
    /// The socket itself failed.
    #[error("{op}: {source}")]
    Io {
        /// The operation.
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The request cannot be expressed on the wire.
    #[error("{op}: {source}")]
    Encode {
        /// The operation.
        op: String,
        /// Why.
        #[source]
        source: EncodeError,
    },
    /// The kernel's reply did not parse.
    #[error("{op}: {source}")]
    Decode {
        /// The operation.
        op: String,
        /// Why.
        #[source]
        source: DecodeError,
    },
}

impl Error {
    /// The kernel errno, where there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Which kind of object an operation addressed: decides what `ENOENT` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Service commands: `ENOENT` = scheduler or persistence engine not found.
    Service,
    /// Destination commands: `ENOENT` = destination not found.
    Dest,
    /// Everything else.
    Other,
}

/// Maps a client error to the shared model's error, keeping the operation and errno in
/// the message.
pub fn to_lb_error(err: Error, target: Target) -> LbError {
    let text = err.to_string();
    match &err {
        Error::Unavailable(_) => LbError::Unavailable(text),
        Error::Encode {
            source: EncodeError::FullNat { .. },
            ..
        } => LbError::Unavailable(text),
        Error::Encode { .. } => LbError::Invalid(text),
        Error::Decode { .. } | Error::Io { .. } => LbError::Io {
            op: "kernel IPVS".into(),
            detail: text,
        },
        Error::Kernel { errno: e, .. } => match *e {
            errno::EEXIST => LbError::Exists(text),
            errno::ESRCH => LbError::NotFound(text),
            errno::ENOENT if target == Target::Dest => LbError::NotFound(text),
            errno::ENOENT => LbError::NoScheduler(text),
            errno::EINVAL | errno::EAFNOSUPPORT => LbError::Invalid(text),
            errno::ERANGE => LbError::Range(text),
            errno::EOPNOTSUPP => LbError::Unavailable(text),
            _ => LbError::Io {
                op: "kernel IPVS".into(),
                detail: text,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(errno: i32) -> Error {
        Error::Kernel {
            op: "add service TCP 192.0.2.1:80".into(),
            errno,
        }
    }

    #[test]
    fn errnos_map_to_model_errors_and_keep_the_errno() {
        let e = to_lb_error(kernel(errno::EEXIST), Target::Service);
        assert!(
            matches!(&e, LbError::Exists(m) if m.contains("EEXIST (errno 17)") && m.contains("192.0.2.1:80"))
        );
        assert!(matches!(
            to_lb_error(kernel(3), Target::Service),
            LbError::NotFound(_)
        ));
        assert!(matches!(
            to_lb_error(kernel(2), Target::Service),
            LbError::NoScheduler(_)
        ));
        assert!(matches!(
            to_lb_error(kernel(2), Target::Dest),
            LbError::NotFound(_)
        ));
        assert!(matches!(
            to_lb_error(kernel(22), Target::Dest),
            LbError::Invalid(_)
        ));
        assert!(matches!(
            to_lb_error(kernel(34), Target::Dest),
            LbError::Range(_)
        ));
        assert!(matches!(
            to_lb_error(kernel(errno::EPERM), Target::Other),
            LbError::Io { detail, .. } if detail.contains("EPERM")
        ));
        assert_eq!(kernel(34).errno(), Some(34));
    }
}
