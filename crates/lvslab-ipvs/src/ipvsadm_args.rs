//! `lvslab ipvsadm`: ipvsadm 1.31's command line, executed against any [`LoadBalancer`].
//!
//! [`parse`] turns the arguments (without the program name) into a [`Command`] the way
//! ipvsadm's option processing does, with the same checks in the same order and the same
//! messages; [`run`] parses, executes against a dataplane and returns what ipvsadm would
//! have printed and its exit status. Listings go through [`crate::ipvsadm_listing`].
//!
//! Rules reproduced from ipvsadm 1.31:
//! - The first option must be a command (`-A -E -D -C -L/-l -Z -a -e -d --set -h -v`);
//!   short options cluster (`-Ln`), take their argument attached or as the next word
//!   (`-w3`, `-w 3`, `--weight=3`); `-p`'s timeout is optional and only taken from the next
//!   word when that word does not start with `-`.
//! - Every `-A`/`-E` sends a complete service and every `-a`/`-e` a complete destination:
//!   what is not on the command line gets ipvsadm's default (scheduler `wlc`, no
//!   persistence, netmask /32 or /128, weight 1, direct routing, thresholds 0, tunnel
//!   type ipip). So `-E` without `-s` switches the scheduler to wlc and `-e -w 5` on a NAT
//!   destination turns it into DR unless `-m` is repeated.
//! - `-p` without a value means [`DEFAULT_PERSISTENCE_TIMEOUT`] (360 s: ipvsadm's code uses
//!   libipvs' `IPVS_SVC_PERSISTENT_TIMEOUT`, 6·60, although its manual page says 300).
//! - `host:port` takes numeric addresses only (`192.0.2.1:80`, `[2001:db8::1]:80`,
//!   `2001:db8::1` without port); names are never resolved (ipvsadm would look them up).
//!   A real server without port inherits the service port; for DR and tunnelling
//!   (non-fwmark services) the real server's port is forced to the service port.
//! - Command/option compatibility follows ipvsadm's table, with its messages
//!   (`You need to supply the 'real-server' option for the 'add-server' command`, …).
//! - Listings are always numeric (`-n` is accepted; without it ipvsadm would print names).
//!
//! Exit codes, as ipvsadm: **2** for its usage checks (`fail(2, …)`: illegal values,
//! missing/illegal options, conflicts); **255** when option parsing itself fails (unknown
//! option, missing argument, no command: ipvsadm returns -1) and when the dataplane
//! rejects a change (ipvsadm prints libipvs' message and returns -1); **1** when a listing
//! cannot be read (ipvsadm's `exit(1)`); 0 on success. An unknown scheduler is reported
//! like the kernel's refusal (`Scheduler or persistence engine not found`, 255), because
//! ipvsadm itself does not check scheduler names.
//!
//! Extension for FullNAT (not in ipvsadm; DPVS spells it `-b`, which ipvsadm 1.31 already
//! uses for `--sched-flags`): `--fullnat` is a fourth forwarding method for `-a`/`-e`
//! (real server port kept, like `-m`), and `--laddr ADDR` (repeatable) gives a service's
//! local-address pool on `-A`/`-E`. On `-E`, `--laddr` adds to the service's existing
//! pool and an `-E` without `--laddr` keeps it (the pool is not reset to a default).
//!
//! Not supported (clear error, exit 2): connection listing `-c`, `--daemon`, `--tun-info`,
//! `-R`/`-S`, sync daemons.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_spec::lb::{
    DestConfig, Encap, Family, ForwardMethod, LbError, LoadBalancer, Protocol, Scheduler,
    ServiceConfig, ServiceFlags, ServiceKey, Timeouts,
};

use crate::ipvsadm_listing::{self, Layout, ListingOptions};

/// `-p` without a timeout: libipvs' `IPVS_SVC_PERSISTENT_TIMEOUT` (6 minutes).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;
/// Largest timeout ipvsadm accepts (`-p`, `--set`): 31 days.
pub const MAX_TIMEOUT: u32 = 86_400 * 31;
/// Scheduler `-A`/`-E` send when `-s` is absent.
pub const DEFAULT_SCHEDULER: Scheduler = Scheduler::Wlc;
/// Exit status of ipvsadm's own checks (`fail(2, …)`).
pub const EXIT_USAGE: i32 = 2;
/// Exit status when option parsing fails or the dataplane refuses a change (ipvsadm
/// returns -1 from `main`).
pub const EXIT_FAILED: i32 = 255;
/// Exit status when a listing cannot be read (ipvsadm's `exit(1)`).
pub const EXIT_LIST_FAILED: i32 = 1;

/// Program name used in messages that name the program.
const PROGRAM: &str = "lvslab ipvsadm";

/// What a run printed and its exit status, as ipvsadm would have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Standard output (listings, help).
    pub stdout: String,
    /// Standard error (messages, one per line).
    pub stderr: String,
    /// Exit status (see the module documentation).
    pub exit_code: i32,
}

impl Outcome {
    fn ok(stdout: String) -> Self {
        Outcome {
            stdout,
            stderr: String::new(),
            exit_code: 0,
        }
    }

    fn error(message: &str, exit_code: i32) -> Self {
        Outcome {
            stdout: String::new(),
            stderr: format!("{message}\n"),
            exit_code,
        }
    }
}

/// A command line ipvsadm would reject, with its message and exit status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// The message, as ipvsadm words it (possibly several lines, no final newline).
    pub message: String,
    /// [`EXIT_USAGE`] or [`EXIT_FAILED`].
    pub exit_code: i32,
}

impl UsageError {
    fn fail(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            exit_code: EXIT_USAGE,
        }
    }

    fn popt(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            exit_code: EXIT_FAILED,
        }
    }

    fn try_help() -> Self {
        Self::popt(format!(
            "Try `{PROGRAM} -h' or '{PROGRAM} --help' for more information."
        ))
    }

    fn unsupported(what: &str) -> Self {
        Self::fail(format!("{what} is not supported by {PROGRAM}"))
    }
}

/// What a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListTarget {
    /// `-L`: every service, with the version line.
    All,
    /// `-L -t/-u/-f SERVICE`: one service, without the version line.
    Service(ServiceKey),
    /// `-L --timeout`.
    Timeouts,
}

/// A parsed command line, with ipvsadm's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`: the complete service to create.
    AddService(ServiceConfig),
    /// `-E`: the complete service to send. `local_addresses` holds only the `--laddr`
    /// given on the command line; [`execute`] adds them to the service's current pool.
    EditService(ServiceConfig),
    /// `-D`.
    DeleteService(ServiceKey),
    /// `-a`: the complete destination to add to `service`.
    AddDest {
        /// The virtual service.
        service: ServiceKey,
        /// The destination, defaults applied.
        dest: DestConfig,
    },
    /// `-e`: the complete destination to send (every field is rewritten).
    EditDest {
        /// The virtual service.
        service: ServiceKey,
        /// The destination, defaults applied.
        dest: DestConfig,
    },
    /// `-d`.
    DeleteDest {
        /// The virtual service.
        service: ServiceKey,
        /// Real server address.
        addr: IpAddr,
        /// Real server port (the service port when `-r` had none).
        port: u16,
    },
    /// `-C`.
    Flush,
    /// `-Z [SERVICE]`.
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp` (0 leaves a value unchanged).
    SetTimeouts(Timeouts),
    /// `-L`/`-l`.
    List {
        /// What to list.
        target: ListTarget,
        /// Layout and sorting.
        options: ListingOptions,
    },
    /// `-h`/`--help`.
    Help,
    /// `-v`/`--version`.
    Version,
}

/// Parses `args` then executes the command against `lb`.
pub fn run(args: &[String], lb: &mut dyn LoadBalancer) -> Outcome {
    match parse(args) {
        Ok(cmd) => execute(&cmd, lb),
        Err(e) => Outcome::error(&e.message, e.exit_code),
    }
}

/// Parses ipvsadm arguments (without the program name). No arguments at all means `-L`.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, UsageError> {
    if args.is_empty() {
        return Ok(Command::List {
            target: ListTarget::All,
            options: ListingOptions::default(),
        });
    }
    let (events, popt_error) = tokenize(args);
    let mut events = events.into_iter();
    let mut state = State::default();

    // ipvsadm reads the command from the very first option and nothing else.
    let first = loop {
        match events.next() {
            Some(Event::Arg(a)) => state.positionals.push(a),
            Some(Event::Opt { spec, value, .. }) => break (spec, value),
            None => return Err(UsageError::try_help()),
        }
    };
    state.cmd = match first.0.key {
        Key::Cmd(c) => c,
        Key::Help => return Ok(Command::Help),
        Key::Version => return Ok(Command::Version),
        Key::Unsupported(what) => return Err(UsageError::unsupported(what)),
        _ => return Err(UsageError::try_help()),
    };

    for event in events {
        match event {
            Event::Arg(a) => state.positionals.push(a),
            Event::Opt { spec, typed, value } => state.apply(spec, &typed, value)?,
        }
    }
    if let Some(e) = popt_error {
        return Err(e);
    }
    state.finish()
}

/// Executes a parsed command against `lb`.
pub fn execute(cmd: &Command, lb: &mut dyn LoadBalancer) -> Outcome {
    let done = |r: Result<(), LbError>, op: Op, lb: &mut dyn LoadBalancer| match r {
        Ok(()) => Outcome::ok(String::new()),
        Err(e) => Outcome::error(&dataplane_message(op, &e, lb), EXIT_FAILED),
    };
    match cmd {
        Command::Help => Outcome::ok(help_text()),
        Command::Version => Outcome::ok(format!(
            "{PROGRAM}: ipvsadm v1.31 command line over lvslab's dataplanes\n"
        )),
        Command::AddService(svc) => {
            let r = lb.add_service(svc);
            done(r, Op::AddService, lb)
        }
        Command::EditService(svc) => {
            let svc = with_current_local_addresses(svc, lb);
            let r = lb.edit_service(&svc);
            done(r, Op::EditService, lb)
        }
        Command::DeleteService(key) => {
            let r = lb.delete_service(key);
            done(r, Op::DeleteService, lb)
        }
        Command::AddDest { service, dest } => {
            let r = lb.add_dest(service, dest);
            done(r, Op::AddDest, lb)
        }
        Command::EditDest { service, dest } => {
            let r = lb.edit_dest(service, dest);
            done(r, Op::EditDest(*service), lb)
        }
        Command::DeleteDest {
            service,
            addr,
            port,
        } => {
            let r = lb.delete_dest(service, *addr, *port);
            done(r, Op::DeleteDest(*service), lb)
        }
        Command::Flush => {
            let r = lb.flush();
            done(r, Op::Other, lb)
        }
        Command::Zero(key) => {
            let r = lb.zero(key.as_ref());
            done(r, Op::Zero, lb)
        }
        Command::SetTimeouts(t) => {
            let r = lb.set_timeouts(t);
            done(r, Op::Other, lb)
        }
        Command::List { target, options } => list(*target, options, lb),
    }
}

fn list(target: ListTarget, options: &ListingOptions, lb: &mut dyn LoadBalancer) -> Outcome {
    match target {
        ListTarget::Timeouts => match lb.timeouts() {
            Ok(t) => Outcome::ok(ipvsadm_listing::render_timeouts(&t)),
            Err(e) => Outcome::error(&e.to_string(), EXIT_LIST_FAILED),
        },
        ListTarget::All => {
            // ipvsadm reads the version first (`ipvs_init`) and gives up when it cannot.
            let info = match lb.info() {
                Ok(i) => i,
                Err(e) => {
                    return Outcome::error(
                        &format!(
                            "Can't initialize ipvs: {e}\nAre you sure that IP Virtual Server \
                             is built in the kernel or as module?"
                        ),
                        EXIT_USAGE,
                    )
                }
            };
            match lb.list() {
                Ok(services) => Outcome::ok(ipvsadm_listing::render(&info, &services, options)),
                Err(e) => Outcome::error(&dataplane_message(Op::List, &e, lb), EXIT_LIST_FAILED),
            }
        }
        ListTarget::Service(key) => match lb.list() {
            Ok(services) => match services.iter().find(|s| s.config.key == key) {
                Some(s) => Outcome::ok(ipvsadm_listing::render_service(s, options)),
                None => Outcome::error("No such service", EXIT_LIST_FAILED),
            },
            Err(e) => Outcome::error(&dataplane_message(Op::List, &e, lb), EXIT_LIST_FAILED),
        },
    }
}

/// `-E` with `--laddr` adds to the pool; without, it keeps the pool the service has.
fn with_current_local_addresses(svc: &ServiceConfig, lb: &mut dyn LoadBalancer) -> ServiceConfig {
    let mut out = svc.clone();
    let current = lb
        .list()
        .ok()
        .and_then(|all| all.into_iter().find(|s| s.config.key == svc.key))
        .map(|s| s.config.local_addresses)
        .unwrap_or_default();
    if current.is_empty() {
        return out;
    }
    let mut pool = current;
    for a in &svc.local_addresses {
        if !pool.contains(a) {
            pool.push(*a);
        }
    }
    out.local_addresses = pool;
    out
}

/// The libipvs call a dataplane error came from; its messages depend on it.
#[derive(Debug, Clone, Copy)]
enum Op {
    AddService,
    EditService,
    DeleteService,
    Zero,
    AddDest,
    EditDest(ServiceKey),
    DeleteDest(ServiceKey),
    List,
    Other,
}

const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENOMEM: i32 = 12;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const ERANGE: i32 = 34;

/// libipvs' `ipvs_strerror`: the message ipvsadm prints for a refused request.
///
/// The model folds the kernel's ESRCH (no such service) and, for destination commands,
/// ENOENT (no such destination) into [`LbError::NotFound`]; which one it was is decided
/// by asking the dataplane whether the service exists.
fn dataplane_message(op: Op, err: &LbError, lb: &mut dyn LoadBalancer) -> String {
    let errno = match err {
        LbError::Exists(_) => EEXIST,
        LbError::NotFound(_) => match op {
            Op::EditDest(key) | Op::DeleteDest(key) if service_exists(lb, &key) => ENOENT,
            _ => ESRCH,
        },
        LbError::NoScheduler(_) => ENOENT,
        LbError::Invalid(_) => EINVAL,
        LbError::Range(_) => ERANGE,
        // Not errno-shaped: the dataplane's own words say more than a generic text.
        LbError::Unavailable(_) | LbError::Io { .. } => return err.to_string(),
    };
    let specific = match (op, errno) {
        (Op::AddService, EEXIST) => Some("Service already exists"),
        (Op::AddService | Op::EditService, ENOENT) => {
            Some("Scheduler or persistence engine not found")
        }
        (Op::EditService | Op::DeleteService | Op::Zero | Op::List, ESRCH) => {
            Some("No such service")
        }
        (Op::AddDest | Op::EditDest(_) | Op::DeleteDest(_), ESRCH) => Some("Service not defined"),
        (Op::AddDest, EEXIST) => Some("Destination already exists"),
        (Op::EditDest(_) | Op::DeleteDest(_), ENOENT) => Some("No such destination"),
        _ => None,
    };
    let text = specific.unwrap_or(match errno {
        EPERM => "Permission denied (you must be root)",
        EINVAL => "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        ENOMEM => "Memory allocation problem",
        // strerror() for the rest.
        ENOENT => "No such file or directory",
        ESRCH => "No such process",
        EEXIST => "File exists",
        _ => "Numerical result out of range",
    });
    text.to_string()
}

fn service_exists(lb: &mut dyn LoadBalancer, key: &ServiceKey) -> bool {
    lb.list()
        .map(|all| all.iter().any(|s| s.config.key == *key))
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// Options

/// ipvsadm's commands, in the order of its compatibility table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Cmd {
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
    fn name(self) -> &'static str {
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
enum Group {
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
    const ALL: [Group; 29] = [
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

    fn bit(self) -> u64 {
        1 << (self as u32)
    }

    /// ipvsadm's `optnames` (plus `laddr`, ours).
    fn name(self) -> &'static str {
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
enum Rule {
    Required,
    Illegal,
    /// At most one of the exclusive options.
    Exclusive,
    Optional,
}

/// ipvsadm's `commands_v_options` table, plus `--laddr` for `-A`/`-E`.
fn rule(cmd: Cmd, g: Group) -> Rule {
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
enum Key {
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
enum Arg {
    None,
    Required,
    /// Taken attached, or from the next word unless it starts with `-` (popt's rule).
    Optional,
}

#[derive(Debug)]
struct Spec {
    long: &'static str,
    short: Option<char>,
    arg: Arg,
    key: Key,
}

const fn spec(long: &'static str, short: Option<char>, arg: Arg, key: Key) -> Spec {
    Spec {
        long,
        short,
        arg,
        key,
    }
}

static SPECS: &[Spec] = &[
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

enum Event {
    Opt {
        spec: &'static Spec,
        /// The option as written (`-w`, `--weight`), for messages.
        typed: String,
        value: Option<String>,
    },
    Arg(String),
}

/// Splits the words into options and leftover arguments like popt does; stops at the
/// first word popt would refuse and returns that error after the events before it.
fn tokenize<S: AsRef<str>>(args: &[S]) -> (Vec<Event>, Option<UsageError>) {
    let mut events = Vec::new();
    let mut i = 0;
    let mut only_args = false;
    let next_word = |i: usize| args.get(i).map(|s| s.as_ref().to_string());
    while i < args.len() {
        let word = args[i].as_ref();
        i += 1;
        if only_args || word == "-" || !word.starts_with('-') {
            events.push(Event::Arg(word.to_string()));
            continue;
        }
        if word == "--" {
            only_args = true;
            continue;
        }
        if let Some(body) = word.strip_prefix("--") {
            let (name, attached) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let typed = format!("--{name}");
            let Some(spec) = SPECS.iter().find(|s| s.long == name) else {
                return (events, Some(popt_error(&typed, "unknown option")));
            };
            let value = match (spec.arg, attached) {
                (Arg::None, Some(_)) => {
                    return (
                        events,
                        Some(popt_error(&typed, "option does not take an argument")),
                    )
                }
                (Arg::None, None) => None,
                (_, Some(v)) => Some(v),
                (Arg::Required, None) => match next_word(i) {
                    Some(v) => {
                        i += 1;
                        Some(v)
                    }
                    None => return (events, Some(popt_error(&typed, "missing argument"))),
                },
                (Arg::Optional, None) => match next_word(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(v)
                    }
                    _ => None,
                },
            };
            events.push(Event::Opt { spec, typed, value });
            continue;
        }
        // A cluster of short options: `-Ln`, `-w3`, `-p600`.
        let cluster: Vec<char> = word[1..].chars().collect();
        let mut j = 0;
        while j < cluster.len() {
            let c = cluster[j];
            j += 1;
            let typed = format!("-{c}");
            let Some(spec) = SPECS.iter().find(|s| s.short == Some(c)) else {
                return (events, Some(popt_error(&typed, "unknown option")));
            };
            let rest: String = cluster[j..].iter().collect();
            let value = match spec.arg {
                Arg::None => None,
                _ if !rest.is_empty() => {
                    j = cluster.len();
                    Some(rest)
                }
                Arg::Required => match next_word(i) {
                    Some(v) => {
                        i += 1;
                        Some(v)
                    }
                    None => return (events, Some(popt_error(&typed, "missing argument"))),
                },
                Arg::Optional => match next_word(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(v)
                    }
                    _ => None,
                },
            };
            events.push(Event::Opt { spec, typed, value });
        }
    }
    (events, None)
}

fn popt_error(option: &str, what: &str) -> UsageError {
    UsageError::popt(format!("{option}: {what}"))
}

// ---------------------------------------------------------------------------------------
// Command-line state, filled option by option like ipvsadm's `ipvs_command_entry`.

#[derive(Debug)]
struct State {
    cmd: Cmd,
    groups: u64,
    positionals: Vec<String>,
    // Service.
    protocol: Protocol,
    service_v6: bool,
    service_addr: Option<IpAddr>,
    service_port: u16,
    fwmark: Option<u32>,
    sched_name: Option<String>,
    flags: ServiceFlags,
    timeout: u32,
    netmask: u32,
    pe_name: Option<String>,
    sched_flags: Option<String>,
    laddrs: Vec<IpAddr>,
    // Destination.
    dest_addr: Option<IpAddr>,
    dest_port: u16,
    method: ForwardMethod,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    tun_type: Encap,
    tun_port: u16,
    tun_flags: u16,
    // Listing.
    layout_flags: [bool; 4],
    nosort: bool,
    exact: bool,
}

impl Default for State {
    fn default() -> Self {
        // ipvsadm's `process_options` defaults before parsing.
        let dest = DestConfig::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        State {
            cmd: Cmd::default(),
            groups: 0,
            positionals: Vec::new(),
            protocol: Protocol::Tcp,
            service_v6: false,
            service_addr: None,
            service_port: 0,
            fwmark: None,
            sched_name: None,
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: u32::MAX,
            pe_name: None,
            sched_flags: None,
            laddrs: Vec::new(),
            dest_addr: None,
            dest_port: 0,
            method: dest.method,
            weight: dest.weight,
            u_threshold: dest.u_threshold,
            l_threshold: dest.l_threshold,
            tun_type: dest.tun_type,
            tun_port: dest.tun_port,
            tun_flags: dest.tun_flags,
            layout_flags: [false; 4],
            nosort: false,
            exact: false,
        }
    }
}

const TUN_FLAG_CSUM: u16 = 1;
const TUN_FLAG_REMCSUM: u16 = 2;

impl State {
    fn has(&self, g: Group) -> bool {
        self.groups & g.bit() != 0
    }

    fn set(&mut self, g: Group) -> Result<(), UsageError> {
        if self.has(g) {
            return Err(UsageError::fail(format!(
                "multiple '{}' options specified",
                g.name()
            )));
        }
        self.groups |= g.bit();
        Ok(())
    }

    fn apply(
        &mut self,
        spec: &'static Spec,
        typed: &str,
        value: Option<String>,
    ) -> Result<(), UsageError> {
        let given = value.is_some();
        let v = value.unwrap_or_default();
        match spec.key {
            Key::Cmd(_) | Key::Help | Key::Version => {
                return Err(UsageError::fail(format!("invalid option `{typed}'")))
            }
            Key::Unsupported(what) => return Err(UsageError::unsupported(what)),
            Key::Service(protocol) => {
                self.set(Group::Service)?;
                self.protocol = protocol;
                let parsed = parse_host_port(&v).map_err(|why| {
                    address_error("illegal virtual server address[:port] specified", why)
                })?;
                self.service_addr = Some(parsed.addr);
                self.service_v6 = parsed.addr.is_ipv6();
                if parsed.addr.is_ipv6() {
                    self.netmask = 128;
                }
                // ipvsadm leaves the port untouched (0) when none is given.
                if let Some(p) = parsed.port {
                    self.service_port = p;
                }
            }
            Key::Fwmark => {
                self.set(Group::Service)?;
                let mark = parse_number(&v, 1, u64::from(u32::MAX))
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| {
                        UsageError::fail(format!("invalid fwmark value `{v}' specified"))
                    })?;
                self.fwmark = Some(mark);
                self.service_v6 = false;
                self.protocol = Protocol::Tcp;
            }
            Key::Ipv6 => {
                if self.fwmark.is_none() {
                    return Err(UsageError::fail("-6 used before -f"));
                }
                self.service_v6 = true;
                self.netmask = 128;
            }
            Key::Scheduler => {
                self.set(Group::Scheduler)?;
                self.sched_name = Some(v);
            }
            Key::Persistent => {
                self.set(Group::Persistent)?;
                self.flags.persistent = true;
                self.timeout = if !given {
                    DEFAULT_PERSISTENCE_TIMEOUT
                } else {
                    parse_timeout(&v, 1)?
                };
            }
            Key::Netmask => {
                self.set(Group::Netmask)?;
                if self.service_v6 {
                    self.netmask = parse_number(&v, 1, 128)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| UsageError::fail("illegal ipv6 netmask specified"))?;
                } else {
                    let mask: Ipv4Addr = v.parse().map_err(|_| {
                        UsageError::fail("illegal virtual server persistent mask specified")
                    })?;
                    self.netmask = u32::from(mask);
                }
            }
            Key::RealServer => {
                self.set(Group::RealServer)?;
                let parsed = parse_host_port(&v).map_err(|why| {
                    address_error("illegal real server address[:port] specified", why)
                })?;
                self.dest_addr = Some(parsed.addr);
                // Without a port the real server takes the service port known so far.
                self.dest_port = parsed.port.unwrap_or(self.service_port);
            }
            Key::Method(m) => {
                self.set(Group::Forward)?;
                self.method = m;
            }
            Key::Weight => {
                self.set(Group::Weight)?;
                self.weight = parse_u32(&v, 0, 65_535)
                    .ok_or_else(|| UsageError::fail("illegal weight specified"))?;
            }
            Key::UThreshold => {
                self.set(Group::UThreshold)?;
                self.u_threshold = parse_u32(&v, 0, i32::MAX as u32)
                    .ok_or_else(|| UsageError::fail("illegal u_threshold specified"))?;
            }
            Key::LThreshold => {
                self.set(Group::LThreshold)?;
                self.l_threshold = parse_u32(&v, 0, i32::MAX as u32)
                    .ok_or_else(|| UsageError::fail("illegal l_threshold specified"))?;
            }
            Key::Numeric => self.set(Group::Numeric)?,
            Key::Connection => self.set(Group::Connection)?,
            Key::Timeout => self.set(Group::Timeout)?,
            Key::Daemon => self.set(Group::Daemon)?,
            Key::Stats => {
                self.set(Group::Stats)?;
                self.layout_flags[0] = true;
            }
            Key::Rate => {
                self.set(Group::Rate)?;
                self.layout_flags[1] = true;
            }
            Key::Thresholds => {
                self.set(Group::Thresholds)?;
                self.layout_flags[2] = true;
            }
            Key::PersistentConn => {
                self.set(Group::PersistentConn)?;
                self.layout_flags[3] = true;
            }
            Key::NoSort => {
                self.set(Group::NoSort)?;
                self.nosort = true;
            }
            // Sorting is the default; ipvsadm keeps `--sort` as a no-op.
            Key::Sort => {}
            Key::Exact => {
                self.set(Group::Exact)?;
                self.exact = true;
            }
            Key::Ops => {
                self.set(Group::Ops)?;
                self.flags.one_packet = true;
            }
            Key::Pe => {
                self.set(Group::Pe)?;
                self.pe_name = Some(v);
            }
            Key::SchedFlags => {
                self.set(Group::SchedFlags)?;
                self.sched_flags = Some(v);
            }
            Key::TunInfo => self.set(Group::TunInfo)?,
            Key::TunType => {
                self.set(Group::TunType)?;
                self.tun_type = match v.as_str() {
                    "ipip" => Encap::Ipip,
                    "gue" => Encap::Gue,
                    "gre" => Encap::Gre,
                    _ => return Err(UsageError::fail("illegal tunnel type specified")),
                };
            }
            Key::TunPort => {
                self.set(Group::TunPort)?;
                self.tun_port = parse_u32(&v, 1, 65_535)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| UsageError::fail("illegal tunnel port specified"))?;
            }
            Key::TunNocsum => self.set(Group::TunNocsum)?,
            Key::TunCsum => {
                self.set(Group::TunCsum)?;
                self.tun_flags |= TUN_FLAG_CSUM;
            }
            Key::TunRemcsum => {
                self.set(Group::TunRemcsum)?;
                self.tun_flags |= TUN_FLAG_REMCSUM;
            }
            Key::Laddr => {
                // Repeatable: one bit for the compatibility check, many addresses.
                self.groups |= Group::Laddr.bit();
                let addr: IpAddr = v.parse().map_err(|_| {
                    address_error(
                        "illegal local address specified",
                        AddrProblem::classify_host(&v),
                    )
                })?;
                if !self.laddrs.contains(&addr) {
                    self.laddrs.push(addr);
                }
            }
        }
        Ok(())
    }

    /// What ipvsadm checks once every option is read, then the command.
    fn finish(mut self) -> Result<Command, UsageError> {
        if self.cmd == Cmd::SetTimeouts {
            if self.positionals.len() < 3 {
                return Err(UsageError::fail("--set option requires 3 timeout values"));
            }
            let values: Vec<String> = self.positionals.drain(..3).collect();
            let t = Timeouts {
                tcp: parse_timeout(&values[0], 0)?,
                tcp_fin: parse_timeout(&values[1], 0)?,
                udp: parse_timeout(&values[2], 0)?,
            };
            self.check_leftovers()?;
            self.check_groups()?;
            return Ok(Command::SetTimeouts(t));
        }
        self.check_leftovers()?;
        self.check_groups()?;
        self.check_unsupported()?;

        match self.cmd {
            Cmd::AddService | Cmd::EditService => {
                let svc = self.service_config()?;
                Ok(if self.cmd == Cmd::AddService {
                    Command::AddService(svc)
                } else {
                    Command::EditService(svc)
                })
            }
            Cmd::DeleteService => Ok(Command::DeleteService(self.service_key()?)),
            Cmd::Flush => Ok(Command::Flush),
            Cmd::Zero => Ok(Command::Zero(if self.has(Group::Service) {
                Some(self.service_key()?)
            } else {
                None
            })),
            Cmd::List => Ok(Command::List {
                target: if self.has(Group::Timeout) {
                    ListTarget::Timeouts
                } else if self.has(Group::Service) {
                    ListTarget::Service(self.service_key()?)
                } else {
                    ListTarget::All
                },
                options: self.listing_options(),
            }),
            Cmd::AddDest | Cmd::EditDest => {
                let service = self.service_key()?;
                let dest = self.dest_config()?;
                Ok(if self.cmd == Cmd::AddDest {
                    Command::AddDest { service, dest }
                } else {
                    Command::EditDest { service, dest }
                })
            }
            Cmd::DeleteDest => Ok(Command::DeleteDest {
                service: self.service_key()?,
                addr: self.dest_addr.ok_or_else(missing_invariant)?,
                port: self.dest_port,
            }),
            Cmd::SetTimeouts => Err(missing_invariant()),
        }
    }

    fn check_leftovers(&self) -> Result<(), UsageError> {
        match self.positionals.first() {
            Some(a) => Err(UsageError::fail(format!("unexpected argument {a}"))),
            None => Ok(()),
        }
    }

    /// ipvsadm's `generic_opt_check`.
    fn check_groups(&self) -> Result<(), UsageError> {
        let cmd = self.cmd;
        let mut exclusive: Option<Group> = None;
        for g in Group::ALL {
            let given = self.has(g);
            match (rule(cmd, g), given) {
                (Rule::Required, false) => {
                    return Err(UsageError::fail(format!(
                        "You need to supply the '{}' option for the '{}' command",
                        g.name(),
                        cmd.name()
                    )))
                }
                (Rule::Illegal, true) => {
                    return Err(UsageError::fail(format!(
                        "Illegal '{}' option with the '{}' command",
                        g.name(),
                        cmd.name()
                    )))
                }
                (Rule::Exclusive, true) => match exclusive {
                    None => exclusive = Some(g),
                    Some(first) => {
                        return Err(UsageError::fail(format!(
                            "The option '{}' conflicts with the '{}' option in the '{}' command",
                            g.name(),
                            first.name(),
                            cmd.name()
                        )))
                    }
                },
                _ => {}
            }
        }
        if cmd == Cmd::List {
            let layout =
                self.has(Group::Stats) || self.has(Group::Rate) || self.has(Group::Thresholds);
            let other =
                self.has(Group::Connection) || self.has(Group::Timeout) || self.has(Group::Daemon);
            let pconn_clash = (self.has(Group::Timeout) || self.has(Group::Daemon))
                && self.has(Group::PersistentConn);
            if (layout && other) || pconn_clash {
                return Err(UsageError::fail("options conflicts in the list command"));
            }
        }
        Ok(())
    }

    fn check_unsupported(&self) -> Result<(), UsageError> {
        for (g, what) in [
            (Group::Connection, "connection listing (-c)"),
            (Group::Daemon, "--daemon"),
            (Group::TunInfo, "--tun-info"),
        ] {
            if self.has(g) {
                return Err(UsageError::unsupported(what));
            }
        }
        Ok(())
    }

    fn service_key(&self) -> Result<ServiceKey, UsageError> {
        if let Some(mark) = self.fwmark {
            let family = if self.service_v6 {
                Family::Inet6
            } else {
                Family::Inet
            };
            return Ok(ServiceKey::Fwmark { family, mark });
        }
        Ok(ServiceKey::Addr {
            protocol: self.protocol,
            addr: self.service_addr.ok_or_else(missing_invariant)?,
            port: self.service_port,
        })
    }

    fn service_config(&self) -> Result<ServiceConfig, UsageError> {
        let key = self.service_key()?;
        if self.fwmark.is_none() && self.service_port == 0 && !self.flags.persistent {
            return Err(UsageError::fail(
                "Zero port specified for non-persistent service",
            ));
        }
        if self.flags.one_packet && self.fwmark.is_none() && self.protocol != Protocol::Udp {
            return Err(UsageError::fail(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
        let sched_name = self
            .sched_name
            .clone()
            .unwrap_or_else(|| DEFAULT_SCHEDULER.name().to_string());
        let mut flags = self.flags;
        if let Some(arg) = &self.sched_flags {
            apply_sched_flags(&mut flags, &sched_name, arg)?;
        }
        // ipvsadm passes any name to the kernel, which refuses unknown ones (ENOENT).
        let scheduler: Scheduler = sched_name.parse().map_err(|_| UsageError {
            message: "Scheduler or persistence engine not found".into(),
            exit_code: EXIT_FAILED,
        })?;
        Ok(ServiceConfig {
            key,
            scheduler,
            flags,
            timeout: self.timeout,
            netmask: self.netmask,
            pe_name: self.pe_name.clone(),
            local_addresses: self.laddrs.clone(),
        })
    }

    fn dest_config(&self) -> Result<DestConfig, UsageError> {
        let addr = self.dest_addr.ok_or_else(missing_invariant)?;
        let mut port = self.dest_port;
        let tunnel = self.method == ForwardMethod::Tunnel;
        if self.fwmark.is_none() && (tunnel || self.method == ForwardMethod::Dr) {
            port = self.service_port;
        }
        if addr.is_ipv6() != self.service_v6 && !tunnel {
            return Err(UsageError::fail(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tunnel_options = [
            Group::TunType,
            Group::TunPort,
            Group::TunNocsum,
            Group::TunCsum,
            Group::TunRemcsum,
        ];
        if !tunnel && tunnel_options.iter().any(|g| self.has(*g)) {
            return Err(UsageError::fail(
                "Tunnel options conflict with forward method",
            ));
        }
        self.check_tunnel_options()?;
        Ok(DestConfig {
            addr,
            port,
            method: self.method,
            weight: self.weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            tun_type: self.tun_type,
            tun_port: self.tun_port,
            tun_flags: self.tun_flags,
        })
    }

    /// ipvsadm's `tunnel_opt_check`: gue needs a port and at most one checksum option;
    /// gre takes no port and no remote checksum; ipip takes none of them.
    fn check_tunnel_options(&self) -> Result<(), UsageError> {
        let (type_name, rules): (&str, [Rule; 4]) = match self.tun_type {
            Encap::Ipip => ("ipip", [Rule::Illegal; 4]),
            Encap::Gue => (
                "gue",
                [
                    Rule::Required,
                    Rule::Exclusive,
                    Rule::Exclusive,
                    Rule::Exclusive,
                ],
            ),
            Encap::Gre => (
                "gre",
                [
                    Rule::Illegal,
                    Rule::Exclusive,
                    Rule::Exclusive,
                    Rule::Illegal,
                ],
            ),
        };
        let groups = [
            Group::TunPort,
            Group::TunNocsum,
            Group::TunCsum,
            Group::TunRemcsum,
        ];
        let mut exclusive: Option<Group> = None;
        for (g, r) in groups.into_iter().zip(rules) {
            match (r, self.has(g)) {
                (Rule::Required, false) => {
                    return Err(UsageError::fail(format!(
                        "You need to supply the '{}' option for the '{type_name}' tunnel type",
                        g.name()
                    )))
                }
                (Rule::Illegal, true) => {
                    return Err(UsageError::fail(format!(
                        "Illegal '{}' option with the '{type_name}' tunnel type",
                        g.name()
                    )))
                }
                (Rule::Exclusive, true) => match exclusive {
                    None => exclusive = Some(g),
                    Some(first) => {
                        return Err(UsageError::fail(format!(
                            "The option '{}' conflicts with the '{}' option in the '{type_name}' tunnel type",
                            g.name(),
                            first.name()
                        )))
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    fn listing_options(&self) -> ListingOptions {
        // ipvsadm's precedence when several layouts are asked for.
        let layout = match self.layout_flags {
            [true, ..] => Layout::Stats,
            [_, true, ..] => Layout::Rate,
            [_, _, true, _] => Layout::Thresholds,
            [_, _, _, true] => Layout::PersistentConn,
            _ => Layout::Default,
        };
        ListingOptions {
            layout,
            nosort: self.nosort,
            exact: self.exact,
        }
    }
}

/// An internal inconsistency (a required option the compatibility table already
/// guarantees); reported rather than panicking.
fn missing_invariant() -> UsageError {
    UsageError::fail(format!("{PROGRAM}: internal error: incomplete command"))
}

/// libipvs' scheduler flags (`-b`), checked against the scheduler that will be sent.
fn apply_sched_flags(flags: &mut ServiceFlags, sched: &str, arg: &str) -> Result<(), UsageError> {
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let needs = |name: &str| -> Result<(), UsageError> {
            if sched == name {
                Ok(())
            } else {
                Err(UsageError::fail(format!(
                    "incompatible scheduler flag `{flag}'"
                )))
            }
        };
        match flag {
            "flag-1" => flags.sched1 = true,
            "flag-2" => flags.sched2 = true,
            "flag-3" => flags.sched3 = true,
            "sh-fallback" => {
                needs("sh")?;
                flags.sched1 = true;
            }
            "sh-port" => {
                needs("sh")?;
                flags.sched2 = true;
            }
            "mh-fallback" => {
                needs("mh")?;
                flags.sched1 = true;
            }
            "mh-port" => {
                needs("mh")?;
                flags.sched2 = true;
            }
            _ => return Err(UsageError::fail(format!("invalid scheduler flag `{flag}'"))),
        }
    }
    if any {
        Ok(())
    } else {
        Err(UsageError::fail(format!("invalid scheduler flag `{arg}'")))
    }
}

/// `strtol`-like decimal within `min..=max` (sign allowed, nothing after the digits).
fn parse_number(s: &str, min: u64, max: u64) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (min..=max).contains(&n).then_some(n)
}

fn parse_u32(s: &str, min: u32, max: u32) -> Option<u32> {
    parse_number(s, u64::from(min), u64::from(max)).and_then(|n| u32::try_from(n).ok())
}

fn parse_timeout(s: &str, min: u32) -> Result<u32, UsageError> {
    parse_u32(s, min, MAX_TIMEOUT)
        .ok_or_else(|| UsageError::fail(format!("invalid timeout value `{s}' specified")))
}

/// An address[:port] as ipvsadm's `parse_service` reads it.
struct HostPort {
    addr: IpAddr,
    port: Option<u16>,
}

/// Why an address was refused (adds a hint to ipvsadm's message when it helps).
#[derive(Debug, Clone, PartialEq, Eq)]
enum AddrProblem {
    Malformed,
    HostName(String),
    PortName(String),
}

impl AddrProblem {
    fn classify_host(host: &str) -> Self {
        let looks_like_name = host.bytes().any(|b| b.is_ascii_alphabetic())
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        if looks_like_name {
            AddrProblem::HostName(host.to_string())
        } else {
            AddrProblem::Malformed
        }
    }
}

fn address_error(message: &str, why: AddrProblem) -> UsageError {
    match why {
        AddrProblem::Malformed => UsageError::fail(message),
        AddrProblem::HostName(h) => UsageError::fail(format!(
            "{message}\n`{h}' is a host name: {PROGRAM} takes numeric addresses only and \
             does not resolve names"
        )),
        AddrProblem::PortName(p) => UsageError::fail(format!(
            "{message}\n`{p}' is a service name: {PROGRAM} takes numeric ports only"
        )),
    }
}

/// `ADDR`, `ADDR:PORT`, `[V6]:PORT` or a bare IPv6 address. An all-digit word is refused
/// (ipvsadm's rule, so that `-t 80` is not read as an address).
fn parse_host_port(s: &str) -> Result<HostPort, AddrProblem> {
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrProblem::Malformed);
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // ipvsadm requires the port after a bracketed address.
        let (inside, after) = rest.split_once(']').ok_or(AddrProblem::Malformed)?;
        let port = after.strip_prefix(':').ok_or(AddrProblem::Malformed)?;
        let v6: Ipv6Addr = inside.parse().map_err(|_| AddrProblem::Malformed)?;
        (IpAddr::V6(v6), Some(port))
    } else if let Ok(v6) = s.parse::<Ipv6Addr>() {
        (IpAddr::V6(v6), None)
    } else {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let v4: Ipv4Addr = host.parse().map_err(|_| AddrProblem::classify_host(host))?;
        (IpAddr::V4(v4), port)
    };
    let port = match port {
        None => None,
        Some(p) => match parse_u32(p, 0, 65_535).and_then(|n| u16::try_from(n).ok()) {
            Some(n) => Some(n),
            None if p.bytes().any(|b| b.is_ascii_alphabetic()) => {
                return Err(AddrProblem::PortName(p.to_string()))
            }
            None => return Err(AddrProblem::Malformed),
        },
    };
    Ok(HostPort { addr: host, port })
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
  --weight       -w weight            real server weight, 0..65535 (default 1)
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
