//! IPVS generic netlink messages: the model turned into the exact attribute layout ipvsadm
//! 1.31 (libipvs) sends, and kernel replies turned back into the model.
//!
//! Byte orders are mixed on purpose, because the kernel reads them that way: address
//! family, protocol, fwmark, flags, weight, thresholds, timeouts and counters are in host
//! order; ports, the GUE tunnel port, addresses and the IPv4 persistence netmask are in
//! network order; the IPv6 netmask is a plain prefix length.
//!
//! One module per object: `service` (service nests and their requests), `dest`
//! (destinations), `info` (GET_INFO and the timeouts of GET_CONFIG/SET_CONFIG), `family`
//! (resolving the `"IPVS"` family id through the generic netlink controller) and `common`
//! (attribute numbers and helpers more than one object uses). This module holds the
//! command numbers, the errors and the [`Request`] every object builds.

use crate::wire::{genl_message, WireError, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

mod common;
mod dest;
mod family;
mod info;
mod service;

pub use common::{cmd_attr, parse_stats, stats_attr};
pub use dest::{dest_attr, dest_name, parse_dest_nest, parse_dest_reply, put_dest};
pub use family::{ctrl, parse_family_id, resolve_family_message};
pub use info::{info_attr, parse_info_reply, parse_timeouts_reply, version_string};
pub use service::{
    key_only_service, parse_service_nest, parse_service_reply, put_service, service_af, svc_attr,
};

/// Name of the generic netlink family.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// Version carried in every genl header.
pub const IPVS_GENL_VERSION: u8 = 1;

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// Longest scheduler / persistence-engine name the kernel accepts (16 with the NUL).
pub const NAME_MAX: usize = 15;

/// `IPVS_CMD_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    /// Add a service.
    NewService = 1,
    /// Edit a service (also the reply to nothing; GET_SERVICE replies use `NewService`).
    SetService = 2,
    /// Delete a service.
    DelService = 3,
    /// Get one service or dump all.
    GetService = 4,
    /// Add a destination (also the command number of GET_DEST replies).
    NewDest = 5,
    /// Edit a destination.
    SetDest = 6,
    /// Delete a destination.
    DelDest = 7,
    /// Dump a service's destinations.
    GetDest = 8,
    /// Set timeouts (also the command number of GET_CONFIG replies).
    SetConfig = 12,
    /// Get timeouts.
    GetConfig = 13,
    /// Reply to GET_INFO.
    SetInfo = 14,
    /// Version and connection table size.
    GetInfo = 15,
    /// Zero counters.
    Zero = 16,
    /// Delete every service.
    Flush = 17,
}

/// A request the model cannot express on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// FullNAT has no kernel forwarding method.
    #[error(
        "destination {dest}: the kernel IPVS has no FullNAT forwarding method; the kernel \
         dataplane realises FullNAT as masquerading (NAT) plus an nft SNAT rule toward the \
         real servers, set up by the provisioner"
    )]
    FullNat {
        /// `addr:port` of the destination.
        dest: String,
    },
    /// Scheduler or persistence-engine name longer than the kernel's limit.
    #[error("{what} name `{name}` is longer than {NAME_MAX} bytes")]
    NameTooLong {
        /// "persistence engine" or "scheduler".
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// Persistence netmask that the kernel rejects.
    #[error("IPv6 service {service}: persistence netmask must be a prefix length 1..=128, got {netmask}")]
    Ipv6Netmask {
        /// The service.
        service: String,
        /// The value given.
        netmask: u32,
    },
}

/// A reply that does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Broken framing.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A mandatory attribute was absent.
    #[error("{object} reply lacks attribute {attr}")]
    Missing {
        /// "service", "destination", ….
        object: &'static str,
        /// Attribute name.
        attr: &'static str,
    },
    /// An attribute had a value the model cannot hold.
    #[error("{object} reply: {detail}")]
    Value {
        /// "service", "destination", ….
        object: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The reply used another command number than the request's reply command.
    #[error("expected reply command {expected}, got {got}")]
    Command {
        /// Expected command number.
        expected: u8,
        /// Received command number.
        got: u8,
    },
}

/// An encoded IPVS request: command, whether it is a dump, and its top-level attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command.
    pub cmd: Command,
    /// Sent with `NLM_F_DUMP`.
    pub dump: bool,
    /// Top-level attribute bytes.
    pub attrs: Vec<u8>,
}

impl Request {
    fn bare(cmd: Command) -> Self {
        Request {
            cmd,
            dump: false,
            attrs: Vec::new(),
        }
    }

    /// The command number the kernel uses in its data replies to this request.
    pub fn reply_cmd(&self) -> Option<Command> {
        match self.cmd {
            Command::GetService => Some(Command::NewService),
            Command::GetDest => Some(Command::NewDest),
            Command::GetConfig => Some(Command::SetConfig),
            Command::GetInfo => Some(Command::SetInfo),
            _ => None,
        }
    }

    /// `nlmsg_flags`: REQUEST|ACK, plus DUMP for dumps (libnl adds ACK to everything).
    pub fn nl_flags(&self) -> u16 {
        let base = NLM_F_REQUEST | NLM_F_ACK;
        if self.dump {
            base | NLM_F_DUMP
        } else {
            base
        }
    }

    /// The complete netlink message for the resolved family id.
    pub fn to_message(&self, family: u16, seq: u32) -> Vec<u8> {
        genl_message(
            family,
            self.nl_flags(),
            seq,
            self.cmd as u8,
            IPVS_GENL_VERSION,
            &self.attrs,
        )
    }
}

// The byte tables are laid out one attribute per line with comments; keep rustfmt off them.
#[cfg(test)]
#[rustfmt::skip]
mod test_bytes;
