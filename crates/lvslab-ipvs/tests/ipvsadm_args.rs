//! `lvslab ipvsadm` command lines against an in-memory dataplane that answers like the
//! kernel (EEXIST/ESRCH/ENOENT/ERANGE folded into `LbError` the way both dataplanes do).
//! Expected values come from ipvsadm 1.31's rules (defaults re-sent on -E/-e, port
//! inheritance, DR/TUN port forcing, its messages and exit statuses), not from the code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_ipvs::ipvsadm_args::{
    parse, run, Command, ListTarget, Outcome, DEFAULT_PERSISTENCE_TIMEOUT,
};
use lvslab_ipvs::ipvsadm_listing::{self, Layout, ListingOptions};
use lvslab_spec::lb::{
    DestConfig, DestStatus, Encap, Family, ForwardMethod, LbError, LbInfo, LoadBalancer, Protocol,
    Scheduler, ServiceConfig, ServiceKey, ServiceStatus, Stats, Timeouts,
};

/// Kernel-like model: services in creation order, destinations newest first.
#[derive(Default)]
struct FakeLb {
    services: Vec<ServiceStatus>,
    timeouts: Timeouts,
}

impl FakeLb {
    fn svc(&mut self, key: &ServiceKey) -> Result<&mut ServiceStatus, LbError> {
        self.services
            .iter_mut()
            .find(|s| s.config.key == *key)
            .ok_or_else(|| LbError::NotFound(format!("service {key}")))
    }

    fn check_dest(dest: &DestConfig) -> Result<(), LbError> {
        if dest.weight > i32::MAX as u32 {
            return Err(LbError::Range("weight".into()));
        }
        if dest.l_threshold > dest.u_threshold {
            return Err(LbError::Range("l_threshold > u_threshold".into()));
        }
        Ok(())
    }
}

impl LoadBalancer for FakeLb {
    fn info(&mut self) -> Result<LbInfo, LbError> {
        Ok(LbInfo {
            version: "1.2.1".into(),
            conn_table_size: 4096,
            dataplane: "fake".into(),
        })
    }
    fn add_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError> {
        if self.svc(&svc.key).is_ok() {
            return Err(LbError::Exists(format!("service {}", svc.key)));
        }
        self.services.push(ServiceStatus {
            config: svc.clone(),
            stats: Stats::default(),
            dests: Vec::new(),
        });
        Ok(())
    }
    fn edit_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError> {
        self.svc(&svc.key)?.config = svc.clone();
        Ok(())
    }
    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), LbError> {
        self.svc(key)?;
        self.services.retain(|s| s.config.key != *key);
        Ok(())
    }
    fn add_dest(&mut self, key: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
        Self::check_dest(dest)?;
        let s = self.svc(key)?;
        if s.dests
            .iter()
            .any(|d| d.config.addr == dest.addr && d.config.port == dest.port)
        {
            return Err(LbError::Exists("destination".into()));
        }
        s.dests.insert(
            0,
            DestStatus {
                config: dest.clone(),
                active_conns: 0,
                inactive_conns: 0,
                persist_conns: 0,
                stats: Stats::default(),
            },
        );
        Ok(())
    }
    fn edit_dest(&mut self, key: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
        Self::check_dest(dest)?;
        let s = self.svc(key)?;
        let d = s
            .dests
            .iter_mut()
            .find(|d| d.config.addr == dest.addr && d.config.port == dest.port)
            .ok_or_else(|| LbError::NotFound("destination".into()))?;
        d.config = dest.clone();
        Ok(())
    }
    fn delete_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), LbError> {
        let s = self.svc(key)?;
        let before = s.dests.len();
        s.dests
            .retain(|d| !(d.config.addr == addr && d.config.port == port));
        if s.dests.len() == before {
            return Err(LbError::NotFound("destination".into()));
        }
        Ok(())
    }
    fn list(&mut self) -> Result<Vec<ServiceStatus>, LbError> {
        Ok(self.services.clone())
    }
    fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), LbError> {
        let zero_one = |s: &mut ServiceStatus| {
            s.stats = Stats::default();
            for d in &mut s.dests {
                d.stats = Stats::default();
            }
        };
        match key {
            Some(k) => zero_one(self.svc(k)?),
            None => self.services.iter_mut().for_each(zero_one),
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), LbError> {
        self.services.clear();
        Ok(())
    }
    fn timeouts(&mut self) -> Result<Timeouts, LbError> {
        Ok(self.timeouts)
    }
    fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), LbError> {
        for (cur, new) in [
            (&mut self.timeouts.tcp, t.tcp),
            (&mut self.timeouts.tcp_fin, t.tcp_fin),
            (&mut self.timeouts.udp, t.udp),
        ] {
            if new != 0 {
                *cur = new;
            }
        }
        Ok(())
    }
}

/// Splits a command line as a shell would (no quoting needed here), dropping `ipvsadm`.
fn words(line: &str) -> Vec<String> {
    line.split_whitespace()
        .skip_while(|w| *w == "ipvsadm")
        .map(str::to_string)
        .collect()
}

fn sh(lb: &mut FakeLb, line: &str) -> Outcome {
    run(&words(line), lb)
}

/// Runs a line that must succeed silently.
fn ok(lb: &mut FakeLb, line: &str) {
    let out = sh(lb, line);
    assert_eq!(
        (out.exit_code, out.stderr.as_str(), out.stdout.as_str()),
        (0, "", ""),
        "`{line}`"
    );
}

/// Runs a line that must fail with exactly this message and status.
fn fails(lb: &mut FakeLb, line: &str, message: &str, code: i32) {
    let out = sh(lb, line);
    assert_eq!(
        (out.stderr.as_str(), out.exit_code, out.stdout.as_str()),
        (format!("{message}\n").as_str(), code, ""),
        "`{line}`"
    );
}

fn parse_err(line: &str) -> (String, i32) {
    let e = parse(&words(line)).expect_err(line);
    (e.message, e.exit_code)
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().expect("test address"))
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(addr),
        port,
    }
}

fn service<'a>(lb: &'a FakeLb, key: &ServiceKey) -> &'a ServiceStatus {
    lb.services
        .iter()
        .find(|s| s.config.key == *key)
        .expect("service present")
}

fn dest<'a>(lb: &'a FakeLb, key: &ServiceKey, addr: &str, port: u16) -> &'a DestConfig {
    &service(lb, key)
        .dests
        .iter()
        .find(|d| d.config.addr == v4(addr) && d.config.port == port)
        .unwrap_or_else(|| panic!("destination {addr}:{port} present"))
        .config
}

const ARTICLE_NAT: [&str; 4] = [
    "ipvsadm -A -t 192.168.80.10:80 -s wrr",
    "ipvsadm -a -t 192.168.80.10:80 -r 192.168.80.11:8080 -m -w 3",
    "ipvsadm -a -t 192.168.80.10:80 -r 192.168.80.12:8080 -m -w 2",
    "ipvsadm -a -t 192.168.80.10:80 -r 192.168.80.13:8080 -m",
];

fn article_nat() -> FakeLb {
    let mut lb = FakeLb::default();
    for line in ARTICLE_NAT {
        ok(&mut lb, line);
    }
    lb
}

/// One `-L -n` destination line from ipvsadm's printf `"  -> %-28s %-7s %-6d %-10u %-10u\n"`.
fn dest_line(name: &str, fwd: &str, weight: u32) -> String {
    format!("  -> {name:<28} {fwd:<7} {weight:<6} {:<10} {:<10}\n", 0, 0)
}

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

#[test]
fn article_nat_commands_configure_the_service_as_written() {
    let lb = article_nat();
    let key = tcp("192.168.80.10", 80);
    let s = service(&lb, &key);
    assert_eq!(s.config.scheduler, Scheduler::Wrr);
    assert!(!s.config.flags.persistent);
    assert_eq!(s.config.netmask, u32::MAX);
    for (addr, weight) in [
        ("192.168.80.11", 3),
        ("192.168.80.12", 2),
        ("192.168.80.13", 1),
    ] {
        let d = dest(&lb, &key, addr, 8080);
        assert_eq!((d.method, d.weight), (ForwardMethod::Nat, weight), "{addr}");
        assert_eq!((d.u_threshold, d.l_threshold), (0, 0));
        assert_eq!(d.tun_type, Encap::Ipip);
    }
}

#[test]
fn list_numeric_prints_the_article_table_through_the_renderer() {
    let mut lb = article_nat();
    let out = sh(&mut lb, "ipvsadm -L -n");
    assert_eq!((out.exit_code, out.stderr.as_str()), (0, ""));
    let expected = format!(
        "{HEADER}TCP  192.168.80.10:80 wrr\n{}{}{}",
        dest_line("192.168.80.11:8080", "Masq", 3),
        dest_line("192.168.80.12:8080", "Masq", 2),
        dest_line("192.168.80.13:8080", "Masq", 1),
    );
    assert_eq!(out.stdout, expected);
    let rendered = ipvsadm_listing::render(
        &lb.info().expect("info"),
        &lb.services,
        &ListingOptions::default(),
    );
    assert_eq!(out.stdout, rendered);
    // Spellings ipvsadm accepts for the same listing.
    for line in ["-Ln", "-l -n", "--list --numeric", "-L", "-L -n --sort", ""] {
        assert_eq!(sh(&mut lb, line).stdout, expected, "`{line}`");
    }
}

#[test]
fn listing_layouts_and_flags_reach_the_renderer() {
    let mut lb = article_nat();
    lb.services[0].stats.conns = 123_456_789;
    let info = lb.info().expect("info");
    for (line, layout, nosort, exact) in [
        ("-L -n --stats", Layout::Stats, false, false),
        ("-L -n --stats --exact", Layout::Stats, false, true),
        ("-L -n --rate", Layout::Rate, false, false),
        ("-L -n --thresholds", Layout::Thresholds, false, false),
        (
            "-L -n --persistent-conn",
            Layout::PersistentConn,
            false,
            false,
        ),
        ("-L -n --nosort", Layout::Default, true, false),
        // ipvsadm's precedence when two layouts are asked for.
        ("-L -n --rate --stats", Layout::Stats, false, false),
    ] {
        let opts = ListingOptions {
            layout,
            nosort,
            exact,
        };
        let out = sh(&mut lb, line);
        assert_eq!(out.exit_code, 0, "`{line}`");
        assert_eq!(
            out.stdout,
            ipvsadm_listing::render(&info, &lb.services, &opts),
            "`{line}`"
        );
    }
    // --nosort shows the dataplane's newest-first order.
    let out = sh(&mut lb, "-L -n --nosort");
    let pos = |a: &str| out.stdout.find(a).expect("listed");
    assert!(pos("192.168.80.13:8080") < pos("192.168.80.11:8080"));
}

#[test]
fn list_one_service_has_no_version_line() {
    let mut lb = article_nat();
    ok(&mut lb, "-A -t 192.168.80.20:443 -s rr");
    let out = sh(&mut lb, "-L -n -t 192.168.80.10:80");
    assert_eq!(out.exit_code, 0);
    assert_eq!(
        out.stdout,
        ipvsadm_listing::render_service(
            service(&lb, &tcp("192.168.80.10", 80)),
            &ListingOptions::default()
        )
    );
    assert!(!out.stdout.contains("IP Virtual Server"));
    assert!(!out.stdout.contains("443"));
    fails(&mut lb, "-L -n -t 192.168.80.10:81", "No such service", 1);
}

#[test]
fn tunnel_server_without_port_inherits_the_service_port() {
    let mut lb = FakeLb::default();
    ok(&mut lb, "ipvsadm -A -t 20.0.0.2:80 -s rr");
    ok(&mut lb, "ipvsadm -a -t 20.0.0.2:80 -r 10.0.0.2 -i");
    let key = tcp("20.0.0.2", 80);
    assert_eq!(service(&lb, &key).config.scheduler, Scheduler::Rr);
    let d = dest(&lb, &key, "10.0.0.2", 80);
    assert_eq!(
        (d.method, d.weight, d.tun_type),
        (ForwardMethod::Tunnel, 1, Encap::Ipip)
    );
    let out = sh(&mut lb, "-L -n");
    assert!(out.stdout.contains(&dest_line("10.0.0.2:80", "Tunnel", 1)));
}

#[test]
fn direct_routing_forces_the_service_port_and_is_the_default() {
    let mut lb = FakeLb::default();
    ok(&mut lb, "-A -t 192.168.80.10:80 -s rr");
    ok(
        &mut lb,
        "-a -t 192.168.80.10:80 -r 192.168.80.11:8080 -g -w 2",
    );
    // No method at all means DR as well.
    ok(&mut lb, "-a -t 192.168.80.10:80 -r 192.168.80.12");
    let key = tcp("192.168.80.10", 80);
    let d = dest(&lb, &key, "192.168.80.11", 80);
    assert_eq!((d.method, d.weight), (ForwardMethod::Dr, 2));
    let d = dest(&lb, &key, "192.168.80.12", 80);
    assert_eq!((d.method, d.weight), (ForwardMethod::Dr, 1));
    assert!(sh(&mut lb, "-Ln")
        .stdout
        .contains(&dest_line("192.168.80.11:80", "Route", 2)));
}

#[test]
fn edit_service_resends_every_field_with_defaults() {
    let mut lb = article_nat();
    let key = tcp("192.168.80.10", 80);
    ok(&mut lb, "ipvsadm -E -t 192.168.80.10:80 -s rr");
    assert!(sh(&mut lb, "-L -n")
        .stdout
        .contains("TCP  192.168.80.10:80 rr\n"));
    // Destinations are untouched by -E.
    assert_eq!(service(&lb, &key).dests.len(), 3);

    ok(
        &mut lb,
        "-E -t 192.168.80.10:80 -s sh -p 600 -M 255.255.255.0",
    );
    let c = &service(&lb, &key).config;
    assert_eq!(c.scheduler, Scheduler::Sh);
    assert!(c.flags.persistent);
    assert_eq!((c.timeout, c.netmask), (600, 0xffff_ff00));
    assert!(sh(&mut lb, "-Ln")
        .stdout
        .contains("TCP  192.168.80.10:80 sh persistent 600 mask 255.255.255.0\n"));

    // Trap 34: no -s means wlc, no -p means no persistence, the mask back to /32.
    ok(&mut lb, "-E -t 192.168.80.10:80");
    let c = &service(&lb, &key).config;
    assert_eq!(c.scheduler, Scheduler::Wlc);
    assert!(!c.flags.persistent);
    assert_eq!((c.timeout, c.netmask), (0, u32::MAX));

    fails(
        &mut lb,
        "-E -t 192.168.80.10:81 -s rr",
        "No such service",
        255,
    );
}

#[test]
fn edit_server_resends_every_field_with_defaults() {
    let mut lb = article_nat();
    let key = tcp("192.168.80.10", 80);
    ok(
        &mut lb,
        "-e -t 192.168.80.10:80 -r 192.168.80.13:8080 -m -w 5 -x 100 -y 50",
    );
    let d = dest(&lb, &key, "192.168.80.13", 8080);
    assert_eq!(
        (d.method, d.weight, d.u_threshold, d.l_threshold),
        (ForwardMethod::Nat, 5, 100, 50)
    );
    ok(&mut lb, "-e -t 192.168.80.10:80 -r 192.168.80.13:8080 -m");
    let d = dest(&lb, &key, "192.168.80.13", 8080);
    assert_eq!(
        (d.weight, d.u_threshold, d.l_threshold),
        (1, 0, 0),
        "weight and thresholds back to their defaults"
    );
    assert!(sh(&mut lb, "-Ln")
        .stdout
        .contains(&dest_line("192.168.80.13:8080", "Masq", 1)));

    // Without -m the edit is a DR edit, whose port is forced to 80: that server does
    // not exist, which the kernel reports as ENOENT.
    fails(
        &mut lb,
        "-e -t 192.168.80.10:80 -r 192.168.80.13:8080 -w 5",
        "No such destination",
        255,
    );
    fails(
        &mut lb,
        "-e -t 192.168.80.10:81 -r 192.168.80.13:8080 -m -w 5",
        "Service not defined",
        255,
    );
    // The kernel refuses l > u with ERANGE; ipvsadm prints strerror.
    fails(
        &mut lb,
        "-e -t 192.168.80.10:80 -r 192.168.80.13:8080 -m -y 5",
        "Numerical result out of range",
        255,
    );
}

#[test]
fn delete_server_service_flush() {
    let mut lb = article_nat();
    let key = tcp("192.168.80.10", 80);
    ok(&mut lb, "-d -t 192.168.80.10:80 -r 192.168.80.12:8080");
    assert_eq!(service(&lb, &key).dests.len(), 2);
    assert!(!sh(&mut lb, "-Ln").stdout.contains("192.168.80.12"));
    fails(
        &mut lb,
        "-d -t 192.168.80.10:80 -r 192.168.80.12:8080",
        "No such destination",
        255,
    );
    fails(
        &mut lb,
        "-d -t 192.168.80.10:81 -r 192.168.80.12:8080",
        "Service not defined",
        255,
    );
    // -d takes the service port when -r has none.
    ok(&mut lb, "-a -t 192.168.80.10:80 -r 192.168.80.14 -m");
    ok(&mut lb, "-d -t 192.168.80.10:80 -r 192.168.80.14");

    ok(&mut lb, "-D -t 192.168.80.10:80");
    assert!(lb.services.is_empty());
    fails(&mut lb, "-D -t 192.168.80.10:80", "No such service", 255);

    let mut lb = article_nat();
    ok(&mut lb, "-A -u 192.168.80.10:53 -s rr");
    ok(&mut lb, "-C");
    assert!(lb.services.is_empty());
    assert_eq!(sh(&mut lb, "-L -n").stdout, HEADER);
}

#[test]
fn duplicates_are_reported_with_ipvsadm_messages() {
    let mut lb = article_nat();
    fails(
        &mut lb,
        "-A -t 192.168.80.10:80 -s rr",
        "Service already exists",
        255,
    );
    fails(
        &mut lb,
        "-a -t 192.168.80.10:80 -r 192.168.80.11:8080 -m",
        "Destination already exists",
        255,
    );
    fails(
        &mut lb,
        "-a -t 192.168.80.10:81 -r 192.168.80.11:8080 -m",
        "Service not defined",
        255,
    );
}

#[test]
fn zero_clears_counters_of_one_or_all_services() {
    let mut lb = article_nat();
    ok(&mut lb, "-A -t 192.168.80.20:80 -s rr");
    for s in &mut lb.services {
        s.stats.conns = 7;
    }
    ok(&mut lb, "-Z -t 192.168.80.20:80");
    assert_eq!(service(&lb, &tcp("192.168.80.20", 80)).stats.conns, 0);
    assert_eq!(service(&lb, &tcp("192.168.80.10", 80)).stats.conns, 7);
    ok(&mut lb, "-Z");
    assert!(lb.services.iter().all(|s| s.stats.conns == 0));
    fails(&mut lb, "-Z -t 192.168.80.30:80", "No such service", 255);
}

#[test]
fn set_and_list_timeouts() {
    let mut lb = FakeLb::default();
    ok(&mut lb, "--set 900 120 300");
    assert_eq!(
        lb.timeouts,
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
    ok(&mut lb, "--set 0 60 0");
    let out = sh(&mut lb, "-L --timeout");
    assert_eq!(out.stdout, "Timeout (tcp tcpfin udp): 900 60 300\n");
    fails(
        &mut lb,
        "--set 900 120",
        "--set option requires 3 timeout values",
        2,
    );
    fails(
        &mut lb,
        "--set 900 120 x",
        "invalid timeout value `x' specified",
        2,
    );
    fails(&mut lb, "--set 1 2 3 4", "unexpected argument 4", 2);
}

#[test]
fn usage_errors_have_ipvsadm_messages_and_status() {
    let cases: &[(&str, &str, i32)] = &[
        (
            "-A -s rr",
            "You need to supply the 'service-address' option for the 'add-service' command",
            2,
        ),
        (
            "-a -t 192.168.80.10:80 -m",
            "You need to supply the 'real-server' option for the 'add-server' command",
            2,
        ),
        (
            "-e -t 192.168.80.10:80 -w 2",
            "You need to supply the 'real-server' option for the 'edit-server' command",
            2,
        ),
        (
            "-d -t 192.168.80.10:80",
            "You need to supply the 'real-server' option for the 'delete-server' command",
            2,
        ),
        (
            "-A -t 192.168.80.10:80 -r 192.168.80.11",
            "Illegal 'real-server' option with the 'add-service' command",
            2,
        ),
        (
            "-D -t 192.168.80.10:80 -s rr",
            "Illegal 'scheduler' option with the 'delete-service' command",
            2,
        ),
        (
            "-a -t 192.168.80.10:80 -r 192.168.80.11 --laddr 10.0.0.1",
            "Illegal 'laddr' option with the 'add-server' command",
            2,
        ),
        (
            "-L -t 192.168.80.10:80 --timeout",
            "The option 'timeout' conflicts with the 'service-address' option in the 'list' command",
            2,
        ),
        (
            "-A -t 192.168.80.10:80 -t 192.168.80.11:80",
            "multiple 'service-address' options specified",
            2,
        ),
        (
            "-a -t 192.168.80.10:80 -r 192.168.80.11 -m -g",
            "multiple 'forwarding-method' options specified",
            2,
        ),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -w 65536", "illegal weight specified", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -w -1", "illegal weight specified", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -w 3x", "illegal weight specified", 2),
        (
            "-A -t 192.168.80.300:80",
            "illegal virtual server address[:port] specified",
            2,
        ),
        (
            "-A -t 192.168.80.10:65536",
            "illegal virtual server address[:port] specified",
            2,
        ),
        ("-A -t 80", "illegal virtual server address[:port] specified", 2),
        ("-A -t [::1]", "illegal virtual server address[:port] specified", 2),
        (
            "-a -t 1.2.3.4:80 -r 5.6.7:80",
            "illegal real server address[:port] specified",
            2,
        ),
        (
            "-A -t 1.2.3.4",
            "Zero port specified for non-persistent service",
            2,
        ),
        (
            "-A -t 1.2.3.4:80 -o",
            "One-Packet Scheduling is only for UDP virtual services",
            2,
        ),
        ("-A -t 1.2.3.4:80 -p 0", "invalid timeout value `0' specified", 2),
        (
            "-A -t 1.2.3.4:80 -p -M 255.255.0",
            "illegal virtual server persistent mask specified",
            2,
        ),
        ("-A -t [2001:db8::1]:80 -p -M 129", "illegal ipv6 netmask specified", 2),
        ("-A -f 0", "invalid fwmark value `0' specified", 2),
        ("-A -t 1.2.3.4:80 -6", "-6 used before -f", 2),
        ("-A -t 1.2.3.4:80 -E", "invalid option `-E'", 2),
        ("-A -t 1.2.3.4:80 extra", "unexpected argument extra", 2),
        (
            "-A -t 1.2.3.4:80 -s rr -b sh-port",
            "incompatible scheduler flag `sh-port'",
            2,
        ),
        ("-A -t 1.2.3.4:80 -s sh -b sh-foo", "invalid scheduler flag `sh-foo'", 2),
        (
            "-a -t 1.2.3.4:80 -r 5.6.7.8 -m --tun-type gue",
            "Tunnel options conflict with forward method",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gue",
            "You need to supply the 'tun-port' option for the 'gue' tunnel type",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum",
            "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gre --tun-port 6080",
            "Illegal 'tun-port' option with the 'gre' tunnel type",
            2,
        ),
        (
            "-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type vxlan",
            "illegal tunnel type specified",
            2,
        ),
        (
            "-a -t [2001:db8::1]:80 -r 192.0.2.1 -m",
            "Different address family is allowed only for tunneling servers",
            2,
        ),
        (
            "-L --stats --timeout",
            "options conflicts in the list command",
            2,
        ),
        ("-L -c", "connection listing (-c) is not supported by lvslab ipvsadm", 2),
        // popt-level failures: ipvsadm returns -1.
        ("-A -t 1.2.3.4:80 --bogus", "--bogus: unknown option", 255),
        ("-A -t 1.2.3.4:80 -q", "-q: unknown option", 255),
        ("-A -t", "-t: missing argument", 255),
        ("-L --stats=1", "--stats: option does not take an argument", 255),
        (
            "-t 1.2.3.4:80 -A",
            "Try `lvslab ipvsadm -h' or 'lvslab ipvsadm --help' for more information.",
            255,
        ),
        (
            "1.2.3.4",
            "Try `lvslab ipvsadm -h' or 'lvslab ipvsadm --help' for more information.",
            255,
        ),
        // ipvsadm passes the name on; the kernel refuses it with ENOENT.
        (
            "-A -t 1.2.3.4:80 -s fastest",
            "Scheduler or persistence engine not found",
            255,
        ),
    ];
    for (line, message, code) in cases {
        assert_eq!(parse_err(line), (message.to_string(), *code), "`{line}`");
        // And nothing reaches the dataplane.
        let mut lb = FakeLb::default();
        fails(&mut lb, line, message, *code);
        assert!(lb.services.is_empty(), "`{line}`");
    }
}

#[test]
fn names_are_refused_with_a_clear_reason() {
    let (msg, code) = parse_err("-A -t www.example.com:80 -s rr");
    assert_eq!(code, 2);
    assert!(msg.starts_with("illegal virtual server address[:port] specified\n"));
    assert!(msg.contains("`www.example.com' is a host name"), "{msg}");
    assert!(msg.contains("does not resolve names"), "{msg}");
    let (msg, _) = parse_err("-A -t 192.0.2.1:http -s rr");
    assert!(msg.contains("`http' is a service name"), "{msg}");
    let (msg, _) = parse_err("-a -t 192.0.2.1:80 -r backend1 -m");
    assert!(msg.starts_with("illegal real server address[:port] specified\n"));
    assert!(msg.contains("`backend1' is a host name"), "{msg}");
}

#[test]
fn option_spellings_follow_popt() {
    let key = tcp("192.0.2.1", 80);
    let add = |w: u32| Command::AddDest {
        service: key,
        dest: DestConfig {
            method: ForwardMethod::Nat,
            weight: w,
            ..DestConfig::new(v4("198.51.100.1"), 8080)
        },
    };
    for line in [
        "-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -m -w 3",
        "-a -t192.0.2.1:80 -r198.51.100.1:8080 -mw3",
        "--add-server --tcp-service 192.0.2.1:80 --real-server=198.51.100.1:8080 --masquerading --weight=3",
        "-a -m -w 3 -t 192.0.2.1:80 -r 198.51.100.1:8080",
    ] {
        assert_eq!(parse(&words(line)), Ok(add(3)), "`{line}`");
    }
    // -p's timeout is optional: taken from the next word unless that is an option.
    let persistent = |line: &str| match parse(&words(line)) {
        Ok(Command::AddService(c)) => (c.flags.persistent, c.timeout),
        other => panic!("`{line}`: {other:?}"),
    };
    assert_eq!(
        persistent("-A -t 192.0.2.1:80 -p"),
        (true, DEFAULT_PERSISTENCE_TIMEOUT)
    );
    assert_eq!(persistent("-A -t 192.0.2.1:80 -p -s rr"), (true, 360));
    assert_eq!(persistent("-A -t 192.0.2.1:80 -p 600"), (true, 600));
    assert_eq!(persistent("-A -t 192.0.2.1:80 -p600"), (true, 600));
    assert_eq!(persistent("-A -t 192.0.2.1:80 --persistent=30"), (true, 30));
    assert_eq!(persistent("-A -t 192.0.2.1:80"), (false, 0));
    // Port 0 is fine for a persistent service.
    assert_eq!(persistent("-A -t 192.0.2.1 -p"), (true, 360));
    assert_eq!(parse(&words("-h")), Ok(Command::Help));
    assert_eq!(
        parse(&words("-L -n -t 192.0.2.1:80")),
        Ok(Command::List {
            target: ListTarget::Service(key),
            options: ListingOptions::default()
        })
    );
}

#[test]
fn services_by_family_protocol_and_fwmark() {
    let parse_svc = |line: &str| match parse(&words(line)) {
        Ok(Command::AddService(c)) => c,
        other => panic!("`{line}`: {other:?}"),
    };
    let v6: IpAddr = IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().expect("v6"));
    let c = parse_svc("-A -t [2001:db8::1]:80 -s rr -p -M 64");
    assert_eq!(
        c.key,
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: v6,
            port: 80
        }
    );
    assert_eq!(c.netmask, 64);
    assert_eq!(parse_svc("-A -t [2001:db8::1]:80").netmask, 128);
    let c = parse_svc("-A -u 192.0.2.1:53 -s rr -o");
    assert!(c.flags.one_packet);
    assert!(matches!(
        c.key,
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            ..
        }
    ));
    assert!(matches!(
        parse_svc("-A --sctp-service 192.0.2.1:9").key,
        ServiceKey::Addr {
            protocol: Protocol::Sctp,
            ..
        }
    ));
    let c = parse_svc("-A -f 7 -s sh -b sh-fallback,sh-port -o");
    assert_eq!(
        c.key,
        ServiceKey::Fwmark {
            family: Family::Inet,
            mark: 7
        }
    );
    assert!(c.flags.sched1 && c.flags.sched2 && c.flags.one_packet);
    let c = parse_svc("-A -f 7 -6 --pe sip -p");
    assert_eq!(
        c.key,
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark: 7
        }
    );
    assert_eq!((c.netmask, c.pe_name.as_deref()), (128, Some("sip")));
    // Scheduler default and mh flags.
    assert_eq!(parse_svc("-A -t 192.0.2.1:80").scheduler, Scheduler::Wlc);
    let c = parse_svc("-A -t 192.0.2.1:80 -s mh -b mh-port");
    assert!(!c.flags.sched1 && c.flags.sched2);

    // A fwmark service's real server keeps its own port, even for DR.
    match parse(&words("-a -f 7 -r 198.51.100.1:8080")) {
        Ok(Command::AddDest { dest, .. }) => {
            assert_eq!((dest.method, dest.port), (ForwardMethod::Dr, 8080))
        }
        other => panic!("{other:?}"),
    }
    // Tunnel to another family is allowed; GUE options are carried.
    match parse(&words(
        "-a -t [2001:db8::1]:80 -r 198.51.100.1 -i --tun-type gue --tun-port 6080 --tun-csum",
    )) {
        Ok(Command::AddDest { dest, .. }) => {
            assert_eq!(dest.addr, v4("198.51.100.1"));
            assert_eq!(
                (
                    dest.method,
                    dest.port,
                    dest.tun_type,
                    dest.tun_port,
                    dest.tun_flags
                ),
                (ForwardMethod::Tunnel, 80, Encap::Gue, 6080, 1)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fullnat_extension_sets_method_and_local_address_pool() {
    let mut lb = FakeLb::default();
    let key = tcp("192.0.2.10", 80);
    ok(
        &mut lb,
        "-A -t 192.0.2.10:80 -s rr --laddr 10.0.0.100 --laddr 10.0.0.101",
    );
    ok(
        &mut lb,
        "-a -t 192.0.2.10:80 -r 10.0.1.11:8080 --fullnat -w 2",
    );
    // Without a port, FullNAT keeps the inherited service port (it is not forced).
    ok(&mut lb, "-a -t 192.0.2.10:80 -r 10.0.1.12 --fullnat");
    assert_eq!(
        service(&lb, &key).config.local_addresses,
        vec![v4("10.0.0.100"), v4("10.0.0.101")]
    );
    let d = dest(&lb, &key, "10.0.1.11", 8080);
    assert_eq!((d.method, d.weight), (ForwardMethod::FullNat, 2));
    assert_eq!(
        dest(&lb, &key, "10.0.1.12", 80).method,
        ForwardMethod::FullNat
    );
    assert!(sh(&mut lb, "-Ln")
        .stdout
        .contains(&dest_line("10.0.1.11:8080", "FullNat", 2)));

    // -E adds to the pool, and keeps it when --laddr is absent.
    ok(
        &mut lb,
        "-E -t 192.0.2.10:80 -s rr --laddr 10.0.0.102 --laddr 10.0.0.100",
    );
    assert_eq!(
        service(&lb, &key).config.local_addresses,
        vec![v4("10.0.0.100"), v4("10.0.0.101"), v4("10.0.0.102")]
    );
    ok(&mut lb, "-E -t 192.0.2.10:80 -s wrr");
    assert_eq!(service(&lb, &key).config.local_addresses.len(), 3);
    assert_eq!(service(&lb, &key).config.scheduler, Scheduler::Wrr);

    let (msg, code) = parse_err("-A -t 192.0.2.10:80 --laddr pool1");
    assert_eq!(code, 2);
    assert!(msg.starts_with("illegal local address specified"), "{msg}");
    assert!(sh(&mut lb, "-h").stdout.contains("--fullnat"));
}

#[test]
fn help_goes_to_stdout_with_status_zero() {
    let mut lb = FakeLb::default();
    let out = sh(&mut lb, "--help");
    assert_eq!((out.exit_code, out.stderr.as_str()), (0, ""));
    for needle in ["--add-service", "--laddr", "--fullnat", "--tun-type", "wlc"] {
        assert!(out.stdout.contains(needle), "{needle}");
    }
}

/// A dataplane that refuses everything with one error.
struct Refusing(LbError);

impl LoadBalancer for Refusing {
    fn info(&mut self) -> Result<LbInfo, LbError> {
        Err(self.0.clone())
    }
    fn add_service(&mut self, _: &ServiceConfig) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn edit_service(&mut self, _: &ServiceConfig) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn delete_service(&mut self, _: &ServiceKey) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn add_dest(&mut self, _: &ServiceKey, _: &DestConfig) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn edit_dest(&mut self, _: &ServiceKey, _: &DestConfig) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn delete_dest(&mut self, _: &ServiceKey, _: IpAddr, _: u16) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn list(&mut self) -> Result<Vec<ServiceStatus>, LbError> {
        Err(self.0.clone())
    }
    fn zero(&mut self, _: Option<&ServiceKey>) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn flush(&mut self) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn timeouts(&mut self) -> Result<Timeouts, LbError> {
        Err(self.0.clone())
    }
    fn set_timeouts(&mut self, _: &Timeouts) -> Result<(), LbError> {
        Err(self.0.clone())
    }
}

#[test]
fn dataplane_failures_keep_ipvsadm_texts_or_the_dataplanes_own_words() {
    let run_line = |err: LbError, line: &str| run(&words(line), &mut Refusing(err));
    let out = run_line(
        LbError::Invalid("EINVAL".into()),
        "-a -t 192.0.2.1:80 -r 224.0.0.1 -m",
    );
    assert_eq!(
        (out.stderr.as_str(), out.exit_code),
        (
            "Invalid operation.  Possibly wrong module version, address not unicast, ...\n",
            255
        )
    );
    let out = run_line(
        LbError::NoScheduler("ENOENT".into()),
        "-A -t 192.0.2.1:80 --pe nope -p",
    );
    assert_eq!(
        out.stderr, "Scheduler or persistence engine not found\n",
        "an unknown persistence engine is the kernel's ENOENT"
    );
    let unavailable = LbError::Unavailable("FullNAT needs the userspace dataplane".into());
    let out = run_line(
        unavailable.clone(),
        "-a -t 192.0.2.1:80 -r 10.0.0.1 --fullnat",
    );
    assert_eq!(
        (out.stderr.as_str(), out.exit_code),
        ("FullNAT needs the userspace dataplane\n", 255)
    );
    let out = run_line(unavailable.clone(), "-L -n");
    assert_eq!(out.exit_code, 2);
    assert!(
        out.stderr.starts_with(
            "Can't initialize ipvs: FullNAT needs the userspace dataplane\nAre you sure"
        ),
        "{}",
        out.stderr
    );
    let out = run_line(unavailable, "-L --timeout");
    assert_eq!(out.exit_code, 1);
}
