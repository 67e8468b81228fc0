//! ipvsadm's option table: every option's spelling and argument, what it sets, which
//! commands accept it (`commands_v_options`), and the names ipvsadm's messages use.

use lvslab_spec::lb::{ForwardMethod, Protocol};

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
