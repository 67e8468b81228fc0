//! The trials behind `cargo test` and `lvslab test`: one place that knows how to build a
//! lab, check it against its model and tear it down, so both entry points run the same
//! code.
//!
//! Skips are decided when trials are collected ([`collect`]), with the reason; running a
//! trial whose requirement is missing fails with that reason instead of passing.

pub mod checks;
pub mod diagnose;
mod error;
pub mod outcome;
pub mod packets;
pub mod report;
pub mod traffic;
pub mod trials;
pub mod verify;

pub use error::HarnessError;
pub use outcome::{Check, Failure, Status, TrialOutcome};
pub use trials::{collect, run_trial, TrialKind, TrialSpec};
