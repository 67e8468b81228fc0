//! Ethernet (MAC) addresses: the one type lives in `lvslab-spec`, with the rest of the
//! shared vocabulary.

pub use lvslab_spec::vocab::{MacAddr, ParseMacError};
