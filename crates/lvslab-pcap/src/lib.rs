//! lvslab-pcap: the offline half of the capture/assertion pipeline.
//!
//! capture files ([`pcapng`]) → per-frame summaries ([`decode`]) → one hop ladder per flow
//! ([`correlate`], [`ladder`]) → findings against the forwarding-mode rules ([`rules`])
//! and a lab's own expectations ([`expect_check`]). [`check_trial`] is that whole path for
//! one trial, with roles derived from the lab model ([`lab_roles`]); trials call it, and
//! its tests run it on a real capture. Pure: no root, no I/O beyond reading and writing
//! files, and it never decides on anything but the packets and the lab model. (Reports of
//! whole trials are the harness's: they render its trial outcomes.)

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
