//! Cross-checks against the real `ipvsadm` on a real kernel (in the lvslab-vm guest):
//!
//! * `netlink_config_lists_like_ipvsadm`: services and destinations configured through
//!   [`IpvsClient`] list character-exactly like `ipvsadm -Ln` (default, `--stats`, `--rate`,
//!   `--thresholds`, `--persistent-conn`) when rendered by `lvslab_ipvsadm::listing`;
//! * `ipvsadm_config_reads_back`: services created by the real `ipvsadm` read back through
//!   [`IpvsClient`] as the model ipvsadm's documented defaults describe, field by field;
//! * `ipvsadm_args_matches_ipvsadm`: our `lvslab_ipvsadm::run` and the real `ipvsadm`, each in
//!   a fresh namespace, given the same command lines, print the same, exit the same and
//!   leave the same kernel state;
//! * `refusals_keep_ipvsadm_words`: command lines ipvsadm refuses exit with ipvsadm's
//!   status through `lvslab_ipvsadm::run` too, and our message holds every line of
//!   ipvsadm's (ours adds what is wrong and how to fix it); nothing reaches the kernel.
//!
//! Each check runs in its own network namespace inside the guest.

mod vm_support;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use lvslab_ipvs::IpvsClient;
use lvslab_ipvsadm::listing::{render, Layout, ListingOptions};
use lvslab_netns::Netns;
use lvslab_spec::lb::{
    DestConfig, Encap, Family, ForwardMethod, LoadBalancer, Protocol, Scheduler, ServiceConfig,
    ServiceKey, ServiceStatus,
};

/// Every scheduler module, so each `-s` works in the guest.
const MODULES: &[&str] = &[
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_fo",
    "ip_vs_ovf",
    "ip_vs_twos",
    "ip_vs_dh",
    "ip_vs_sh",
    "ip_vs_mh",
    "ip_vs_lblc",
    "ip_vs_lblcr",
    "ip_vs_pe_sip",
];

fn main() {
    vm_support::main(
        &[
            (
                "netlink_config_lists_like_ipvsadm",
                netlink_config_lists_like_ipvsadm,
            ),
            ("ipvsadm_config_reads_back", ipvsadm_config_reads_back),
            ("ipvsadm_args_matches_ipvsadm", ipvsadm_args_matches_ipvsadm),
            ("refusals_keep_ipvsadm_words", refusals_keep_ipvsadm_words),
        ],
        MODULES,
    );
}

fn v4(s: &str) -> IpAddr {
    s.parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .expect("address literal")
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(addr),
        port,
    }
}

fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: v4(addr),
        port,
    }
}

fn fwm(mark: u32) -> ServiceKey {
    ServiceKey::Fwmark {
        family: Family::Inet,
        mark,
    }
}

/// A fresh namespace with an IPVS client bound to it.
fn namespace() -> Result<(Netns, IpvsClient), String> {
    let ns = Netns::new_anonymous().map_err(|e| format!("new namespace: {e}"))?;
    let client = ns
        .run(IpvsClient::connect)
        .map_err(|e| format!("enter namespace: {e}"))?
        .map_err(|e| format!("IPVS connect: {e}"))?;
    Ok((ns, client))
}

/// Runs the real ipvsadm in `ns`: (exit code, stdout, stderr).
fn ipvsadm(ns: &Netns, args: &[String]) -> Result<(i32, String, String), String> {
    let out = ns
        .output(Command::new("ipvsadm").args(args))
        .map_err(|e| format!("ipvsadm {args:?}: {e}"))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

fn ipvsadm_ok(ns: &Netns, line: &str) -> Result<String, String> {
    let (code, out, err) = ipvsadm(ns, &words(line))?;
    if code != 0 {
        return Err(format!("`ipvsadm {line}` exited {code}: {err}"));
    }
    Ok(out)
}

fn lb<T>(what: &str, r: Result<T, lvslab_spec::lb::LbError>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn dest(addr: &str, port: u16, method: ForwardMethod, weight: u32) -> DestConfig {
    DestConfig {
        method,
        weight,
        ..DestConfig::new(v4(addr), port)
    }
}

/// Services of every kind the model can express, through our netlink client.
fn configure_everything(c: &mut IpvsClient) -> Result<(), String> {
    let schedulers = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Twos,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Mh,
        Scheduler::Lblc,
        Scheduler::Lblcr,
    ];
    for (i, sched) in schedulers.into_iter().enumerate() {
        let port = 8000 + u16::try_from(i).expect("few schedulers");
        let key = tcp("192.0.2.10", port);
        lb(
            "add service",
            c.add_service(&ServiceConfig::new(key, sched)),
        )?;
        for (j, (method, weight)) in [
            (ForwardMethod::Nat, 3),
            (ForwardMethod::Dr, 2),
            (ForwardMethod::Tunnel, 0),
        ]
        .into_iter()
        .enumerate()
        {
            let last = 11 + u8::try_from(j).expect("three dests");
            let port = if method == ForwardMethod::Dr {
                port
            } else {
                8080
            };
            let mut d = dest(&format!("198.51.100.{last}"), port, method, weight);
            d.u_threshold = 10 * u32::from(last);
            d.l_threshold = u32::from(last);
            lb("add dest", c.add_dest(&key, &d))?;
        }
    }
    // Persistence with timeout and netmask; sh and mh flags.
    let mut p = ServiceConfig::new(tcp("192.0.2.20", 443), Scheduler::Wlc);
    p.flags.persistent = true;
    p.timeout = 1800;
    p.netmask = u32::from(Ipv4Addr::new(255, 255, 255, 0));
    lb("add persistent", c.add_service(&p))?;
    lb(
        "add dest",
        c.add_dest(&p.key, &dest("198.51.100.21", 443, ForwardMethod::Dr, 1)),
    )?;
    let mut sh = ServiceConfig::new(udp("192.0.2.21", 53), Scheduler::Sh);
    sh.flags.sched1 = true;
    sh.flags.sched2 = true;
    lb("add sh flags", c.add_service(&sh))?;
    let mut mh = ServiceConfig::new(fwm(7), Scheduler::Mh);
    mh.flags.sched1 = true;
    lb("add mh fwmark", c.add_service(&mh))?;
    lb(
        "add fwmark dest",
        c.add_dest(&mh.key, &dest("198.51.100.31", 0, ForwardMethod::Dr, 5)),
    )?;
    let mut ops = ServiceConfig::new(udp("192.0.2.22", 5060), Scheduler::Rr);
    ops.flags.one_packet = true;
    ops.flags.persistent = true;
    ops.timeout = 60;
    lb("add one-packet", c.add_service(&ops))?;
    // Tunnel types with ports and flags.
    let tunnels = [
        (Encap::Ipip, 0, 0),
        (Encap::Gue, 6080, 1),
        (Encap::Gue, 6081, 3),
        (Encap::Gre, 0, 1),
        (Encap::Gre, 0, 0),
    ];
    for (i, (tun_type, tun_port, tun_flags)) in tunnels.into_iter().enumerate() {
        let last = 41 + u8::try_from(i).expect("few tunnels");
        let d = DestConfig {
            tun_type,
            tun_port,
            tun_flags,
            ..dest(
                &format!("198.51.100.{last}"),
                5060,
                ForwardMethod::Tunnel,
                u32::from(last),
            )
        };
        lb("add tunnel dest", c.add_dest(&ops.key, &d))?;
    }
    Ok(())
}

fn compare_listings(ns: &Netns, c: &mut IpvsClient, when: &str) -> Result<(), String> {
    let info = lb("info", c.info())?;
    let services = lb("list", c.list())?;
    for (layout, args) in [
        (Layout::Default, "-L -n"),
        (Layout::Stats, "-L -n --stats"),
        (Layout::Rate, "-L -n --rate"),
        (Layout::Thresholds, "-L -n --thresholds"),
        (Layout::PersistentConn, "-L -n --persistent-conn"),
    ] {
        let ours = render(
            &info,
            &services,
            &ListingOptions {
                layout,
                ..ListingOptions::default()
            },
        );
        let theirs = ipvsadm_ok(ns, args)?;
        if ours != theirs {
            return Err(format!(
                "{when}: `ipvsadm {args}` differs\n--- ours ---\n{ours}--- ipvsadm ---\n{theirs}"
            ));
        }
        println!(
            "ok   {when}: `ipvsadm {args}` ({} lines)",
            theirs.lines().count()
        );
    }
    Ok(())
}

fn netlink_config_lists_like_ipvsadm() -> Result<(), String> {
    let (ns, mut c) = namespace()?;
    configure_everything(&mut c)?;
    compare_listings(&ns, &mut c, "after configuration")?;
    // Edits (weights, thresholds, scheduler, persistence) and deletions, then again.
    let key = tcp("192.0.2.10", 8001);
    let mut d = dest("198.51.100.11", 8080, ForwardMethod::Nat, 9);
    d.u_threshold = 0;
    d.l_threshold = 0;
    lb("edit dest", c.edit_dest(&key, &d))?;
    let mut s = ServiceConfig::new(key, Scheduler::Sh);
    s.flags.persistent = true;
    s.timeout = 77;
    s.flags.sched2 = true;
    lb("edit service", c.edit_service(&s))?;
    lb(
        "delete dest",
        c.delete_dest(&tcp("192.0.2.10", 8002), v4("198.51.100.12"), 8002),
    )?;
    lb("delete service", c.delete_service(&tcp("192.0.2.10", 8003)))?;
    compare_listings(&ns, &mut c, "after edits")?;
    lb("flush", c.flush())?;
    compare_listings(&ns, &mut c, "after flush")
}

/// Field-by-field comparison of what the kernel holds with what we expected.
fn expect_service(
    services: &[ServiceStatus],
    want: &ServiceConfig,
    dests: &[DestConfig],
) -> Result<(), String> {
    let got = services
        .iter()
        .find(|s| s.config.key == want.key)
        .ok_or_else(|| format!("{} not listed", want.key))?;
    let g = &got.config;
    let fields = [
        (
            "scheduler",
            g.scheduler.name().to_owned(),
            want.scheduler.name().to_owned(),
        ),
        (
            "flags",
            format!("{:?}", g.flags),
            format!("{:?}", want.flags),
        ),
        ("timeout", g.timeout.to_string(), want.timeout.to_string()),
        (
            "netmask",
            format!("{:#x}", g.netmask),
            format!("{:#x}", want.netmask),
        ),
        (
            "pe",
            format!("{:?}", g.pe_name),
            format!("{:?}", want.pe_name),
        ),
    ];
    for (field, got, want_v) in fields {
        if got != want_v {
            return Err(format!("{}: {field} is {got}, expected {want_v}", want.key));
        }
    }
    let got_dests: Vec<&DestConfig> = got.dests.iter().map(|d| &d.config).collect();
    let want_dests: Vec<&DestConfig> = dests.iter().collect();
    if got_dests != want_dests {
        return Err(format!(
            "{}: destinations\n got {got_dests:#?}\n expected {want_dests:#?}",
            want.key
        ));
    }
    println!("ok   {} reads back as expected", want.key);
    Ok(())
}

fn ipvsadm_config_reads_back() -> Result<(), String> {
    let (ns, mut c) = namespace()?;
    for line in [
        "-A -t 192.168.80.10:80 -s wrr",
        "-a -t 192.168.80.10:80 -r 192.168.80.11:8080 -m -w 3",
        "-a -t 192.168.80.10:80 -r 192.168.80.12:8080 -m -w 2",
        "-a -t 192.168.80.10:80 -r 192.168.80.13:8080 -m",
        "-A -t 192.168.80.66:80 -s lblcr -p",
        "-a -t 192.168.80.66:80 -r 192.168.80.11 -g -w 0 -x 100 -y 20",
        "-A -u 203.0.113.2:53 -s sh -b sh-fallback,sh-port -o",
        "-a -u 203.0.113.2:53 -r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-nocsum",
        "-a -u 203.0.113.2:53 -r 10.0.0.6:5353 -i --tun-type gre --tun-csum",
        "-A -f 42 -s mh -b mh-port -p 120 -M 255.255.0.0",
        "-a -f 42 -r 10.0.0.9 -i -w 7",
        "-A -u 203.0.113.3:5060 -s rr -p 90 --pe sip",
    ] {
        ipvsadm_ok(&ns, line)?;
    }
    let services = lb("list", c.list())?;
    let mut nat = ServiceConfig::new(tcp("192.168.80.10", 80), Scheduler::Wrr);
    nat.netmask = 0xffff_ffff;
    // The kernel's list is newest first.
    expect_service(
        &services,
        &nat,
        &[
            dest("192.168.80.13", 8080, ForwardMethod::Nat, 1),
            dest("192.168.80.12", 8080, ForwardMethod::Nat, 2),
            dest("192.168.80.11", 8080, ForwardMethod::Nat, 3),
        ],
    )?;
    let mut dr = ServiceConfig::new(tcp("192.168.80.66", 80), Scheduler::Lblcr);
    dr.flags.persistent = true;
    // ipvsadm 1.31 sends libipvs' 6·60 s for a bare `-p` (its manual page says 300).
    dr.timeout = 360;
    let mut drd = dest("192.168.80.11", 80, ForwardMethod::Dr, 0);
    drd.u_threshold = 100;
    drd.l_threshold = 20;
    expect_service(&services, &dr, &[drd])?;
    let mut sh = ServiceConfig::new(udp("203.0.113.2", 53), Scheduler::Sh);
    sh.flags.sched1 = true;
    sh.flags.sched2 = true;
    sh.flags.one_packet = true;
    let gre = DestConfig {
        tun_type: Encap::Gre,
        tun_flags: 1,
        // ipvsadm forces a tunnel server's port to the service port (`:5353` is dropped).
        ..dest("10.0.0.6", 53, ForwardMethod::Tunnel, 1)
    };
    let gue = DestConfig {
        tun_type: Encap::Gue,
        tun_port: 6080,
        tun_flags: 0,
        ..dest("10.0.0.2", 53, ForwardMethod::Tunnel, 1)
    };
    expect_service(&services, &sh, &[gre, gue])?;
    let mut mh = ServiceConfig::new(fwm(42), Scheduler::Mh);
    mh.flags.sched2 = true;
    mh.flags.persistent = true;
    mh.timeout = 120;
    mh.netmask = u32::from(Ipv4Addr::new(255, 255, 0, 0));
    expect_service(
        &services,
        &mh,
        &[dest("10.0.0.9", 0, ForwardMethod::Tunnel, 7)],
    )?;
    let mut sip = ServiceConfig::new(udp("203.0.113.3", 5060), Scheduler::Rr);
    sip.flags.persistent = true;
    sip.timeout = 90;
    sip.pe_name = Some("sip".into());
    expect_service(&services, &sip, &[])?;
    if services.len() != 5 {
        return Err(format!("expected 5 services, got {}", services.len()));
    }
    Ok(())
}

/// Command lines from the article's three labs, plus edits, listings and the errors a
/// student meets. Each runs through both implementations.
const SESSION: &[&str] = &[
    // NAT lab
    "-A -t 192.168.80.10:80 -s wrr",
    "-a -t 192.168.80.10:80 -r 192.168.80.11:8080 -m -w 3",
    "-a -t 192.168.80.10:80 -r 192.168.80.12:8080 -m -w 2",
    "-a -t 192.168.80.10:80 -r 192.168.80.13:8080 -m",
    "-L -n",
    "-Ln",
    "-L -n --stats",
    "-L -n --rate",
    "-L -n --thresholds",
    "-L -n --persistent-conn",
    "-L -n -t 192.168.80.10:80",
    // DR lab
    "-A -t 192.168.80.66:80 -s wrr",
    "-a -t 192.168.80.66:80 -r 192.168.80.11:8080 -g -w 3",
    "-a -t 192.168.80.66:80 -r 192.168.80.12 -g -w 2",
    "-a -t 192.168.80.66:80 -r 192.168.80.13 -w 1",
    // TUN lab (RFC 5737 in place of the article's public prefixes)
    "-A -t 198.51.100.2:80 -s rr",
    "-a -t 198.51.100.2:80 -r 10.0.0.2 -i",
    "-a -t 198.51.100.2:80 -r 10.0.0.6 -i",
    "-a -t 198.51.100.2:80 -r 10.0.0.10:8080 -i --tun-type gre --tun-csum",
    "-a -t 198.51.100.2:80 -r 10.0.0.14 -i --tun-type gue --tun-port 6080 --tun-remcsum",
    // inet_aton forms (10.0.18 = 10.0.0.18, octal 014 = 12), a short mask, a weight above
    // 65535 (Debian's ipvsadm takes up to INT_MAX)
    "-a -t 198.51.100.2:80 -r 10.0.18 -i",
    "-A -t 192.168.80.77:80 -s sh -p 30 -M 255.255.0",
    "-a -t 192.168.80.77:80 -r 192.168.80.014 -g -w 70000",
    "-L -n",
    // Edits
    "-E -t 192.168.80.10:80 -s rr -p 60",
    "-e -t 192.168.80.10:80 -r 192.168.80.12:8080 -m -w 5",
    "-e -t 192.168.80.66:80 -r 192.168.80.13 -g -w 0",
    "-L -n",
    // Errors
    "-A -t 192.168.80.10:80 -s rr",
    "-a -t 192.168.80.10:80 -r 192.168.80.11:8080 -m",
    "-d -t 192.168.80.10:80 -r 192.168.80.99",
    "-D -t 192.0.2.99:80",
    "-A -t 192.0.2.1:80 -s nosuch",
    "-e -t 192.168.80.10:80 -r 192.168.80.12:8080 -m -x 1 -y 2",
    // Timeouts
    "--set 900 120 300",
    "-L --timeout",
    // Deletions
    "-d -t 192.168.80.10:80 -r 192.168.80.13:8080",
    "-D -t 198.51.100.2:80",
    "-L -n",
    "-Z",
    "-Z -t 192.168.80.66:80",
    "-L -n --stats",
    "-C",
    "-L -n",
];

fn ipvsadm_args_matches_ipvsadm() -> Result<(), String> {
    let (ours_ns, mut ours) = namespace()?;
    let (theirs_ns, mut theirs) = namespace()?;
    let _keep_ours = ours_ns;
    let mut failures = Vec::new();
    for line in SESSION {
        let args = words(line);
        let got = lvslab_ipvsadm::run(&args, &mut ours);
        let (code, out, err) = ipvsadm(&theirs_ns, &args)?;
        // Our messages name the program `lvslab ipvsadm`.
        let got_err = got.stderr.replace("lvslab ipvsadm", "ipvsadm");
        if got.exit_code != code || got.stdout != out || got_err != err {
            failures.push(format!(
                "`ipvsadm {line}`:\n ours   exit {} out {:?} err {:?}\n kernel exit {code} out {out:?} err {err:?}",
                got.exit_code, got.stdout, got_err
            ));
        } else {
            println!("ok   ipvsadm {line} (exit {code})");
        }
        // The kernel's service dump order depends on the namespace (its hash mixes in the
        // per-namespace IPVS pointer), so compare services in key order.
        let mut a = lb("list ours", ours.list())?;
        let mut b = lb("list theirs", theirs.list())?;
        a.sort_by_key(|s| s.config.key);
        b.sort_by_key(|s| s.config.key);
        if a != b {
            failures.push(format!(
                "after `ipvsadm {line}` the kernel state differs:\n ours {a:#?}\n theirs {b:#?}"
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Command lines ipvsadm refuses: its usage checks (exit 2), popt's refusals and "no
/// command" (255).
const REFUSALS: &[&str] = &[
    "-A -s rr",
    "-a -t 192.168.80.10:80 -m",
    "-d -t 192.168.80.10:80",
    "-A -t 192.168.80.10:80 -r 192.168.80.11",
    "-D -t 192.168.80.10:80 -s rr",
    "-L -t 192.168.80.10:80 --timeout",
    "-A -t 192.168.80.10:80 -t 192.168.80.11:80",
    "-a -t 192.168.80.10:80 -r 192.168.80.11 -m -g",
    "-a -t 192.0.2.1:80 -r 198.51.100.1 -w 2147483648",
    "-a -t 192.0.2.1:80 -r 198.51.100.1 -w 3x",
    "-a -t 192.0.2.1:80 -r 198.51.100.1 -x 1x",
    "-A -t 192.168.80.300:80",
    "-A -t 192.168.80.10:65536",
    "-a -t 192.0.2.1:80 -r 198.51.100.1.2:80",
    "-A -t 192.0.2.1",
    "-A -t 192.0.2.1:80 -o",
    "-A -t 192.0.2.1:80 -p 0",
    "-A -t 192.0.2.1:80 -p -M 255.255.0.256",
    "-A -t [2001:db8::1]:80 -p -M 129",
    "-A -f 0",
    "-A -t 192.0.2.1:80 -6",
    "-A -t 192.0.2.1:80 -E",
    "-A -t 192.0.2.1:80 -Ln",
    "-A -t 192.0.2.1:80 extra",
    "-A -t 192.0.2.1:80 -s rr -b sh-port",
    "-A -t 192.0.2.1:80 -s sh -b sh-foo",
    "-a -t 192.0.2.1:80 -r 198.51.100.1 -m --tun-type gue",
    "-a -t 192.0.2.1:80 -r 198.51.100.1 -i --tun-type gue",
    "-a -t 192.0.2.1:80 -r 198.51.100.1 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum",
    "-a -t 192.0.2.1:80 -r 198.51.100.1 -i --tun-type gre --tun-port 6080",
    "-a -t 192.0.2.1:80 -r 198.51.100.1 -i --tun-type vxlan",
    "-a -t [2001:db8::1]:80 -r 192.0.2.1 -m",
    "-L --stats --timeout",
    "--set 900 120",
    "--set 900 120 x",
    "--set 1 2 3 4",
    "-A -t 192.0.2.1:80 --bogus",
    "-A -t 192.0.2.1:80 -q",
    "-A -t",
    "-L --stats=1",
    "-t 192.0.2.1:80 -A",
    "192.0.2.1",
    "-X",
    "--bogus",
];

fn refusals_keep_ipvsadm_words() -> Result<(), String> {
    let (ours_ns, mut ours) = namespace()?;
    let (theirs_ns, _theirs) = namespace()?;
    let _keep_ours = ours_ns;
    let mut failures = Vec::new();
    for line in REFUSALS {
        let args = words(line);
        let got = lvslab_ipvsadm::run(&args, &mut ours);
        let (code, out, err) = ipvsadm(&theirs_ns, &args)?;
        let got_err = got.stderr.replace("lvslab ipvsadm", "ipvsadm");
        let ours_lines: Vec<&str> = got_err.lines().collect();
        let missing: Vec<&str> = err
            .lines()
            .filter(|l| !l.is_empty() && !ours_lines.contains(l))
            .collect();
        if code == 0 || got.exit_code != code || got.stdout != out || !missing.is_empty() {
            failures.push(format!(
                "`ipvsadm {line}`:\n ours   exit {} out {:?} err {got_err:?}\n ipvsadm exit {code} out {out:?} err {err:?}",
                got.exit_code, got.stdout
            ));
        } else {
            println!(
                "ok   ipvsadm {line} (exit {code}, {} more lines)",
                ours_lines.len().saturating_sub(err.lines().count())
            );
        }
        let left = lb("list ours", ours.list())?;
        if !left.is_empty() {
            failures.push(format!("`ipvsadm {line}` reached the kernel: {left:#?}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}
