//! Lab files → validated model. Pure: reads files, never touches the system.

pub mod lb;
