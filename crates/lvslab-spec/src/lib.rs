//! lvslab-spec: lab files → validated model, and the vocabulary every lvslab crate shares.
//!
//! Its one job: turn a lab folder into values the other crates can trust, or say exactly
//! why it cannot. A lab is one folder under `labs/` with a `lab.toml` (topology,
//! load-balancer service, traffic and checks) and optionally an `expect.toml`.
//! [`load_lab`] parses and validates it into a [`model::Lab`]; every problem is reported
//! with file, line, column, field path and what would be valid. It also defines what the
//! crates share: the load-balancer model and the [`LoadBalancer`](lb::LoadBalancer) trait
//! both dataplanes implement ([`lb`]), the common words ([`vocab`]), the expectations
//! ([`expect`]) and topology drawings ([`graph`]).
//!
//! It depends on no other lvslab crate (only serde, toml, serde_json, indexmap and
//! schemars), and it must never touch the system: it reads the files it is asked to read
//! and nothing else (no namespaces, sockets, processes or writes), so every other crate
//! can use it anywhere, fuzzers included.

pub mod error;
pub mod expect;
pub mod file;
pub mod graph;
pub mod lb;
mod load;
pub mod model;
mod validate;
pub mod vocab;

pub use error::{SpecError, SpecErrors};
pub use load::{lab_path, load_lab, parse_lab, parse_lab_bytes};
pub use validate::{MAX_IFNAME, MAX_LAB_NAME, MAX_NODE_NAME, MAX_PARAM};
pub use vocab::{Dataplane, Direction, Encap, MacAddr, Mode};

/// JSON Schema of `lab.toml`, for editors and `lvslab schema`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(file::LabFile);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
