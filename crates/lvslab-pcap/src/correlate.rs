//! Following each packet across every capture point it crosses, and grouping packets into
//! flows, without trusting addresses (the director, the firewall and the ISP rewrite them).
//!
//! How the same packet is recognised at two points:
//! 1. At each point, frames are grouped into *conversations* by their innermost 5-tuple
//!    (ICMP echo: the echo id stands in for ports; ICMP errors join the conversation of the
//!    packet they quote). The *initiator* of a conversation is the sender of the TCP SYN, or of
//!    its earliest frame.
//! 2. Conversations at different points (or at one point, before and after a rewrite) are
//!    joined into one flow when they share an invariant: a TCP initial sequence number (the
//!    client's ISN survives NAT, DR, TUN; the server's survives FullNAT, which re-bases the
//!    client's), otherwise a packet identity (IP ID, payload length and hash, echo sequence).
//! 3. Inside a flow, a packet's identity is its direction, TCP flags, sequence and
//!    acknowledgment numbers relative to the ISNs at that point, and payload length and hash.
//!    Frames with the same identity form one traversal; a repeat at a point it already visited
//!    starts a new traversal (a retransmission or duplicate ACK) unless it carries the same IP ID
//!    and differs from the earlier frame (a one-armed director sending the packet back out of
//!    the interface it came in on). Frames further apart than `gap_ns` are never one traversal,
//!    unless they carry the same IP ID (then `same_id_gap_ns`, for machines that pause).
//!
//! UDP and ICMP flows are only told apart by payload and IP ID: senders that want reliable
//! correlation put a sequence number in each payload.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::decode::{L4Summary, PacketSummary, TcpFlags};

/// Knobs for [`correlate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrelateOptions {
    /// Largest time between two sightings of one packet (default 100 ms; Linux's smallest
    /// TCP retransmission timeout is 200 ms, so a retransmission is never merged).
    pub gap_ns: u64,
    /// Largest time between two sightings that carry the same IP ID (default 2 s): the
    /// same datagram, however long a busy or emulated machine paused between two hops (a
    /// retransmission carries a new ID, and a duplicate at a point already visited starts
    /// a new traversal whatever its ID).
    pub same_id_gap_ns: u64,
    /// Capture points in path order (client side first); breaks timestamp ties.
    pub point_order: Vec<String>,
}

impl Default for CorrelateOptions {
    fn default() -> Self {
        CorrelateOptions {
            gap_ns: 100_000_000,
            same_id_gap_ns: 2_000_000_000,
            point_order: Vec::new(),
        }
    }
}

/// Which way a packet travels relative to the flow's initiator (shared with the lab's
/// expectations, which name it).
pub use lvslab_spec::Direction;

/// One sighting of a packet at a capture point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// Capture point `node:iface`.
    pub point: String,
    /// Frame number in that point's capture file.
    pub frame: u64,
    /// Index (0-based) of the logical packet within the flow.
    pub packet: usize,
    /// Request or reply.
    pub direction: Direction,
    /// The decoded frame.
    pub summary: PacketSummary,
}

/// One end-to-end conversation with every sighting of every packet, grouped by packet
/// (hops of packet 0 first, each packet's hops in time order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// 1-based, in order of first sighting.
    pub id: usize,
    /// The first sighting in words, e.g. `tcp 192.0.2.10:40000 → 198.51.100.2:80`.
    pub label: String,
    /// All sightings.
    pub hops: Vec<Hop>,
}

impl Flow {
    /// Hops grouped per logical packet, in packet order.
    pub fn packets(&self) -> Vec<&[Hop]> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..=self.hops.len() {
            if i == self.hops.len() || self.hops[i].packet != self.hops[start].packet {
                out.push(&self.hops[start..i]);
                start = i;
            }
        }
        out
    }
}

/// (address, port-or-echo-id) of one side of a conversation.
type Endpoint = (Ipv4Addr, u16);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ConvKey {
    point: String,
    proto: u8,
    low: Endpoint,
    high: Endpoint,
}

/// What a frame contributes to conversation building.
struct FrameView {
    conv: ConvKey,
    from: Endpoint,
    icmp_error: Option<(u8, u8, u16)>,
}

fn view(s: &PacketSummary) -> Option<FrameView> {
    let ip = s.inner()?;
    let (proto, from, to, icmp_error) = match &s.l4 {
        Some(L4Summary::Tcp(t)) => (6, (ip.src, t.sport), (ip.dst, t.dport), None),
        Some(L4Summary::Udp(u)) => (17, (ip.src, u.sport), (ip.dst, u.dport), None),
        Some(L4Summary::Icmp(i)) => match (&i.embedded, i.echo) {
            (Some(e), _) => (
                e.proto,
                (e.dst, e.dport.unwrap_or(0)),
                (e.src, e.sport.unwrap_or(0)),
                Some((i.icmp_type, i.code, e.id)),
            ),
            (None, Some((id, _))) => (1, (ip.src, id), (ip.dst, id), None),
            (None, None) => (1, (ip.src, 0), (ip.dst, 0), None),
        },
        Some(L4Summary::Other { proto, .. }) => (*proto, (ip.src, 0), (ip.dst, 0), None),
        None => return None,
    };
    let (low, high) = if from <= to { (from, to) } else { (to, from) };
    Some(FrameView {
        conv: ConvKey {
            point: s.point.clone(),
            proto,
            low,
            high,
        },
        from,
        icmp_error,
    })
}

#[derive(Default)]
struct Conv {
    frames: Vec<usize>,
    initiator: Option<Endpoint>,
    init_isn: Option<u32>,
    resp_isn: Option<u32>,
}

/// Identity of a packet inside a flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum PacketKey {
    Tcp {
        dir: Direction,
        flags: u8,
        rel_seq: u32,
        rel_ack: u32,
        len: u32,
        hash: u64,
    },
    Echo {
        dir: Direction,
        icmp_type: u8,
        seq: u16,
        len: u32,
        hash: u64,
    },
    IcmpError {
        icmp_type: u8,
        code: u8,
        quoted_id: u16,
    },
    Other {
        dir: Direction,
        proto: u8,
        len: u32,
        hash: u64,
    },
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // Lower index wins so the result does not depend on union order.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi] = lo;
        }
    }
}

/// Groups decoded frames from all capture points into flows with one hop ladder each.
/// Frames that are not IPv4 (ARP, …) belong to no flow.
pub fn correlate(summaries: &[PacketSummary], opts: &CorrelateOptions) -> Vec<Flow> {
    let rank: HashMap<&str, usize> = opts
        .point_order
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let order_key = |i: usize| {
        let s = &summaries[i];
        (
            s.ts_ns,
            rank.get(s.point.as_str()).copied().unwrap_or(usize::MAX),
            s.point.clone(),
            s.frame,
        )
    };
    let mut idx: Vec<usize> = (0..summaries.len()).collect();
    idx.sort_by_key(|&i| order_key(i));

    // 1. Conversations per point.
    let views: Vec<Option<FrameView>> = summaries.iter().map(view).collect();
    let mut convs: BTreeMap<ConvKey, Conv> = BTreeMap::new();
    for &i in &idx {
        let Some(v) = &views[i] else { continue };
        let c = convs.entry(v.conv.clone()).or_default();
        c.frames.push(i);
        if let Some(L4Summary::Tcp(t)) = &summaries[i].l4 {
            if t.flags.has(TcpFlags::SYN) && !t.flags.has(TcpFlags::ACK) && c.init_isn.is_none() {
                c.initiator = Some(v.from);
                c.init_isn = Some(t.seq);
            }
        }
    }
    for c in convs.values_mut() {
        // Without the SYN, a SYN-ACK still tells who initiated and (ack − 1) the ISN.
        if c.initiator.is_none() {
            for &i in &c.frames {
                if let (Some(L4Summary::Tcp(t)), Some(v), Some(ip)) =
                    (&summaries[i].l4, &views[i], summaries[i].inner())
                {
                    if t.flags.has(TcpFlags::SYN | TcpFlags::ACK) && v.icmp_error.is_none() {
                        c.initiator = Some((ip.dst, t.dport));
                        c.init_isn = Some(t.ack.wrapping_sub(1));
                        break;
                    }
                }
            }
        }
        if c.initiator.is_none() {
            c.initiator = c
                .frames
                .iter()
                .find(|&&i| views[i].as_ref().is_some_and(|v| v.icmp_error.is_none()))
                .and_then(|&i| views[i].as_ref().map(|v| v.from));
        }
        for &i in &c.frames {
            if let (Some(L4Summary::Tcp(t)), Some(v)) = (&summaries[i].l4, &views[i]) {
                if t.flags.has(TcpFlags::SYN | TcpFlags::ACK)
                    && Some(v.from) != c.initiator
                    && c.resp_isn.is_none()
                {
                    c.resp_isn = Some(t.seq);
                }
            }
        }
    }
    let mut conv_list: Vec<(ConvKey, Conv)> = convs.into_iter().collect();

    let direction = |i: usize, c: &Conv| -> Direction {
        match &views[i] {
            Some(v) if Some(v.from) == c.initiator => Direction::Request,
            _ => Direction::Reply,
        }
    };
    let packet_key = |i: usize, c: &Conv| -> Option<PacketKey> {
        let s = &summaries[i];
        let dir = direction(i, c);
        let (own, peer) = match dir {
            Direction::Request => (c.init_isn, c.resp_isn),
            Direction::Reply => (c.resp_isn, c.init_isn),
        };
        Some(match s.l4.as_ref()? {
            L4Summary::Tcp(t) => PacketKey::Tcp {
                dir,
                flags: t.flags.0 & (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::FIN | TcpFlags::RST),
                rel_seq: t.seq.wrapping_sub(own.unwrap_or(0)),
                rel_ack: if t.flags.has(TcpFlags::ACK) {
                    t.ack.wrapping_sub(peer.unwrap_or(0))
                } else {
                    0
                },
                len: t.payload_len,
                hash: t.payload_hash,
            },
            L4Summary::Icmp(ic) => match (ic.echo, views[i].as_ref()?.icmp_error) {
                (_, Some((icmp_type, code, quoted_id))) => PacketKey::IcmpError {
                    icmp_type,
                    code,
                    quoted_id,
                },
                (Some((_, seq)), None) => PacketKey::Echo {
                    dir,
                    icmp_type: ic.icmp_type,
                    seq,
                    len: ic.payload_len,
                    hash: ic.payload_hash,
                },
                (None, None) => PacketKey::Other {
                    dir,
                    proto: 1,
                    len: ic.payload_len,
                    hash: ic.payload_hash,
                },
            },
            l4 => {
                let (len, hash) = l4.payload();
                PacketKey::Other {
                    dir,
                    proto: s.inner().map(|ip| ip.proto).unwrap_or(0),
                    len,
                    hash,
                }
            }
        })
    };

    // 2. Join conversations into flows.
    let mut uf = UnionFind((0..conv_list.len()).collect());
    let mut by_isn: HashMap<(u8, u32), usize> = HashMap::new();
    let mut by_identity: HashMap<(PacketKey, u16), usize> = HashMap::new();
    for (n, (_, c)) in conv_list.iter().enumerate() {
        let isns = [(0u8, c.init_isn), (1u8, c.resp_isn)];
        let mut linked_by_isn = false;
        for (side, isn) in isns {
            if let Some(isn) = isn {
                linked_by_isn = true;
                match by_isn.get(&(side, isn)) {
                    Some(&m) => uf.union(m, n),
                    None => {
                        by_isn.insert((side, isn), n);
                    }
                }
            }
        }
        if linked_by_isn {
            continue;
        }
        for &i in &c.frames {
            let Some(k) = packet_key(i, c) else { continue };
            let id = summaries[i].inner().map(|ip| ip.id).unwrap_or(0);
            match by_identity.get(&(k.clone(), id)) {
                Some(&m) => uf.union(m, n),
                None => {
                    by_identity.insert((k, id), n);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for n in 0..conv_list.len() {
        let root = uf.find(n);
        groups.entry(root).or_default().push(n);
    }

    // A director in DR/TUN mode never sees the reply direction, so its conversations lack the
    // server's ISN. No mode rewrites the server's sequence numbers, so any conversation of the
    // flow that saw it supplies it (preferring one with the same client ISN). The client's ISN
    // is only borrowed when the flow agrees on one value (FullNAT re-bases it).
    for members in groups.values() {
        for &n in members {
            if conv_list[n].1.resp_isn.is_none() {
                let own = conv_list[n].1.init_isn;
                let same = members
                    .iter()
                    .map(|&m| &conv_list[m].1)
                    .find(|c| c.resp_isn.is_some() && c.init_isn == own && own.is_some());
                let any = members
                    .iter()
                    .map(|&m| &conv_list[m].1)
                    .find(|c| c.resp_isn.is_some());
                conv_list[n].1.resp_isn = same.or(any).and_then(|c| c.resp_isn);
            }
            if conv_list[n].1.init_isn.is_none() {
                let mut seen: Vec<u32> = members
                    .iter()
                    .filter_map(|&m| conv_list[m].1.init_isn)
                    .collect();
                seen.sort_unstable();
                seen.dedup();
                if let [only] = seen[..] {
                    conv_list[n].1.init_isn = Some(only);
                }
            }
        }
    }

    // 3. Traversals inside each flow.
    let mut flows: Vec<Flow> = Vec::new();
    for members in groups.values() {
        let mut by_key: BTreeMap<PacketKey, Vec<(usize, Direction)>> = BTreeMap::new();
        for &n in members {
            let c = &conv_list[n].1;
            for &i in &c.frames {
                if let Some(k) = packet_key(i, c) {
                    by_key.entry(k).or_default().push((i, direction(i, c)));
                }
            }
        }
        let mut traversals: Vec<(Direction, Vec<usize>)> = Vec::new();
        for frames in by_key.values_mut() {
            frames.sort_by_key(|&(i, _)| order_key(i));
            let first = traversals.len();
            for &(i, dir) in frames.iter() {
                let s = &summaries[i];
                let id = s.inner().map(|ip| ip.id);
                let mut chosen: Option<usize> = None;
                let mut fallback: Option<usize> = None;
                for (t, (_, hops)) in traversals.iter().enumerate().skip(first) {
                    let last = hops.last().map(|&h| summaries[h].ts_ns).unwrap_or(0);
                    let same_id = hops
                        .iter()
                        .any(|&h| summaries[h].inner().map(|ip| ip.id) == id);
                    let gap = if same_id {
                        opts.same_id_gap_ns
                    } else {
                        opts.gap_ns
                    };
                    if s.ts_ns.saturating_sub(last) > gap {
                        continue;
                    }
                    let acceptable =
                        match hops.iter().rev().find(|&&h| summaries[h].point == s.point) {
                            None => true,
                            Some(&prev) => {
                                let p = &summaries[prev];
                                p.inner().map(|ip| ip.id) == id && !same_headers(p, s)
                            }
                        };
                    if !acceptable {
                        continue;
                    }
                    if same_id {
                        chosen = Some(t);
                        break;
                    }
                    fallback.get_or_insert(t);
                }
                match chosen.or(fallback) {
                    Some(t) => traversals[t].1.push(i),
                    None => traversals.push((dir, vec![i])),
                }
            }
        }
        for (_, hops) in traversals.iter_mut() {
            hops.sort_by_key(|&i| order_key(i));
        }
        traversals.sort_by_key(|(_, hops)| hops.first().map(|&i| order_key(i)));
        let Some(first) = traversals.first().and_then(|(_, h)| h.first()) else {
            continue;
        };
        let label = flow_label(&summaries[*first]);
        let mut hops = Vec::new();
        for (packet, (dir, frames)) in traversals.iter().enumerate() {
            for &i in frames {
                let s = &summaries[i];
                hops.push(Hop {
                    point: s.point.clone(),
                    frame: s.frame,
                    packet,
                    direction: *dir,
                    summary: s.clone(),
                });
            }
        }
        flows.push(Flow { id: 0, label, hops });
    }
    flows.sort_by_key(|f| {
        f.hops
            .first()
            .map(|h| (h.summary.ts_ns, h.point.clone(), h.frame))
    });
    for (n, f) in flows.iter_mut().enumerate() {
        f.id = n + 1;
    }
    flows
}

/// Whether two sightings carry identical link and IP headers (nothing was rewritten between
/// them), i.e. the later one is a duplicate rather than the packet forwarded onward.
fn same_headers(a: &PacketSummary, b: &PacketSummary) -> bool {
    a.eth == b.eth && a.ip == b.ip && a.l4 == b.l4
}

fn flow_label(s: &PacketSummary) -> String {
    let Some(ip) = s.inner() else {
        return s.describe();
    };
    match s.l4.as_ref().and_then(|l| l.ports()) {
        Some((sp, dp)) => format!("{} {}:{} → {}:{}", s.l4_name(), ip.src, sp, ip.dst, dp),
        None => format!("{} {} → {}", s.l4_name(), ip.src, ip.dst),
    }
}
