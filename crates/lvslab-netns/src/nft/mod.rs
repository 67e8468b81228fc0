//! nftables over netlink (`NETLINK_NETFILTER`, nf_tables), without the `nft` program.
//!
//! - [`model`]: the structured, validated ruleset ([`Table`], [`Chain`], [`Rule`],
//!   [`Match`], [`Statement`]).
//! - [`render`]: the model as nft syntax (what `lvslab plan` prints).
//! - `netlink`: the model as nf_tables messages, sent as one transaction; `expr`: the
//!   expressions a rule compiles to; `wire`: attribute framing.
//! - [`listing`]: read-back of tables, chains, sets and rules into a comparable
//!   [`Listing`].
//!
//! Sockets are opened inside the namespace, so each call sees and changes only that
//! namespace's ruleset. [`Netns::root`] can be listed but never changed.

mod expr;
pub mod listing;
pub mod model;
mod netlink;
pub mod render;
mod wire;

pub use listing::{expected, matches_text, ChainListing, Listing, SetListing, TableListing};
pub use model::{
    BaseChain, Chain, ChainType, Family, Hook, IfName, Ipv4Prefix, Match, Name, NatTo, PayloadBase,
    Policy, PortField, Rule, Statement, Table,
};

use rtnetlink::sys::protocols::NETLINK_NETFILTER;

use crate::error::{Error, Result};
use crate::netlink::{NlError, NlSocket};
use crate::ns::Netns;

/// Installs `table` in `ns`, replacing any table of the same family and name, in one
/// transaction: the old table stays in force until the new one is complete, and a
/// refused rule leaves everything as it was.
pub fn apply(ns: &Netns, table: &Table) -> Result<()> {
    let op = format!("nft replace table {} {}", table.family(), table.name());
    ns.ensure_writable(&op)?;
    let mut sock = open(ns, &op)?;
    let batch = netlink::replace_batch(table, sock.next_seq());
    sock.seqs_used_up_to(batch.end_seq);
    netlink::send_batch(&mut sock, &batch).map_err(|e| transaction_error(ns, &op, e))
}

/// Removes a table from `ns`; a table that is not there is no error.
pub fn delete_table(ns: &Netns, family: Family, name: &Name) -> Result<()> {
    let op = format!("nft delete table {family} {name}");
    ns.ensure_writable(&op)?;
    let mut sock = open(ns, &op)?;
    let batch = netlink::delete_batch(family, name, sock.next_seq());
    sock.seqs_used_up_to(batch.end_seq);
    netlink::send_batch(&mut sock, &batch).map_err(|e| transaction_error(ns, &op, e))
}

/// Every table of `ns`, read back (read-only: works on [`Netns::root`]).
pub fn list(ns: &Netns) -> Result<Listing> {
    let op = "nft list ruleset";
    let mut sock = open(ns, op)?;
    listing::read(&mut sock).map_err(|e| nl_error(ns, op, e))
}

fn open(ns: &Netns, op: &str) -> Result<NlSocket> {
    ns.run(|| NlSocket::open(NETLINK_NETFILTER))?
        .map_err(|source| Error::Namespace {
            op: format!("{op}: open netfilter netlink socket"),
            ns: ns.label().to_string(),
            source,
        })
}

fn nl_error(ns: &Netns, op: &str, e: NlError) -> Error {
    match e {
        NlError::Kernel { source, ext_ack } => Error::Netlink {
            op: op.to_string(),
            ns: ns.label().to_string(),
            iface: None,
            ext_ack,
            source,
        },
        NlError::Io(source) => Error::Netlink {
            op: op.to_string(),
            ns: ns.label().to_string(),
            iface: None,
            ext_ack: None,
            source,
        },
        NlError::Protocol(detail) => Error::Protocol {
            op: op.to_string(),
            ns: ns.label().to_string(),
            detail,
        },
    }
}

fn transaction_error(ns: &Netns, op: &str, e: netlink::BatchError) -> Error {
    match e.error {
        NlError::Kernel { source, ext_ack } => Error::NftTransaction {
            op: op.to_string(),
            ns: ns.label().to_string(),
            command: e.command,
            ext_ack,
            source,
        },
        other => nl_error(ns, &format!("{op}: {}", e.command), other),
    }
}
