//! `-h` and `-v` texts.

use lvslab_spec::lb::Scheduler;

use crate::command::{DEFAULT_PERSISTENCE_TIMEOUT, DEFAULT_SCHEDULER};
use crate::error::PROGRAM;

/// `-v`: what this is, in place of ipvsadm's version line.
pub fn version_text() -> String {
    format!("{PROGRAM}: ipvsadm v1.31 command line over lvslab's dataplanes\n")
}

/// `-h`: ipvsadm's usage, in our words, with the FullNAT extension.
pub fn help_text() -> String {
    let schedulers: Vec<&str> = Scheduler::ALL.iter().map(|s| s.name()).collect();
    format!(
        "{PROGRAM}: ipvsadm 1.31 syntax over lvslab's dataplanes (kernel IPVS or userspace)
Usage:
  {PROGRAM} -A|E -t|u|f service-address [-s scheduler] [-p [timeout]] [-M netmask] [--pe engine] [-b sched-flags] [--laddr address ...]
  {PROGRAM} -D -t|u|f service-address
  {PROGRAM} -C
  {PROGRAM} -a|e -t|u|f service-address -r server-address [options]
  {PROGRAM} -d -t|u|f service-address -r server-address
  {PROGRAM} -L|l [-n] [--stats|--rate|--thresholds|--persistent-conn] [--exact] [--nosort] [-t|u|f service-address]
  {PROGRAM} -L --timeout
  {PROGRAM} -Z [-t|u|f service-address]
  {PROGRAM} --set tcp tcpfin udp
  {PROGRAM} -h

Commands (the first option must be the command):
  --add-service     -A        add a virtual service
  --edit-service    -E        rewrite a virtual service (options left out take their defaults)
  --delete-service  -D        delete a virtual service
  --clear           -C        delete every virtual service
  --add-server      -a        add a real server to a service
  --edit-server     -e        rewrite a real server (options left out take their defaults)
  --delete-server   -d        delete a real server
  --list            -L|-l     list services (always numeric)
  --zero            -Z        zero the counters of one service or of all
  --set tcp tcpfin udp        set the tcp, tcpfin and udp timeouts in seconds (0: unchanged)
  --help            -h        this help

Options:
  --tcp-service  -t service-address   address[:port]: 192.0.2.1:80, [2001:db8::1]:80
  --udp-service  -u service-address   (numeric only; names are not resolved)
  --sctp-service    service-address
  --fwmark-service  -f fwmark         firewall mark, an integer greater than zero
  --ipv6         -6                   the fwmark service is IPv6 (after -f)
  --scheduler    -s scheduler         one of {schedulers}; default {default_sched}
  --pe            engine              persistence engine (sip)
  --persistent   -p [timeout]         persistent service; default timeout {DEFAULT_PERSISTENCE_TIMEOUT} s
  --netmask      -M netmask           persistence granularity (IPv4 mask, or IPv6 prefix length)
  --sched-flags  -b flags             comma-separated: sh-fallback, sh-port (with -s sh),
                                      mh-fallback, mh-port (with -s mh), flag-1, flag-2, flag-3
  --ops          -o                   one-packet scheduling (UDP or fwmark services)
  --laddr        address              FullNAT local address of the service (lvslab
                                      extension, repeatable; on -E added to the pool)
  --real-server  -r server-address    address[:port]; without port, the service port
  --gatewaying   -g                   direct routing (the default)
  --ipip         -i                   tunnelling
  --masquerading -m                   masquerading (NAT)
  --fullnat                           FullNAT: source and destination rewritten, the
                                      source taken from the service's --laddr pool
                                      (lvslab extension)
  --tun-type     type                 ipip (default), gue or gre, with -i
  --tun-port     port                 GUE destination port (required for gue)
  --tun-nocsum                        tunnel without checksum (gue, gre; the default)
  --tun-csum                          tunnel with checksum (gue, gre)
  --tun-remcsum                       tunnel with remote checksum offload (gue)
  --weight       -w weight            real server weight, 0..2147483647 (default 1)
  --u-threshold  -x uthreshold        upper connection threshold (0: none)
  --l-threshold  -y lthreshold        lower connection threshold (0: none)
  --numeric      -n                   accepted; listings are always numeric
  --timeout                           list the timeouts (tcp tcpfin udp)
  --stats                             list statistics
  --rate                              list rates
  --thresholds                        list thresholds
  --persistent-conn                   list persistent connections per server
  --exact                -X           print numbers unabbreviated
  --nosort                            keep the dataplane's order
  --sort                              the default; accepted for compatibility

Exit status: 0 success, 2 invalid command line, 255 refused by the dataplane or
unparsable options, 1 listing failed.
",
        schedulers = schedulers.join("|"),
        default_sched = DEFAULT_SCHEDULER.name(),
    )
}
