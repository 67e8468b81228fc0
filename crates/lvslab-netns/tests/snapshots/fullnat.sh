# lvslab plan: lab `fullnat`, instance `fullnat`
# Replays what `lvslab up fullnat --instance fullnat` builds. Undo: `lvslab plan fullnat --instance fullnat --down | bash`.
set -e
ip netns add lvslab-fullnat-client
ip -n lvslab-fullnat-client link set lo up
ip netns exec lvslab-fullnat-client sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-fullnat-client sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-fullnat-director
ip -n lvslab-fullnat-director link set lo up
ip netns exec lvslab-fullnat-director sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-fullnat-director sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-fullnat-router
ip -n lvslab-fullnat-router link set lo up
ip netns exec lvslab-fullnat-router sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-fullnat-router sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-fullnat-rs1
ip -n lvslab-fullnat-rs1 link set lo up
ip netns exec lvslab-fullnat-rs1 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-fullnat-rs1 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-fullnat-rs2
ip -n lvslab-fullnat-rs2 link set lo up
ip netns exec lvslab-fullnat-rs2 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-fullnat-rs2 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns add lvslab-fullnat-lan20
ip -n lvslab-fullnat-lan20 link set lo up
ip netns exec lvslab-fullnat-lan20 sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec lvslab-fullnat-lan20 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n lvslab-fullnat-client link add eth0 address 02:0b:69:4b:3a:c5 type veth peer name eth0 netns lvslab-fullnat-director address 02:f8:2b:be:22:48
ip -n lvslab-fullnat-director link add eth1 address 02:f8:2b:be:23:fb type veth peer name eth0 netns lvslab-fullnat-router address 02:6d:22:db:8a:1b
ip -n lvslab-fullnat-lan20 link add br0 address 02:bc:5b:b1:ce:06 type bridge
ip -n lvslab-fullnat-router link add eth1 address 02:6d:22:db:88:68 type veth peer name router-eth1 netns lvslab-fullnat-lan20 address 02:60:81:bb:11:64
ip -n lvslab-fullnat-lan20 link set router-eth1 master br0
ip -n lvslab-fullnat-rs1 link add eth0 address 02:19:d3:22:62:b2 type veth peer name rs1-eth0 netns lvslab-fullnat-lan20 address 02:97:e4:09:9a:ca
ip -n lvslab-fullnat-lan20 link set rs1-eth0 master br0
ip -n lvslab-fullnat-rs2 link add eth0 address 02:b2:94:87:d9:15 type veth peer name rs2-eth0 netns lvslab-fullnat-lan20 address 02:34:99:9c:bf:19
ip -n lvslab-fullnat-lan20 link set rs2-eth0 master br0
ip netns exec lvslab-fullnat-client ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-fullnat-director ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-fullnat-director ethtool -K eth1 tx off >/dev/null
ip netns exec lvslab-fullnat-router ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-fullnat-router ethtool -K eth1 tx off >/dev/null
ip netns exec lvslab-fullnat-lan20 ethtool -K router-eth1 tx off >/dev/null
ip netns exec lvslab-fullnat-rs1 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-fullnat-lan20 ethtool -K rs1-eth0 tx off >/dev/null
ip netns exec lvslab-fullnat-rs2 ethtool -K eth0 tx off >/dev/null
ip netns exec lvslab-fullnat-lan20 ethtool -K rs2-eth0 tx off >/dev/null
ip netns exec lvslab-fullnat-director sysctl -qw net.ipv4.ip_forward=1
ip netns exec lvslab-fullnat-router sysctl -qw net.ipv4.ip_forward=1
ip -n lvslab-fullnat-client addr add 198.51.100.10/24 dev eth0
ip -n lvslab-fullnat-director addr add 198.51.100.1/24 dev eth0
ip -n lvslab-fullnat-director addr add 10.10.0.1/24 dev eth1
ip -n lvslab-fullnat-director addr add 10.10.0.101/32 dev eth1
ip -n lvslab-fullnat-director addr add 10.10.0.102/32 dev eth1
ip -n lvslab-fullnat-director addr add 203.0.113.10/32 dev lo
ip -n lvslab-fullnat-router addr add 10.10.0.254/24 dev eth0
ip -n lvslab-fullnat-router addr add 172.16.20.1/24 dev eth1
ip -n lvslab-fullnat-rs1 addr add 172.16.20.11/24 dev eth0
ip -n lvslab-fullnat-rs2 addr add 172.16.20.12/24 dev eth0
ip -n lvslab-fullnat-lan20 link set br0 up
ip -n lvslab-fullnat-client link set eth0 up
ip -n lvslab-fullnat-director link set eth0 up
ip -n lvslab-fullnat-director link set eth1 up
ip -n lvslab-fullnat-router link set eth0 up
ip -n lvslab-fullnat-router link set eth1 up
ip -n lvslab-fullnat-lan20 link set router-eth1 up
ip -n lvslab-fullnat-rs1 link set eth0 up
ip -n lvslab-fullnat-lan20 link set rs1-eth0 up
ip -n lvslab-fullnat-rs2 link set eth0 up
ip -n lvslab-fullnat-lan20 link set rs2-eth0 up
ip -n lvslab-fullnat-client route add default via 198.51.100.1
ip -n lvslab-fullnat-director route add 172.16.20.0/24 via 10.10.0.254
ip -n lvslab-fullnat-rs1 route add default via 172.16.20.1
ip -n lvslab-fullnat-rs2 route add default via 172.16.20.1
# --- down ---
# lvslab plan --down: lab `fullnat`, instance `fullnat`
ip netns del lvslab-fullnat-client 2>/dev/null || true
ip netns del lvslab-fullnat-director 2>/dev/null || true
ip netns del lvslab-fullnat-router 2>/dev/null || true
ip netns del lvslab-fullnat-rs1 2>/dev/null || true
ip netns del lvslab-fullnat-rs2 2>/dev/null || true
ip netns del lvslab-fullnat-lan20 2>/dev/null || true
