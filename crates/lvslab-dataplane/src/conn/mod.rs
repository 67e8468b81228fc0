//! The IPVS connection table: entries, lookups, idle timers, templates.
//!
//! Kernel rules followed (`ip_vs_conn.c`): an entry is found in the request direction by exact
//! (protocol, client addr/port, virtual addr/port); replies by (protocol, real-server addr/port,
//! client addr/port) for NAT and by (protocol, real-server addr/port, local addr/port) for
//! FullNAT. Templates (persistence) live in their own index with client port 0. Timeouts are
//! idle timeouts: every packet that finishes processing re-arms `now + timeout`. When a timer
//! fires on an entry that still controls others it is re-armed for 60 s instead.
//!
//! Re-arming is lazy: a packet only moves `expires_ms`; the ordered timer set keeps an entry's
//! older, earlier due time until it comes up, and an entry found there whose `expires_ms` has
//! moved on is filed again under its real time instead of firing. Every entry thus fires at
//! exactly its `expires_ms`, in the same order as with eager re-arming, without a tree update
//! per packet. Timers that move earlier (a shorter state timeout) are moved at once. One-packet
//! entries are never hashed. Time is injected (milliseconds); nothing here reads a clock.
//!
//! Size: `std::mem::size_of::<Conn>()` is reported by the `conn_entry_size_is_reported` test
//! (144 bytes on x86-64 at the time of writing), plus the index entries.

use std::collections::BTreeSet;
use std::net::IpAddr;

use lvslab_spec::lb::ForwardMethod;

use crate::sched::DestId;

pub(crate) mod fasthash;
pub mod tcp;

use fasthash::FastMap;

pub use tcp::{TableDir, TcpFlags, TcpState};

/// Identity of a connection entry (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Protocol state of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// TCP state machine.
    Tcp(TcpState),
    /// UDP (and other protocols): the single `NORMAL` state, shown as `UDP`.
    Udp,
    /// Persistence templates have no protocol state (shown as `NONE`).
    Template,
}

/// Entry flags that change decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ConnFlags {
    /// Not counted in `activeconns` (every entry starts so).
    pub inactive: bool,
    /// No reply seen yet (non-NAT entries at creation): client packets use INPUT_ONLY.
    pub no_output: bool,
    /// A persistence template.
    pub template: bool,
    /// One-packet scheduling: never hashed, destroyed after its packet.
    pub one_packet: bool,
}

/// Exact request-direction key: (protocol number, client addr, client port, virtual addr,
/// virtual port). Templates use client port 0 and, for fwmark services, protocol 0 and the mark
/// as virtual address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// IP protocol number (0 for fwmark templates).
    pub proto: u8,
    /// Client address (templates: masked client network).
    pub caddr: IpAddr,
    /// Client port (templates: 0).
    pub cport: u16,
    /// Virtual address (fwmark templates: the mark).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
}

/// Reply-direction key: (protocol, source addr, source port, destination addr, destination
/// port) of the real server's packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyKey {
    /// IP protocol number.
    pub proto: u8,
    /// Real-server address.
    pub saddr: IpAddr,
    /// Real-server port.
    pub sport: u16,
    /// Client (NAT) or local (FullNAT) address.
    pub daddr: IpAddr,
    /// Client (NAT) or local (FullNAT) port.
    pub dport: u16,
}

/// One connection entry (or persistence template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// Identity.
    pub id: ConnId,
    /// Request-direction key.
    pub key: ConnKey,
    /// Real-server address.
    pub daddr: IpAddr,
    /// Real-server port.
    pub dport: u16,
    /// FullNAT local address and port chosen from the service's pool.
    pub local: Option<(IpAddr, u16)>,
    /// Forwarding method copied from the destination at creation.
    pub method: ForwardMethod,
    /// Flags.
    pub flags: ConnFlags,
    /// Protocol state.
    pub state: ConnState,
    /// Idle timeout set by the latest transition, ms.
    pub timeout_ms: u64,
    /// When the timer fires, ms.
    pub expires_ms: u64,
    /// The template controlling this entry.
    pub control: Option<ConnId>,
    /// Entries this one controls (templates).
    pub n_control: u32,
    /// Destination the entry is bound to.
    pub dest: DestId,
    /// Template reached "assured" (TCP ESTABLISHED or a UDP reply seen on a controlled entry).
    pub assured: bool,
    /// Packets seen from the client.
    pub in_pkts: u64,
}

impl Conn {
    /// The reply key, for NAT and FullNAT entries.
    pub fn reply_key(&self) -> Option<ReplyKey> {
        if self.flags.template {
            return None;
        }
        let (daddr, dport) = match self.method {
            ForwardMethod::Nat => (self.key.caddr, self.key.cport),
            ForwardMethod::FullNat => self.local?,
            _ => return None,
        };
        Some(ReplyKey {
            proto: self.key.proto,
            saddr: self.daddr,
            sport: self.dport,
            daddr,
            dport,
        })
    }
}

/// Initial timeout of a fresh entry before its first state transition (kernel: 3 s).
pub const INITIAL_TIMEOUT_MS: u64 = 3_000;
/// Re-arm period of an expired entry that still controls others.
pub const CONTROL_REARM_MS: u64 = 60_000;

/// Refused insertion: the table is at its size bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection table full ({max} entries)")]
pub struct TableFull {
    /// The bound.
    pub max: usize,
}

/// An entry and the due time its timer is filed under in the timer set.
#[derive(Debug, Clone)]
struct Slot {
    conn: Conn,
    /// Key of this entry's one element in `timers`; never after `conn.expires_ms`.
    timer_ms: u64,
}

/// The connection table.
#[derive(Debug, Clone)]
pub struct ConnTable {
    conns: FastMap<ConnId, Slot>,
    by_key: FastMap<ConnKey, ConnId>,
    templates: FastMap<ConnKey, ConnId>,
    by_reply: FastMap<ReplyKey, ConnId>,
    timers: BTreeSet<(u64, ConnId)>,
    next_id: u64,
    max_entries: usize,
    refused: u64,
    /// The most entries held at once.
    peak: usize,
}

impl ConnTable {
    /// An empty table holding at most `max_entries` entries (templates included).
    pub fn new(max_entries: usize) -> Self {
        ConnTable {
            conns: FastMap::default(),
            by_key: FastMap::default(),
            templates: FastMap::default(),
            by_reply: FastMap::default(),
            timers: BTreeSet::new(),
            next_id: 1,
            max_entries,
            refused: 0,
            peak: 0,
        }
    }

    /// Entries present (templates included).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Insertions refused because the table was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The size bound.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Changes the size bound; entries already beyond a lower bound stay until they go.
    pub fn set_max_entries(&mut self, max_entries: usize) {
        self.max_entries = max_entries;
    }

    /// The most entries the table has held at once (never more than the bound).
    pub fn peak_len(&self) -> usize {
        self.peak
    }

    /// Whether a reply key is in use (FullNAT port allocation).
    pub fn reply_key_in_use(&self, key: &ReplyKey) -> bool {
        self.by_reply.contains_key(key)
    }

    /// Inserts a new entry armed to `now + conn.timeout_ms`; its id is assigned here.
    pub fn insert(&mut self, mut conn: Conn, now_ms: u64) -> Result<ConnId, TableFull> {
        if self.conns.len() >= self.max_entries {
            self.refused += 1;
            return Err(TableFull {
                max: self.max_entries,
            });
        }
        let id = ConnId(self.next_id);
        self.next_id += 1;
        conn.id = id;
        conn.expires_ms = now_ms.saturating_add(conn.timeout_ms);
        if !conn.flags.one_packet {
            if conn.flags.template {
                self.templates.insert(conn.key, id);
            } else {
                self.by_key.insert(conn.key, id);
                if let Some(rk) = conn.reply_key() {
                    self.by_reply.insert(rk, id);
                }
            }
        }
        if let Some(t) = conn.control {
            if let Some(tc) = self.get_mut(t) {
                tc.n_control += 1;
            }
        }
        self.timers.insert((conn.expires_ms, id));
        let timer_ms = conn.expires_ms;
        self.conns.insert(id, Slot { conn, timer_ms });
        self.peak = self.peak.max(self.conns.len());
        Ok(id)
    }

    /// The entry with this id.
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(&id).map(|s| &s.conn)
    }

    /// The entry with this id, mutable. Do not change keys through this.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(&id).map(|s| &mut s.conn)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.conns.values().map(|s| &s.conn)
    }

    /// Request-direction lookup (templates are never returned).
    pub fn lookup_in(&self, key: &ConnKey) -> Option<ConnId> {
        self.by_key.get(key).copied()
    }

    /// Reply-direction lookup.
    pub fn lookup_reply(&self, key: &ReplyKey) -> Option<ConnId> {
        self.by_reply.get(key).copied()
    }

    /// Template lookup.
    pub fn lookup_template(&self, key: &ConnKey) -> Option<ConnId> {
        self.templates.get(key).copied()
    }

    /// Re-arms the idle timer to `now + timeout`.
    pub fn rearm(&mut self, id: ConnId, now_ms: u64) {
        if let Some(s) = self.conns.get_mut(&id) {
            s.conn.expires_ms = now_ms.saturating_add(s.conn.timeout_ms);
            Self::file_timer(&mut self.timers, s);
        }
    }

    /// Restores "filed no later than due" after `expires_ms` moved; a later due time stays
    /// filed under the old one (see the module comment).
    fn file_timer(timers: &mut BTreeSet<(u64, ConnId)>, s: &mut Slot) {
        if s.conn.expires_ms < s.timer_ms {
            timers.remove(&(s.timer_ms, s.conn.id));
            s.timer_ms = s.conn.expires_ms;
            timers.insert((s.timer_ms, s.conn.id));
        }
    }

    /// Makes the timer due at `now` and unhashes the entry so a new one can take its key
    /// (the kernel's new entry shadows the old one until its timer runs).
    pub fn expire_now(&mut self, id: ConnId, now_ms: u64) {
        if let Some(s) = self.conns.get_mut(&id) {
            if s.conn.expires_ms > now_ms {
                s.conn.expires_ms = now_ms;
                Self::file_timer(&mut self.timers, s);
            }
            let c = &s.conn;
            let key = c.key;
            let rk = c.reply_key();
            let template = c.flags.template;
            self.unhash(id, key, rk, template);
        }
    }

    /// Invalidates a template so it is never found again (it lives on until its timer).
    pub fn invalidate_template(&mut self, id: ConnId) {
        if let Some(c) = self.get(id) {
            let key = c.key;
            if self.templates.get(&key) == Some(&id) {
                self.templates.remove(&key);
            }
        }
    }

    fn unhash(&mut self, id: ConnId, key: ConnKey, rk: Option<ReplyKey>, template: bool) {
        let index = if template {
            &mut self.templates
        } else {
            &mut self.by_key
        };
        if index.get(&key) == Some(&id) {
            index.remove(&key);
        }
        if let Some(rk) = rk {
            if self.by_reply.get(&rk) == Some(&id) {
                self.by_reply.remove(&rk);
            }
        }
    }

    /// Removes an entry now (unhash, detach from its template) and returns it so the caller
    /// can unbind it from its destination.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn> {
        let Slot { conn: c, timer_ms } = self.conns.remove(&id)?;
        self.timers.remove(&(timer_ms, id));
        self.unhash(id, c.key, c.reply_key(), c.flags.template);
        if let Some(t) = c.control {
            if let Some(tc) = self.get_mut(t) {
                tc.n_control = tc.n_control.saturating_sub(1);
            }
        }
        Some(c)
    }

    /// Fires every timer due by `now`: entries that still control others are re-armed for
    /// 60 s, the rest are removed and returned (in expiry order) for unbinding.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Conn> {
        let mut gone = Vec::new();
        while let Some(&(t, id)) = self.timers.first() {
            if t > now_ms {
                break;
            }
            self.timers.remove(&(t, id));
            if let Some(s) = self.conns.get_mut(&id) {
                if s.conn.expires_ms > t {
                    // Packets moved it on since it was filed: file it under its real time
                    // (which may still be due in this call, and then comes up in order).
                    s.timer_ms = s.conn.expires_ms;
                    self.timers.insert((s.timer_ms, id));
                    continue;
                }
            }
            // At the end of time a re-arm cannot move the timer: let the entry go.
            let saturated = t.saturating_add(CONTROL_REARM_MS) == t;
            let controls = self.get(id).map(|c| c.n_control > 0 && !saturated);
            match controls {
                Some(true) => {
                    if let Some(s) = self.conns.get_mut(&id) {
                        s.conn.expires_ms = t.saturating_add(CONTROL_REARM_MS);
                        s.timer_ms = s.conn.expires_ms;
                        self.timers.insert((s.timer_ms, id));
                    }
                }
                Some(false) => {
                    // Put the timer back so remove() finds a consistent set, then remove.
                    self.timers.insert((t, id));
                    if let Some(c) = self.remove(id) {
                        gone.push(c);
                    }
                }
                None => {}
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_entry_size_is_reported() {
        // Printed so the size is visible with --nocapture; asserted loosely so a field added
        // later is noticed in review rather than silently doubling memory.
        let size = std::mem::size_of::<Conn>();
        println!("size_of::<Conn>() = {size} bytes");
        assert!(size <= 192, "Conn grew to {size} bytes");
    }

    fn entry(n: u32, timeout_ms: u64, control: Option<ConnId>) -> Conn {
        let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | n));
        let template = n % 7 == 0;
        Conn {
            id: ConnId(0),
            key: ConnKey {
                proto: 6,
                caddr: addr,
                cport: if template { 0 } else { 1000 },
                vaddr: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
                vport: 80,
            },
            daddr: IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1)),
            dport: 80,
            local: None,
            method: ForwardMethod::Nat,
            flags: ConnFlags {
                template,
                ..ConnFlags::default()
            },
            state: ConnState::Udp,
            timeout_ms,
            expires_ms: 0,
            control: if template { None } else { control },
            n_control: 0,
            dest: DestId(1),
            assured: false,
            in_pkts: 0,
        }
    }

    /// Eager reference: every re-arm sets the due time; expiry takes entries in
    /// (due time, id) order, re-arming controllers for 60 s.
    #[derive(Default)]
    struct Model {
        due: std::collections::BTreeMap<ConnId, (u64, u64, Option<ConnId>)>,
    }

    impl Model {
        fn controls(&self, id: ConnId) -> bool {
            self.due.values().any(|&(_, _, c)| c == Some(id))
        }

        fn expire(&mut self, now: u64) -> Vec<ConnId> {
            let mut gone = Vec::new();
            while let Some((t, id)) = self
                .due
                .iter()
                .map(|(&id, &(t, _, _))| (t, id))
                .filter(|&(t, _)| t <= now)
                .min()
            {
                if self.controls(id) && t.saturating_add(CONTROL_REARM_MS) != t {
                    if let Some(e) = self.due.get_mut(&id) {
                        e.0 = t + CONTROL_REARM_MS;
                    }
                } else {
                    self.due.remove(&id);
                    gone.push(id);
                }
            }
            gone
        }
    }

    #[test]
    fn lazy_rearm_fires_like_eager_rearm() {
        // A fixed pseudo-random run of inserts, re-arms with changing timeouts (longer and
        // shorter), forced expiries and clock steps; the table must expire exactly the
        // entries the eager model does, in the same order, with the same due times.
        let mut rng = crate::sched::SeededRng::new(7);
        use crate::sched::RandomSource;
        let mut table = ConnTable::new(1 << 16);
        let mut model = Model::default();
        let mut now = 0u64;
        let mut live: Vec<ConnId> = Vec::new();
        let mut fired = 0;
        let timeouts = [500, 3_000, 120_000, 900_000, 2_000];
        for step in 0..20_000u32 {
            match rng.below(10) {
                0..=2 => {
                    let timeout = timeouts[rng.below(5) as usize];
                    let control = live
                        .get(rng.below(live.len() as u32 + 1) as usize)
                        .copied()
                        .filter(|t| table.get(*t).is_some_and(|c| c.flags.template));
                    let c = entry(step, timeout, control);
                    let ctl = c.control;
                    let id = table.insert(c, now).expect("room");
                    model.due.insert(id, (now + timeout, timeout, ctl));
                    live.push(id);
                }
                3..=6 if !live.is_empty() => {
                    let id = live[rng.below(live.len() as u32) as usize];
                    let timeout = timeouts[rng.below(5) as usize];
                    if let Some(c) = table.get_mut(id) {
                        c.timeout_ms = timeout;
                        table.rearm(id, now);
                        let e = model.due.get_mut(&id).expect("model has it");
                        *e = (now + timeout, timeout, e.2);
                    }
                }
                7 if !live.is_empty() => {
                    let id = live[rng.below(live.len() as u32) as usize];
                    if table.get(id).is_some() {
                        table.expire_now(id, now);
                        let e = model.due.get_mut(&id).expect("model has it");
                        e.0 = e.0.min(now);
                    }
                }
                _ => {
                    now += u64::from(rng.below(200_000));
                    let got: Vec<ConnId> = table.expire(now).iter().map(|c| c.id).collect();
                    let want = model.expire(now);
                    assert_eq!(got, want, "expiry at {now} ms differs");
                    fired += got.len();
                    live.retain(|id| table.get(*id).is_some());
                }
            }
            for (&id, &(due, _, _)) in &model.due {
                let c = table.get(id).expect("entry the model still has");
                assert_eq!(c.expires_ms, due, "due time of {id:?}");
            }
        }
        assert!(
            fired > 1000,
            "the run should expire many entries, got {fired}"
        );
    }
}
