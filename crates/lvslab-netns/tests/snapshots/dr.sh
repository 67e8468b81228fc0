# lvslab plan: lab `dr`, instance `dr`
# Replays what `lvslab up dr --instance dr` builds. Undo: `lvslab plan dr --instance dr --down | bash`.
set -e
ip netns add lvslab-dr-client
ip -n lvslab-dr-client link set lo up
ip netns exec lvslab-dr-client sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-dr-client sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-dr-isp
ip -n lvslab-dr-isp link set lo up
ip netns exec lvslab-dr-isp sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-dr-isp sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-dr-firewall
ip -n lvslab-dr-firewall link set lo up
ip netns exec lvslab-dr-firewall sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-dr-firewall sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-dr-director
ip -n lvslab-dr-director link set lo up
ip netns exec lvslab-dr-director sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-dr-director sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-dr-rs1
ip -n lvslab-dr-rs1 link set lo up
ip netns exec lvslab-dr-rs1 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-dr-rs1 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-dr-rs2
ip -n lvslab-dr-rs2 link set lo up
ip netns exec lvslab-dr-rs2 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-dr-rs2 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-dr-rs3
ip -n lvslab-dr-rs3 link set lo up
ip netns exec lvslab-dr-rs3 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-dr-rs3 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-dr-lan80
ip -n lvslab-dr-lan80 link set lo up
ip netns exec lvslab-dr-lan80 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-dr-lan80 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n lvslab-dr-client link add eth0 address 02:3d:e8:fd:53:05 type veth peer name eth0 netns lvslab-dr-isp address 02:6b:e4:e6:1e:a0
ip -n lvslab-dr-isp link add eth1 address 02:6b:e4:e6:20:53 type veth peer name eth0 netns lvslab-dr-firewall address 02:90:84:ee:59:58
ip -n lvslab-dr-lan80 link add br0 address 02:5a:2c:cb:7d:a4 type bridge
ip -n lvslab-dr-firewall link add eth1 address 02:90:84:ee:5b:0b type veth peer name firewall-eth1 netns lvslab-dr-lan80 address 02:83:77:a9:47:11
ip -n lvslab-dr-lan80 link set firewall-eth1 master br0
ip -n lvslab-dr-director link add eth0 address 02:29:af:52:53:88 type veth peer name director-eth0 netns lvslab-dr-lan80 address 02:8e:8b:ac:17:c6
ip -n lvslab-dr-lan80 link set director-eth0 master br0
ip -n lvslab-dr-rs1 link add eth0 address 02:36:2d:e4:30:72 type veth peer name rs1-eth0 netns lvslab-dr-lan80 address 02:78:37:0e:2a:44
ip -n lvslab-dr-lan80 link set rs1-eth0 master br0
ip -n lvslab-dr-rs2 link add eth0 address 02:ce:f2:2c:cf:d5 type veth peer name rs2-eth0 netns lvslab-dr-lan80 address 02:53:0d:ac:11:1f
ip -n lvslab-dr-lan80 link set rs2-eth0 master br0
ip -n lvslab-dr-rs3 link add eth0 address 02:19:bb:f6:2a:ec type veth peer name rs3-eth0 netns lvslab-dr-lan80 address 02:45:d5:bd:17:72
ip -n lvslab-dr-lan80 link set rs3-eth0 master br0
ip netns exec lvslab-dr-client ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-dr-isp ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-dr-isp ethtool -K eth1 tx off >/dev/null
ip netns exec lvslab-dr-firewall ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-dr-firewall ethtool -K eth1 tx off >/dev/null
ip netns exec lvslab-dr-lan80 ethtool -K firewall-eth1 tx off >/dev/null
ip netns exec lvslab-dr-director ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-dr-lan80 ethtool -K director-eth0 tx off >/dev/null
ip netns exec lvslab-dr-rs1 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-dr-lan80 ethtool -K rs1-eth0 tx off >/dev/null
ip netns exec lvslab-dr-rs2 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-dr-lan80 ethtool -K rs2-eth0 tx off >/dev/null
ip netns exec lvslab-dr-rs3 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-dr-lan80 ethtool -K rs3-eth0 tx off >/dev/null
ip netns exec lvslab-dr-isp sysctl -qw net.ipv4.ip_forward=1
ip netns exec lvslab-dr-firewall sysctl -qw net.ipv4.ip_forward=1
ip netns exec lvslab-dr-rs1 sysctl -qw net.ipv4.conf.all.arp_ignore=1
ip netns exec lvslab-dr-rs1 sysctl -qw net.ipv4.conf.all.arp_announce=2
ip netns exec lvslab-dr-rs1 sysctl -qw net.ipv4.conf.lo.arp_ignore=1
ip netns exec lvslab-dr-rs1 sysctl -qw net.ipv4.conf.lo.arp_announce=2
ip netns exec lvslab-dr-rs2 sysctl -qw net.ipv4.conf.all.arp_ignore=1
ip netns exec lvslab-dr-rs2 sysctl -qw net.ipv4.conf.all.arp_announce=2
ip netns exec lvslab-dr-rs2 sysctl -qw net.ipv4.conf.lo.arp_ignore=1
ip netns exec lvslab-dr-rs2 sysctl -qw net.ipv4.conf.lo.arp_announce=2
ip netns exec lvslab-dr-rs3 sysctl -qw net.ipv4.conf.all.arp_ignore=1
ip netns exec lvslab-dr-rs3 sysctl -qw net.ipv4.conf.all.arp_announce=2
ip netns exec lvslab-dr-rs3 sysctl -qw net.ipv4.conf.lo.arp_ignore=1
ip netns exec lvslab-dr-rs3 sysctl -qw net.ipv4.conf.lo.arp_announce=2
ip -n lvslab-dr-client addr add 192.168.10.1/24 dev eth0
ip -n lvslab-dr-isp addr add 192.168.10.254/24 dev eth0
ip -n lvslab-dr-isp addr add 198.51.100.1/24 dev eth1
ip -n lvslab-dr-firewall addr add 198.51.100.2/24 dev eth0
ip -n lvslab-dr-firewall addr add 192.168.80.254/24 dev eth1
ip -n lvslab-dr-director addr add 192.168.80.10/24 dev eth0
ip -n lvslab-dr-director addr add 192.168.80.66/32 dev lo
ip -n lvslab-dr-rs1 addr add 192.168.80.11/24 dev eth0
ip -n lvslab-dr-rs1 addr add 192.168.80.66/32 dev lo
ip -n lvslab-dr-rs2 addr add 192.168.80.12/24 dev eth0
ip -n lvslab-dr-rs2 addr add 192.168.80.66/32 dev lo
ip -n lvslab-dr-rs3 addr add 192.168.80.13/24 dev eth0
ip -n lvslab-dr-rs3 addr add 192.168.80.66/32 dev lo
ip -n lvslab-dr-lan80 link set br0 up
ip -n lvslab-dr-client link set eth0 up
ip -n lvslab-dr-isp link set eth0 up
ip -n lvslab-dr-isp link set eth1 up
ip -n lvslab-dr-firewall link set eth0 up
ip -n lvslab-dr-firewall link set eth1 up
ip -n lvslab-dr-lan80 link set firewall-eth1 up
ip -n lvslab-dr-director link set eth0 up
ip -n lvslab-dr-lan80 link set director-eth0 up
ip -n lvslab-dr-rs1 link set eth0 up
ip -n lvslab-dr-lan80 link set rs1-eth0 up
ip -n lvslab-dr-rs2 link set eth0 up
ip -n lvslab-dr-lan80 link set rs2-eth0 up
ip -n lvslab-dr-rs3 link set eth0 up
ip -n lvslab-dr-lan80 link set rs3-eth0 up
ip -n lvslab-dr-client route add default via 192.168.10.254
ip -n lvslab-dr-director route add default via 192.168.80.254
ip -n lvslab-dr-rs1 route add default via 192.168.80.254
ip -n lvslab-dr-rs2 route add default via 192.168.80.254
ip -n lvslab-dr-rs3 route add default via 192.168.80.254
ip netns exec lvslab-dr-isp nft -f - <<'NFT'
table ip lvslab {
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		ip saddr 192.168.10.0/24 oifname "eth1" masquerade
	}
}
NFT
ip netns exec lvslab-dr-firewall nft -f - <<'NFT'
table ip lvslab {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		ip daddr 198.51.100.2 tcp dport 80 dnat to 192.168.80.66:80
	}
}
NFT
# --- down ---
# lvslab plan --down: lab `dr`, instance `dr`
ip netns del lvslab-dr-client 2>/dev/null || true
ip netns del lvslab-dr-isp 2>/dev/null || true
ip netns del lvslab-dr-firewall 2>/dev/null || true
ip netns del lvslab-dr-director 2>/dev/null || true
ip netns del lvslab-dr-rs1 2>/dev/null || true
ip netns del lvslab-dr-rs2 2>/dev/null || true
ip netns del lvslab-dr-rs3 2>/dev/null || true
ip netns del lvslab-dr-lan80 2>/dev/null || true
