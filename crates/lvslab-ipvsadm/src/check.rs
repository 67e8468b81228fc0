//! What ipvsadm checks once every option is read (leftover words, the command/option
//! table, tunnel options, address families), and the [`Command`] it then sends.

use lvslab_spec::lb::{
    DestConfig, Encap, Family, ForwardMethod, Protocol, Scheduler, ServiceConfig, ServiceKey,
    Timeouts,
};

use crate::command::{Command, ListTarget, DEFAULT_SCHEDULER};
use crate::error::{quoted, UsageError, EXIT_FAILED, PROGRAM};
use crate::listing::{Layout, ListingOptions};
use crate::options::{rule, Cmd, Group, Rule};
use crate::parse::State;
use crate::values::{apply_sched_flags, parse_timeout};

/// The options only tunnelling takes.
const TUNNEL_OPTIONS: [Group; 5] = [
    Group::TunType,
    Group::TunPort,
    Group::TunNocsum,
    Group::TunCsum,
    Group::TunRemcsum,
];

impl State {
    /// What ipvsadm checks once every option is read, then the command.
    pub(crate) fn finish(mut self) -> Result<Command, UsageError> {
        if self.cmd == Cmd::SetTimeouts {
            let t = self.take_timeouts()?;
            self.check_leftovers()?;
            self.check_groups()?;
            return Ok(Command::SetTimeouts(t));
        }
        self.check_leftovers()?;
        self.check_groups()?;
        self.check_unsupported()?;

        match self.cmd {
            Cmd::AddService => Ok(Command::AddService(self.service_config()?)),
            Cmd::EditService => Ok(Command::EditService(self.service_config()?)),
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
            Cmd::AddDest => Ok(Command::AddDest {
                service: self.service_key()?,
                dest: self.dest_config()?,
            }),
            Cmd::EditDest => Ok(Command::EditDest {
                service: self.service_key()?,
                dest: self.dest_config()?,
            }),
            Cmd::DeleteDest => Ok(Command::DeleteDest {
                service: self.service_key()?,
                addr: self.dest_addr.ok_or_else(|| self.missing_invariant())?,
                port: self.dest_port,
            }),
            Cmd::SetTimeouts => Err(self.missing_invariant()),
        }
    }

    /// `--set tcp tcpfin udp`: the first three leftover words.
    fn take_timeouts(&mut self) -> Result<Timeouts, UsageError> {
        let set = self.cmd_typed.clone();
        if self.positionals.len() < 3 {
            return Err(
                UsageError::fail(&set, "--set option requires 3 timeout values").hint(format!(
                    "{set} takes three timeouts in seconds, tcp tcpfin udp (0 keeps a value), \
                     e.g. {set} 900 120 300; this line gives {}",
                    self.positionals.len()
                )),
            );
        }
        let values: Vec<String> = self.positionals.drain(..3).collect();
        Ok(Timeouts {
            tcp: parse_timeout(&values[0], 0, &set)?,
            tcp_fin: parse_timeout(&values[1], 0, &set)?,
            udp: parse_timeout(&values[2], 0, &set)?,
        })
    }

    fn check_leftovers(&self) -> Result<(), UsageError> {
        let Some(word) = self.positionals.first() else {
            return Ok(());
        };
        Err(
            UsageError::fail(word, format!("unexpected argument {word}")).hint(format!(
                "{} is the value of no option: remove it, or write the option it belongs \
                 to before it (a value follows its option: -s rr, -w 3)",
                quoted(word)
            )),
        )
    }

    /// ipvsadm's `generic_opt_check`, then its list-command conflicts.
    fn check_groups(&self) -> Result<(), UsageError> {
        let cmd = self.cmd;
        let rules = Group::ALL.iter().map(|&g| (g, rule(cmd, g)));
        self.check_table(rules, &format!("the '{}' command", cmd.name()))?;
        if cmd != Cmd::List {
            return Ok(());
        }
        let layout = [
            Group::Stats,
            Group::Rate,
            Group::Thresholds,
            Group::PersistentConn,
        ]
        .into_iter()
        .find(|g| self.has(*g));
        let other = [Group::Connection, Group::Timeout, Group::Daemon]
            .into_iter()
            .find(|g| self.has(*g));
        // ipvsadm lets `-c --persistent-conn` through; every other pair conflicts.
        let clash = match (layout, other) {
            (Some(Group::PersistentConn), Some(Group::Connection)) => None,
            (Some(l), Some(o)) => Some((l, o)),
            _ => None,
        };
        match clash {
            Some((l, o)) => {
                let (l, o) = (self.written(l), self.written(o));
                Err(
                    UsageError::fail(&l, "options conflicts in the list command").hint(format!(
                        "{l} chooses how services are listed and {o} lists something else: \
                         give one of them"
                    )),
                )
            }
            None => Ok(()),
        }
    }

    /// One of ipvsadm's option tables (`commands_v_options`, `tunnel_types_v_options`):
    /// required options present, illegal ones absent, at most one exclusive one.
    fn check_table(
        &self,
        rules: impl Iterator<Item = (Group, Rule)>,
        context: &str,
    ) -> Result<(), UsageError> {
        let mut exclusive: Option<Group> = None;
        for (g, r) in rules {
            match (r, self.has(g)) {
                (Rule::Required, false) => {
                    let text =
                        format!("You need to supply the '{}' option for {context}", g.name());
                    let spellings = g.spellings();
                    let which = if spellings.contains(", ") {
                        format!("one of {spellings}")
                    } else {
                        spellings
                    };
                    return Err(UsageError::fail(g.name(), text)
                        .hint(format!("{context} needs {which}: add it")));
                }
                (Rule::Illegal, true) => {
                    let typed = self.written(g);
                    let text = format!("Illegal '{}' option with {context}", g.name());
                    return Err(UsageError::fail(&typed, text)
                        .hint(format!("{typed} does not apply to {context}: remove it")));
                }
                (Rule::Exclusive, true) => match exclusive {
                    None => exclusive = Some(g),
                    Some(first) => {
                        let (typed, first_typed) = (self.written(g), self.written(first));
                        let text = format!(
                            "The option '{}' conflicts with the '{}' option in {context}",
                            g.name(),
                            first.name()
                        );
                        return Err(UsageError::fail(&typed, text)
                            .hint(format!("give {first_typed} or {typed}, not both")));
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    fn check_unsupported(&self) -> Result<(), UsageError> {
        for (g, what) in [
            (Group::Connection, "connection listing"),
            (Group::Daemon, "listing the sync daemons"),
            (Group::TunInfo, "listing tunnel details"),
        ] {
            if self.has(g) {
                let typed = self.written(g);
                return Err(UsageError::unsupported(
                    &typed,
                    &format!("{what} ({typed})"),
                ));
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
            addr: self.service_addr.ok_or_else(|| self.missing_invariant())?,
            port: self.service_port,
        })
    }

    fn service_config(&self) -> Result<ServiceConfig, UsageError> {
        let key = self.service_key()?;
        if self.fwmark.is_none() && self.service_port == 0 && !self.flags.persistent {
            let word = &self.service_word;
            let example = match self.service_addr {
                Some(a) if a.is_ipv6() => format!("[{a}]:80"),
                Some(a) => format!("{a}:80"),
                None => "192.0.2.1:80".to_string(),
            };
            return Err(
                UsageError::fail(word, "Zero port specified for non-persistent service").hint(
                    format!(
                        "{} has no port: give one ({example}), or make the service persistent (-p)",
                        quoted(word)
                    ),
                ),
            );
        }
        if self.flags.one_packet && self.fwmark.is_none() && self.protocol != Protocol::Udp {
            let typed = self.written(Group::Ops);
            return Err(UsageError::fail(
                &typed,
                "One-Packet Scheduling is only for UDP virtual services",
            )
            .hint(format!(
                "{typed} needs a UDP service (-u) or a firewall-mark service (-f); {} is {}",
                quoted(&self.service_word),
                self.protocol.listing_name().trim_end()
            )));
        }
        let sched_name = self
            .sched_name
            .clone()
            .unwrap_or_else(|| DEFAULT_SCHEDULER.name().to_string());
        let mut flags = self.flags;
        if let Some(arg) = &self.sched_flags {
            apply_sched_flags(&mut flags, &sched_name, arg)?;
        }
        // ipvsadm passes any name to the kernel, which refuses unknown ones (ENOENT); its
        // message is kept exactly, as the real ipvsadm prints it.
        let scheduler: Scheduler = sched_name.parse().map_err(|_| UsageError {
            message: "Scheduler or persistence engine not found".into(),
            exit_code: EXIT_FAILED,
            culprit: sched_name.clone(),
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
        let addr = self.dest_addr.ok_or_else(|| self.missing_invariant())?;
        let mut port = self.dest_port;
        let tunnel = self.method == ForwardMethod::Tunnel;
        if self.fwmark.is_none() && (tunnel || self.method == ForwardMethod::Dr) {
            port = self.service_port;
        }
        if addr.is_ipv6() != self.service_v6 && !tunnel {
            let family = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
            return Err(UsageError::fail(
                &self.dest_word,
                "Different address family is allowed only for tunneling servers",
            )
            .hint(format!(
                "{} is {} and the service is {}: give a real server of the service's family, \
                 or tunnel to it (-i)",
                quoted(&self.dest_word),
                family(addr.is_ipv6()),
                family(self.service_v6)
            )));
        }
        if let Some(g) = TUNNEL_OPTIONS.into_iter().find(|g| self.has(*g) && !tunnel) {
            let typed = self.written(g);
            return Err(
                UsageError::fail(&typed, "Tunnel options conflict with forward method").hint(
                    format!("{typed} applies to tunnelling only: add -i (--ipip) or remove it"),
                ),
            );
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
        use Rule::{Exclusive as X, Illegal as I, Required as R};
        let (type_name, rules) = match self.tun_type {
            Encap::Ipip => ("ipip", [I, I, I, I]),
            Encap::Gue => ("gue", [R, X, X, X]),
            Encap::Gre => ("gre", [I, X, X, I]),
        };
        let groups = [
            Group::TunPort,
            Group::TunNocsum,
            Group::TunCsum,
            Group::TunRemcsum,
        ];
        let context = format!("the '{type_name}' tunnel type");
        self.check_table(groups.into_iter().zip(rules), &context)
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

    /// An internal inconsistency (a required option the compatibility table already
    /// guarantees); reported rather than panicking.
    fn missing_invariant(&self) -> UsageError {
        let cmd = self.cmd.name();
        UsageError::fail(
            cmd,
            format!("{PROGRAM}: internal error: the '{cmd}' command is incomplete"),
        )
    }
}
