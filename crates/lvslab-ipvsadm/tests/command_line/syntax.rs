//! How argv is read: popt's spellings, optional values, service kinds.

use std::net::{IpAddr, Ipv6Addr};

use lvslab_ipvsadm::{parse, Command, ListTarget, ListingOptions, DEFAULT_PERSISTENCE_TIMEOUT};
use lvslab_spec::lb::{DestConfig, Encap, Family, ForwardMethod, Protocol, Scheduler, ServiceKey};

use crate::support::*;

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
