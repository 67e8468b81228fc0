//! Errors of this crate. Each names the operation and the object (file, byte offset, block).

use std::path::PathBuf;

/// Everything that can go wrong while reading, writing or decoding captures.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// A capture file could not be read.
    #[error("reading capture file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error (errno reachable through `raw_os_error`).
        #[source]
        source: std::io::Error,
    },
    /// A capture or report file could not be written.
    #[error("writing {what} {path}: {source}")]
    WriteFile {
        /// What was written ("pcapng", "report.json", …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing to an in-memory or caller-provided sink failed.
    #[error("writing {what}: {source}")]
    Write {
        /// What was being written.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a well-formed capture file.
    #[error("malformed {format} at byte {offset}: {what}")]
    Malformed {
        /// "pcapng" or "pcap".
        format: &'static str,
        /// Byte offset in the file where the problem starts.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// A frame names an interface that was never described.
    #[error(
        "frame {frame} refers to interface {interface}, but only {known} interfaces are described"
    )]
    UnknownInterface {
        /// 1-based frame number.
        frame: u64,
        /// The interface id the frame carries.
        interface: u32,
        /// How many interfaces the section has.
        known: usize,
    },
    /// A value does not fit the on-disk field (e.g. an option longer than 65535 bytes).
    #[error("cannot encode {what}: {why}")]
    Encode {
        /// The object being encoded.
        what: String,
        /// Why it does not fit.
        why: String,
    },
    /// JSON serialisation of a report failed.
    #[error("serialising {what} as JSON: {source}")]
    Json {
        /// What was serialised.
        what: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}
