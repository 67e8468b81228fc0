//! The counters the engines and tunnel endpoints publish, and a plain-text table of the
//! drops for `lvslab stats` and `ipvsadm -L --stats`.
//!
//! Every frame the engine takes and does not send on is counted under one
//! [`DropReason`], per node and per interface (the one the frame came in on, or for drops
//! on the way out, the one it was to leave by). Drops that belong to no frame (half-open
//! entries evicted from a full connection table) are counted for the node only.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::packet::{DropCounters, DropReason};

/// Counters of one director engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Frames received (frames this namespace sent and frames addressed to another host's
    /// MAC are not counted).
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Packets to a virtual service handed to the director.
    pub requests: u64,
    /// Packets from a real server handed to the director.
    pub replies: u64,
    /// Frames whose pending checksum (`TP_STATUS_CSUMNOTREADY`) was completed.
    pub checksums_completed: u64,
    /// ARP replies sent for served addresses.
    pub arp_replies: u64,
    /// ARP requests sent to resolve next hops.
    pub arp_requests: u64,
    /// ICMP port unreachable sent for rejected packets (each also counted as a drop).
    pub rejects: u64,
    /// ICMP errors about tracked NAT/FullNAT connections translated and relayed.
    pub icmp_errors_relayed: u64,
    /// Frames passed on untranslated, as the kernel's forwarding path would: replies and
    /// ICMP errors of NAT real servers that belong to no connection.
    pub forwarded_untouched: u64,
    /// Times the nft table was rewritten after a service change.
    pub nft_updates: u64,
    /// Periodic ticks done (each re-reads the services and syncs the nft table).
    pub ticks: u64,
    /// The director's connection table (read every tick).
    pub conn_table: ConnTableStats,
    /// Every drop of this engine by reason.
    pub drops: DropCounters,
    /// The same drops split by interface (in the namespace's link order); drops of no
    /// particular frame are only in [`EngineStats::drops`].
    pub interface_drops: Vec<(String, DropCounters)>,
}

/// Size and bound of a director's connection table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnTableStats {
    /// Entries now (persistence templates included).
    pub entries: usize,
    /// The most entries ever held at once.
    pub peak: usize,
    /// The configured bound.
    pub limit: usize,
}

/// Counters of one tunnel endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// IPv4 frames received.
    pub rx_frames: u64,
    /// Inner packets written to the TUN device.
    pub decapsulated: u64,
    /// Malformed frames and refused writes, by reason.
    pub drops: DropCounters,
}

/// Counters of the whole userspace dataplane of a lab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataplaneStats {
    /// Per director node.
    pub engines: Vec<(String, EngineStats)>,
    /// Per real-server node with a tunnel endpoint.
    pub endpoints: Vec<(String, EndpointStats)>,
}

impl DataplaneStats {
    /// Drops per node (directors and tunnel endpoints) as reason name → count, only
    /// reasons that occurred; names are [`DropReason::label`]s (stable snake_case).
    pub fn drops_by_node(&self) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        let engines = self.engines.iter().map(|(n, e)| (n, &e.drops));
        let endpoints = self.endpoints.iter().map(|(n, e)| (n, &e.drops));
        engines
            .chain(endpoints)
            .map(|(n, d)| (n.clone(), d.by_name()))
            .collect()
    }

    /// All drops of the dataplane, by reason.
    pub fn total_drops(&self) -> DropCounters {
        let mut all = DropCounters::default();
        for (_, e) in &self.engines {
            all.merge(&e.drops);
        }
        for (_, e) in &self.endpoints {
            all.merge(&e.drops);
        }
        all
    }
}

/// A row of the drop table.
struct Row {
    node: String,
    iface: String,
    reason: &'static str,
    count: u64,
}

/// The drops of a dataplane as a plain-text table, one row per node, interface and reason
/// (`-` for drops of no particular interface), sorted by node then interface then reason,
/// with a total per node; `no drops` when there are none.
///
/// ```text
/// NODE      INTERFACE  REASON           DROPS
/// director  eth0       bad_ip_checksum      1
/// director  eth0       truncated            3
/// director  total                           4
/// ```
pub fn render_drops(stats: &DataplaneStats) -> String {
    let mut rows: Vec<Row> = Vec::new();
    let mut totals: Vec<(String, u64)> = Vec::new();
    for (node, e) in &stats.engines {
        let mut attributed = DropCounters::default();
        for (iface, d) in &e.interface_drops {
            attributed.merge(d);
            push_rows(&mut rows, node, iface, d);
        }
        // What no interface got: the node's own drops.
        let mut rest = DropCounters::default();
        for &reason in DropReason::ALL {
            let n = e.drops.get(reason).saturating_sub(attributed.get(reason));
            rest.add(reason, n);
        }
        push_rows(&mut rows, node, "-", &rest);
        totals.push((node.clone(), e.drops.total()));
    }
    for (node, e) in &stats.endpoints {
        push_rows(&mut rows, node, "-", &e.drops);
        totals.push((node.clone(), e.drops.total()));
    }
    if rows.is_empty() {
        return "no drops\n".to_string();
    }
    rows.sort_by(|a, b| {
        (a.node.as_str(), a.iface.as_str(), a.reason).cmp(&(
            b.node.as_str(),
            b.iface.as_str(),
            b.reason,
        ))
    });
    let width =
        |head: &str, cells: &mut dyn Iterator<Item = usize>| cells.fold(head.len(), usize::max);
    let w_node = width("NODE", &mut rows.iter().map(|r| r.node.len()));
    let w_iface = width("INTERFACE", &mut rows.iter().map(|r| r.iface.len()));
    let w_reason = width("REASON", &mut rows.iter().map(|r| r.reason.len()));
    let w_count = width(
        "DROPS",
        &mut rows
            .iter()
            .map(|r| r.count)
            .chain(totals.iter().map(|t| t.1))
            .map(|n| n.to_string().len()),
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:w_node$}  {:w_iface$}  {:w_reason$}  {:>w_count$}",
        "NODE", "INTERFACE", "REASON", "DROPS"
    );
    let mut k = 0;
    while k < rows.len() {
        let node = rows[k].node.clone();
        while k < rows.len() && rows[k].node == node {
            let r = &rows[k];
            let _ = writeln!(
                out,
                "{:w_node$}  {:w_iface$}  {:w_reason$}  {:>w_count$}",
                r.node, r.iface, r.reason, r.count
            );
            k += 1;
        }
        let total = totals
            .iter()
            .filter(|(n, _)| *n == node)
            .map(|(_, t)| t)
            .sum::<u64>();
        let _ = writeln!(
            out,
            "{:w_node$}  {:w_iface$}  {:w_reason$}  {:>w_count$}",
            node, "total", "", total
        );
    }
    out
}

fn push_rows(rows: &mut Vec<Row>, node: &str, iface: &str, drops: &DropCounters) {
    for (reason, count) in drops.nonzero() {
        rows.push(Row {
            node: node.to_string(),
            iface: iface.to_string(),
            reason: reason.label(),
            count,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_each_node_interface_and_reason_with_totals() {
        let mut eth0 = DropCounters::default();
        eth0.add(DropReason::Truncated, 3);
        eth0.record(DropReason::BadIpChecksum);
        let mut engine = EngineStats {
            interface_drops: vec![
                ("eth0".into(), eth0.clone()),
                ("eth1".into(), DropCounters::default()),
            ],
            ..EngineStats::default()
        };
        engine.drops.merge(&eth0);
        engine.drops.add(DropReason::HalfOpenEvicted, 12);
        let mut endpoint = EndpointStats::default();
        endpoint.drops.record(DropReason::NotTunnelled);
        let stats = DataplaneStats {
            engines: vec![("director".into(), engine)],
            endpoints: vec![("rs1".into(), endpoint)],
        };
        let table = render_drops(&stats);
        let want = "\
NODE      INTERFACE  REASON             DROPS
director  -          half_open_evicted     12
director  eth0       bad_ip_checksum        1
director  eth0       truncated              3
director  total                            16
rs1       -          not_tunnelled          1
rs1       total                             1
";
        assert_eq!(table, want, "\n{table}");
        let by_node = stats.drops_by_node();
        assert_eq!(by_node["director"]["half_open_evicted"], 12);
        assert_eq!(by_node["rs1"]["not_tunnelled"], 1);
        assert_eq!(stats.total_drops().total(), 17);
    }

    #[test]
    fn no_drops_says_so() {
        assert_eq!(render_drops(&DataplaneStats::default()), "no drops\n");
    }
}
