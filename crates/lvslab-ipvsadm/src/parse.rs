//! Parsing argv into a [`Command`]: option by option into a [`State`] the way ipvsadm's
//! `process_options` fills its `ipvs_command_entry`; `check` then applies the checks
//! ipvsadm makes once every option is read and builds the command.

use std::net::{IpAddr, Ipv4Addr};

use lvslab_spec::lb::{DestConfig, Encap, ForwardMethod, Protocol, ServiceFlags};

use crate::command::{Command, ListTarget, DEFAULT_PERSISTENCE_TIMEOUT};
use crate::error::{quoted, UsageError};
use crate::listing::ListingOptions;
use crate::options::{value_help, Cmd, Group, Key, Spec, COMMANDS_HELP};
use crate::tokenize::{tokenize, Event};
use crate::values::{
    address_error, inet_aton, parse_host_port, parse_number, parse_timeout, parse_u32, value_error,
    AddrProblem,
};

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
    let (spec, typed) = loop {
        match events.next() {
            Some(Event::Arg(a)) => state.positionals.push(a),
            Some(Event::Opt { spec, typed, .. }) => break (spec, typed),
            None => return Err(no_command(&state.positionals, popt_error)),
        }
    };
    state.cmd = match spec.key {
        Key::Cmd(c) => c,
        Key::Help => return Ok(Command::Help),
        Key::Version => return Ok(Command::Version),
        Key::Unsupported(what) => return Err(UsageError::unsupported(&typed, what)),
        _ => return Err(not_a_command(spec, &typed)),
    };
    state.cmd_typed = typed;

    for event in events {
        match event {
            Event::Arg(a) => state.positionals.push(a),
            Event::Opt {
                spec,
                typed,
                word,
                value,
            } => state.apply(spec, &typed, &word, value)?,
        }
    }
    if let Some(e) = popt_error {
        return Err(e);
    }
    state.finish()
}

/// No option at all was read: ipvsadm only says "Try -h"; say why first.
fn no_command(positionals: &[String], popt_error: Option<UsageError>) -> UsageError {
    let e = match (popt_error, positionals.first()) {
        (Some(e), _) => e,
        (None, Some(word)) => UsageError::popt(
            word,
            format!(
                "no command: {} is not an option, and the first option must be the command",
                quoted(word)
            ),
        )
        .hint(format!("the commands: {COMMANDS_HELP}")),
        // Only `--` words: they end the options before any was given.
        (None, None) => {
            UsageError::popt("--", "no command: `--' ends the options before any command")
                .hint(format!("the commands: {COMMANDS_HELP}"))
        }
    };
    e.try_help()
}

/// The first option is not a command: ipvsadm only says "Try -h"; say why first.
fn not_a_command(spec: &Spec, typed: &str) -> UsageError {
    UsageError::popt(
        typed,
        format!(
            "{typed} is not a command: the first option must say what to do, \
             and {} comes after it",
            spec.spelling()
        ),
    )
    .hint(format!("the commands: {COMMANDS_HELP}"))
    .try_help()
}

/// Command-line state, filled option by option like ipvsadm's `ipvs_command_entry`.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) cmd: Cmd,
    /// The command as written (`-A`, `--set`), for messages.
    pub(crate) cmd_typed: String,
    pub(crate) groups: u64,
    /// How each option group given was first written (`-m`, `--weight`), for messages.
    pub(crate) written: Vec<(Group, String)>,
    pub(crate) positionals: Vec<String>,
    // Service.
    pub(crate) protocol: Protocol,
    pub(crate) service_v6: bool,
    pub(crate) service_addr: Option<IpAddr>,
    pub(crate) service_port: u16,
    /// The service address as written, for messages.
    pub(crate) service_word: String,
    pub(crate) fwmark: Option<u32>,
    pub(crate) sched_name: Option<String>,
    pub(crate) flags: ServiceFlags,
    pub(crate) timeout: u32,
    pub(crate) netmask: u32,
    pub(crate) pe_name: Option<String>,
    pub(crate) sched_flags: Option<String>,
    pub(crate) laddrs: Vec<IpAddr>,
    // Destination.
    pub(crate) dest_addr: Option<IpAddr>,
    pub(crate) dest_port: u16,
    /// The real server as written, for messages.
    pub(crate) dest_word: String,
    pub(crate) method: ForwardMethod,
    pub(crate) weight: u32,
    pub(crate) u_threshold: u32,
    pub(crate) l_threshold: u32,
    pub(crate) tun_type: Encap,
    pub(crate) tun_port: u16,
    pub(crate) tun_flags: u16,
    // Listing.
    pub(crate) layout_flags: [bool; 4],
    pub(crate) nosort: bool,
    pub(crate) exact: bool,
}

impl Default for State {
    fn default() -> Self {
        // ipvsadm's `process_options` defaults before parsing.
        let dest = DestConfig::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        State {
            cmd: Cmd::default(),
            cmd_typed: String::new(),
            groups: 0,
            written: Vec::new(),
            positionals: Vec::new(),
            protocol: Protocol::Tcp,
            service_v6: false,
            service_addr: None,
            service_port: 0,
            service_word: String::new(),
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
            dest_word: String::new(),
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

pub(crate) const TUN_FLAG_CSUM: u16 = 1;
pub(crate) const TUN_FLAG_REMCSUM: u16 = 2;

impl State {
    pub(crate) fn has(&self, g: Group) -> bool {
        self.groups & g.bit() != 0
    }

    /// How the group's option was written on this line, or its spellings when it was not.
    pub(crate) fn written(&self, g: Group) -> String {
        self.written
            .iter()
            .find(|(w, _)| *w == g)
            .map(|(_, typed)| typed.clone())
            .unwrap_or_else(|| g.spellings())
    }

    /// Marks a group given, once (ipvsadm's `set_option`); `--laddr` may repeat.
    fn set(&mut self, g: Group, typed: &str) -> Result<(), UsageError> {
        if self.has(g) && g != Group::Laddr {
            let first = self.written(g);
            return Err(UsageError::fail(
                typed,
                format!("multiple '{}' options specified", g.name()),
            )
            .hint(format!(
                "{typed} gives the '{}' option a second time (first as {first}): give it once",
                g.name()
            )));
        }
        if !self.has(g) {
            self.written.push((g, typed.to_string()));
        }
        self.groups |= g.bit();
        Ok(())
    }

    /// One option, in command-line order, as ipvsadm's option loop handles it.
    pub(crate) fn apply(
        &mut self,
        spec: &'static Spec,
        typed: &str,
        word: &str,
        value: Option<String>,
    ) -> Result<(), UsageError> {
        if let Some(g) = spec.key.group() {
            self.set(g, typed)?;
        }
        match spec.key {
            Key::Cmd(_) | Key::Help | Key::Version => Err(UsageError::fail(
                typed,
                format!("invalid option {}", quoted(word)),
            )
            .hint(format!(
                "{} is a command and this line's command is {}: give one command, first",
                spec.spelling(),
                self.cmd_typed
            ))),
            Key::Unsupported(what) => Err(UsageError::unsupported(typed, what)),
            Key::Service(_)
            | Key::Fwmark
            | Key::Ipv6
            | Key::Scheduler
            | Key::Persistent
            | Key::Netmask
            | Key::Ops
            | Key::Pe
            | Key::SchedFlags
            | Key::Laddr => self.apply_service_option(spec.key, typed, value),
            Key::RealServer
            | Key::Method(_)
            | Key::Weight
            | Key::UThreshold
            | Key::LThreshold
            | Key::TunType
            | Key::TunPort
            | Key::TunNocsum
            | Key::TunCsum
            | Key::TunRemcsum => self.apply_dest_option(spec.key, typed, value),
            _ => {
                self.apply_list_option(spec.key);
                Ok(())
            }
        }
    }

    fn apply_service_option(
        &mut self,
        key: Key,
        typed: &str,
        value: Option<String>,
    ) -> Result<(), UsageError> {
        let given = value.is_some();
        let v = value.unwrap_or_default();
        match key {
            Key::Service(protocol) => {
                self.protocol = protocol;
                let parsed = parse_host_port(&v).map_err(|why| {
                    address_error(
                        "illegal virtual server address[:port] specified",
                        &v,
                        typed,
                        &value_help(key),
                        why,
                    )
                })?;
                self.service_addr = Some(parsed.addr);
                self.service_v6 = parsed.addr.is_ipv6();
                self.service_word = v;
                if parsed.addr.is_ipv6() {
                    self.netmask = 128;
                }
                // ipvsadm leaves the port untouched (0) when none is given.
                if let Some(p) = parsed.port {
                    self.service_port = p;
                }
            }
            Key::Fwmark => {
                let mark = parse_number(&v, 1, u64::from(u32::MAX))
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| {
                        let text = format!("invalid fwmark value {} specified", quoted(&v));
                        value_error(&v, typed, text, &value_help(key))
                    })?;
                self.fwmark = Some(mark);
                self.service_word = v;
                self.service_v6 = false;
                self.protocol = Protocol::Tcp;
            }
            Key::Ipv6 => {
                if self.fwmark.is_none() {
                    return Err(UsageError::fail(typed, "-6 used before -f").hint(format!(
                        "{typed} makes a firewall-mark service IPv6: write it after -f MARK \
                         (an address service takes its family from the address)"
                    )));
                }
                self.service_v6 = true;
                self.netmask = 128;
            }
            Key::Scheduler => self.sched_name = Some(v),
            Key::Persistent => {
                self.flags.persistent = true;
                self.timeout = if given {
                    parse_timeout(&v, 1, typed)?
                } else {
                    DEFAULT_PERSISTENCE_TIMEOUT
                };
            }
            Key::Netmask => self.netmask = self.netmask_value(&v, typed)?,
            Key::Ops => self.flags.one_packet = true,
            Key::Pe => self.pe_name = Some(v),
            Key::SchedFlags => self.sched_flags = Some(v),
            Key::Laddr => {
                let addr: IpAddr = v.parse().map_err(|_| {
                    address_error(
                        "illegal local address specified",
                        &v,
                        typed,
                        &value_help(key),
                        AddrProblem::classify_host(&v),
                    )
                })?;
                if !self.laddrs.contains(&addr) {
                    self.laddrs.push(addr);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `-M`: a prefix length for IPv6 services, a dotted mask otherwise.
    fn netmask_value(&self, v: &str, typed: &str) -> Result<u32, UsageError> {
        if self.service_v6 {
            parse_number(v, 1, 128)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    value_error(
                        v,
                        typed,
                        "illegal ipv6 netmask specified",
                        "a prefix length from 1 to 128 for an IPv6 service",
                    )
                })
        } else {
            let mask = inet_aton(v).ok_or_else(|| {
                value_error(
                    v,
                    typed,
                    "illegal virtual server persistent mask specified",
                    "an IPv4 mask such as 255.255.255.0 for an IPv4 service",
                )
            })?;
            Ok(u32::from(mask))
        }
    }

    fn apply_dest_option(
        &mut self,
        key: Key,
        typed: &str,
        value: Option<String>,
    ) -> Result<(), UsageError> {
        let v = value.unwrap_or_default();
        let count = |what: &str| {
            parse_u32(&v, 0, i32::MAX as u32).ok_or_else(|| {
                value_error(
                    &v,
                    typed,
                    format!("illegal {what} specified"),
                    &value_help(key),
                )
            })
        };
        match key {
            Key::RealServer => {
                let parsed = parse_host_port(&v).map_err(|why| {
                    address_error(
                        "illegal real server address[:port] specified",
                        &v,
                        typed,
                        &value_help(key),
                        why,
                    )
                })?;
                self.dest_addr = Some(parsed.addr);
                // Without a port the real server takes the service port known so far.
                self.dest_port = parsed.port.unwrap_or(self.service_port);
                self.dest_word = v;
            }
            Key::Method(m) => self.method = m,
            Key::Weight => {
                // Debian's ipvsadm 1.31 takes up to INT_MAX (upstream: 65535).
                self.weight = parse_u32(&v, 0, i32::MAX as u32).ok_or_else(|| {
                    value_error(&v, typed, "illegal weight specified", &value_help(key))
                })?;
            }
            Key::UThreshold => self.u_threshold = count("u_threshold")?,
            Key::LThreshold => self.l_threshold = count("l_threshold")?,
            Key::TunType => {
                self.tun_type = match v.as_str() {
                    "ipip" => Encap::Ipip,
                    "gue" => Encap::Gue,
                    "gre" => Encap::Gre,
                    _ => {
                        return Err(value_error(
                            &v,
                            typed,
                            "illegal tunnel type specified",
                            &value_help(key),
                        ))
                    }
                };
            }
            Key::TunPort => {
                self.tun_port = parse_u32(&v, 1, 65_535)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| {
                        value_error(&v, typed, "illegal tunnel port specified", &value_help(key))
                    })?;
            }
            Key::TunCsum => self.tun_flags |= TUN_FLAG_CSUM,
            Key::TunRemcsum => self.tun_flags |= TUN_FLAG_REMCSUM,
            _ => {}
        }
        Ok(())
    }

    fn apply_list_option(&mut self, key: Key) {
        match key {
            Key::Stats => self.layout_flags[0] = true,
            Key::Rate => self.layout_flags[1] = true,
            Key::Thresholds => self.layout_flags[2] = true,
            Key::PersistentConn => self.layout_flags[3] = true,
            Key::NoSort => self.nosort = true,
            Key::Exact => self.exact = true,
            // -n (always numeric here), --sort (the default), and the options only the
            // compatibility table looks at (-c, --timeout, --daemon, --tun-info).
            _ => {}
        }
    }
}
