//! lvslab-pcap: the offline half of the capture/assertion pipeline.
//!
//! capture files ([`pcapng`]) → per-frame summaries ([`decode`]) → one hop ladder per flow
//! ([`correlate`](mod@correlate), [`ladder`]) → findings against the forwarding-mode rules
//! ([`rules`]) and a lab's own expectations ([`expect_check`]). [`check_trial`] is that whole path for
//! one trial, with roles derived from the lab model ([`lab_roles`]); trials call it, and
//! its tests run it on a real capture. Pure: no root, no I/O beyond reading and writing
//! files, and it never decides on anything but the packets and the lab model. (Reports of
//! whole trials are the harness's: they render its trial outcomes.)
//!
//! ## Capture files: through `pcap-file`, keeping only what it lacks
//!
//! Decision: [`pcapng`] reads and writes pcapng and classic pcap through the `pcap-file`
//! crate (2.x). It does the job: block framing, both byte orders, several sections, the
//! Section Header, Interface Description and Enhanced / Simple / obsolete Packet Blocks
//! with the options lvslab needs (`if_name`, `if_tsresol`, `epb_flags` direction,
//! `opt_comment`), classic headers and records. It writes the very bytes lvslab's own codec
//! wrote (a capture written before the switch is rewritten byte for byte), and files from
//! dumpcap, tshark and editcap read here as tshark reads them (`tests/tshark.rs`).
//!
//! Speed is no reason to keep our own: on 1 M frames (455 MB) it writes in 0.99–1.09× and
//! reads in 1.14–1.19× the CPU time of the hand-written codec it replaced, about 0.2 s more
//! per million frames read (`cargo bench -p lvslab-pcap --bench pcapng`; method and runs
//! in BENCHMARKS.md). A trial captures thousands of frames.
//!
//! What stays ours is what `pcap-file` 2 lacks, each said in [`pcapng`]'s docs: rescaling
//! timestamps by `if_tsresol` (it reads every tick count as nanoseconds; fixed only in its
//! 3.0 release candidates), length checks before writing (it truncates option and block
//! lengths silently), one interface and frame numbering across sections, skipping blocks we
//! do not use without decoding them, the obsolete Packet Block's timestamp word order, and
//! unchecked classic records (its checked ones refuse snap-length-cut frames). It is also
//! stricter than our old reader was: a non-UTF-8 interface name or packet comment, or a non-zero
//! reserved field in an interface block, is now an error rather than read leniently; and an
//! interface block carrying `if_tzone` is refused (`pcap-file` 2 decodes that option
//! wrongly; neither dumpcap nor tshark writes it).

pub mod correlate;
pub mod decode;
pub mod error;
pub mod expect_check;
pub mod lab_roles;
pub mod ladder;
pub mod pcapng;
pub mod rules;
pub mod trial_check;

pub use correlate::{correlate, CorrelateOptions, Direction, Flow, Hop};
pub use decode::{decode_capture, decode_frame, MacAddr, PacketSummary, TunnelHeader};
pub use error::PcapError;
pub use expect_check::CheckExpectations;
pub use lab_roles::{roles_of, RolesError};
pub use ladder::{FlowView, LadderRow};
pub use lvslab_spec::{Encap, Mode};
pub use pcapng::{Capture, Frame, Interface, LinkType, PacketDirection, PcapngWriter};
pub use rules::{
    check, check_distribution, CheckOutcome, Director, FieldDiff, Finding, RealServer, Roles,
};
pub use trial_check::{check_trial, TrialCheck};

/// Everything the offline pipeline derives from a trial's captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// Every decoded frame of every capture.
    pub summaries: Vec<PacketSummary>,
    /// Flows with their hop ladders.
    pub flows: Vec<Flow>,
    /// Findings and counts from the mode rules.
    pub outcome: CheckOutcome,
}

/// Decodes, correlates and checks captures in one call (each capture's frames keep their own
/// frame numbers; capture points must not repeat across captures).
pub fn analyse(captures: &[Capture], roles: &Roles, opts: &CorrelateOptions) -> Analysis {
    let summaries: Vec<PacketSummary> = captures.iter().flat_map(decode_capture).collect();
    let flows = correlate(&summaries, opts);
    let outcome = check(&flows, roles);
    Analysis {
        summaries,
        flows,
        outcome,
    }
}
