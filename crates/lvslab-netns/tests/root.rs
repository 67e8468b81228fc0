//! Kernel-facing tests: they create throwaway namespaces and need root.
//!
//! Not skipped without root: they fail, saying why. Every namespace here is anonymous
//! (held by fd) except the one named-namespace test, which removes what it makes.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use lvslab_netns::named::{
    create_mount_point, prepare, publish, remove_owned, NamedNs, PublishError, Removal,
};
use lvslab_netns::nft::{self, BaseChain, Chain, ChainType, Family, Hook, Name, Policy};
use lvslab_netns::{get_sysctl, probe, set_sysctl, snapshot, Error, MacAddr, Netns};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates network namespaces and must run as root (euid 0); \
         run `sudo cargo test -p lvslab-netns` or use the CI script"
    );
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn mac(key: &str) -> MacAddr {
    MacAddr::local_from_key(key)
}

const TIMEOUT: Duration = Duration::from_secs(3);

/// Two namespaces: `a` with veth `va` 192.0.2.1/24; `b` with the peer `vb` enslaved to
/// bridge `br0` holding 192.0.2.2/24, and 198.51.100.1/32 on `lo`. `a` reaches
/// 198.51.100.0/24 via 192.0.2.2.
struct Pair {
    a: Netns,
    b: Netns,
}

fn build_pair(tag: &str) -> Pair {
    let a = Netns::new_anonymous().expect("create namespace a");
    let b = Netns::new_anonymous().expect("create namespace b");
    let ha = a.netlink().expect("netlink a");
    let hb = b.netlink().expect("netlink b");
    ha.add_veth(
        "va",
        mac(&format!("{tag}/a/va")),
        &b,
        "vb",
        mac(&format!("{tag}/b/vb")),
    )
    .expect("veth pair");
    hb.add_bridge("br0", mac(&format!("{tag}/b/br0")))
        .expect("bridge");
    hb.set_master("vb", "br0").expect("enslave vb");
    for (h, iface) in [(&ha, "va"), (&hb, "vb"), (&hb, "br0")] {
        h.set_up(iface).expect("link up");
    }
    ha.add_address("va", ip("192.0.2.1"), 24)
        .expect("address a");
    hb.add_address("br0", ip("192.0.2.2"), 24)
        .expect("address b");
    hb.add_address("lo", ip("198.51.100.1"), 32)
        .expect("address on lo");
    ha.add_route(Some((ip("198.51.100.0"), 24)), Some(ip("192.0.2.2")), None)
        .expect("route a");
    hb.add_route(None, Some(ip("192.0.2.1")), Some("br0"))
        .expect("default route b");
    Pair { a, b }
}

#[test]
fn lab_building_blocks_read_back_and_leave_the_root_namespace_alone() {
    require_root();
    let root = Netns::root().expect("root handle");
    let before = snapshot(&root).expect("root snapshot before");

    let Pair { a, b } = build_pair("blocks");
    let ha = a.netlink().expect("netlink a");
    let hb = b.netlink().expect("netlink b");

    // Links.
    let va = ha.link("va").expect("va exists");
    assert_eq!(va.kind, "veth");
    assert_eq!(va.mac, Some(mac("blocks/a/va")));
    assert!(va.up);
    assert_eq!(va.master, None);
    let lo = ha.link("lo").expect("lo exists");
    assert_eq!(lo.kind, "loopback");
    assert!(lo.up, "new_anonymous brings lo up");
    let vb = hb.link("vb").expect("vb exists");
    assert_eq!(vb.master.as_deref(), Some("br0"));
    assert_eq!(vb.mac, Some(mac("blocks/b/vb")));
    let br0 = hb.link("br0").expect("br0 exists");
    assert_eq!(br0.kind, "bridge");
    assert_eq!(br0.mac, Some(mac("blocks/b/br0")));
    // The peer end exists only in b, never in a.
    assert!(ha.link("vb").is_err());

    // MTU.
    ha.set_mtu("va", 1400).expect("set mtu");
    assert_eq!(ha.link("va").expect("va").mtu, 1400);

    // tx checksumming.
    assert!(
        ha.tx_checksumming("va").expect("read tx csum"),
        "veth defaults to tx on"
    );
    ha.set_tx_checksumming("va", false).expect("tx off");
    assert!(!ha.tx_checksumming("va").expect("read tx csum"));

    // Addresses.
    let addrs_b = hb.addresses().expect("addresses b");
    assert!(addrs_b
        .iter()
        .any(|x| x.iface == "br0" && x.addr == ip("192.0.2.2") && x.prefix == 24));
    assert!(addrs_b
        .iter()
        .any(|x| x.iface == "lo" && x.addr == ip("198.51.100.1") && x.prefix == 32));

    // Routes: the connected route the kernel adds, and ours.
    let routes_a = ha.routes().expect("routes a");
    let connected = routes_a
        .iter()
        .find(|r| r.dst == Some(ip("192.0.2.0")) && r.prefix == 24)
        .expect("connected route");
    assert_eq!(connected.oif.as_deref(), Some("va"));
    assert_eq!(connected.protocol, "kernel");
    assert_eq!(connected.scope, "link");
    let ours = routes_a
        .iter()
        .find(|r| r.dst == Some(ip("198.51.100.0")))
        .expect("added route");
    assert_eq!(ours.prefix, 24);
    assert_eq!(ours.gateway, Some(ip("192.0.2.2")));
    assert_eq!(
        ours.oif.as_deref(),
        Some("va"),
        "kernel resolves the device from the gateway"
    );
    assert_eq!(ours.protocol, "boot");
    assert_eq!(ours.scope, "universe");
    let default_b = hb
        .routes()
        .expect("routes b")
        .into_iter()
        .find(|r| r.dst.is_none() && r.family == "inet")
        .expect("default route b");
    assert_eq!(default_b.gateway, Some(ip("192.0.2.1")));
    assert_eq!(default_b.oif.as_deref(), Some("br0"));

    // Sysctls are per namespace.
    assert_eq!(get_sysctl(&b, "net.ipv4.ip_forward").expect("read"), "0");
    set_sysctl(&b, "net.ipv4.ip_forward", "1").expect("enable forwarding in b");
    set_sysctl(&b, "net.ipv4.conf.lo.arp_ignore", "1").expect("arp_ignore on lo");
    assert_eq!(get_sysctl(&b, "net.ipv4.ip_forward").expect("read"), "1");
    assert_eq!(
        get_sysctl(&b, "net.ipv4.conf.lo.arp_ignore").expect("read"),
        "1"
    );
    assert_eq!(get_sysctl(&a, "net.ipv4.ip_forward").expect("read"), "0");

    // UDP both ways, sockets created inside their namespaces and used from here.
    let server = b
        .run(|| UdpSocket::bind("198.51.100.1:5000"))
        .expect("run in b")
        .expect("bind udp in b");
    server.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let client = a
        .run(|| UdpSocket::bind("0.0.0.0:0"))
        .expect("run in a")
        .expect("bind udp in a");
    client.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    client
        .send_to(b"ping", "198.51.100.1:5000")
        .expect("send from a");
    let mut buf = [0u8; 64];
    let (n, from) = server.recv_from(&mut buf).expect("b receives");
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(
        from.ip(),
        ip("192.0.2.1"),
        "source is a's address on the veth"
    );
    server.send_to(b"pong", from).expect("reply");
    let (n, from) = client.recv_from(&mut buf).expect("a receives the reply");
    assert_eq!(&buf[..n], b"pong");
    assert_eq!(from, SocketAddr::new(ip("198.51.100.1"), 5000));

    // TCP too.
    let listener = b
        .run(|| TcpListener::bind("198.51.100.1:8080"))
        .expect("run in b")
        .expect("listen in b");
    let stream = a
        .run(|| TcpStream::connect_timeout(&SocketAddr::new(ip("198.51.100.1"), 8080), TIMEOUT))
        .expect("run in a")
        .expect("connect from a");
    let (mut accepted, peer) = listener.accept().expect("accept");
    assert_eq!(peer.ip(), ip("192.0.2.1"));
    let mut stream = stream;
    stream.write_all(b"hello").expect("write");
    let mut got = [0u8; 5];
    accepted.read_exact(&mut got).expect("read");
    assert_eq!(&got, b"hello");

    // After traffic, a has resolved b's gateway address to the bridge's MAC.
    let neighbours = ha.neighbours().expect("neighbours a");
    let gw = neighbours
        .iter()
        .find(|n| n.ip == ip("192.0.2.2"))
        .expect("neighbour entry for 192.0.2.2");
    assert_eq!(gw.iface, "va");
    assert_eq!(gw.mac, Some(mac("blocks/b/br0")));

    // An nft rule in b drops UDP to port 5001; port 5000 still works.
    let table = udp_drop_table(5001);
    nft::apply(&b, &table).expect("apply nft table");
    let listing = nft::list(&b).expect("list nft");
    assert_eq!(listing.tables, [nft::expected(&table)], "{listing}");
    assert!(nft::list(&a).expect("list a").is_empty());
    let blocked = b
        .run(|| UdpSocket::bind("198.51.100.1:5001"))
        .expect("run in b")
        .expect("bind 5001");
    blocked
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    client.send_to(b"x", "198.51.100.1:5001").expect("send");
    assert!(
        blocked.recv_from(&mut buf).is_err(),
        "nft should drop port 5001"
    );
    client.send_to(b"y", "198.51.100.1:5000").expect("send");
    assert_eq!(server.recv_from(&mut buf).expect("5000 still open").0, 1);

    // A refused transaction names the refused command and leaves the old table: NAT
    // has no forward hook.
    let forward = BaseChain {
        chain_type: ChainType::Nat,
        hook: Hook::Forward,
        priority: 0,
        policy: Policy::Accept,
    };
    let mut chains = table.chains().to_vec();
    chains.push(Chain::new(
        Name::new("forward").expect("name"),
        Some(forward),
        vec![],
    ));
    let refused = nft::Table::new(
        Family::Inet,
        Name::new("lvslab_test").expect("name"),
        chains,
    )
    .expect("table");
    match nft::apply(&b, &refused) {
        Err(Error::NftTransaction {
            command, source, ..
        }) => {
            assert_eq!(command, "add chain inet lvslab_test forward");
            assert_eq!(source.raw_os_error(), Some(libc::EOPNOTSUPP), "{source}");
        }
        other => panic!("expected a refused transaction, got {other:?}"),
    }
    assert_eq!(
        nft::list(&b).expect("list b").tables,
        [nft::expected(&table)]
    );

    // Teardown by dropping everything; then the root namespace must be as it was.
    drop((
        server, client, listener, stream, accepted, blocked, ha, hb, a, b,
    ));
    let after = snapshot(&root).expect("root snapshot after");
    let diff = before.diff(&after);
    assert!(
        diff.is_empty(),
        "root namespace changed:\n{}",
        diff.join("\n")
    );
    assert_eq!(before, after);
}

/// `table inet lvslab_test { chain input { type filter hook input priority 0; udp dport
/// PORT drop } }`.
fn udp_drop_table(port: u16) -> nft::Table {
    let rule = nft::Rule::new(
        vec![nft::Match::Port {
            protocol: lvslab_spec::lb::Protocol::Udp,
            field: nft::PortField::Dport,
            port,
        }],
        nft::Statement::Drop,
    )
    .expect("rule");
    let input = BaseChain {
        chain_type: ChainType::Filter,
        hook: Hook::Input,
        priority: 0,
        policy: Policy::Accept,
    };
    nft::Table::new(
        Family::Inet,
        Name::new("lvslab_test").expect("name"),
        vec![Chain::new(
            Name::new("input").expect("name"),
            Some(input),
            vec![rule],
        )],
    )
    .expect("table")
}

#[test]
fn snapshot_diff_shows_exactly_one_changed_sysctl() {
    require_root();
    let ns = Netns::new_anonymous().expect("namespace");
    let before = snapshot(&ns).expect("snapshot");
    assert!(before.links.iter().any(|l| l.name == "lo" && l.up));
    assert!(
        before.sysctls.len() > 100,
        "expected the ipv4 and ipv6/conf sysctl trees, got {} entries",
        before.sysctls.len()
    );
    assert_eq!(
        before
            .sysctls
            .get("net.ipv4.conf.lo.arp_ignore")
            .map(String::as_str),
        Some("0"),
        "kernel default"
    );
    set_sysctl(&ns, "net.ipv4.conf.lo.arp_ignore", "1").expect("set");
    let after = snapshot(&ns).expect("snapshot");
    assert_eq!(
        before.diff(&after),
        vec!["~ sysctl net.ipv4.conf.lo.arp_ignore: 0 -> 1".to_string()]
    );
}

#[test]
fn namespaces_are_entered_only_by_helper_threads() {
    require_root();
    let own = || {
        std::fs::metadata("/proc/thread-self/ns/net")
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    };
    let mine = own().expect("own namespace");
    let ns = Netns::new_anonymous().expect("namespace");
    assert_ne!(ns.inode(), mine);

    let inside = ns.run(own).expect("run").expect("stat inside");
    assert_eq!(inside, ns.inode());
    assert_eq!(
        own().expect("own namespace"),
        mine,
        "caller thread did not move"
    );

    let worker = ns.thread().expect("worker");
    assert_eq!(worker.exec(own).expect("exec").expect("stat"), ns.inode());
    let panicked = worker.exec(|| -> u32 { panic!("deliberate") });
    match panicked {
        Err(Error::Thread { detail, .. }) => assert!(detail.contains("deliberate"), "{detail}"),
        other => panic!("expected a thread error, got {other:?}"),
    }
    assert_eq!(
        worker
            .exec(own)
            .expect("worker still serves")
            .expect("stat"),
        ns.inode()
    );
    assert_eq!(own().expect("own namespace"), mine);

    // Programs start inside the namespace.
    let out = ns
        .output(Command::new("readlink").arg("/proc/self/ns/net"))
        .expect("run readlink");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("net:[{}]", ns.inode())
    );
    let child = worker
        .spawn_command({
            let mut c = Command::new("readlink");
            c.arg("/proc/self/ns/net");
            c.stdout(std::process::Stdio::piped());
            c
        })
        .expect("spawn from worker");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("net:[{}]", ns.inode())
    );
}

/// Removes what a test published when dropped, so a failing assertion leaks nothing.
struct RemoveOnDrop(Vec<NamedNs>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = remove_owned(id);
        }
    }
}

fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

#[test]
fn named_namespace_appears_only_after_its_identity_and_is_removed_only_by_it() {
    require_root();
    let path = PathBuf::from(format!(
        "/run/netns/lvslab-netns-test-{}",
        std::process::id()
    ));
    let mut cleanup = RemoveOnDrop(Vec::new());
    let run_netns_was_a_mount = mount_points().iter().any(|m| m == "/run/netns");

    let mut prepared = prepare(&path).expect("prepare");
    cleanup.0.push(prepared.record.clone());
    assert_eq!(prepared.record.ns_inode, prepared.netns.inode());
    assert_eq!(prepared.record.file_inode, None);
    assert!(prepared.record.staging.starts_with("/run/netns/"));
    create_mount_point(&mut prepared).expect("mount point");
    let id = prepared.record.clone();
    cleanup.0.push(id.clone());
    assert!(id.file_inode.is_some());
    assert!(!path.exists(), "nothing is visible before publish");
    let ns = publish(prepared).expect("publish");
    assert!(
        !id.staging.exists(),
        "the staging name is gone once published"
    );
    assert_eq!(
        ns.label(),
        path.file_name().expect("name").to_string_lossy()
    );
    drop(ns);

    // The bind mount keeps it alive after our handle is gone.
    let reopened = Netns::open(&path).expect("reopen");
    assert_eq!(reopened.inode(), id.ns_inode);
    assert!(
        reopened
            .netlink()
            .expect("netlink")
            .link("lo")
            .expect("lo")
            .up
    );
    // A second namespace of the same name is refused, and the first stays whole.
    let mut second = prepare(&path).expect("prepare another");
    create_mount_point(&mut second).expect("its mount point");
    let second_staging = second.record.staging.clone();
    match publish(second) {
        Err(PublishError::NameTaken { .. }) => {}
        other => panic!("publishing over an existing name: {other:?}"),
    }
    assert!(
        !second_staging.exists(),
        "the refused staging file is removed"
    );
    assert_eq!(
        Netns::open(&path).expect("still there").inode(),
        id.ns_inode
    );

    let mounts = mount_points();
    assert!(mounts.iter().any(|m| Some(m.as_str()) == path.to_str()));
    assert_eq!(
        mounts.iter().any(|m| m == "/run/netns"),
        run_netns_was_a_mount,
        "creating a named namespace must not turn /run/netns itself into a mount"
    );

    // Another identity proves nothing: the namespace stays.
    let wrong_ns = NamedNs {
        ns_inode: id.ns_inode + 1,
        ..id.clone()
    };
    assert!(matches!(
        remove_owned(&wrong_ns).expect("check"),
        Removal::NotOurs { .. }
    ));
    assert_eq!(Netns::open(&path).expect("untouched").inode(), id.ns_inode);
    // The right namespace over a file that is not ours: unmounted, the file stays.
    let wrong_file = NamedNs {
        file_inode: id.file_inode.map(|i| i + 1),
        ..id.clone()
    };
    assert!(matches!(
        remove_owned(&wrong_file).expect("check"),
        Removal::NotOurs { .. }
    ));
    assert!(path.exists());
    assert_eq!(remove_owned(&id).expect("remove"), Removal::Removed);
    drop(reopened);
    assert!(!path.exists());
    assert!(!mount_points()
        .iter()
        .any(|m| Some(m.as_str()) == path.to_str()));
    assert_eq!(remove_owned(&id).expect("again"), Removal::Absent);
    assert!(Netns::open(&path).is_err());
}

/// A crash between creating the mount-point file and renaming it leaves only the staging
/// file, which the record (written before it was made) is enough to remove.
#[test]
fn a_staging_file_left_by_a_crash_is_removed_by_its_record() {
    require_root();
    let path = PathBuf::from(format!(
        "/run/netns/lvslab-netns-crash-{}",
        std::process::id()
    ));
    let mut prepared = prepare(&path).expect("prepare");
    create_mount_point(&mut prepared).expect("mount point");
    let record = prepared.record.clone();
    drop(prepared); // the crash: the namespace dies with its fd, the file stays
    assert!(record.staging.exists());
    assert!(!path.exists());
    assert_eq!(remove_owned(&record).expect("remove"), Removal::Removed);
    assert!(!record.staging.exists());
    // Recorded before the file existed: nothing to do, nothing else touched.
    let mut unmade = record.clone();
    unmade.file_inode = None;
    assert_eq!(remove_owned(&unmade).expect("remove"), Removal::Absent);
}

#[test]
fn root_namespace_is_never_modified() {
    require_root();
    let root = Netns::root().expect("root");
    let other = Netns::new_anonymous().expect("namespace");
    let h = root.netlink().expect("root netlink (reading is fine)");
    assert!(!h.links().expect("read links").is_empty());
    let refused = [
        h.add_bridge("lvslabbad0", mac("bad")).err(),
        h.add_address("lo", ip("192.0.2.99"), 32).err(),
        h.add_route(Some((ip("203.0.113.0"), 24)), None, Some("lo"))
            .err(),
        h.set_up("lo").err(),
        other
            .netlink()
            .expect("netlink")
            .add_veth("x0", mac("x0"), &root, "x1", mac("x1"))
            .err(),
        set_sysctl(&root, "net.ipv4.ip_forward", "1").err(),
        nft::apply(&root, &udp_drop_table(1)).err(),
        nft::delete_table(&root, Family::Inet, &Name::new("lvslab_bad").expect("name")).err(),
    ];
    for (i, err) in refused.into_iter().enumerate() {
        assert!(
            matches!(err, Some(Error::RootIsReadOnly { .. })),
            "operation {i} was not refused: {err:?}"
        );
    }
    // Nothing of the attempted veth was left in the other namespace.
    assert!(other.netlink().expect("netlink").link("x0").is_err());
}

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

#[test]
fn probe_reports_every_feature_consistently() {
    require_root();
    let features = probe();
    let names: Vec<&str> = features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "root",
            "netns",
            "veth",
            "bridge",
            "ipip",
            "gre",
            "ipvs",
            "nft",
            "af_packet",
            "tun",
            "qemu",
            "kvm"
        ]
    );
    let get = |name: &str| lvslab_netns::probe::find(&features, name).expect("probed");
    for must in ["root", "netns", "veth", "bridge", "af_packet"] {
        assert!(get(must).available, "{must}: {}", get(must).detail);
    }
    // nf_tables is in every kernel these tests run on; the probe needs no nft program.
    assert!(get("nft").available, "{}", get("nft").detail);
    assert_eq!(
        get("tun").available,
        std::path::Path::new("/dev/net/tun").exists(),
        "{}",
        get("tun").detail
    );
    for f in &features {
        assert!(!f.detail.is_empty(), "{} has no detail", f.name);
        if !f.available && ["ipip", "gre", "ipvs"].contains(&f.name.as_str()) {
            assert!(f.detail.contains("CONFIG_"), "{}: {}", f.name, f.detail);
            assert!(
                f.detail.contains("lvslab vm run"),
                "{}: {}",
                f.name,
                f.detail
            );
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

/// `build` returns a lab whose links pass frames. The NAT lab's first switch port is a
/// veth whose two ends both get index 3 in their namespaces, which the kernel's link
/// watcher handles late (up to a second); before `build` waited for it, a check's first
/// ARP request through that port was lost in about half of the builds.
#[test]
fn built_labs_have_every_veth_end_operational() {
    use lvslab_netns::apply::{build, Naming};
    use lvslab_netns::plan::{plan, DecapImpl, PlanOptions, Step};
    require_root();
    let labs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs");
    let lab = lvslab_spec::load_lab(&lvslab_spec::lab_path(&labs, "nat"), &[]).expect("nat lab");
    for round in 0..3 {
        let p = plan(
            &lab,
            &PlanOptions {
                instance: format!("oper{round}"),
                decap: DecapImpl::Userspace,
                run: None,
            },
        )
        .expect("plan the nat lab");
        let inst = build(
            &p,
            Naming::Anonymous,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .expect("build the nat lab");
        let mut down = Vec::new();
        let mut ends = 0;
        for step in &p.steps {
            let Step::Veth {
                ns,
                name,
                peer_ns,
                peer_name,
                ..
            } = step
            else {
                continue;
            };
            for (node, iface) in [(ns, name), (peer_ns, peer_name)] {
                ends += 1;
                let h = inst
                    .ns(node)
                    .expect("namespace")
                    .netlink()
                    .expect("netlink");
                if !h.is_oper_up(iface).expect("read operstate") {
                    down.push(format!("{node}:{iface}"));
                }
            }
        }
        assert!(ends >= 14, "the nat lab has 7 veth pairs, saw {ends} ends");
        assert!(
            down.is_empty(),
            "round {round}: not operational when build returned: {down:?}"
        );
        assert!(inst.teardown().ok(), "teardown");
    }
}
