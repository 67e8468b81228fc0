//! Snapshot tests of the listings. Expected texts were produced independently of this
//! code by applying ipvsadm 1.31's printf formats (`"%-33s"`, `"  -> %-28s %-7s %-6d
//! %-10u %-10u\n"`, `print_largenum`'s `"%9llu"`/`"%8lluK"` …) with C-style formatting;
//! trailing spaces are ipvsadm's own (`%-10u` at line end).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_spec::lb::{
    DestConfig, DestStatus, Family, ForwardMethod, LbInfo, Protocol, Scheduler, ServiceConfig,
    ServiceKey, ServiceStatus, Stats, Timeouts,
};

use super::*;

fn info() -> LbInfo {
    LbInfo {
        version: "1.2.1".into(),
        conn_table_size: 4096,
        dataplane: "kernel".into(),
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn dest(addr: IpAddr, port: u16, method: ForwardMethod, weight: u32) -> DestStatus {
    DestStatus {
        config: DestConfig {
            method,
            weight,
            ..DestConfig::new(addr, port)
        },
        active_conns: 0,
        inactive_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
    }
}

fn tcp_key(addr: IpAddr, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr,
        port,
    }
}

/// The article's NAT service, destinations in kernel order (newest first: .13, .12, .11).
fn article_nat() -> ServiceStatus {
    ServiceStatus {
        config: ServiceConfig::new(tcp_key(v4(192, 168, 80, 10), 80), Scheduler::Wrr),
        stats: Stats::default(),
        dests: vec![
            dest(v4(192, 168, 80, 13), 8080, ForwardMethod::Nat, 1),
            dest(v4(192, 168, 80, 12), 8080, ForwardMethod::Nat, 2),
            dest(v4(192, 168, 80, 11), 8080, ForwardMethod::Nat, 3),
        ],
    }
}

fn stats(v: [u64; 5], rates: [u64; 5]) -> Stats {
    Stats {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
        cps: rates[0],
        inpps: rates[1],
        outpps: rates[2],
        inbps: rates[3],
        outbps: rates[4],
    }
}

fn article_nat_with_counters() -> ServiceStatus {
    let mut s = article_nat();
    s.stats = stats(
        [6, 36, 30, 123_456_789, 5_000_000_000],
        [3, 20, 18, 1500, 2400],
    );
    let per_dest = [
        ([1, 6, 5, 351, 557], [1, 4, 4, 300, 500]),       // .13
        ([2, 12, 10, 701, 1113], [1, 6, 5, 450, 700]),    // .12
        ([3, 18, 15, 1052, 1670], [1, 10, 9, 750, 1200]), // .11
    ];
    for (d, (v, r)) in s.dests.iter_mut().zip(per_dest) {
        d.stats = stats(v, r);
    }
    s
}

#[test]
fn article_nat_default_listing() {
    let got = render(&info(), &[article_nat()], &ListingOptions::default());
    let want = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  192.168.80.10:80 wrr\n",
        "  -> 192.168.80.11:8080           Masq    3      0          0         \n",
        "  -> 192.168.80.12:8080           Masq    2      0          0         \n",
        "  -> 192.168.80.13:8080           Masq    1      0          0         \n",
    );
    assert_eq!(got, want);
}

#[test]
fn article_nat_nosort_keeps_dataplane_order() {
    let opts = ListingOptions {
        nosort: true,
        ..ListingOptions::default()
    };
    let got = render(&info(), &[article_nat()], &opts);
    let lines: Vec<&str> = got.lines().skip(4).collect();
    assert!(lines[0].starts_with("  -> 192.168.80.13:8080"));
    assert!(lines[1].starts_with("  -> 192.168.80.12:8080"));
    assert!(lines[2].starts_with("  -> 192.168.80.11:8080"));
}

#[test]
fn article_nat_stats_listing() {
    let opts = ListingOptions {
        layout: Layout::Stats,
        ..ListingOptions::default()
    };
    let got = render(&info(), &[article_nat_with_counters()], &opts);
    let want = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.80.10:80                    6       36       30  123456K    5000M\n",
        "  -> 192.168.80.11:8080                  3       18       15     1052     1670\n",
        "  -> 192.168.80.12:8080                  2       12       10      701     1113\n",
        "  -> 192.168.80.13:8080                  1        6        5      351      557\n",
    );
    assert_eq!(got, want);
}

#[test]
fn article_nat_rate_listing() {
    let opts = ListingOptions {
        layout: Layout::Rate,
        ..ListingOptions::default()
    };
    let got = render(&info(), &[article_nat_with_counters()], &opts);
    let want = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.80.10:80                    3       20       18     1500     2400\n",
        "  -> 192.168.80.11:8080                  1       10        9      750     1200\n",
        "  -> 192.168.80.12:8080                  1        6        5      450      700\n",
        "  -> 192.168.80.13:8080                  1        4        4      300      500\n",
    );
    assert_eq!(got, want);
}

#[test]
fn thresholds_and_persistent_conn_layouts() {
    let mut svc = article_nat();
    svc.dests.truncate(0);
    let mut d = dest(v4(192, 168, 80, 11), 8080, ForwardMethod::Nat, 3);
    d.config.u_threshold = 100;
    d.config.l_threshold = 50;
    d.active_conns = 2;
    d.inactive_conns = 7;
    d.persist_conns = 1;
    svc.dests.push(d);
    let thr = render_service(
        &svc,
        &ListingOptions {
            layout: Layout::Thresholds,
            ..ListingOptions::default()
        },
    );
    assert_eq!(
        thr,
        concat!(
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  192.168.80.10:80 wrr\n",
            "  -> 192.168.80.11:8080           100        50         2          7         \n",
        )
    );
    let pc = render_service(
        &svc,
        &ListingOptions {
            layout: Layout::PersistentConn,
            ..ListingOptions::default()
        },
    );
    assert_eq!(
        pc,
        concat!(
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  192.168.80.10:80 wrr\n",
            "  -> 192.168.80.11:8080           3         1           2          7         \n",
        )
    );
}

#[test]
fn large_numbers_abbreviate_and_exact_does_not() {
    let mut s = String::new();
    for n in [
        99_999_999,
        100_000_000,
        999_999_999,
        1_000_000_000,
        99_999_999_999,
        100_000_000_000,
        100_000_000_000_000,
    ] {
        largenum(&mut s, n, false);
    }
    assert_eq!(
        s,
        " 99999999  100000K  999999K    1000M   99999M     100G     100T"
    );
    let mut e = String::new();
    for n in [5, 12_345_678, 123_456_789, 5_000_000_000] {
        largenum(&mut e, n, true);
    }
    assert_eq!(e, "        5 12345678 123456789 5000000000");
}

#[test]
fn service_line_flags_persistence_pe_and_ops() {
    let mut sh = ServiceConfig::new(tcp_key(v4(192, 0, 2, 1), 0), Scheduler::Sh);
    sh.flags.sched1 = true;
    sh.flags.sched2 = true;
    sh.flags.persistent = true;
    sh.timeout = 300;
    sh.netmask = u32::from(Ipv4Addr::new(255, 255, 255, 0));
    let mut udp = ServiceConfig::new(
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: v4(192, 0, 2, 2),
            port: 5060,
        },
        Scheduler::Rr,
    );
    udp.flags.persistent = true;
    udp.flags.one_packet = true;
    udp.timeout = 360;
    udp.pe_name = Some("sip".into());
    let mut fw6 = ServiceConfig::new(
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark: 9,
        },
        Scheduler::Wlc,
    );
    fw6.flags.persistent = true;
    fw6.timeout = 60;
    fw6.netmask = 64;
    let mut mh = ServiceConfig::new(
        ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr: v4(192, 0, 2, 3),
            port: 9,
        },
        Scheduler::Mh,
    );
    mh.flags.sched2 = true;
    mh.flags.sched3 = true;
    let mut rr = ServiceConfig::new(tcp_key(v4(192, 0, 2, 4), 80), Scheduler::Rr);
    rr.flags.sched1 = true;
    let svcs: Vec<ServiceStatus> = [sh, udp, fw6, mh, rr]
        .into_iter()
        .map(|config| ServiceStatus {
            config,
            stats: Stats::default(),
            dests: vec![],
        })
        .collect();
    let got = render(&info(), &svcs, &ListingOptions::default());
    let body: Vec<&str> = got.lines().skip(3).collect();
    // Sorted: fwmark 0 first; then AF_INET before AF_INET6; then TCP(6) < UDP(17) < SCTP(132).
    assert_eq!(
        body,
        [
            "TCP  192.0.2.1:0 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0",
            "TCP  192.0.2.4:80 rr (flag-1)",
            "UDP  192.0.2.2:5060 rr persistent 360 pe sip ops",
            "SCTP 192.0.2.3:9 mh (mh-port,flag-3)",
            "FWM  9 IPv6 wlc persistent 60 mask 64",
        ]
    );
}

#[test]
fn ipv6_names_use_brackets() {
    let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let d = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11));
    let svc = ServiceStatus {
        config: ServiceConfig::new(tcp_key(a, 80), Scheduler::Rr),
        stats: Stats::default(),
        dests: vec![dest(d, 80, ForwardMethod::Dr, 1)],
    };
    let got = render_service(&svc, &ListingOptions::default());
    assert!(got.contains("\nTCP  [2001:db8::1]:80 rr\n"), "{got}");
    assert!(
        got.ends_with("\n  -> [2001:db8::11]:80            Route   1      0          0         \n"),
        "{got}"
    );
}

#[test]
fn addresses_sort_with_ipvsadm_signed_difference_quirk() {
    // ipvsadm computes (int)(ntohl(a) - ntohl(b)):
    //  192.168.80.10 - 203.0.113.1 = -(0x0A5820F7)      → negative: 192.168… first
    //  203.0.113.1  - 10.0.0.1     = 0xC1007100 as int  → negative: 203.0.113.1 before 10.0.0.1
    //  192.168.80.10 - 10.0.0.1    = 0xB6A85009 as int  → negative: 192.168… before 10.0.0.1
    let mk = |a: IpAddr| ServiceStatus {
        config: ServiceConfig::new(tcp_key(a, 80), Scheduler::Rr),
        stats: Stats::default(),
        dests: vec![],
    };
    let svcs = [
        mk(v4(10, 0, 0, 1)),
        mk(v4(203, 0, 113, 1)),
        mk(v4(192, 168, 80, 10)),
    ];
    let got = render(&info(), &svcs, &ListingOptions::default());
    let names: Vec<&str> = got.lines().skip(3).collect();
    assert_eq!(
        names,
        [
            "TCP  192.168.80.10:80 rr",
            "TCP  203.0.113.1:80 rr",
            "TCP  10.0.0.1:80 rr"
        ]
    );
}

#[test]
fn ports_sort_numerically_within_an_address() {
    let mut svc = article_nat();
    svc.dests = vec![
        dest(v4(192, 168, 80, 11), 8081, ForwardMethod::Nat, 1),
        dest(v4(192, 168, 80, 11), 80, ForwardMethod::Nat, 1),
        dest(v4(192, 168, 80, 11), 443, ForwardMethod::Nat, 1),
    ];
    let got = render_service(&svc, &ListingOptions::default());
    let ports: Vec<&str> = got
        .lines()
        .skip(3)
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        ports,
        [
            "192.168.80.11:80",
            "192.168.80.11:443",
            "192.168.80.11:8081"
        ]
    );
}

#[test]
fn timeouts_line() {
    assert_eq!(
        render_timeouts(&Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
}
