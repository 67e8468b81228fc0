# lvslab plan: lab `tun`, instance `tun`
# Replays what `lvslab up tun --instance tun` builds. Undo: `lvslab plan tun --instance tun --down | bash`.
set -e
ip netns add lvslab-tun-client
ip -n lvslab-tun-client link set lo up
ip netns exec lvslab-tun-client sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-tun-client sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-tun-router
ip -n lvslab-tun-router link set lo up
ip netns exec lvslab-tun-router sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-tun-router sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-tun-director
ip -n lvslab-tun-director link set lo up
ip netns exec lvslab-tun-director sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-tun-director sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-tun-rs1
ip -n lvslab-tun-rs1 link set lo up
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-tun-rs2
ip -n lvslab-tun-rs2 link set lo up
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n lvslab-tun-router link add eth0 address 02:47:10:b1:26:dc type veth peer name eth0 netns lvslab-tun-director address 02:f4:99:7c:d6:97
ip -n lvslab-tun-router link add eth1 address 02:47:10:b1:28:8f type veth peer name eth0 netns lvslab-tun-rs1 address 02:2a:9e:3d:98:17
ip -n lvslab-tun-router link add eth2 address 02:47:10:b1:2a:42 type veth peer name eth0 netns lvslab-tun-rs2 address 02:03:01:1e:f0:c0
ip -n lvslab-tun-router link add eth3 address 02:47:10:b1:2b:f5 type veth peer name eth0 netns lvslab-tun-client address 02:34:1c:1c:d6:76
ip -n lvslab-tun-rs1 tuntap add dev tunl0 mode tun
ip -n lvslab-tun-rs2 tuntap add dev tunl0 mode tun
ip netns exec lvslab-tun-router ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-tun-director ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-tun-router ethtool -K eth1 tx off >/dev/null
ip netns exec lvslab-tun-rs1 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-tun-router ethtool -K eth2 tx off >/dev/null
ip netns exec lvslab-tun-rs2 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-tun-router ethtool -K eth3 tx off >/dev/null
ip netns exec lvslab-tun-client ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-tun-router sysctl -qw net.ipv4.ip_forward=1
ip netns exec lvslab-tun-router sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec lvslab-tun-router sysctl -qw net.ipv4.conf.eth1.rp_filter=0
ip netns exec lvslab-tun-router sysctl -qw net.ipv4.conf.eth2.rp_filter=0
ip netns exec lvslab-tun-director sysctl -qw net.ipv4.ip_forward=0
ip netns exec lvslab-tun-director sysctl -qw net.ipv4.conf.all.send_redirects=1
ip netns exec lvslab-tun-director sysctl -qw net.ipv4.conf.default.send_redirects=1
ip netns exec lvslab-tun-director sysctl -qw net.ipv4.conf.eth0.send_redirects=1
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv4.ip_forward=0
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv4.conf.tunl0.arp_ignore=1
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv4.conf.tunl0.arp_announce=2
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv4.conf.all.arp_ignore=1
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv4.conf.all.arp_announce=2
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv4.conf.tunl0.rp_filter=0
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv4.conf.eth0.rp_filter=0
ip netns exec lvslab-tun-rs1 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv4.ip_forward=0
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv4.conf.tunl0.arp_ignore=1
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv4.conf.tunl0.arp_announce=2
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv4.conf.all.arp_ignore=1
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv4.conf.all.arp_announce=2
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv4.conf.tunl0.rp_filter=0
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv4.conf.eth0.rp_filter=0
ip netns exec lvslab-tun-rs2 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip -n lvslab-tun-client addr add 192.168.10.1/24 dev eth0
ip -n lvslab-tun-router addr add 192.0.2.254/24 dev eth0
ip -n lvslab-tun-router addr add 198.51.100.254/24 dev eth1
ip -n lvslab-tun-router addr add 203.0.113.254/24 dev eth2
ip -n lvslab-tun-router addr add 192.168.10.254/24 dev eth3
ip -n lvslab-tun-director addr add 192.0.2.1/24 dev eth0
ip -n lvslab-tun-director addr add 192.0.2.2/32 dev eth0
ip -n lvslab-tun-rs1 addr add 198.51.100.1/24 dev eth0
ip -n lvslab-tun-rs1 addr add 192.0.2.2/32 dev tunl0
ip -n lvslab-tun-rs2 addr add 203.0.113.1/24 dev eth0
ip -n lvslab-tun-rs2 addr add 192.0.2.2/32 dev tunl0
ip -n lvslab-tun-router link set eth0 up
ip -n lvslab-tun-director link set eth0 up
ip -n lvslab-tun-router link set eth1 up
ip -n lvslab-tun-rs1 link set eth0 up
ip -n lvslab-tun-router link set eth2 up
ip -n lvslab-tun-rs2 link set eth0 up
ip -n lvslab-tun-router link set eth3 up
ip -n lvslab-tun-client link set eth0 up
ip -n lvslab-tun-rs1 link set tunl0 up
ip -n lvslab-tun-rs2 link set tunl0 up
ip -n lvslab-tun-client route add default via 192.168.10.254
ip -n lvslab-tun-director route add default via 192.0.2.254
ip -n lvslab-tun-rs1 route add default via 198.51.100.254
ip -n lvslab-tun-rs2 route add default via 203.0.113.254
ip netns exec lvslab-tun-router nft -f - <<'NFT'
table ip lvslab {
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		ip saddr 192.168.10.0/24 ip daddr != 192.168.10.0/24 snat to 192.168.10.254
	}
}
NFT
# --- down ---
# lvslab plan --down: lab `tun`, instance `tun`
ip netns del lvslab-tun-client 2>/dev/null || true
ip netns del lvslab-tun-router 2>/dev/null || true
ip netns del lvslab-tun-director 2>/dev/null || true
ip netns del lvslab-tun-rs1 2>/dev/null || true
ip netns del lvslab-tun-rs2 2>/dev/null || true
