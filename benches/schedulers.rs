//! Scheduler cost and connection-table memory (no root). Plain `main`, bounded in count and
//! time; results on stdout.
//!
//! Run: `cargo bench -p lvslab-dataplane --bench schedulers`.
//!
//! 1. ns per scheduling decision: for every scheduler, a fresh [`Director`] with one TCP
//!    service and 10 or 1000 NAT destinations (weights 1..=3), fed new-connection SYNs
//!    from distinct client addresses and ports through [`Director::lookup_or_schedule`];
//!    each decision creates an entry, as in the kernel. Baselines in the same run: the
//!    same call for an existing connection (an ACK on an entry made by an earlier SYN, in
//!    a table of the same size), and building + hashing the packet's key alone.
//! 2. Memory per connection entry: bytes the allocator holds after 100 k and 1 M new
//!    connections, minus the bytes held before (a counting global allocator), and the
//!    process's resident-set growth for comparison.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hash::{BuildHasher, RandomState};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use lvslab_dataplane::conn::TcpFlags;
use lvslab_dataplane::director::{Director, DirectorConfig, FlowKey, Verdict};
use lvslab_spec::lb::{
    DestConfig, ForwardMethod, LoadBalancer, Protocol, Scheduler, ServiceConfig, ServiceKey,
};

mod counting {
    //! A global allocator that counts live bytes (the only unsafe code of this bench).
    #![allow(unsafe_code)]

    use super::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub static LIVE: AtomicUsize = AtomicUsize::new(0);

    pub struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
    // GlobalAlloc contract; the counter only observes sizes.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same layout the caller gave us.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            }
            p
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
            unsafe { System.dealloc(ptr, layout) };
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same layout the caller gave us.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            }
            p
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: the caller's guarantees for `ptr`, `layout` and `new_size` carry over.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
                LIVE.fetch_add(new_size, Ordering::Relaxed);
            }
            p
        }
    }
}

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// Bound per measurement (either is enough).
const MAX_DECISIONS: usize = 200_000;
const MAX_TIME: Duration = Duration::from_millis(400);

fn service_key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: 80,
    }
}

fn director(sched: Scheduler, dests: usize) -> Director {
    let mut d = Director::new(DirectorConfig::default());
    d.add_service(&ServiceConfig::new(service_key(), sched))
        .expect("add service");
    for i in 0..dests {
        let n = u32::try_from(i).expect("few destinations");
        // 10.128.0.0/16 holds up to 65,536 real servers.
        let addr = Ipv4Addr::from(0x0a80_0000 | n);
        let mut c = DestConfig::new(IpAddr::V4(addr), 8080);
        c.method = ForwardMethod::Nat;
        // ovf only uses a server while its active connections are below its weight: big
        // weights keep it from refusing during the run (every SYN makes an active entry).
        c.weight = if sched == Scheduler::Ovf { 1 << 20 } else { 1 } + n % 3;
        d.add_dest(&service_key(), &c).expect("add destination");
    }
    d
}

/// The `i`-th client's packet: distinct (address, port) for every `i` below 2^32.
fn packet(i: usize, flags: u8) -> FlowKey {
    let n = i as u32;
    FlowKey {
        protocol: Protocol::Tcp,
        // 10.0.0.0/9 for clients, 2^16 ports' worth per address.
        saddr: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | ((n >> 14) & 0x007f_ffff))),
        sport: 1024 + (n & 0x3fff) as u16,
        daddr: IpAddr::V4(VIP),
        dport: 80,
        tcp_flags: TcpFlags(flags),
        fwmark: 0,
        len: 60,
    }
}

/// Runs `step(i)` for i = 0.. until the count or time bound; ns per call.
fn time_loop(mut step: impl FnMut(usize)) -> (f64, usize) {
    let start = Instant::now();
    let mut i = 0;
    while i < MAX_DECISIONS && start.elapsed() < MAX_TIME {
        for _ in 0..1000 {
            step(i);
            i += 1;
        }
    }
    (start.elapsed().as_nanos() as f64 / i as f64, i)
}

fn expect_forward(v: Verdict) {
    if !matches!(v, Verdict::Forward(_)) {
        panic!("expected a forwarding decision, got {v:?}");
    }
}

struct Row {
    sched: Scheduler,
    ns: f64,
    n: usize,
}

fn new_conn_cost(sched: Scheduler, dests: usize) -> Row {
    let mut d = director(sched, dests);
    let (ns, n) = time_loop(|i| {
        expect_forward(d.lookup_or_schedule(1_000, &packet(i, TcpFlags::SYN)));
    });
    Row { sched, ns, n }
}

/// An ACK on an existing entry: a hash lookup, state machine, counters.
fn existing_conn_cost(dests: usize) -> f64 {
    let mut d = director(Scheduler::Rr, dests);
    let entries = 100_000;
    for i in 0..entries {
        expect_forward(d.lookup_or_schedule(1_000, &packet(i, TcpFlags::SYN)));
    }
    time_loop(|i| {
        expect_forward(d.lookup_or_schedule(1_000, &packet(i % entries, TcpFlags::ACK)));
    })
    .0
}

/// Building the packet's key and hashing it (the table's own hasher) alone.
fn key_hash_cost() -> f64 {
    let state = RandomState::new();
    time_loop(|i| {
        let p = packet(i, TcpFlags::SYN);
        black_box(state.hash_one((p.protocol, p.saddr, p.sport, p.daddr, p.dport)));
    })
    .0
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn memory_per_entry(entries: usize) -> (f64, f64) {
    let live0 = counting::LIVE.load(std::sync::atomic::Ordering::Relaxed);
    let rss0 = rss_bytes();
    let mut d = director(Scheduler::Rr, 10);
    for i in 0..entries {
        expect_forward(d.lookup_or_schedule(1_000, &packet(i, TcpFlags::SYN)));
    }
    assert_eq!(d.conns().len(), entries, "every SYN made one entry");
    let live = counting::LIVE.load(std::sync::atomic::Ordering::Relaxed) - live0;
    let rss = rss_bytes().saturating_sub(rss0);
    drop(d);
    (live as f64 / entries as f64, rss as f64 / entries as f64)
}

fn main() {
    let schedulers: Vec<Scheduler> = Scheduler::ALL
        .into_iter()
        .filter(|s| *s != Scheduler::None)
        .collect();
    let hash = key_hash_cost();
    let existing = [existing_conn_cost(10), existing_conn_cost(1000)];
    println!("baseline: key build + hash {hash:.1} ns");
    println!(
        "baseline: existing connection (ACK) {:.1} ns at 10 dests, {:.1} ns at 1000",
        existing[0], existing[1]
    );
    let mut rows = Vec::new();
    for &s in &schedulers {
        for dests in [10, 1000] {
            let r = new_conn_cost(s, dests);
            println!(
                "{:<6} {:>5} dests: {:>8.1} ns/decision ({} decisions)",
                s.to_string(),
                dests,
                r.ns,
                r.n
            );
            rows.push(r);
        }
    }
    println!();
    println!("| scheduler | 10 RS ns | ÷ existing | 1000 RS ns | ÷ existing |");
    println!("|---|---|---|---|---|");
    for pair in rows.chunks(2) {
        println!(
            "| {} | {:.0} | {:.1}× | {:.0} | {:.1}× |",
            pair[0].sched,
            pair[0].ns,
            pair[0].ns / existing[0],
            pair[1].ns,
            pair[1].ns / existing[1]
        );
    }
    println!();
    println!(
        "Conn struct: {} bytes",
        std::mem::size_of::<lvslab_dataplane::conn::Conn>()
    );
    for entries in [100_000, 1_000_000] {
        let (heap, rss) = memory_per_entry(entries);
        println!("{entries} entries: {heap:.0} heap bytes/entry, {rss:.0} RSS bytes/entry");
    }
}
