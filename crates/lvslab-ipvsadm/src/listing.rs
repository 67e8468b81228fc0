//! `ipvsadm -L -n` output, character for character as ipvsadm 1.31 prints it, for both
//! dataplanes.
//!
//! Layouts: the default one (`-L -n`), `--stats`, `--rate`, `--thresholds` and
//! `--persistent-conn`, with `--exact` and `--nosort`. Column widths are ipvsadm's printf
//! widths (service name 33 wide, destination name 28 wide after `"  -> "`, counters 9 wide
//! with K/M/G/T abbreviation unless exact). Lines keep ipvsadm's trailing spaces.
//!
//! Sorting reproduces ipvsadm's comparison exactly, including its quirk: addresses (and
//! fwmarks) are compared by subtracting them as unsigned 32-bit numbers and reading the
//! difference as a signed int, so two addresses more than 2^31 apart sort "backwards"
//! (e.g. `203.0.113.1` before `10.0.0.1`). The sort is glibc's top-down merge sort, which
//! is what ipvsadm's `qsort` runs on Debian.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use lvslab_spec::lb::{DestStatus, Family, LbInfo, ServiceKey, ServiceStatus, Timeouts};

/// Which ipvsadm listing layout to print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// `-L -n`: scheduler, flags, forwarding method, weight, connection counts.
    #[default]
    Default,
    /// `--stats`: cumulative counters.
    Stats,
    /// `--rate`: per-second rates.
    Rate,
    /// `--thresholds`: upper/lower connection thresholds.
    Thresholds,
    /// `--persistent-conn`: persistence templates per destination.
    PersistentConn,
}

/// Options of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingOptions {
    /// The layout.
    pub layout: Layout,
    /// `--nosort`: keep the dataplane's order (kernel: hash order / newest-first dests).
    pub nosort: bool,
    /// `--exact`: print counters unabbreviated.
    pub exact: bool,
}

const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

/// `ipvsadm -L -n [...]`: the version line, the titles and every service.
pub fn render(info: &LbInfo, services: &[ServiceStatus], opts: &ListingOptions) -> String {
    let mut out = format!(
        "IP Virtual Server version {} (size={})\n",
        info.version, info.conn_table_size
    );
    out.push_str(title(opts.layout));
    let mut order: Vec<&ServiceStatus> = services.iter().collect();
    if !opts.nosort {
        merge_sort(&mut order, &|a, b| {
            compare_services(&a.config.key, &b.config.key)
        });
    }
    for svc in order {
        service_entry(&mut out, svc, opts);
    }
    out
}

/// `ipvsadm -L -n -t VIP:PORT [...]`: titles and one service, no version line.
pub fn render_service(service: &ServiceStatus, opts: &ListingOptions) -> String {
    let mut out = title(opts.layout).to_string();
    service_entry(&mut out, service, opts);
    out
}

/// `ipvsadm -L --timeout`.
pub fn render_timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcp_fin, t.udp
    )
}

fn title(layout: Layout) -> &'static str {
    // Each literal is ipvsadm's printf with its widths applied: "%-33s %8s ..." etc.
    match layout {
        Layout::Stats => {
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n"
        }
        Layout::Rate => {
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n"
        }
        Layout::Thresholds => {
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n"
        }
        Layout::PersistentConn => {
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\n"
        }
        Layout::Default => {
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        }
    }
}

fn is_v6_service(key: &ServiceKey) -> bool {
    matches!(
        key,
        ServiceKey::Addr {
            addr: IpAddr::V6(_),
            ..
        } | ServiceKey::Fwmark {
            family: Family::Inet6,
            ..
        }
    )
}

fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// ipvsadm truncates non-IPv6 names into fixed buffers; numeric names never reach the
/// limit, but the rule is kept so long names lay out the same.
fn truncate(mut s: String, at: usize) -> String {
    if s.len() > at {
        let mut cut = at;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn service_name(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Fwmark { family, mark } => match family {
            Family::Inet => format!("FWM  {mark}"),
            Family::Inet6 => format!("FWM  {mark} IPv6"),
        },
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let name = format!("{:<4} {}", protocol.listing_name(), addr_port(addr, port));
            if addr.is_ipv6() {
                name
            } else {
                truncate(name, 33)
            }
        }
    }
}

fn dest_name(d: &DestStatus) -> String {
    let name = addr_port(d.config.addr, d.config.port);
    if d.config.addr.is_ipv6() {
        name
    } else {
        truncate(name, 28)
    }
}

/// ipvsadm's `print_largenum`: 9 columns, abbreviated with K/M/G/T (integer division by
/// powers of 1000) unless exact; exact numbers of 9+ digits get one leading space.
fn largenum(out: &mut String, n: u64, exact: bool) {
    if exact {
        let digits = n.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        let _ = write!(out, "{digits:>width$}");
        return;
    }
    let _ = match n {
        0..=99_999_999 => write!(out, "{n:>9}"),
        100_000_000..=999_999_999 => write!(out, "{:>8}K", n / 1_000),
        1_000_000_000..=99_999_999_999 => write!(out, "{:>8}M", n / 1_000_000),
        100_000_000_000..=99_999_999_999_999 => write!(out, "{:>8}G", n / 1_000_000_000),
        _ => write!(out, "{:>8}T", n / 1_000_000_000_000),
    };
}

fn sched_flags(svc: &ServiceStatus) -> Option<String> {
    let f = svc.config.flags;
    if !(f.sched1 || f.sched2 || f.sched3) {
        return None;
    }
    let sched = svc.config.scheduler.name();
    let (one, two) = match sched {
        "sh" => ("sh-fallback", "sh-port"),
        "mh" => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    let names: Vec<&str> = [(f.sched1, one), (f.sched2, two), (f.sched3, "flag-3")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    Some(names.join(","))
}

fn service_entry(out: &mut String, svc: &ServiceStatus, opts: &ListingOptions) {
    let cfg = &svc.config;
    let name = service_name(&cfg.key);
    let s = &svc.stats;
    match opts.layout {
        Layout::Stats => {
            let _ = write!(out, "{name:<33}");
            for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                largenum(out, n, opts.exact);
            }
        }
        Layout::Rate => {
            let _ = write!(out, "{name:<33}");
            for n in [s.cps, s.inpps, s.outpps, s.inbps, s.outbps] {
                largenum(out, n, opts.exact);
            }
        }
        Layout::Default | Layout::Thresholds | Layout::PersistentConn => {
            let _ = write!(out, "{name} {}", cfg.scheduler.name());
            if let Some(flags) = sched_flags(svc) {
                let _ = write!(out, " ({flags})");
            }
            if cfg.flags.persistent {
                let _ = write!(out, " persistent {}", cfg.timeout);
                if is_v6_service(&cfg.key) {
                    // The model's "whole address" default u32::MAX means /128 for IPv6.
                    if cfg.netmask != 128 && cfg.netmask != u32::MAX {
                        let _ = write!(out, " mask {}", cfg.netmask);
                    }
                } else if cfg.netmask != u32::MAX {
                    let _ = write!(out, " mask {}", Ipv4Addr::from(cfg.netmask));
                }
                if let Some(pe) = cfg.pe_name.as_deref().filter(|p| !p.is_empty()) {
                    let _ = write!(out, " pe {pe}");
                }
            }
            if cfg.flags.one_packet {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');

    let mut dests: Vec<&DestStatus> = svc.dests.iter().collect();
    if !opts.nosort {
        merge_sort(&mut dests, &|a, b| compare_dests(a, b));
    }
    for d in dests {
        let dn = dest_name(d);
        let ds = &d.stats;
        match opts.layout {
            Layout::Stats => {
                let _ = write!(out, "  -> {dn:<28}");
                for n in [ds.conns, ds.inpkts, ds.outpkts, ds.inbytes, ds.outbytes] {
                    largenum(out, n, opts.exact);
                }
            }
            Layout::Rate => {
                let _ = write!(
                    out,
                    "  -> {dn:<28} {:>8} {:>8} {:>8}",
                    ds.cps, ds.inpps, ds.outpps
                );
                largenum(out, ds.inbps, opts.exact);
                largenum(out, ds.outbps, opts.exact);
            }
            Layout::Thresholds => {
                let _ = write!(
                    out,
                    "  -> {dn:<28} {:<10} {:<10} {:<10} {:<10}",
                    d.config.u_threshold, d.config.l_threshold, d.active_conns, d.inactive_conns
                );
            }
            Layout::PersistentConn => {
                let _ = write!(
                    out,
                    "  -> {dn:<28} {:<9} {:<11} {:<10} {:<10}",
                    d.config.weight, d.persist_conns, d.active_conns, d.inactive_conns
                );
            }
            Layout::Default => {
                // ipvsadm prints the weight with %d (the kernel stores an int).
                let weight = i32::try_from(d.config.weight).unwrap_or(i32::MAX);
                let _ = write!(
                    out,
                    "  -> {dn:<28} {:<7} {:<6} {:<10} {:<10}",
                    d.config.method.listing_name(),
                    weight,
                    d.active_conns,
                    d.inactive_conns
                );
            }
        }
        out.push('\n');
    }
}

/// `a - b` on unsigned 32-bit values read back as a C `int`: ipvsadm's comparison.
fn c_int_diff(a: u32, b: u32) -> i32 {
    i32::from_ne_bytes(a.wrapping_sub(b).to_ne_bytes())
}

/// Address as four network-order words (IPv4 in the first, as `nf_inet_addr` holds it).
fn addr_words(addr: Option<IpAddr>) -> [u32; 4] {
    match addr {
        Some(IpAddr::V4(a)) => [u32::from(a), 0, 0, 0],
        Some(IpAddr::V6(a)) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        }
        None => [0; 4],
    }
}

fn compare_addrs(v6: bool, a: Option<IpAddr>, b: Option<IpAddr>) -> i32 {
    let (wa, wb) = (addr_words(a), addr_words(b));
    let words = if v6 { 4 } else { 1 };
    (0..words)
        .map(|i| c_int_diff(wa[i], wb[i]))
        .find(|&r| r != 0)
        .unwrap_or(0)
}

/// libipvs `ipvs_cmp_services`: fwmark, family, protocol, address, port.
fn compare_services(a: &ServiceKey, b: &ServiceKey) -> i32 {
    // Fields as libipvs holds them for each kind of service (fwmark services have no
    // protocol/address/port in the kernel's reply, so they are zero there).
    fn fields(k: &ServiceKey) -> (u32, i32, i32, Option<IpAddr>, i32) {
        let af = if is_v6_service(k) { AF_INET6 } else { AF_INET };
        match *k {
            ServiceKey::Fwmark { mark, .. } => (mark, af, 0, None, 0),
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => (
                0,
                af,
                i32::from(protocol.number()),
                Some(addr),
                i32::from(port),
            ),
        }
    }
    let (fa, afa, pa, aa, porta) = fields(a);
    let (fb, afb, pb, ab, portb) = fields(b);
    let r = c_int_diff(fa, fb);
    if r != 0 {
        return r;
    }
    if afa != afb {
        return afa - afb;
    }
    if pa != pb {
        return pa - pb;
    }
    let r = compare_addrs(afa == AF_INET6, aa, ab);
    if r != 0 {
        return r;
    }
    porta - portb
}

/// libipvs `ipvs_cmp_dests`: address (by the first one's family), then port.
fn compare_dests(a: &DestStatus, b: &DestStatus) -> i32 {
    let r = compare_addrs(
        a.config.addr.is_ipv6(),
        Some(a.config.addr),
        Some(b.config.addr),
    );
    if r != 0 {
        return r;
    }
    i32::from(a.config.port) - i32::from(b.config.port)
}

/// glibc's `msort`: split at n/2, sort both halves, merge taking from the left while
/// `cmp(left, right) <= 0`. Stable, and tolerant of ipvsadm's non-transitive comparator
/// (Rust's `sort_by` may panic on one).
fn merge_sort<T: Copy>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    {
        let (left, right) = v.split_at_mut(n1);
        merge_sort(left, cmp);
        merge_sort(right, cmp);
    }
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
