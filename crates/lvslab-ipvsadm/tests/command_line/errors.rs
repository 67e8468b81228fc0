//! Refused command lines (ipvsadm's checks, messages and statuses) and refused requests
//! (libipvs' texts, or the dataplane's own words).

use lvslab_ipvsadm::run;
use lvslab_spec::lb::LbError;

use crate::support::*;

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
