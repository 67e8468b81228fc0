//! Packets on the wire: checked parsing of Ethernet/ARP/IPv4/ICMP/TCP/UDP frames into an owned
//! summary, the Internet checksum (full, incremental, completion of partial checksums), in-place
//! field rewrites that keep checksums right, and the reasons a frame can be dropped.

pub mod checksum;
mod drop;
pub mod frame;
pub mod mangle;

pub use drop::{DropCounters, DropReason};
pub use frame::{
    parse_frame, parse_ipv4, ArpInfo, FrameInfo, IcmpInfo, Ipv4Info, MacAddr, Payload,
    QuotedPacket, TcpInfo, Transport, UdpInfo,
};
