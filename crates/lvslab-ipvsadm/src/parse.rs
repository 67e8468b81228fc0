//! Parsing argv into a [`Command`]: option by option into a [`State`] the way ipvsadm's
//! `process_options` fills its `ipvs_command_entry`; [`crate::check`] then applies the
//! checks ipvsadm makes once every option is read and builds the command.

use std::net::{IpAddr, Ipv4Addr};

use lvslab_spec::lb::{DestConfig, Encap, ForwardMethod, Protocol, ServiceFlags};

use crate::command::{Command, ListTarget, DEFAULT_PERSISTENCE_TIMEOUT};
use crate::error::UsageError;
use crate::listing::ListingOptions;
use crate::options::{Cmd, Group, Key, Spec};
use crate::tokenize::{tokenize, Event};
use crate::values::{
    address_error, parse_host_port, parse_number, parse_timeout, parse_u32, AddrProblem,
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

// Command-line state, filled option by option like ipvsadm's `ipvs_command_entry`.

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) cmd: Cmd,
    pub(crate) groups: u64,
    pub(crate) positionals: Vec<String>,
    // Service.
    pub(crate) protocol: Protocol,
    pub(crate) service_v6: bool,
    pub(crate) service_addr: Option<IpAddr>,
    pub(crate) service_port: u16,
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

pub(crate) const TUN_FLAG_CSUM: u16 = 1;
pub(crate) const TUN_FLAG_REMCSUM: u16 = 2;

impl State {
    pub(crate) fn has(&self, g: Group) -> bool {
        self.groups & g.bit() != 0
    }

    pub(crate) fn set(&mut self, g: Group) -> Result<(), UsageError> {
        if self.has(g) {
            return Err(UsageError::fail(format!(
                "multiple '{}' options specified",
                g.name()
            )));
        }
        self.groups |= g.bit();
        Ok(())
    }

    pub(crate) fn apply(
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
}
