//! Refused command lines (ipvsadm's checks, messages and statuses) and refused requests
//! (libipvs' texts, or the dataplane's own words).

use lvslab_ipvsadm::{parse, run};
use lvslab_spec::lb::LbError;

use crate::support::*;

const TRY_HELP: &str = "Try `lvslab ipvsadm -h' or 'lvslab ipvsadm --help' for more information.";

#[test]
fn usage_errors_keep_ipvsadm_words_and_say_what_to_fix() {
    // (command line, the line of ipvsadm's message we keep, the word at fault, status).
    // For "Try -h" ipvsadm says nothing else; ours says why before it.
    let cases: &[(&str, &str, &str, i32)] = &[
        ("-A -s rr", "You need to supply the 'service-address' option for the 'add-service' command", "service-address", 2),
        ("-a -t 192.168.80.10:80 -m", "You need to supply the 'real-server' option for the 'add-server' command", "real-server", 2),
        ("-e -t 192.168.80.10:80 -w 2", "You need to supply the 'real-server' option for the 'edit-server' command", "real-server", 2),
        ("-d -t 192.168.80.10:80", "You need to supply the 'real-server' option for the 'delete-server' command", "real-server", 2),
        ("-A -t 192.168.80.10:80 -r 192.168.80.11", "Illegal 'real-server' option with the 'add-service' command", "-r", 2),
        ("-D -t 192.168.80.10:80 -s rr", "Illegal 'scheduler' option with the 'delete-service' command", "-s", 2),
        ("-a -t 192.168.80.10:80 -r 192.168.80.11 --laddr 10.0.0.1", "Illegal 'laddr' option with the 'add-server' command", "--laddr", 2),
        ("-L -t 192.168.80.10:80 --timeout", "The option 'timeout' conflicts with the 'service-address' option in the 'list' command", "--timeout", 2),
        ("-A -t 192.168.80.10:80 -t 192.168.80.11:80", "multiple 'service-address' options specified", "-t", 2),
        ("-a -t 192.168.80.10:80 -r 192.168.80.11 -m -g", "multiple 'forwarding-method' options specified", "-g", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -w 2147483648", "illegal weight specified", "2147483648", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -w -1", "illegal weight specified", "-1", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -w 3x", "illegal weight specified", "3x", 2),
        ("-A -t 192.168.80.300:80", "illegal virtual server address[:port] specified", "192.168.80.300:80", 2),
        ("-A -t 192.168.80.10:65536", "illegal virtual server address[:port] specified", "192.168.80.10:65536", 2),
        ("-A -t 80", "illegal virtual server address[:port] specified", "80", 2),
        ("-A -t [::1]", "illegal virtual server address[:port] specified", "[::1]", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8.9:80", "illegal real server address[:port] specified", "5.6.7.8.9:80", 2),
        ("-A -t 1.2.3.4", "Zero port specified for non-persistent service", "1.2.3.4", 2),
        ("-A -t 1.2.3.4:80 -o", "One-Packet Scheduling is only for UDP virtual services", "-o", 2),
        ("-A -t 1.2.3.4:80 -p 0", "invalid timeout value `0' specified", "0", 2),
        ("-A -t 1.2.3.4:80 -p -M 255.255.0.256", "illegal virtual server persistent mask specified", "255.255.0.256", 2),
        ("-A -t [2001:db8::1]:80 -p -M 129", "illegal ipv6 netmask specified", "129", 2),
        ("-A -f 0", "invalid fwmark value `0' specified", "0", 2),
        ("-A -t 1.2.3.4:80 -6", "-6 used before -f", "-6", 2),
        ("-A -t 1.2.3.4:80 -E", "invalid option `-E'", "-E", 2),
        ("-A -t 1.2.3.4:80 extra", "unexpected argument extra", "extra", 2),
        ("-A -t 1.2.3.4:80 -s rr -b sh-port", "incompatible scheduler flag `sh-port'", "sh-port", 2),
        ("-A -t 1.2.3.4:80 -s sh -b sh-foo", "invalid scheduler flag `sh-foo'", "sh-foo", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -m --tun-type gue", "Tunnel options conflict with forward method", "--tun-type", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gue", "You need to supply the 'tun-port' option for the 'gue' tunnel type", "tun-port", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum", "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type", "--tun-remcsum", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gre --tun-port 6080", "Illegal 'tun-port' option with the 'gre' tunnel type", "--tun-port", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type vxlan", "illegal tunnel type specified", "vxlan", 2),
        ("-a -t [2001:db8::1]:80 -r 192.0.2.1 -m", "Different address family is allowed only for tunneling servers", "192.0.2.1", 2),
        ("-L --stats --timeout", "options conflicts in the list command", "--stats", 2),
        ("-L -c", "connection listing (-c) is not supported by lvslab ipvsadm", "-c", 2),
        ("-A -t 1.2.3.4:80 --bogus", "--bogus: unknown option", "--bogus", 255),
        ("-A -t 1.2.3.4:80 -q", "-q: unknown option", "-q", 255),
        ("-A -t", "-t: missing argument", "-t", 255),
        ("-L --stats=1", "--stats=1: option does not take an argument", "--stats=1", 255),
        ("-t 1.2.3.4:80 -A", "Try `lvslab ipvsadm -h' or 'lvslab ipvsadm --help' for more information.", "-t", 255),
        ("1.2.3.4", "Try `lvslab ipvsadm -h' or 'lvslab ipvsadm --help' for more information.", "1.2.3.4", 255),
        ("-A -t 1.2.3.4:80 -s fastest", "Scheduler or persistence engine not found", "fastest", 255),
        ("-X", "Try `lvslab ipvsadm -h' or 'lvslab ipvsadm --help' for more information.", "-X", 255),
        ("--bogus", "Try `lvslab ipvsadm -h' or 'lvslab ipvsadm --help' for more information.", "--bogus", 255),
        ("-A -t 1.2.3.4:80 --weigth 3", "--weigth: unknown option", "--weigth", 255),
        ("--set 900 120", "--set option requires 3 timeout values", "--set", 2),
        ("--set 900 120 x", "invalid timeout value `x' specified", "x", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -x 1 -y y", "illegal l_threshold specified", "y", 2),
        ("-A -t 1.2.3.4:80 --laddr 10.0.0.300", "illegal local address specified", "10.0.0.300", 2),
        ("-a -t 1.2.3.4:80 -r 5.6.7.8 -i --tun-type gue --tun-port 0", "illegal tunnel port specified", "0", 2),
    ];
    for &(line, ipvsadm_line, culprit, code) in cases {
        let e = parse(&words(line)).expect_err(line);
        assert_eq!(
            (e.exit_code, e.culprit.as_str()),
            (code, culprit),
            "`{line}`: {e}"
        );
        let lines: Vec<&str> = e.message.lines().collect();
        assert!(lines.contains(&ipvsadm_line), "`{line}`: {e}");
        if ipvsadm_line != TRY_HELP {
            assert_eq!(
                lines[0], ipvsadm_line,
                "`{line}`: ipvsadm's words come first"
            );
        }
        if culprit != "fastest" {
            // Beyond ipvsadm's words: what is wrong, naming the culprit.
            assert!(lines.len() > 1, "`{line}`: no explanation: {e}");
            assert!(e.message.contains(culprit), "`{line}`: {e}");
        }
        // run() prints the same and nothing reaches the dataplane.
        let mut lb = FakeLb::default();
        fails(&mut lb, line, &e.message, code);
        assert!(lb.services.is_empty(), "`{line}`");
    }
}

#[test]
fn unknown_scheduler_keeps_the_kernels_exact_words() {
    // ipvsadm passes the name on and the kernel refuses it with ENOENT; the VM test checks
    // ipvsadm prints exactly this.
    let (msg, code) = parse_err("-A -t 1.2.3.4:80 -s fastest");
    assert_eq!(
        (msg.as_str(), code),
        ("Scheduler or persistence engine not found", 255)
    );
}

#[test]
fn terse_ipvsadm_errors_get_an_explanation() {
    let (msg, _) = parse_err("-X");
    assert!(
        msg.starts_with("-X is not a command: the first option must say what to do"),
        "{msg}"
    );
    assert!(msg.contains("-X (--exact) comes after it"), "{msg}");
    assert!(msg.contains("-A (add a service)"), "{msg}");
    let (msg, _) = parse_err("1.2.3.4");
    assert!(
        msg.starts_with("no command: `1.2.3.4' is not an option"),
        "{msg}"
    );
    let (msg, _) = parse_err("-A -t 1.2.3.4:80 --weigth 3");
    assert!(msg.contains("did you mean --weight?"), "{msg}");
    let (msg, _) = parse_err("-a -t 1.2.3.4:80 -r 5.6.7.8 -w 3x");
    assert!(
        msg.contains("`3x' after -w: -w takes a weight, an integer from 0 to 2147483647"),
        "{msg}"
    );
    let (msg, _) = parse_err("-a -t 1.2.3.4:80 -r 5.6.7.8 --weight=");
    assert!(msg.contains("`' after --weight"), "{msg}");
    let (msg, _) = parse_err("-A -t 1.2.3.4");
    assert!(
        msg.contains("give one (1.2.3.4:80), or make the service persistent (-p)"),
        "{msg}"
    );
    let (msg, _) = parse_err("-a -t 192.168.80.10:80 -r 192.168.80.11 -m -g");
    assert!(
        msg.contains("-g gives the 'forwarding-method' option a second time (first as -m)"),
        "{msg}"
    );
    let (msg, _) = parse_err("-A -t 1.2.3.4:80 -E");
    assert!(
        msg.contains("-E (--edit-service) is a command and this line's command is -A"),
        "{msg}"
    );
    let (msg, _) = parse_err("-A -s rr");
    assert!(
        msg.contains("-t (--tcp-service), -u (--udp-service), --sctp-service, -f"),
        "{msg}"
    );
    let (msg, _) = parse_err("-L --stats --timeout");
    assert!(
        msg.contains("--stats chooses how services are listed and --timeout"),
        "{msg}"
    );
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
