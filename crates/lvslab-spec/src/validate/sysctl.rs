//! Sysctl keys and values, checked before anything is built.
//!
//! Keys are dotted `net.` names (the node's own namespace) of plain components; in the
//! per-interface folders (`net.ipv{4,6}.{conf,neigh}.<iface>.<setting>`) the interface
//! component is one of the node's interfaces or `all`/`default`. Values are typed: the
//! sysctls labs use have the ranges the kernel documents (Documentation/networking/
//! ip-sysctl.rst, ipvs-sysctl.rst); any other key takes one or more decimal integers
//! within 32 bits separated by single spaces or tabs, like `ip_local_port_range`, and
//! nothing else, so a value can never carry shell syntax.

use super::names::{shown, Refusal};
use crate::file::SysctlValue;

/// What a sysctl accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// One integer in the inclusive range.
    Range(i32, i32),
    /// Two integers in the range; `ordered`: the first not above the second.
    Pair { min: i32, max: i32, ordered: bool },
    /// `ipvs sync_ports`: a power of two.
    PowerOfTwo,
    /// `ipvs sync_threshold`: THRESHOLD PERIOD, both ≥ 0, the threshold below the period
    /// unless the period is 0.
    SyncThreshold,
    /// A CPU list such as `0-3,8`.
    CpuList,
    /// The kernel sets it; writing fails.
    ReadOnly,
    /// A key with no entry: one or more 32-bit integers.
    Integers,
}

const BOOL: Rule = Rule::Range(0, 1);
const INT_MAX: i32 = i32::MAX;

/// Per-interface settings under `net.ipv4.conf.<iface>.`.
const IPV4_CONF: &[(&str, Rule, &str)] = &[
    ("rp_filter", Rule::Range(0, 2), "0: no source validation, 1: strict (RFC 3704), 2: loose"),
    ("arp_ignore", Rule::Range(0, 8), "0: answer for any local address, 1: only for addresses on the asking interface, 2, 3: stricter still, 8: never; 4-7 are reserved"),
    ("arp_announce", Rule::Range(0, 2), "0: any local address, 1: prefer the outgoing interface's subnet, 2: always the best address of the outgoing interface"),
    ("arp_accept", Rule::Range(0, 2), ""),
    ("force_igmp_version", Rule::Range(0, 3), ""),
    ("mc_forwarding", Rule::ReadOnly, "the kernel sets it while a multicast routing daemon runs"),
    ("accept_local", BOOL, ""),
    ("accept_redirects", BOOL, ""),
    ("accept_source_route", BOOL, ""),
    ("arp_evict_nocarrier", BOOL, ""),
    ("arp_filter", BOOL, ""),
    ("arp_notify", BOOL, ""),
    ("bc_forwarding", BOOL, ""),
    ("bootp_relay", BOOL, ""),
    ("disable_policy", BOOL, ""),
    ("disable_xfrm", BOOL, ""),
    ("drop_gratuitous_arp", BOOL, ""),
    ("drop_unicast_in_l2_multicast", BOOL, ""),
    ("forwarding", BOOL, ""),
    ("ignore_routes_with_linkdown", BOOL, ""),
    ("log_martians", BOOL, ""),
    ("promote_secondaries", BOOL, ""),
    ("proxy_arp", BOOL, ""),
    ("proxy_arp_pvlan", BOOL, ""),
    ("route_localnet", BOOL, ""),
    ("secure_redirects", BOOL, ""),
    ("send_redirects", BOOL, ""),
    ("shared_media", BOOL, ""),
    ("src_valid_mark", BOOL, ""),
];

/// Per-interface settings under `net.ipv6.conf.<iface>.`.
const IPV6_CONF: &[(&str, Rule, &str)] = &[
    ("accept_dad", Rule::Range(0, 2), ""),
    ("accept_ra", Rule::Range(0, 2), ""),
    ("hop_limit", Rule::Range(1, 255), ""),
    ("keep_addr_on_down", Rule::Range(-1, 1), ""),
    ("accept_redirects", BOOL, ""),
    ("autoconf", BOOL, ""),
    ("disable_ipv6", BOOL, ""),
    ("disable_policy", BOOL, ""),
    ("forwarding", BOOL, ""),
    ("ignore_routes_with_linkdown", BOOL, ""),
    ("proxy_ndp", BOOL, ""),
];

/// Whole keys.
const GLOBAL: &[(&str, Rule, &str)] = &[
    ("net.ipv4.ip_forward", BOOL, "0: the node does not route, 1: it forwards between its interfaces"),
    ("net.ipv4.ip_nonlocal_bind", BOOL, ""),
    ("net.ipv4.ip_forward_use_pmtu", BOOL, ""),
    ("net.ipv4.ip_no_pmtu_disc", Rule::Range(0, 3), ""),
    ("net.ipv4.ip_default_ttl", Rule::Range(1, 255), ""),
    ("net.ipv4.ip_early_demux", BOOL, ""),
    ("net.ipv4.ip_local_port_range", Rule::Pair { min: 1, max: 65535, ordered: true }, "the first and last local port, e.g. \"32768 60999\""),
    ("net.ipv4.ping_group_range", Rule::Pair { min: 0, max: INT_MAX, ordered: false }, "the first and last group allowed to ping, e.g. \"0 2147483647\""),
    ("net.ipv4.icmp_echo_ignore_all", BOOL, ""),
    ("net.ipv4.icmp_echo_ignore_broadcasts", BOOL, ""),
    ("net.ipv4.icmp_errors_use_inbound_ifaddr", BOOL, ""),
    ("net.ipv4.icmp_ignore_bogus_error_responses", BOOL, ""),
    ("net.ipv4.fib_multipath_hash_policy", Rule::Range(0, 3), ""),
    ("net.ipv4.fib_multipath_use_neigh", BOOL, ""),
    ("net.ipv4.fwmark_reflect", BOOL, ""),
    ("net.ipv4.tcp_fwmark_accept", BOOL, ""),
    ("net.ipv4.tcp_sack", BOOL, ""),
    ("net.ipv4.tcp_syncookies", Rule::Range(0, 2), ""),
    ("net.ipv4.tcp_timestamps", Rule::Range(0, 2), ""),
    ("net.ipv4.tcp_tw_reuse", Rule::Range(0, 2), ""),
    ("net.ipv4.tcp_window_scaling", BOOL, ""),
    ("net.ipv6.fwmark_reflect", BOOL, ""),
    // IPVS (Documentation/networking/ipvs-sysctl.rst); they exist once ip_vs is loaded.
    ("net.ipv4.vs.am_droprate", Rule::Range(0, INT_MAX), ""),
    ("net.ipv4.vs.amemthresh", Rule::Range(0, INT_MAX), ""),
    ("net.ipv4.vs.backup_only", BOOL, ""),
    ("net.ipv4.vs.cache_bypass", BOOL, ""),
    ("net.ipv4.vs.conn_reuse_mode", Rule::Range(0, 3), "a bit map: 0 disables the special handling of reused ports, bit 1 reschedules new connections when it is safe, bit 2 also for TCP connections in FIN_WAIT"),
    ("net.ipv4.vs.conntrack", BOOL, ""),
    ("net.ipv4.vs.drop_entry", Rule::Range(0, 3), "0: never, 1, 2: automatically under memory pressure, 3: always"),
    ("net.ipv4.vs.drop_packet", Rule::Range(0, 3), "0: never, 1, 2: automatically under memory pressure, 3: always"),
    ("net.ipv4.vs.est_cpulist", Rule::CpuList, ""),
    ("net.ipv4.vs.est_nice", Rule::Range(-20, 19), ""),
    ("net.ipv4.vs.expire_nodest_conn", BOOL, ""),
    ("net.ipv4.vs.expire_quiescent_template", BOOL, ""),
    ("net.ipv4.vs.ignore_tunneled", BOOL, ""),
    ("net.ipv4.vs.nat_icmp_send", BOOL, ""),
    ("net.ipv4.vs.pmtu_disc", BOOL, ""),
    ("net.ipv4.vs.run_estimation", BOOL, ""),
    ("net.ipv4.vs.schedule_icmp", BOOL, ""),
    ("net.ipv4.vs.secure_tcp", Rule::Range(0, 3), "0: never, 1, 2: automatically under memory pressure, 3: always"),
    ("net.ipv4.vs.sloppy_sctp", BOOL, ""),
    ("net.ipv4.vs.sloppy_tcp", BOOL, ""),
    ("net.ipv4.vs.snat_reroute", BOOL, ""),
    ("net.ipv4.vs.sync_persist_mode", BOOL, ""),
    ("net.ipv4.vs.sync_ports", Rule::PowerOfTwo, ""),
    ("net.ipv4.vs.sync_qlen_max", Rule::Range(0, INT_MAX), ""),
    ("net.ipv4.vs.sync_refresh_period", Rule::Range(0, INT_MAX), ""),
    ("net.ipv4.vs.sync_retries", Rule::Range(0, 3), ""),
    ("net.ipv4.vs.sync_sock_size", Rule::Range(0, INT_MAX), ""),
    ("net.ipv4.vs.sync_threshold", Rule::SyncThreshold, ""),
    ("net.ipv4.vs.sync_version", BOOL, ""),
];

/// The per-interface folders: `(prefix, names that stand for no single interface)`.
const IFACE_FOLDERS: &[(&str, &[&str])] = &[
    ("net.ipv4.conf.", &["all", "default"]),
    ("net.ipv6.conf.", &["all", "default"]),
    ("net.ipv4.neigh.", &["default"]),
    ("net.ipv6.neigh.", &["default"]),
];

/// A checked key.
#[derive(Debug)]
pub(crate) struct Key<'a> {
    /// The last component, as messages name the setting.
    setting: &'a str,
    rule: Rule,
    doc: &'static str,
}

fn not_in_namespace(key: &str) -> Refusal {
    Refusal {
        message: format!("`{}` is not a per-namespace network sysctl", shown(key)),
        help: Some(
            "labs may set only `net.*` sysctls, which belong to the node's own namespace".into(),
        ),
    }
}

/// Checks a key; `has_iface` says whether the node has an interface of that name.
pub(crate) fn key<'a>(
    key: &'a str,
    node: &str,
    has_iface: &dyn Fn(&str) -> bool,
) -> Result<Key<'a>, Refusal> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.first() != Some(&"net") || parts.len() < 2 {
        return Err(not_in_namespace(key));
    }
    for part in &parts {
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if part.is_empty() || !part.chars().all(plain) {
            return Err(Refusal {
                message: format!(
                    "`{}` is not a sysctl name: `{}` is not a plain component",
                    shown(key),
                    shown(part)
                ),
                help: Some("a sysctl name is dotted components of letters, digits, `_` and `-`, e.g. `net.ipv4.conf.all.rp_filter`".into()),
            });
        }
    }
    let setting = parts[parts.len() - 1];
    for (folder, pseudo) in IFACE_FOLDERS {
        let Some(rest) = key.strip_prefix(folder) else {
            continue;
        };
        let Some((iface, after)) = rest.split_once('.') else {
            return Err(Refusal {
                message: format!("`{}` names a folder of settings, not a setting", shown(key)),
                help: Some(format!(
                    "write `{folder}<interface>.<setting>`, e.g. `{folder}all.{}`",
                    if folder.ends_with("conf.") {
                        "forwarding"
                    } else {
                        "gc_stale_time"
                    }
                )),
            });
        };
        if after.contains('.') {
            return Err(Refusal {
                message: format!("`{}` has more components than `{folder}<interface>.<setting>`", shown(key)),
                help: Some("the interface is one component: an interface whose name holds a `.` cannot be named in a dotted sysctl key".into()),
            });
        }
        if !pseudo.contains(&iface) && !has_iface(iface) {
            return Err(Refusal {
                message: format!("node `{node}` has no interface `{iface}`"),
                help: Some(format!(
                    "per-interface sysctls name {} or one of the node's interfaces (`lo` included)",
                    pseudo
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            });
        }
        let table = match *folder {
            "net.ipv4.conf." => IPV4_CONF,
            "net.ipv6.conf." => IPV6_CONF,
            _ => &[],
        };
        let (rule, doc) = lookup(table, setting);
        return Ok(Key { setting, rule, doc });
    }
    let (rule, doc) = lookup(GLOBAL, key);
    Ok(Key { setting, rule, doc })
}

fn lookup(table: &[(&str, Rule, &'static str)], name: &str) -> (Rule, &'static str) {
    table
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or((Rule::Integers, ""), |(_, r, d)| (*r, *d))
}

/// What a rule accepts, for messages: "0, 1 or 2", "an integer from 1 to 255".
fn accepts(rule: Rule) -> String {
    match rule {
        Rule::Range(lo, hi) if hi - lo <= 3 => {
            let v: Vec<String> = (lo..=hi).map(|n| n.to_string()).collect();
            let (last, first) = v.split_last().expect("a range has values");
            format!("{} or {last}", first.join(", "))
        }
        Rule::Range(lo, hi) => format!("an integer from {lo} to {hi}"),
        Rule::Pair { min, max, ordered } => format!(
            "two integers from {min} to {max} separated by a space{}",
            if ordered { ", the first not above the second" } else { "" }
        ),
        Rule::PowerOfTwo => "a power of two (1, 2, 4, 8, …)".into(),
        Rule::SyncThreshold => "two integers THRESHOLD PERIOD separated by a space, both at least 0, the threshold below the period unless the period is 0".into(),
        Rule::CpuList => "a CPU list such as `0-3,8`".into(),
        Rule::ReadOnly => "no value: it is read-only".into(),
        Rule::Integers => "one or more decimal integers from -2147483648 to 2147483647 separated by single spaces or tabs".into(),
    }
}

/// Checks a value against its key; the value to write.
pub(crate) fn value(key: &Key<'_>, v: &SysctlValue) -> Result<String, Refusal> {
    let refuse = |why: Option<String>| {
        let written = match v {
            SysctlValue::Str(s) => format!("\"{}\"", shown(s)),
            other => other.as_string(),
        };
        let mut message = format!(
            "`{}` takes {}, not {written}",
            key.setting,
            accepts(key.rule)
        );
        if let Some(why) = why {
            message.push_str(&format!(" ({why})"));
        }
        let help = match (key.rule, key.doc) {
            (_, "") if matches!(v, SysctlValue::Bool(_)) => {
                Some("write 1 for true and 0 for false".to_string())
            }
            (_, "") => None,
            (_, doc) => Some(doc.to_string()),
        };
        Refusal { message, help }
    };
    if key.rule == Rule::ReadOnly {
        return Err(refuse(None));
    }
    let (numbers, written) = match v {
        SysctlValue::Int(i) => (vec![*i], i.to_string()),
        SysctlValue::Str(s) if key.rule == Rule::CpuList => {
            return match cpu_list_problem(s) {
                None => Ok(s.clone()),
                Some(why) => Err(refuse(Some(why))),
            };
        }
        SysctlValue::Str(s) => (integers(s).map_err(|why| refuse(Some(why)))?, s.clone()),
        SysctlValue::Bool(_) | SysctlValue::Float(_) => return Err(refuse(None)),
    };
    if numbers.iter().any(|n| i32::try_from(*n).is_err()) {
        return Err(refuse(Some("beyond 32 bits".into())));
    }
    let ok = match key.rule {
        Rule::Range(lo, hi) => {
            numbers.len() == 1 && (i64::from(lo)..=i64::from(hi)).contains(&numbers[0])
        }
        Rule::Pair { min, max, ordered } => {
            numbers.len() == 2
                && numbers
                    .iter()
                    .all(|n| (i64::from(min)..=i64::from(max)).contains(n))
                && (!ordered || numbers[0] <= numbers[1])
        }
        Rule::PowerOfTwo => {
            numbers.len() == 1 && numbers[0] > 0 && (numbers[0] & (numbers[0] - 1)) == 0
        }
        Rule::SyncThreshold => {
            numbers.len() == 2
                && numbers.iter().all(|n| *n >= 0)
                && (numbers[0] < numbers[1] || numbers[1] == 0)
        }
        Rule::CpuList => false,
        Rule::ReadOnly => false,
        Rule::Integers => !numbers.is_empty(),
    };
    if ok {
        Ok(written)
    } else {
        Err(refuse(None))
    }
}

/// Decimal integers separated by single spaces or tabs, as the kernel's integer sysctls
/// read them; a leading `0` is refused because the kernel would read the number as octal.
fn integers(s: &str) -> Result<Vec<i64>, String> {
    if s.is_empty() {
        return Err("the value is empty".into());
    }
    let mut out = Vec::new();
    for token in s.split([' ', '\t']) {
        if token.is_empty() {
            return Err(
                "separate numbers by single spaces or tabs, with none before or after".into(),
            );
        }
        let digits = token.strip_prefix('-').unwrap_or(token);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{}` is not a decimal integer", shown(token)));
        }
        if digits.len() > 1 && digits.starts_with('0') {
            return Err(format!(
                "`{token}` has a leading 0, which the kernel reads as octal"
            ));
        }
        // More than 11 digits is beyond 32 bits anyway; keep the parse from overflowing.
        let n = if digits.len() > 11 {
            i64::MAX
        } else {
            token.parse::<i64>().unwrap_or(i64::MAX)
        };
        out.push(n);
    }
    Ok(out)
}

/// `0-3,8`: CPU numbers and ranges, separated by commas; what is wrong with `s`, if
/// anything.
fn cpu_list_problem(s: &str) -> Option<String> {
    let number = |t: &str| -> Option<u32> {
        (!t.is_empty() && t.len() <= 5 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    for item in s.split(',') {
        let ok = match item.split_once('-') {
            Some((a, b)) => matches!((number(a), number(b)), (Some(a), Some(b)) if a <= b),
            None => number(item).is_some(),
        };
        if !ok {
            return Some(format!("`{}` is not a CPU number or range", shown(item)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(i: &str) -> bool {
        matches!(i, "eth0" | "lo" | "tunl0")
    }

    fn check(k: &str, v: SysctlValue) -> Result<String, String> {
        let key = key(k, "n", &has).map_err(|r| format!("key: {}", r.message))?;
        value(&key, &v).map_err(|r| r.message)
    }

    fn int(i: i64) -> SysctlValue {
        SysctlValue::Int(i)
    }

    fn text(s: &str) -> SysctlValue {
        SysctlValue::Str(s.into())
    }

    #[test]
    fn rp_filter_takes_0_1_or_2() {
        for v in 0..=2 {
            assert_eq!(
                check("net.ipv4.conf.all.rp_filter", int(v)),
                Ok(v.to_string())
            );
        }
        assert_eq!(
            check("net.ipv4.conf.eth0.rp_filter", text("2")),
            Ok("2".into())
        );
        assert_eq!(
            check("net.ipv4.conf.all.rp_filter", int(4294967296)),
            Err("`rp_filter` takes 0, 1 or 2, not 4294967296 (beyond 32 bits)".into())
        );
        assert_eq!(
            check("net.ipv4.conf.tunl0.rp_filter", int(3)),
            Err("`rp_filter` takes 0, 1 or 2, not 3".into())
        );
        assert_eq!(
            check("net.ipv4.conf.all.rp_filter", int(-1)),
            Err("`rp_filter` takes 0, 1 or 2, not -1".into())
        );
    }

    #[test]
    fn typed_sysctls_have_the_kernels_ranges() {
        let ok = |k: &str, v: i64| check(k, int(v)).is_ok();
        assert!(ok("net.ipv4.conf.lo.arp_ignore", 8) && !ok("net.ipv4.conf.lo.arp_ignore", 9));
        assert!(
            ok("net.ipv4.conf.all.arp_announce", 2) && !ok("net.ipv4.conf.all.arp_announce", 3)
        );
        for k in [
            "net.ipv4.ip_forward",
            "net.ipv4.conf.all.send_redirects",
            "net.ipv4.conf.eth0.accept_redirects",
            "net.ipv4.conf.default.accept_local",
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.eth0.forwarding",
            "net.ipv4.conf.all.proxy_arp",
            "net.ipv4.vs.conntrack",
        ] {
            assert!(ok(k, 0) && ok(k, 1) && !ok(k, 2), "{k}");
        }
        assert!(ok("net.ipv4.vs.secure_tcp", 3) && !ok("net.ipv4.vs.secure_tcp", 4));
        assert!(ok("net.ipv4.vs.est_nice", -20) && !ok("net.ipv4.vs.est_nice", 20));
        assert!(ok("net.ipv4.vs.sync_ports", 4) && !ok("net.ipv4.vs.sync_ports", 3));
        assert!(!ok("net.ipv4.vs.sync_ports", 0));
        assert!(ok("net.ipv4.ip_default_ttl", 255) && !ok("net.ipv4.ip_default_ttl", 0));
        assert_eq!(
            check("net.ipv4.ip_default_ttl", int(256)),
            Err("`ip_default_ttl` takes an integer from 1 to 255, not 256".into())
        );
        assert_eq!(
            check("net.ipv4.ip_forward", SysctlValue::Bool(true)),
            Err("`ip_forward` takes 0 or 1, not true".into())
        );
        assert!(check("net.ipv4.conf.all.mc_forwarding", int(0)).is_err());
    }

    #[test]
    fn pairs_and_lists() {
        let port_range = |v: &str| check("net.ipv4.ip_local_port_range", text(v));
        assert_eq!(port_range("32768 60999"), Ok("32768 60999".into()));
        assert_eq!(port_range("1024\t65535"), Ok("1024\t65535".into()));
        assert!(port_range("60999 32768").is_err());
        assert!(port_range("0 100").is_err());
        assert!(port_range("1024").is_err());
        assert!(port_range("1024  2048").is_err());
        assert!(check("net.ipv4.ping_group_range", text("1 0")).is_ok());
        let threshold = |v: &str| check("net.ipv4.vs.sync_threshold", text(v));
        assert!(threshold("3 50").is_ok() && threshold("3 0").is_ok());
        assert!(threshold("50 3").is_err() && threshold("-1 50").is_err());
        let cpus = |v: &str| check("net.ipv4.vs.est_cpulist", text(v));
        assert!(cpus("0-3,8").is_ok() && cpus("1").is_ok());
        for bad in ["", "3-1", "0;reboot", "a", "0,,1", "0-"] {
            assert!(cpus(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn other_keys_take_32_bit_integers_and_nothing_else() {
        let any = |v: SysctlValue| check("net.core.somaxconn", v);
        assert_eq!(any(int(4096)), Ok("4096".into()));
        assert_eq!(any(text("-5")), Ok("-5".into()));
        assert_eq!(any(text("1 2 3")), Ok("1 2 3".into()));
        assert_eq!(any(int(i64::from(i32::MIN))), Ok("-2147483648".into()));
        assert!(any(int(i64::from(i32::MAX) + 1)).is_err());
        assert!(any(text("99999999999999999999999")).is_err());
        let hostile = any(text("1;touch x")).expect_err("shell syntax");
        assert_eq!(hostile, "`somaxconn` takes one or more decimal integers from -2147483648 to 2147483647 separated by single spaces or tabs, not \"1;touch x\" (`1;touch` is not a decimal integer)");
        for bad in [
            "",
            " 1",
            "1 ",
            "1  2",
            "1\n2",
            "$(reboot)",
            "`id`",
            "1.5",
            "+1",
            "0x10",
            "-",
            "1,2",
            "1\u{0}",
        ] {
            assert!(any(text(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(any(text("010")).expect_err("octal").contains("leading 0"));
        assert!(any(SysctlValue::Float(1.5)).is_err());
    }

    #[test]
    fn keys_are_net_dotted_plain_names_of_the_nodes_interfaces() {
        let key_err = |k: &str| key(k, "n", &has).expect_err(k).message;
        assert!(key_err("kernel.panic").contains("not a per-namespace network sysctl"));
        assert!(key_err("net").contains("not a per-namespace network sysctl"));
        assert!(key_err("net..ipv4").contains("is not a plain component"));
        assert!(key_err("net.ipv4/../../kernel").contains("is not a plain component"));
        assert!(
            key_err("net.ipv4.conf.e$(x).rp_filter").contains("`e$(x)` is not a plain component")
        );
        assert!(key_err("net.ipv4.ip_forward\n").contains("is not a plain component"));
        assert_eq!(
            key_err("net.ipv4.conf.eth7.rp_filter"),
            "node `n` has no interface `eth7`"
        );
        assert!(key_err("net.ipv6.neigh.all.gc_stale_time").contains("no interface `all`"));
        assert!(key_err("net.ipv4.conf.eth0").contains("names a folder"));
        assert!(key_err("net.ipv4.conf.eth0.100.rp_filter").contains("more components"));
        for k in [
            "net.ipv4.conf.all.rp_filter",
            "net.ipv4.conf.default.rp_filter",
            "net.ipv4.conf.lo.arp_ignore",
            "net.ipv6.conf.eth0.disable_ipv6",
            "net.ipv4.neigh.default.gc_thresh1",
            "net.ipv4.neigh.eth0.base_reachable_time_ms",
            "net.core.somaxconn",
            "net.ipv4.vs.expire_nodest_conn",
        ] {
            assert!(key(k, "n", &has).is_ok(), "{k} refused");
        }
    }
}
