//! Frame → [`PacketSummary`]: Ethernet, ARP, IPv4, ICMP (with the embedded original header of
//! errors), TCP, UDP, and IPv4 carried in IPv4 (IPIP, protocol 4) or GRE (47, 0x0800), nested
//! to any depth. Decoding never panics: where a frame stops making sense, the summary keeps what
//! was understood and says why it stopped in `malformed`.
//!
//! By job: the summary types (`summary`), the link layer and whole captures (`link`), IPv4
//! and the tunnels it carries (`ipv4`), TCP/UDP/ICMP (`transport`), checksums and the
//! payload hash (`checksum`).

mod checksum;
mod ipv4;
mod link;
mod summary;
mod transport;

#[cfg(test)]
mod tests;

pub use checksum::fnv1a64;
pub use link::{decode_capture, decode_frame};
pub use lvslab_spec::MacAddr;
pub use summary::{
    ArpSummary, Checksum, EmbeddedSummary, EthSummary, IcmpSummary, Ipv4Summary, L4Summary,
    PacketSummary, TcpFlags, TcpSummary, TunnelHeader, UdpSummary,
};
