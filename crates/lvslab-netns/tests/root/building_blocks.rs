//! The lab building blocks end to end on two namespaces: links, addresses, routes,
//! sysctls, traffic, neighbours and nftables, each read back, and the root namespace
//! unchanged afterwards. One step per function; the test runs them in order and keeps
//! every socket open until the teardown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use lvslab_netns::nft::{self, BaseChain, Chain, ChainType, Family, Hook, Name, Policy};
use lvslab_netns::{get_sysctl, set_sysctl, snapshot, Error, Netns, NsHandle};

use crate::{build_pair, ip, mac, require_root, udp_drop_table, Pair, TIMEOUT};

#[test]
fn lab_building_blocks_read_back_and_leave_the_root_namespace_alone() {
    require_root();
    let root = Netns::root().expect("root handle");
    let before = snapshot(&root).expect("root snapshot before");

    let Pair { a, b } = build_pair("blocks");
    let ha = a.netlink().expect("netlink a");
    let hb = b.netlink().expect("netlink b");

    links_read_back(&ha, &hb);
    addresses_and_routes_read_back(&ha, &hb);
    sysctls_are_per_namespace(&a, &b);
    let udp = udp_flows_both_ways(&a, &b);
    let tcp = tcp_connects(&a, &b);
    gateway_is_resolved_to_the_bridge(&ha);
    let blocked = nft_drops_one_port_only(&a, &b, &udp);

    // Teardown by dropping everything; then the root namespace must be as it was.
    drop((udp, tcp, blocked, ha, hb, a, b));
    let after = snapshot(&root).expect("root snapshot after");
    let diff = before.diff(&after);
    assert!(
        diff.is_empty(),
        "root namespace changed:\n{}",
        diff.join("\n")
    );
    assert_eq!(before, after);
}

/// Kinds, MACs, masters and state of the pair's links; MTU and tx checksumming set and
/// read back.
fn links_read_back(ha: &NsHandle, hb: &NsHandle) {
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
}

/// The addresses given, the connected route the kernel adds, and the routes added.
fn addresses_and_routes_read_back(ha: &NsHandle, hb: &NsHandle) {
    let addrs_b = hb.addresses().expect("addresses b");
    assert!(addrs_b
        .iter()
        .any(|x| x.iface == "br0" && x.addr == ip("192.0.2.2") && x.prefix == 24));
    assert!(addrs_b
        .iter()
        .any(|x| x.iface == "lo" && x.addr == ip("198.51.100.1") && x.prefix == 32));

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
}

fn sysctls_are_per_namespace(a: &Netns, b: &Netns) {
    assert_eq!(get_sysctl(b, "net.ipv4.ip_forward").expect("read"), "0");
    set_sysctl(b, "net.ipv4.ip_forward", "1").expect("enable forwarding in b");
    set_sysctl(b, "net.ipv4.conf.lo.arp_ignore", "1").expect("arp_ignore on lo");
    assert_eq!(get_sysctl(b, "net.ipv4.ip_forward").expect("read"), "1");
    assert_eq!(
        get_sysctl(b, "net.ipv4.conf.lo.arp_ignore").expect("read"),
        "1"
    );
    assert_eq!(get_sysctl(a, "net.ipv4.ip_forward").expect("read"), "0");
}

/// A UDP server in b on 198.51.100.1:5000 and a client in a, after one exchange.
struct UdpPair {
    server: UdpSocket,
    client: UdpSocket,
}

/// UDP both ways, sockets created inside their namespaces and used from here.
fn udp_flows_both_ways(a: &Netns, b: &Netns) -> UdpPair {
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
    UdpPair { server, client }
}

/// A TCP connection from a to b; returns the listener and both ends.
fn tcp_connects(a: &Netns, b: &Netns) -> (TcpListener, TcpStream, TcpStream) {
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
    (listener, stream, accepted)
}

/// After traffic, a has resolved b's gateway address to the bridge's MAC.
fn gateway_is_resolved_to_the_bridge(ha: &NsHandle) {
    let neighbours = ha.neighbours().expect("neighbours a");
    let gw = neighbours
        .iter()
        .find(|n| n.ip == ip("192.0.2.2"))
        .expect("neighbour entry for 192.0.2.2");
    assert_eq!(gw.iface, "va");
    assert_eq!(gw.mac, Some(mac("blocks/b/br0")));
}

/// An nft rule in b drops UDP to port 5001; port 5000 still works. Then a refused
/// transaction names the refused command and leaves the old table. Returns the socket
/// bound on the blocked port.
fn nft_drops_one_port_only(a: &Netns, b: &Netns, udp: &UdpPair) -> UdpSocket {
    let UdpPair { server, client } = udp;
    let mut buf = [0u8; 64];
    let table = udp_drop_table(5001);
    nft::apply(b, &table).expect("apply nft table");
    let listing = nft::list(b).expect("list nft");
    assert_eq!(listing.tables, [nft::expected(&table)], "{listing}");
    assert!(nft::list(a).expect("list a").is_empty());
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

    refused_transaction_keeps_the_old_table(b, &table);
    blocked
}

/// NAT has no forward hook: the kernel refuses the chain, the error names the command,
/// and `table` is still what b holds.
fn refused_transaction_keeps_the_old_table(b: &Netns, table: &nft::Table) {
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
    match nft::apply(b, &refused) {
        Err(Error::NftTransaction {
            command, source, ..
        }) => {
            assert_eq!(command, "add chain inet lvslab_test forward");
            assert_eq!(source.raw_os_error(), Some(libc::EOPNOTSUPP), "{source}");
        }
        other => panic!("expected a refused transaction, got {other:?}"),
    }
    assert_eq!(nft::list(b).expect("list b").tables, [nft::expected(table)]);
}
