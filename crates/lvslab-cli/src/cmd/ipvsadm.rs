//! `lvslab ipvsadm --instance NAME <ipvsadm arguments>`: ipvsadm's own syntax against an
//! instance's director, on either dataplane; `lvslab stats NAME`: the userspace engines'
//! counters.

use std::io::Write;
use std::process::ExitCode;

use lvslab_instance::{Instance, IpvsadmOutput};

use super::require_root;

fn print(o: &IpvsadmOutput) -> anyhow::Result<ExitCode> {
    std::io::stdout().write_all(o.stdout.as_bytes())?;
    std::io::stderr().write_all(o.stderr.as_bytes())?;
    Ok(ExitCode::from(
        u8::try_from(o.exit_code.rem_euclid(256)).unwrap_or(1),
    ))
}

pub fn ipvsadm(
    instance: &str,
    director: Option<&str>,
    args: &[String],
) -> anyhow::Result<ExitCode> {
    require_root("lvslab ipvsadm")?;
    print(&Instance::open(instance)?.ipvsadm(director, args)?)
}

pub fn stats(instance: &str) -> anyhow::Result<ExitCode> {
    require_root("lvslab stats")?;
    print(&Instance::open(instance)?.stats()?)
}
