//! Option values as ipvsadm reads them: numbers (`strtol` within a range), timeouts,
//! `address[:port]`, scheduler flags.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_spec::lb::ServiceFlags;

use crate::command::MAX_TIMEOUT;
use crate::error::{UsageError, PROGRAM};

/// libipvs' scheduler flags (`-b`), checked against the scheduler that will be sent.
pub(crate) fn apply_sched_flags(
    flags: &mut ServiceFlags,
    sched: &str,
    arg: &str,
) -> Result<(), UsageError> {
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
pub(crate) fn parse_number(s: &str, min: u64, max: u64) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (min..=max).contains(&n).then_some(n)
}

pub(crate) fn parse_u32(s: &str, min: u32, max: u32) -> Option<u32> {
    parse_number(s, u64::from(min), u64::from(max)).and_then(|n| u32::try_from(n).ok())
}

pub(crate) fn parse_timeout(s: &str, min: u32) -> Result<u32, UsageError> {
    parse_u32(s, min, MAX_TIMEOUT)
        .ok_or_else(|| UsageError::fail(format!("invalid timeout value `{s}' specified")))
}

/// An address[:port] as ipvsadm's `parse_service` reads it.
pub(crate) struct HostPort {
    pub(crate) addr: IpAddr,
    pub(crate) port: Option<u16>,
}

/// Why an address was refused (adds a hint to ipvsadm's message when it helps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AddrProblem {
    Malformed,
    HostName(String),
    PortName(String),
}

impl AddrProblem {
    pub(crate) fn classify_host(host: &str) -> Self {
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

pub(crate) fn address_error(message: &str, why: AddrProblem) -> UsageError {
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
pub(crate) fn parse_host_port(s: &str) -> Result<HostPort, AddrProblem> {
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
