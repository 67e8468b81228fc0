//! lvslab-pcap: the offline half of the capture/assertion pipeline.
//!
//! capture files ([`pcapng`]) → per-frame summaries ([`decode`]) → one hop ladder per flow
//! ([`correlate`], [`ladder`]) → findings against the forwarding-mode rules ([`rules`])
//! and a lab's own expectations ([`expect_check`]). Pure: no root, no I/O beyond reading
//! and writing files. (Reports of whole trials are the harness's: they render its trial
//! outcomes.)

pub mod correlate;
pub mod decode;
pub mod error;
pub mod expect_check;
pub mod ladder;
pub mod pcapng;
pub mod rules;

pub use correlate::{correlate, CorrelateOptions, Direction, Flow, Hop};
pub use decode::{decode_capture, decode_frame, MacAddr, PacketSummary, TunnelHeader};
pub use error::PcapError;
pub use expect_check::CheckExpectations;
pub use ladder::{FlowView, LadderRow};
pub use lvslab_spec::{Encap, Mode};
pub use pcapng::{Capture, Frame, Interface, LinkType, PacketDirection, PcapngWriter};
pub use rules::{
    check, check_distribution, CheckOutcome, Director, FieldDiff, Finding, RealServer, Roles,
};

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
