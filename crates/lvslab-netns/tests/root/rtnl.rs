//! Route netlink against the kernel: errors that name what failed, deletions, tunnels
//! or the missing feature, and veth ends created directly in their namespaces.

use std::net::Ipv4Addr;

use lvslab_netns::{set_sysctl, Error, Netns};

use crate::{build_pair, ip, mac, require_root, Pair};

#[test]
fn errors_name_the_operation_namespace_and_errno() {
    require_root();
    let ns = Netns::new_anonymous().expect("namespace");
    let h = ns.netlink().expect("netlink");

    match h.add_address("nope0", ip("192.0.2.1"), 24) {
        Err(Error::NoSuchInterface {
            iface,
            ns: label,
            op,
        }) => {
            assert_eq!(iface, "nope0");
            assert_eq!(label, ns.label());
            assert_eq!(op, "ip addr add 192.0.2.1/24 dev nope0");
        }
        other => panic!("expected NoSuchInterface, got {other:?}"),
    }

    h.add_bridge("br0", mac("e/br0")).expect("bridge");
    let err = h.add_bridge("br0", mac("e/br0")).expect_err("duplicate");
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    let text = err.to_string();
    assert!(text.contains("ip link add br0"), "{text}");
    assert!(text.contains(ns.label()), "{text}");

    h.add_address("lo", ip("192.0.2.9"), 32)
        .expect("address on lo");
    let err = h
        .add_address("lo", ip("192.0.2.9"), 32)
        .expect_err("duplicate address");
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");

    let err = h
        .add_route(
            Some((ip("203.0.113.0"), 24)),
            Some(ip("198.51.100.1")),
            None,
        )
        .expect_err("unreachable gateway");
    // The gateway is on no connected network: the kernel says ENETUNREACH and explains
    // itself through an extended ack.
    assert_eq!(err.errno(), Some(libc::ENETUNREACH), "{err}");
    match &err {
        Error::Netlink { ext_ack, iface, .. } => {
            assert!(ext_ack.is_some(), "{err}");
            assert_eq!(iface, &None);
        }
        other => panic!("expected a netlink error, got {other:?}"),
    }

    assert!(matches!(
        h.add_route(Some((ip("203.0.113.0"), 24)), None, None),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        h.add_bridge("much-too-long-name", mac("x")),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        set_sysctl(&ns, "kernel.hostname", "x"),
        Err(Error::InvalidArgument { .. })
    ));
    let err = set_sysctl(&ns, "net.ipv4.conf.nope0.rp_filter", "0").expect_err("no such iface");
    assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");

    h.delete_link("br0").expect("delete");
    assert!(h.link("br0").is_err());
}

#[test]
fn routes_and_addresses_can_be_deleted_again() {
    require_root();
    let Pair { a, .. } = build_pair("del");
    let h = a.netlink().expect("netlink");
    h.delete_route(Some((ip("198.51.100.0"), 24)), Some(ip("192.0.2.2")), None)
        .expect("delete route");
    assert!(!h
        .routes()
        .expect("routes")
        .iter()
        .any(|r| r.dst == Some(ip("198.51.100.0"))));
    h.delete_address("va", ip("192.0.2.1"), 24)
        .expect("delete address");
    assert!(!h
        .addresses()
        .expect("addresses")
        .iter()
        .any(|x| x.addr == ip("192.0.2.1")));
    h.add_neighbour("va", ip("192.0.2.77"), mac("static"))
        .expect("static neighbour");
    let n = h
        .neighbours()
        .expect("neighbours")
        .into_iter()
        .find(|n| n.ip == ip("192.0.2.77"))
        .expect("entry");
    assert_eq!(
        (n.mac, n.state.as_str()),
        (Some(mac("static")), "permanent")
    );
}

#[test]
fn tunnels_work_or_report_the_missing_kernel_feature() {
    require_root();
    let ns = Netns::new_anonymous().expect("namespace");
    let h = ns.netlink().expect("netlink");
    let local = Ipv4Addr::new(192, 0, 2, 1);
    let remote = Ipv4Addr::new(192, 0, 2, 2);
    for (kind, result, config) in [
        (
            "gre",
            h.add_gre("gre1", local, remote, 64),
            "CONFIG_NET_IPGRE",
        ),
        (
            "ipip",
            h.add_ipip("ipip1", local, remote, 64),
            "CONFIG_NET_IPIP",
        ),
    ] {
        match result {
            Ok(()) => {
                let name = if kind == "gre" { "gre1" } else { "ipip1" };
                assert_eq!(h.link(name).expect("tunnel link").kind, kind);
            }
            Err(err) => {
                assert!(err.is_missing_kernel_feature(), "{kind}: {err:?}");
                assert_eq!(err.errno(), Some(libc::EOPNOTSUPP));
                let text = err.to_string();
                assert!(text.contains(config), "{text}");
                assert!(text.contains("lvslab vm run"), "{text}");
            }
        }
    }
}

/// Names of every link announced (RTM_NEWLINK) to a link-event monitor socket so far.
fn announced_links(monitor: &rtnetlink::sys::Socket) -> Vec<String> {
    use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
    use rtnetlink::packet_route::link::LinkAttribute;
    use rtnetlink::packet_route::RouteNetlinkMessage;

    let mut names = Vec::new();
    loop {
        let mut buf = Vec::with_capacity(65536);
        match monitor.recv(&mut buf, libc::MSG_DONTWAIT) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("monitor recv: {e}"),
        }
        let mut data = &buf[..];
        while data.len() >= 16 {
            let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
            assert!(len >= 16 && len <= data.len(), "bad netlink length {len}");
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[..len])
                .expect("decode link event");
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) = msg.payload {
                names.extend(link.attributes.into_iter().filter_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }));
            }
            data = data.get((len + 3) & !3..).unwrap_or(&[]);
        }
    }
    names
}

fn link_monitor() -> std::io::Result<rtnetlink::sys::Socket> {
    use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
    const RTMGRP_LINK: u32 = 1;
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
    Ok(socket)
}

#[test]
fn veth_ends_are_born_in_their_own_namespaces() {
    require_root();
    let a = Netns::new_anonymous().expect("namespace a");
    let b = Netns::new_anonymous().expect("namespace b");
    let tag = std::process::id() % 100_000;
    let (name_a, name_b) = (format!("lvs{tag}a"), format!("lvs{tag}b"));
    let monitor_root = link_monitor().expect("monitor in root");
    let monitor_a = a.run(link_monitor).expect("run").expect("monitor in a");
    let monitor_b = b.run(link_monitor).expect("run").expect("monitor in b");

    a.netlink()
        .expect("netlink a")
        .add_veth(&name_a, mac("born/a"), &b, &name_b, mac("born/b"))
        .expect("veth pair");

    let seen_a = announced_links(&monitor_a);
    let seen_b = announced_links(&monitor_b);
    let seen_root = announced_links(&monitor_root);
    // The monitors work: each namespace hears about its own end...
    assert!(seen_a.contains(&name_a), "a saw {seen_a:?}");
    assert!(seen_b.contains(&name_b), "b saw {seen_b:?}");
    // ...and no end ever appeared anywhere else, not even briefly.
    assert!(
        !seen_a.contains(&name_b),
        "peer appeared in a first: {seen_a:?}"
    );
    assert!(!seen_b.contains(&name_a), "{seen_b:?}");
    assert!(
        !seen_root.iter().any(|n| n == &name_a || n == &name_b),
        "root saw {seen_root:?}"
    );
}
