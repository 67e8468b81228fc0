//! The userspace director: schedulers, connection table, per-mode rewrites and the engine.

pub mod conn;
pub mod director;
pub mod engine;
pub mod packet;
pub mod rewrite;
pub mod sched;
