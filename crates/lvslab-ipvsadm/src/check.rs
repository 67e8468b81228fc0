//! What ipvsadm checks once every option is read (leftover words, the command/option
//! table, tunnel options, address families), and the [`Command`] it then sends.

use lvslab_spec::lb::{
    DestConfig, Encap, Family, ForwardMethod, Protocol, Scheduler, ServiceConfig, ServiceKey,
    Timeouts,
};

use crate::command::{Command, ListTarget, DEFAULT_SCHEDULER};
use crate::error::{UsageError, EXIT_FAILED, PROGRAM};
use crate::listing::{Layout, ListingOptions};
use crate::options::{rule, Cmd, Group, Rule};
use crate::parse::State;
use crate::values::{apply_sched_flags, parse_timeout};

impl State {
    /// What ipvsadm checks once every option is read, then the command.
    pub(crate) fn finish(mut self) -> Result<Command, UsageError> {
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
pub(crate) fn missing_invariant() -> UsageError {
    UsageError::fail(format!("{PROGRAM}: internal error: incomplete command"))
}
