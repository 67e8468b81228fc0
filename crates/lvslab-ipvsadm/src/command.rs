//! The typed command a command line parses into, with ipvsadm's defaults.

use std::net::IpAddr;

use lvslab_spec::lb::{DestConfig, Scheduler, ServiceConfig, ServiceKey, Timeouts};

use crate::listing::ListingOptions;

/// `-p` without a timeout: libipvs' `IPVS_SVC_PERSISTENT_TIMEOUT` (6 minutes).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;
/// Largest timeout ipvsadm accepts (`-p`, `--set`): 31 days.
pub const MAX_TIMEOUT: u32 = 86_400 * 31;
/// Scheduler `-A`/`-E` send when `-s` is absent.
pub const DEFAULT_SCHEDULER: Scheduler = Scheduler::Wlc;

/// What a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListTarget {
    /// `-L`: every service, with the version line.
    All,
    /// `-L -t/-u/-f SERVICE`: one service, without the version line.
    Service(ServiceKey),
    /// `-L --timeout`.
    Timeouts,
}

/// A parsed command line, with ipvsadm's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`: the complete service to create.
    AddService(ServiceConfig),
    /// `-E`: the complete service to send. `local_addresses` holds only the `--laddr`
    /// given on the command line; [`execute`](crate::execute) adds them to the service's current pool.
    EditService(ServiceConfig),
    /// `-D`.
    DeleteService(ServiceKey),
    /// `-a`: the complete destination to add to `service`.
    AddDest {
        /// The virtual service.
        service: ServiceKey,
        /// The destination, defaults applied.
        dest: DestConfig,
    },
    /// `-e`: the complete destination to send (every field is rewritten).
    EditDest {
        /// The virtual service.
        service: ServiceKey,
        /// The destination, defaults applied.
        dest: DestConfig,
    },
    /// `-d`.
    DeleteDest {
        /// The virtual service.
        service: ServiceKey,
        /// Real server address.
        addr: IpAddr,
        /// Real server port (the service port when `-r` had none).
        port: u16,
    },
    /// `-C`.
    Flush,
    /// `-Z [SERVICE]`.
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp` (0 leaves a value unchanged).
    SetTimeouts(Timeouts),
    /// `-L`/`-l`.
    List {
        /// What to list.
        target: ListTarget,
        /// Layout and sorting.
        options: ListingOptions,
    },
    /// `-h`/`--help`.
    Help,
    /// `-v`/`--version`.
    Version,
}
