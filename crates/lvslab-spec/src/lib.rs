//! Lab files → validated model. Pure: reads files, never touches the system.
//!
//! A lab is one folder under `labs/` with a `lab.toml` (topology, load-balancer service,
//! traffic and checks). [`load_lab`] parses and validates it into a [`model::Lab`]; every
//! problem is reported with file, line, column, field path and what would be valid.

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
