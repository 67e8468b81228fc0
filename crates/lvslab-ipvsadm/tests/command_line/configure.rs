//! Commands that change the dataplane: what each sends, with ipvsadm's defaults.

use lvslab_spec::lb::{Encap, ForwardMethod, Scheduler, Timeouts};

use crate::support::*;

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
    refused(
        &mut lb,
        "--set 900 120",
        "--set option requires 3 timeout values",
        2,
    );
    refused(
        &mut lb,
        "--set 900 120 x",
        "invalid timeout value `x' specified",
        2,
    );
    refused(&mut lb, "--set 1 2 3 4", "unexpected argument 4", 2);
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
fn addresses_masks_and_weights_read_like_debians_ipvsadm() {
    // inet_aton shorthand (198.51.100 = 198.51.0.100), a short mask, and a weight above
    // 65535: Debian's ipvsadm 1.31 takes all three (the VM test runs it on the same lines).
    let mut lb = FakeLb::default();
    ok(&mut lb, "-A -t 192.0.2.1:80 -s rr -p -M 255.255.0");
    ok(&mut lb, "-a -t 192.0.2.1:80 -r 198.51.100:8080 -m -w 70000");
    let key = tcp("192.0.2.1", 80);
    assert_eq!(service(&lb, &key).config.netmask, 0xffff_0000);
    let d = dest(&lb, &key, "198.51.0.100", 8080);
    assert_eq!((d.method, d.weight), (ForwardMethod::Nat, 70_000));
}
