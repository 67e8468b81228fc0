//! `lvslab vm fetch|run|shell`: a Debian kernel with IPVS, ipip and gre under qemu, with
//! this machine's filesystem, for the kernel dataplane on hosts whose kernel lacks them.

use std::process::ExitCode;

use anyhow::Context;

/// Modules loaded in the guest before the command: what the labs' kernel paths use.
pub const GUEST_MODULES: [&str; 3] = ["ip_vs", "ipip", "ip_gre"];

pub fn fetch() -> anyhow::Result<ExitCode> {
    let cache = lvslab_vm::default_cache_dir();
    let k = lvslab_vm::fetch(&cache)
        .with_context(|| format!("fetch a Debian kernel into {}", cache.display()))?;
    println!(
        "kernel {} ({} {}) in {}",
        k.release,
        k.package,
        k.package_version,
        cache.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn options() -> lvslab_vm::RunOptions {
    lvslab_vm::RunOptions {
        modules: GUEST_MODULES.iter().map(|m| m.to_string()).collect(),
        ..lvslab_vm::RunOptions::default()
    }
}

pub fn run(argv: &[String]) -> anyhow::Result<ExitCode> {
    if let Some(why) = lvslab_vm::probe().skip_reason() {
        anyhow::bail!("no VM can run here: {why}");
    }
    let out = lvslab_vm::run(&options(), argv)?;
    eprintln!(
        "lvslab vm: {} ({:?}), boot {} ms, total {} ms, exit {}",
        out.kernel_release, out.accel, out.boot_ms, out.total_ms, out.exit_code
    );
    Ok(ExitCode::from(
        u8::try_from(out.exit_code.rem_euclid(256)).unwrap_or(1),
    ))
}

pub fn shell() -> anyhow::Result<ExitCode> {
    if let Some(why) = lvslab_vm::probe().skip_reason() {
        anyhow::bail!("no VM can run here: {why}");
    }
    let code = lvslab_vm::shell(&options())?;
    Ok(ExitCode::from(
        u8::try_from(code.rem_euclid(256)).unwrap_or(1),
    ))
}
