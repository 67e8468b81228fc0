//! ipvsadm's option table: every option's spelling and argument, what it sets, which
//! commands accept it (`commands_v_options`), and the names ipvsadm's messages use.

use lvslab_spec::lb::{ForwardMethod, Protocol, Scheduler};

/// ipvsadm's commands, in the order of its compatibility table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Cmd {
    #[default]
    AddService,
    EditService,
    DeleteService,
    Flush,
    List,
    AddDest,
    DeleteDest,
    EditDest,
    SetTimeouts,
    Zero,
}

impl Cmd {
    /// ipvsadm's `cmdnames`, used in its messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cmd::AddService => "add-service",
            Cmd::EditService => "edit-service",
            Cmd::DeleteService => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DeleteDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::SetTimeouts => "set",
            Cmd::Zero => "zero",
        }
    }
}

/// The option groups ipvsadm checks against each command (one bit each), in the order of
/// its table so that messages name the same option first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Exact,
    Ops,
    Pe,
    SchedFlags,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Laddr,
}

impl Group {
    pub(crate) const ALL: [Group; 29] = [
        Group::Numeric,
        Group::Connection,
        Group::Service,
        Group::Scheduler,
        Group::Persistent,
        Group::Netmask,
        Group::RealServer,
        Group::Forward,
        Group::Weight,
        Group::UThreshold,
        Group::LThreshold,
        Group::Timeout,
        Group::Daemon,
        Group::Stats,
        Group::Rate,
        Group::Thresholds,
        Group::PersistentConn,
        Group::NoSort,
        Group::Exact,
        Group::Ops,
        Group::Pe,
        Group::SchedFlags,
        Group::TunInfo,
        Group::TunType,
        Group::TunPort,
        Group::TunNocsum,
        Group::TunCsum,
        Group::TunRemcsum,
        Group::Laddr,
    ];

    pub(crate) fn bit(self) -> u64 {
        1 << (self as u32)
    }

    /// ipvsadm's `optnames` (plus `laddr`, ours).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Group::Numeric => "numeric",
            Group::Connection => "connection",
            Group::Service => "service-address",
            Group::Scheduler => "scheduler",
            Group::Persistent => "persistent",
            Group::Netmask => "netmask",
            Group::RealServer => "real-server",
            Group::Forward => "forwarding-method",
            Group::Weight => "weight",
            Group::UThreshold => "u-threshold",
            Group::LThreshold => "l-threshold",
            Group::Timeout => "timeout",
            Group::Daemon => "daemon",
            Group::Stats => "stats",
            Group::Rate => "rate",
            Group::Thresholds => "thresholds",
            Group::PersistentConn => "persistent-conn",
            Group::NoSort => "nosort",
            Group::Exact => "exact",
            Group::Ops => "ops",
            Group::Pe => "pe",
            Group::SchedFlags => "sched-flags",
            Group::TunInfo => "tun-info",
            Group::TunType => "tun-type",
            Group::TunPort => "tun-port",
            Group::TunNocsum => "tun-nocsum",
            Group::TunCsum => "tun-csum",
            Group::TunRemcsum => "tun-remcsum",
            Group::Laddr => "laddr",
        }
    }
}

/// How an option group may appear with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Required,
    Illegal,
    /// At most one of the exclusive options.
    Exclusive,
    Optional,
}

/// ipvsadm's `commands_v_options` table, plus `--laddr` for `-A`/`-E`.
pub(crate) fn rule(cmd: Cmd, g: Group) -> Rule {
    use Group as G;
    match cmd {
        Cmd::AddService | Cmd::EditService => match g {
            G::Service => Rule::Required,
            G::Scheduler
            | G::Persistent
            | G::Netmask
            | G::Ops
            | G::Pe
            | G::SchedFlags
            | G::Laddr => Rule::Optional,
            _ => Rule::Illegal,
        },
        Cmd::DeleteService => match g {
            G::Service => Rule::Required,
            _ => Rule::Illegal,
        },
        Cmd::Flush | Cmd::SetTimeouts => Rule::Illegal,
        Cmd::List => match g {
            G::Connection | G::Service | G::Timeout | G::Daemon => Rule::Exclusive,
            G::Numeric
            | G::Stats
            | G::Rate
            | G::Thresholds
            | G::PersistentConn
            | G::NoSort
            | G::Exact
            | G::TunInfo => Rule::Optional,
            _ => Rule::Illegal,
        },
        Cmd::AddDest | Cmd::EditDest => match g {
            G::Service | G::RealServer => Rule::Required,
            G::Forward
            | G::Weight
            | G::UThreshold
            | G::LThreshold
            | G::TunType
            | G::TunPort
            | G::TunNocsum
            | G::TunCsum
            | G::TunRemcsum => Rule::Optional,
            _ => Rule::Illegal,
        },
        Cmd::DeleteDest => match g {
            G::Service | G::RealServer => Rule::Required,
            _ => Rule::Illegal,
        },
        Cmd::Zero => match g {
            G::Service => Rule::Optional,
            _ => Rule::Illegal,
        },
    }
}

/// What an option does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Cmd(Cmd),
    Help,
    Version,
    /// Recognised ipvsadm option that lvslab does not implement (named in the error).
    Unsupported(&'static str),
    Service(Protocol),
    Fwmark,
    Ipv6,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Method(ForwardMethod),
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ops,
    Pe,
    SchedFlags,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Laddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg {
    None,
    Required,
    /// Taken attached, or from the next word unless it starts with `-` (popt's rule).
    Optional,
}

#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) long: &'static str,
    pub(crate) short: Option<char>,
    pub(crate) arg: Arg,
    pub(crate) key: Key,
}

pub(crate) const fn spec(long: &'static str, short: Option<char>, arg: Arg, key: Key) -> Spec {
    Spec {
        long,
        short,
        arg,
        key,
    }
}

pub(crate) static SPECS: &[Spec] = &[
    spec(
        "add-service",
        Some('A'),
        Arg::None,
        Key::Cmd(Cmd::AddService),
    ),
    spec(
        "edit-service",
        Some('E'),
        Arg::None,
        Key::Cmd(Cmd::EditService),
    ),
    spec(
        "delete-service",
        Some('D'),
        Arg::None,
        Key::Cmd(Cmd::DeleteService),
    ),
    spec("clear", Some('C'), Arg::None, Key::Cmd(Cmd::Flush)),
    spec("list", Some('L'), Arg::None, Key::Cmd(Cmd::List)),
    spec("list", Some('l'), Arg::None, Key::Cmd(Cmd::List)),
    spec("zero", Some('Z'), Arg::None, Key::Cmd(Cmd::Zero)),
    spec("add-server", Some('a'), Arg::None, Key::Cmd(Cmd::AddDest)),
    spec("edit-server", Some('e'), Arg::None, Key::Cmd(Cmd::EditDest)),
    spec(
        "delete-server",
        Some('d'),
        Arg::None,
        Key::Cmd(Cmd::DeleteDest),
    ),
    spec("set", None, Arg::None, Key::Cmd(Cmd::SetTimeouts)),
    spec("help", Some('h'), Arg::None, Key::Help),
    spec("version", Some('v'), Arg::None, Key::Version),
    spec(
        "restore",
        Some('R'),
        Arg::None,
        Key::Unsupported("--restore (-R)"),
    ),
    spec(
        "save",
        Some('S'),
        Arg::None,
        Key::Unsupported("--save (-S)"),
    ),
    spec(
        "start-daemon",
        None,
        Arg::Required,
        Key::Unsupported("--start-daemon"),
    ),
    spec(
        "stop-daemon",
        None,
        Arg::Required,
        Key::Unsupported("--stop-daemon"),
    ),
    spec(
        "mcast-interface",
        None,
        Arg::Required,
        Key::Unsupported("--mcast-interface"),
    ),
    spec("syncid", None, Arg::Required, Key::Unsupported("--syncid")),
    spec(
        "mcast-group",
        None,
        Arg::Required,
        Key::Unsupported("--mcast-group"),
    ),
    spec(
        "mcast-port",
        None,
        Arg::Required,
        Key::Unsupported("--mcast-port"),
    ),
    spec(
        "mcast-ttl",
        None,
        Arg::Required,
        Key::Unsupported("--mcast-ttl"),
    ),
    spec(
        "sync-maxlen",
        None,
        Arg::Required,
        Key::Unsupported("--sync-maxlen"),
    ),
    spec(
        "tcp-service",
        Some('t'),
        Arg::Required,
        Key::Service(Protocol::Tcp),
    ),
    spec(
        "udp-service",
        Some('u'),
        Arg::Required,
        Key::Service(Protocol::Udp),
    ),
    spec(
        "sctp-service",
        None,
        Arg::Required,
        Key::Service(Protocol::Sctp),
    ),
    spec("fwmark-service", Some('f'), Arg::Required, Key::Fwmark),
    spec("ipv6", Some('6'), Arg::None, Key::Ipv6),
    spec("scheduler", Some('s'), Arg::Required, Key::Scheduler),
    spec("persistent", Some('p'), Arg::Optional, Key::Persistent),
    spec("netmask", Some('M'), Arg::Required, Key::Netmask),
    spec("real-server", Some('r'), Arg::Required, Key::RealServer),
    spec(
        "masquerading",
        Some('m'),
        Arg::None,
        Key::Method(ForwardMethod::Nat),
    ),
    spec(
        "ipip",
        Some('i'),
        Arg::None,
        Key::Method(ForwardMethod::Tunnel),
    ),
    spec(
        "gatewaying",
        Some('g'),
        Arg::None,
        Key::Method(ForwardMethod::Dr),
    ),
    spec(
        "fullnat",
        None,
        Arg::None,
        Key::Method(ForwardMethod::FullNat),
    ),
    spec("weight", Some('w'), Arg::Required, Key::Weight),
    spec("u-threshold", Some('x'), Arg::Required, Key::UThreshold),
    spec("l-threshold", Some('y'), Arg::Required, Key::LThreshold),
    spec("numeric", Some('n'), Arg::None, Key::Numeric),
    spec("connection", Some('c'), Arg::None, Key::Connection),
    spec("timeout", None, Arg::None, Key::Timeout),
    spec("daemon", None, Arg::None, Key::Daemon),
    spec("stats", None, Arg::None, Key::Stats),
    spec("rate", None, Arg::None, Key::Rate),
    spec("thresholds", None, Arg::None, Key::Thresholds),
    spec("persistent-conn", None, Arg::None, Key::PersistentConn),
    spec("nosort", None, Arg::None, Key::NoSort),
    spec("sort", None, Arg::None, Key::Sort),
    spec("exact", Some('X'), Arg::None, Key::Exact),
    spec("ops", Some('o'), Arg::None, Key::Ops),
    spec("pe", None, Arg::Required, Key::Pe),
    spec("sched-flags", Some('b'), Arg::Required, Key::SchedFlags),
    spec("tun-info", None, Arg::None, Key::TunInfo),
    spec("tun-type", None, Arg::Required, Key::TunType),
    spec("tun-port", None, Arg::Required, Key::TunPort),
    spec("tun-nocsum", None, Arg::None, Key::TunNocsum),
    spec("tun-csum", None, Arg::None, Key::TunCsum),
    spec("tun-remcsum", None, Arg::None, Key::TunRemcsum),
    spec("laddr", None, Arg::Required, Key::Laddr),
];

impl Key {
    /// The group ipvsadm's compatibility table checks this option under, if any.
    pub(crate) fn group(self) -> Option<Group> {
        let g = match self {
            Key::Service(_) | Key::Fwmark => Group::Service,
            Key::Scheduler => Group::Scheduler,
            Key::Persistent => Group::Persistent,
            Key::Netmask => Group::Netmask,
            Key::RealServer => Group::RealServer,
            Key::Method(_) => Group::Forward,
            Key::Weight => Group::Weight,
            Key::UThreshold => Group::UThreshold,
            Key::LThreshold => Group::LThreshold,
            Key::Numeric => Group::Numeric,
            Key::Connection => Group::Connection,
            Key::Timeout => Group::Timeout,
            Key::Daemon => Group::Daemon,
            Key::Stats => Group::Stats,
            Key::Rate => Group::Rate,
            Key::Thresholds => Group::Thresholds,
            Key::PersistentConn => Group::PersistentConn,
            Key::NoSort => Group::NoSort,
            Key::Exact => Group::Exact,
            Key::Ops => Group::Ops,
            Key::Pe => Group::Pe,
            Key::SchedFlags => Group::SchedFlags,
            Key::TunInfo => Group::TunInfo,
            Key::TunType => Group::TunType,
            Key::TunPort => Group::TunPort,
            Key::TunNocsum => Group::TunNocsum,
            Key::TunCsum => Group::TunCsum,
            Key::TunRemcsum => Group::TunRemcsum,
            Key::Laddr => Group::Laddr,
            Key::Cmd(_)
            | Key::Help
            | Key::Version
            | Key::Unsupported(_)
            | Key::Ipv6
            | Key::Sort => return None,
        };
        Some(g)
    }
}

impl Spec {
    /// How the help writes it: `-w (--weight)`, or `--pe` when there is no short form.
    pub(crate) fn spelling(&self) -> String {
        match self.short {
            Some(c) => format!("-{c} (--{})", self.long),
            None => format!("--{}", self.long),
        }
    }
}

impl Group {
    /// The options that set this group, as the help writes them (`-t (--tcp-service),
    /// -u (--udp-service), …`).
    pub(crate) fn spellings(self) -> String {
        let mut seen: Vec<&str> = Vec::new();
        let mut out: Vec<String> = Vec::new();
        for s in SPECS.iter().filter(|s| s.key.group() == Some(self)) {
            // `-L` and `-l` share a long name; list it once.
            if !seen.contains(&s.long) {
                seen.push(s.long);
                out.push(s.spelling());
            }
        }
        out.join(", ")
    }
}

/// What an option's value is, with an example, for messages about a missing or bad one.
pub(crate) fn value_help(key: Key) -> String {
    let text = match key {
        Key::Service(_) => {
            "a numeric service address with its port, e.g. 192.0.2.1:80 or [2001:db8::1]:80"
        }
        Key::Fwmark => "a firewall mark, an integer from 1 to 4294967295",
        Key::Scheduler => {
            let names: Vec<&str> = Scheduler::ALL.iter().map(|s| s.name()).collect();
            return format!("a scheduler: {}", names.join(", "));
        }
        Key::Persistent => "a timeout in seconds, from 1 to 2678400 (31 days)",
        Key::Netmask => "an IPv4 mask such as 255.255.255.0, or an IPv6 prefix length 1 to 128",
        Key::RealServer => "a numeric real-server address, port optional, e.g. 192.0.2.11:8080",
        Key::Weight => "a weight, an integer from 0 to 2147483647",
        Key::UThreshold | Key::LThreshold => {
            "a connection count from 0 to 2147483647 (0: no threshold)"
        }
        Key::Pe => "a persistence engine name, e.g. sip",
        Key::SchedFlags => SCHED_FLAGS_HELP,
        Key::TunType => "a tunnel type: ipip, gue or gre",
        Key::TunPort => "a port from 1 to 65535",
        Key::Laddr => "a numeric IPv4 or IPv6 address",
        _ => "a value",
    };
    text.to_string()
}

/// The commands, for messages about a missing one.
pub(crate) const COMMANDS_HELP: &str = "-A (add a service), -E (edit one), -D (delete one), \
     -a (add a real server), -e (edit one), -d (delete one), -L (list), -Z (zero counters), \
     -C (clear all), --set (timeouts), -h (help)";

/// The scheduler flags `-b` takes, for messages.
pub(crate) const SCHED_FLAGS_HELP: &str = "comma-separated scheduler flags: sh-fallback, \
     sh-port (with -s sh), mh-fallback, mh-port (with -s mh), flag-1, flag-2, flag-3";

/// The long option closest to a misspelt one (`weigth` → `weight`), when one is close.
pub(crate) fn closest_long(name: &str) -> Option<&'static str> {
    SPECS
        .iter()
        .map(|s| (edit_distance(name, s.long), s.long))
        .filter(|(d, long)| *d <= 2 && *d < long.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, long)| long)
}

/// Levenshtein distance over chars (option names are short; argv words are bounded by
/// what a command line holds, and only their first 64 chars are compared).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// One way to write an option, for tests and fuzzers that build command lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpelling {
    /// The long name, without `--`.
    pub long: &'static str,
    /// The short letter, if any.
    pub short: Option<char>,
    /// Whether it takes a value (required, or optional like `-p`).
    pub takes_value: bool,
}

/// Every option ipvsadm (and this front end) knows, in table order.
pub fn option_spellings() -> Vec<OptionSpelling> {
    SPECS
        .iter()
        .map(|s| OptionSpelling {
            long: s.long,
            short: s.short,
            takes_value: s.arg != Arg::None,
        })
        .collect()
}

/// The names ipvsadm's messages give options (`service-address`, `forwarding-method`, …)
/// and every long option name: what a message may name when an option is missing.
pub fn option_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Group::ALL.iter().map(|g| g.name()).collect();
    names.extend(SPECS.iter().map(|s| s.long));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_long_options_find_their_neighbour() {
        assert_eq!(closest_long("weigth"), Some("weight"));
        assert_eq!(closest_long("tcp-servce"), Some("tcp-service"));
        assert_eq!(closest_long("stat"), Some("stats"));
        assert_eq!(closest_long("frobnicate"), None);
        // A one-letter word is not "close" to every two-letter name.
        assert_eq!(closest_long("q"), None);
    }

    #[test]
    fn every_group_but_the_list_only_ones_has_an_option() {
        for g in Group::ALL {
            assert!(!g.spellings().is_empty(), "{g:?}");
        }
        assert_eq!(
            Group::Service.spellings(),
            "-t (--tcp-service), -u (--udp-service), --sctp-service, -f (--fwmark-service)"
        );
        assert_eq!(Group::Weight.spellings(), "-w (--weight)");
    }

    #[test]
    fn spellings_are_unique() {
        let all = option_spellings();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(a.short.is_none() || a.short != b.short, "{a:?} {b:?}");
                // `--list` is spelt by -L and -l.
                assert!(a.long != b.long || a.long == "list", "{a:?} {b:?}");
            }
        }
    }
}
