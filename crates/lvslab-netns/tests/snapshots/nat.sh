# lvslab plan: lab `nat`, instance `nat`
# Replays what `lvslab up nat --instance nat` builds. Undo: `lvslab plan nat --instance nat --down | bash`.
set -e
ip netns add lvslab-nat-client
ip -n lvslab-nat-client link set lo up
ip netns exec lvslab-nat-client sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-nat-client sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-nat-isp
ip -n lvslab-nat-isp link set lo up
ip netns exec lvslab-nat-isp sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-nat-isp sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-nat-firewall
ip -n lvslab-nat-firewall link set lo up
ip netns exec lvslab-nat-firewall sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-nat-firewall sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-nat-director
ip -n lvslab-nat-director link set lo up
ip netns exec lvslab-nat-director sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-nat-director sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-nat-rs1
ip -n lvslab-nat-rs1 link set lo up
ip netns exec lvslab-nat-rs1 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-nat-rs1 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-nat-rs2
ip -n lvslab-nat-rs2 link set lo up
ip netns exec lvslab-nat-rs2 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-nat-rs2 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-nat-rs3
ip -n lvslab-nat-rs3 link set lo up
ip netns exec lvslab-nat-rs3 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-nat-rs3 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-nat-lan80
ip -n lvslab-nat-lan80 link set lo up
ip netns exec lvslab-nat-lan80 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-nat-lan80 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n lvslab-nat-client link add eth0 address 02:ff:e9:a5:7c:1e type veth peer name eth0 netns lvslab-nat-isp address 02:b7:b9:97:c9:bd
ip -n lvslab-nat-isp link add eth1 address 02:b7:b9:97:c8:0a type veth peer name eth0 netns lvslab-nat-firewall address 02:2c:de:84:c2:97
ip -n lvslab-nat-lan80 link add br0 address 02:52:ba:c4:ac:83 type bridge
ip -n lvslab-nat-firewall link add eth1 address 02:2c:de:84:c0:e4 type veth peer name firewall-eth1 netns lvslab-nat-lan80 address 02:8f:df:2f:f4:06
ip -n lvslab-nat-lan80 link set firewall-eth1 master br0
ip -n lvslab-nat-director link add eth0 address 02:68:7a:0e:b8:ef type veth peer name director-eth0 netns lvslab-nat-lan80 address 02:88:74:b7:0d:a1
ip -n lvslab-nat-lan80 link set director-eth0 master br0
ip -n lvslab-nat-rs1 link add eth0 address 02:cd:03:99:66:bf type veth peer name rs1-eth0 netns lvslab-nat-lan80 address 02:a0:03:8f:30:a1
ip -n lvslab-nat-lan80 link set rs1-eth0 master br0
ip -n lvslab-nat-rs2 link add eth0 address 02:76:fa:c1:b3:c8 type veth peer name rs2-eth0 netns lvslab-nat-lan80 address 02:db:81:15:5d:f2
ip -n lvslab-nat-lan80 link set rs2-eth0 master br0
ip -n lvslab-nat-rs3 link add eth0 address 02:bb:08:42:d5:d1 type veth peer name rs3-eth0 netns lvslab-nat-lan80 address 02:e8:b9:04:57:9f
ip -n lvslab-nat-lan80 link set rs3-eth0 master br0
ip netns exec lvslab-nat-client ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-nat-isp ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-nat-isp ethtool -K eth1 tx off >/dev/null
ip netns exec lvslab-nat-firewall ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-nat-firewall ethtool -K eth1 tx off >/dev/null
ip netns exec lvslab-nat-lan80 ethtool -K firewall-eth1 tx off >/dev/null
ip netns exec lvslab-nat-director ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-nat-lan80 ethtool -K director-eth0 tx off >/dev/null
ip netns exec lvslab-nat-rs1 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-nat-lan80 ethtool -K rs1-eth0 tx off >/dev/null
ip netns exec lvslab-nat-rs2 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-nat-lan80 ethtool -K rs2-eth0 tx off >/dev/null
ip netns exec lvslab-nat-rs3 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-nat-lan80 ethtool -K rs3-eth0 tx off >/dev/null
ip netns exec lvslab-nat-isp sysctl -qw net.ipv4.ip_forward=1
ip netns exec lvslab-nat-firewall sysctl -qw net.ipv4.ip_forward=1
ip netns exec lvslab-nat-director sysctl -qw net.ipv4.ip_forward=1
ip netns exec lvslab-nat-director sysctl -qw net.ipv4.conf.all.send_redirects=0
ip netns exec lvslab-nat-director sysctl -qw net.ipv4.conf.default.send_redirects=0
ip netns exec lvslab-nat-director sysctl -qw net.ipv4.conf.eth0.send_redirects=0
ip -n lvslab-nat-client addr add 192.168.10.1/24 dev eth0
ip -n lvslab-nat-isp addr add 192.168.10.254/24 dev eth0
ip -n lvslab-nat-isp addr add 198.51.100.1/24 dev eth1
ip -n lvslab-nat-firewall addr add 198.51.100.2/24 dev eth0
ip -n lvslab-nat-firewall addr add 192.168.80.254/24 dev eth1
ip -n lvslab-nat-director addr add 192.168.80.10/24 dev eth0
ip -n lvslab-nat-rs1 addr add 192.168.80.11/24 dev eth0
ip -n lvslab-nat-rs2 addr add 192.168.80.12/24 dev eth0
ip -n lvslab-nat-rs3 addr add 192.168.80.13/24 dev eth0
ip -n lvslab-nat-lan80 link set br0 up
ip -n lvslab-nat-client link set eth0 up
ip -n lvslab-nat-isp link set eth0 up
ip -n lvslab-nat-isp link set eth1 up
ip -n lvslab-nat-firewall link set eth0 up
ip -n lvslab-nat-firewall link set eth1 up
ip -n lvslab-nat-lan80 link set firewall-eth1 up
ip -n lvslab-nat-director link set eth0 up
ip -n lvslab-nat-lan80 link set director-eth0 up
ip -n lvslab-nat-rs1 link set eth0 up
ip -n lvslab-nat-lan80 link set rs1-eth0 up
ip -n lvslab-nat-rs2 link set eth0 up
ip -n lvslab-nat-lan80 link set rs2-eth0 up
ip -n lvslab-nat-rs3 link set eth0 up
ip -n lvslab-nat-lan80 link set rs3-eth0 up
ip -n lvslab-nat-client route add default via 192.168.10.254
ip -n lvslab-nat-director route add default via 192.168.80.254
ip -n lvslab-nat-rs1 route add default via 192.168.80.10
ip -n lvslab-nat-rs2 route add default via 192.168.80.10
ip -n lvslab-nat-rs3 route add default via 192.168.80.10
ip netns exec lvslab-nat-isp nft -f - <<'NFT'
table ip lvslab {
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		ip saddr 192.168.10.0/24 oifname "eth1" masquerade
	}
}
NFT
ip netns exec lvslab-nat-firewall nft -f - <<'NFT'
table ip lvslab {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		ip daddr 198.51.100.2 tcp dport 80 dnat to 192.168.80.10:80
		ip daddr 198.51.100.2 udp dport 53 dnat to 192.168.80.10:53
	}
}
NFT
# --- down ---
# lvslab plan --down: lab `nat`, instance `nat`
ip netns del lvslab-nat-client 2>/dev/null || true
ip netns del lvslab-nat-isp 2>/dev/null || true
ip netns del lvslab-nat-firewall 2>/dev/null || true
ip netns del lvslab-nat-director 2>/dev/null || true
ip netns del lvslab-nat-rs1 2>/dev/null || true
ip netns del lvslab-nat-rs2 2>/dev/null || true
ip netns del lvslab-nat-rs3 2>/dev/null || true
ip netns del lvslab-nat-lan80 2>/dev/null || true
