//! Why a frame was dropped, and per-reason counters.

use std::collections::BTreeMap;
use std::fmt;

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $name:ident => $label:literal,)*) => {
        /// Why the engine dropped a frame. Malformed input is counted under one of these and
        /// never causes a panic.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $($(#[doc = $doc])* $name,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];

            /// A short stable name for logs and statistics (`bad_ip_checksum`, …).
            pub fn label(self) -> &'static str {
                match self {
                    $(DropReason::$name => $label,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// The frame ends inside a header or before the length its headers announce.
    Truncated => "truncated",
    /// IPv4 version field is not 4.
    BadIpVersion => "bad_ip_version",
    /// IPv4 IHL below 5 words.
    BadHeaderLength => "bad_header_length",
    /// IPv4 total length shorter than its own header.
    BadTotalLength => "bad_total_length",
    /// IPv4 header checksum wrong.
    BadIpChecksum => "bad_ip_checksum",
    /// A fragment: the engine does not reassemble (the kernel would, before LOCAL_IN).
    Fragment => "fragment",
    /// TCP data offset or UDP length inconsistent with the packet.
    BadTransportHeader => "bad_transport_header",
    /// The rewrite needs ports but the protocol has none the engine knows.
    UnknownProtocol => "unknown_protocol",
    /// A rewrite for IPv4 got a frame that is not IPv4.
    NotIpv4 => "not_ipv4",
    /// ARP that is not Ethernet/IPv4 or is cut short.
    MalformedArp => "malformed_arp",
    /// ARP that is not a request.
    NotArpRequest => "not_arp_request",
    /// ARP request for an address the engine does not answer for.
    NotOurAddress => "not_our_address",
    /// TTL was ≤ 1 on a packet to forward (an ICMP time-exceeded may have been produced).
    TtlExpired => "ttl_expired",
    /// DF set and larger than the path MTU (an ICMP fragmentation-needed may have been produced).
    NeedsFragmentation => "needs_fragmentation",
    /// Route MTU minus tunnel overhead is below the IPv4 minimum of 68.
    TunnelMtuTooSmall => "tunnel_mtu_too_small",
    /// Tunnel type the engine does not implement (GUE).
    UnsupportedTunnel => "unsupported_tunnel",
    /// Decapsulation got a packet that is neither IPIP nor GRE.
    NotTunnelled => "not_tunnelled",
    /// GRE header with a version, routing or payload type the endpoint does not take.
    BadGreHeader => "bad_gre_header",
    /// ICMP that is not an error the kernel relays (dest-unreachable, source-quench, time-exceeded).
    NotIcmpError => "not_icmp_error",
    /// ICMP checksum wrong (the kernel validates it before mangling an ICMP error).
    BadIcmpChecksum => "bad_icmp_checksum",
    /// The packet quoted inside an ICMP error is too short to find its ports.
    QuotedPacketTruncated => "quoted_packet_truncated",
    /// A partial checksum's start/offset point outside the packet.
    BadChecksumOffset => "bad_checksum_offset",
    /// An Ethernet type neither the engine nor the director's kernel handles (not IPv4,
    /// ARP or IPv6), addressed to the director's MAC.
    UnsupportedEthertype => "unsupported_ethertype",
    /// A packet of a virtual service the director does not take: no connection entry and
    /// not a connection's first packet (a bare ACK, a RST, an FTP-captured port), or an
    /// ICMP error or FullNAT reply about no known connection. Kernel IPVS would hand it
    /// to the director's own stack; the engine keeps it from that stack, so it is dropped.
    NoConnection => "no_connection",
    /// No real server could take a new connection (none, or all at weight 0 or
    /// overloaded): answered with ICMP port unreachable, as the kernel does.
    NoDestination => "no_destination",
    /// The connection's real server was deleted and `expire_nodest_conn` is off.
    DestUnavailable => "dest_unavailable",
    /// The connection table is at its limit and holds no half-open entry to make room.
    ConnTableFull => "conn_table_full",
    /// A half-open (SYN_RECV/SYNACK) connection entry dropped to make room for a new one
    /// while the table was at its limit (the kernel's `drop_entry` defence). Counts
    /// entries, not frames.
    HalfOpenEvicted => "half_open_evicted",
    /// FullNAT: no free local address and port toward the real server.
    NoLocalPort => "no_local_port",
    /// The destination uses local delivery, which the engine does not do.
    LocalDelivery => "local_delivery",
    /// No route to the packet's next hop.
    NoRoute => "no_route",
    /// Too many frames already wait for the next hop's ARP answer.
    NeighbourQueueFull => "neighbour_queue_full",
    /// The next hop never answered ARP; the frames waiting for it are dropped.
    NeighbourUnresolved => "neighbour_unresolved",
    /// The socket (or TUN device) refused the frame.
    SendFailed => "send_failed",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// How many frames were dropped for each [`DropReason`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: Vec<u64>,
}

impl DropCounters {
    /// Counts one drop.
    pub fn record(&mut self, reason: DropReason) {
        self.add(reason, 1);
    }

    /// Counts `n` drops at once.
    pub fn add(&mut self, reason: DropReason, n: u64) {
        if n == 0 {
            return;
        }
        let index = reason as usize;
        if self.counts.len() <= index {
            self.counts.resize(DropReason::ALL.len(), 0);
        }
        self.counts[index] += n;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &DropCounters) {
        for (reason, n) in other.nonzero() {
            self.add(reason, n);
        }
    }

    /// The non-zero counts by [`DropReason::label`] (stable snake_case names), for
    /// listings and JSON.
    pub fn by_name(&self) -> BTreeMap<&'static str, u64> {
        self.nonzero().map(|(r, n)| (r.label(), n)).collect()
    }

    /// Drops counted for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts.get(reason as usize).copied().unwrap_or(0)
    }

    /// Drops counted for all reasons together.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Every reason with a non-zero count.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_per_reason() {
        let mut c = DropCounters::default();
        c.record(DropReason::Fragment);
        c.record(DropReason::Fragment);
        c.record(DropReason::BadChecksumOffset);
        assert_eq!(c.get(DropReason::Fragment), 2);
        assert_eq!(c.get(DropReason::Truncated), 0);
        assert_eq!(c.total(), 3);
        assert_eq!(c.nonzero().count(), 2);
    }

    #[test]
    fn by_name_lists_the_counted_reasons_under_their_labels() {
        let mut c = DropCounters::default();
        c.add(DropReason::ConnTableFull, 3);
        c.add(DropReason::Truncated, 0);
        let mut other = DropCounters::default();
        other.record(DropReason::ConnTableFull);
        other.record(DropReason::NoRoute);
        c.merge(&other);
        let want: BTreeMap<&str, u64> = [("conn_table_full", 4), ("no_route", 1)].into();
        assert_eq!(c.by_name(), want);
    }

    #[test]
    fn labels_are_snake_case() {
        for r in DropReason::ALL {
            let l = r.label();
            assert!(
                l.starts_with(|c: char| c.is_ascii_lowercase())
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{l}"
            );
        }
    }

    #[test]
    fn labels_are_unique() {
        let mut labels: Vec<_> = DropReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DropReason::ALL.len());
    }
}
