//! Option values as ipvsadm reads them: numbers (`strtol` within a range), timeouts,
//! `address[:port]`, scheduler flags. Errors quote the value and the option it followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvslab_spec::lb::ServiceFlags;

use crate::command::MAX_TIMEOUT;
use crate::error::{quoted, UsageError, PROGRAM};
use crate::options::SCHED_FLAGS_HELP;

/// libipvs' scheduler flags (`-b`), checked against the scheduler that will be sent.
pub(crate) fn apply_sched_flags(
    flags: &mut ServiceFlags,
    sched: &str,
    arg: &str,
) -> Result<(), UsageError> {
    let invalid = |flag: &str| {
        UsageError::fail(flag, format!("invalid scheduler flag {}", quoted(flag)))
            .hint(format!("-b (--sched-flags) takes {SCHED_FLAGS_HELP}"))
    };
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let needs = |name: &str| -> Result<(), UsageError> {
            if sched == name {
                return Ok(());
            }
            Err(UsageError::fail(
                flag,
                format!("incompatible scheduler flag {}", quoted(flag)),
            )
            .hint(format!(
                "{flag} is a flag of the {name} scheduler: add -s {name} \
                         (the scheduler here is {sched})"
            )))
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
            _ => return Err(invalid(flag)),
        }
    }
    if any {
        Ok(())
    } else {
        Err(invalid(arg))
    }
}

/// `strtol`-like decimal within `min..=max` (a `+` sign allowed, nothing after the digits).
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

/// A timeout in seconds given after `after` (`-p`, `--set`); `min` is 1 for `-p` and 0
/// for `--set` (where 0 keeps the current value).
pub(crate) fn parse_timeout(s: &str, min: u32, after: &str) -> Result<u32, UsageError> {
    parse_u32(s, min, MAX_TIMEOUT).ok_or_else(|| {
        let zero = if min == 0 {
            "; 0 keeps the current value"
        } else {
            ""
        };
        value_error(
            s,
            after,
            format!("invalid timeout value {} specified", quoted(s)),
            &format!("whole seconds from {min} to {MAX_TIMEOUT} (31 days){zero}"),
        )
    })
}

/// ipvsadm's message for a bad value, then which value after which option, and what that
/// option takes. The culprit is the value, or the option when the value is empty.
pub(crate) fn value_error(
    value: &str,
    after: &str,
    ipvsadm_text: impl Into<String>,
    takes: &str,
) -> UsageError {
    let culprit = if value.is_empty() { after } else { value };
    UsageError::fail(culprit, ipvsadm_text).hint(format!(
        "{} after {after}: {after} takes {takes}",
        quoted(value)
    ))
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

/// ipvsadm's message for an address, then why: a name (never resolved here) or the
/// address form the option takes.
pub(crate) fn address_error(
    ipvsadm_text: &str,
    value: &str,
    after: &str,
    takes: &str,
    why: AddrProblem,
) -> UsageError {
    match why {
        AddrProblem::Malformed => value_error(value, after, ipvsadm_text, takes),
        AddrProblem::HostName(h) => UsageError::fail(&h, ipvsadm_text).hint(format!(
            "{} is a host name: {PROGRAM} takes numeric addresses only and does not resolve \
             names",
            quoted(&h)
        )),
        AddrProblem::PortName(p) => UsageError::fail(&p, ipvsadm_text).hint(format!(
            "{} is a service name: {PROGRAM} takes numeric ports only",
            quoted(&p)
        )),
    }
}

/// glibc's `inet_aton`, which ipvsadm reads IPv4 addresses and masks with: one to four
/// dot-separated numbers in C notation (decimal, `0`-octal, `0x`-hex), the last one
/// filling the bytes left (`10.1` is 10.0.0.1, `10.1.2` is 10.1.0.2); whatever follows
/// ASCII white space is ignored.
pub(crate) fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let s = s
        .find(|c: char| c.is_ascii_whitespace())
        .map_or(s, |end| &s[..end]);
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let values = parts
        .iter()
        .map(|p| c_number(p))
        .collect::<Option<Vec<u32>>>()?;
    let (last, leading) = values.split_last()?;
    if leading.iter().any(|&v| v > 0xff) {
        return None;
    }
    let last_bits = 32 - 8 * leading.len();
    if last_bits < 32 && *last >> last_bits != 0 {
        return None;
    }
    let high = leading
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, &v)| acc | v << (24 - 8 * i));
    Some(Ipv4Addr::from(high | last))
}

/// One `strtoul(…, 0)` number of `inet_aton`: it must start with a digit and fit 32 bits.
fn c_number(p: &str) -> Option<u32> {
    if !p.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let (digits, radix) = if let Some(hex) = p.strip_prefix("0x").or(p.strip_prefix("0X")) {
        (hex, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
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
        let v4 = inet_aton(host).ok_or_else(|| AddrProblem::classify_host(host))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_decimal_within_range() {
        assert_eq!(parse_number("+42", 0, 100), Some(42));
        assert_eq!(parse_number("0", 1, 100), None);
        assert_eq!(parse_number("101", 0, 100), None);
        assert_eq!(parse_number("", 0, 100), None);
        assert_eq!(parse_number("-1", 0, 100), None);
        assert_eq!(parse_number("1e3", 0, 10_000), None);
        // Beyond u64: refused, not wrapped.
        assert_eq!(parse_number("99999999999999999999999", 0, u64::MAX), None);
        assert_eq!(parse_u32("4294967296", 0, u32::MAX), None);
    }

    #[test]
    fn ipv4_addresses_read_like_inet_aton() {
        let aton = |s: &str| inet_aton(s).map(|a| a.to_string());
        assert_eq!(aton("192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(aton("198.51.100").as_deref(), Some("198.51.0.100"));
        assert_eq!(aton("10.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(aton("3221225985").as_deref(), Some("192.0.2.1"));
        assert_eq!(aton("0xc0.0250.2.1").as_deref(), Some("192.168.2.1"));
        assert_eq!(aton("255.255.0").as_deref(), Some("255.255.0.0"));
        assert_eq!(aton("1.2.3.4 trailing").as_deref(), Some("1.2.3.4"));
        for bad in [
            "",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "1.2.65536",
            "1.16777216",
            "08",
            "0x",
            "1..2",
            ".1",
            "1.",
            "a.b.c.d",
            "+1.2.3.4",
            "1.2.3.4x",
            "4294967296",
        ] {
            assert_eq!(aton(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_port_forms() {
        let hp = parse_host_port("192.0.2.1:80").expect("v4 with port");
        assert_eq!(
            (hp.addr.to_string(), hp.port),
            ("192.0.2.1".into(), Some(80))
        );
        let hp = parse_host_port("[2001:db8::1]:443").expect("v6 with port");
        assert_eq!(
            (hp.addr.to_string(), hp.port),
            ("2001:db8::1".into(), Some(443))
        );
        let hp = parse_host_port("2001:db8::1").expect("bare v6");
        assert_eq!(hp.port, None);
        assert!(parse_host_port("80").is_err());
        assert!(parse_host_port("[2001:db8::1]").is_err());
        assert!(parse_host_port("192.0.2.1:65536").is_err());
        let hp = parse_host_port("198.51.100:80").expect("inet_aton shorthand");
        assert_eq!(hp.addr.to_string(), "198.51.0.100");
        assert_eq!(
            parse_host_port("lb.example:80").err(),
            Some(AddrProblem::HostName("lb.example".into()))
        );
        assert_eq!(
            parse_host_port("192.0.2.1:http").err(),
            Some(AddrProblem::PortName("http".into()))
        );
    }

    #[test]
    fn bad_values_quote_value_and_option() {
        let e = parse_timeout("0", 1, "-p").expect_err("zero timeout");
        assert_eq!(e.culprit, "0");
        assert!(
            e.message
                .starts_with("invalid timeout value `0' specified\n"),
            "{e}"
        );
        assert!(
            e.message
                .contains("`0' after -p: -p takes whole seconds from 1"),
            "{e}"
        );
        let e = parse_timeout("", 0, "--set").expect_err("empty");
        assert_eq!(e.culprit, "--set");
        assert!(e.message.contains("0 keeps"), "{e}");

        let mut flags = ServiceFlags::default();
        let e = apply_sched_flags(&mut flags, "rr", "sh-port").expect_err("needs sh");
        assert!(
            e.message.contains("add -s sh (the scheduler here is rr)"),
            "{e}"
        );
        let e = apply_sched_flags(&mut flags, "sh", ",,").expect_err("no flag at all");
        assert_eq!(e.culprit, ",,");
    }
}
