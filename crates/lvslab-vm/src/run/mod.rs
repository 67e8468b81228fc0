//! Booting a guest and running one command (or an interactive shell) in it.
//!
//! The host writes a per-run second-stage script into a private control directory that
//! the guest mounts over 9p. The command's stdout and stderr go to files in that share
//! (9p writes are synchronous, so nothing is lost at power-off and no console line can
//! mix in); the host tails them while the guest runs and reads the exit status from a
//! file the guest writes last.
//!
//! By job: `options` (what the caller asks for, and the environment and shares the guest
//! gets from it), `accel` (KVM or TCG, with the remembered KVM probe), `qemu` (the
//! command line and the qemu process), `stage2` (the script the guest runs and the
//! control directory it reports through) and `output` (following the command's output
//! files). This module boots, waits under the time limit and collects the outcome.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Result, VmError};
use crate::fetch::{self, KernelImage};

mod accel;
mod options;
mod output;
mod qemu;
mod stage2;

pub use options::{
    Accel, OutputMode, RunOptions, RunOutcome, ACCEL_ENV, CONSOLE_LOG_ENV, DEFAULT_PASS_ENV,
    IN_VM_ENV, KERNEL_ARGS_ENV, SCRATCH_ENV, TIMEOUT_ENV,
};

use accel::resolve_accel;
use options::{guest_env, share_shadowed_cwd};
use output::{Stream, Tail};
use qemu::{qemu_command, Qemu};
use stage2::{stage2_script, CtlDir, Stage2};

/// Boots the cached kernel, runs `argv` in the guest and returns its exit status. The
/// guest sees the host's root read-only, the same `PATH` and working directory, and the
/// variables [`RunOptions`] passes.
pub fn run<S: AsRef<OsStr>>(opts: &RunOptions, argv: &[S]) -> Result<RunOutcome> {
    if argv.is_empty() {
        return Err(VmError::InvalidRequest("no command given".into()));
    }
    let kernel =
        fetch::cached(&opts.cache)?.ok_or_else(|| VmError::NotFetched(opts.cache.clone()))?;
    let accel = resolve_accel(opts, &kernel)?;
    let argv: Vec<OsString> = argv.iter().map(|a| a.as_ref().to_owned()).collect();
    let opts = share_shadowed_cwd(opts);
    // A guest kernel that dies (an emulation crash under TCG, seen now and then while
    // booting) says nothing about the command: a fresh guest gets one more chance, as the
    // kernel's own netdev CI replaces a VM after an oops.
    match boot_command(&opts, &kernel, accel, &argv) {
        Err(e) if e.guest_kernel_died() => {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            let mut outcome = boot_command(&opts, &kernel, accel, &argv)?;
            outcome.guest_crashes.push(first);
            Ok(outcome)
        }
        other => other,
    }
}

/// Boots the cached kernel with an interactive shell on the serial console, wired to this
/// process's terminal; returns the shell's exit status. `Ctrl-A x` leaves qemu at once.
pub fn shell(opts: &RunOptions) -> Result<i32> {
    let opts = &*share_shadowed_cwd(opts);
    let kernel =
        fetch::cached(&opts.cache)?.ok_or_else(|| VmError::NotFetched(opts.cache.clone()))?;
    let accel = resolve_accel(opts, &kernel)?;
    let ctl = CtlDir::create()?;
    let env = guest_env(opts)?;
    let shell = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            if Path::new("/bin/bash").exists() {
                "/bin/bash".into()
            } else {
                "/bin/sh".into()
            }
        });
    let script = stage2_script(
        opts,
        &env,
        &Stage2::Shell {
            shell,
            size: terminal_size(),
        },
    )?;
    write_file(&ctl.path.join("stage2.sh"), &script)?;
    let mut cmd = qemu_command(opts, &kernel, accel, &ctl.path, true);
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut qemu = Qemu::spawn(cmd)?;
    let status = qemu.wait()?;
    ctl.finish_status(status)
}

fn boot_command(
    opts: &RunOptions,
    kernel: &KernelImage,
    accel: Accel,
    argv: &[OsString],
) -> Result<RunOutcome> {
    let ctl = CtlDir::create()?;
    let env = guest_env(opts)?;
    let script = stage2_script(opts, &env, &Stage2::Command { argv })?;
    write_file(&ctl.path.join("stage2.sh"), &script)?;
    let out_path = ctl.path.join("stdout");
    let err_path = ctl.path.join("stderr");
    write_file(&out_path, b"")?;
    write_file(&err_path, b"")?;
    let mut out_tail = Tail::open(&out_path, opts.output, Stream::Out)?;
    let mut err_tail = Tail::open(&err_path, opts.output, Stream::Err)?;

    let qemu_log = ctl.path.join("qemu.log");
    let log_file = File::create(&qemu_log).map_err(|e| VmError::io("create", &qemu_log, e))?;
    let mut cmd = qemu_command(opts, kernel, accel, &ctl.path, false);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file));

    let started_marker = ctl.path.join("started");
    let start = Instant::now();
    let mut qemu = Qemu::spawn(cmd)?;
    let mut boot_ms = None;
    let status = loop {
        let exited = qemu.try_wait()?;
        if boot_ms.is_none() && started_marker.exists() {
            boot_ms = Some(millis(start.elapsed()));
        }
        out_tail.pump()?;
        err_tail.pump()?;
        if let Some(status) = exited {
            break status;
        }
        if start.elapsed() > opts.timeout {
            qemu.kill();
            return Err(VmError::Timeout {
                limit: opts.timeout,
                console_tail: ctl.console_tail(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let total_ms = millis(start.elapsed());
    out_tail.pump()?;
    err_tail.pump()?;
    let exit_code = ctl.finish_status(status)?;
    Ok(RunOutcome {
        exit_code,
        stdout: out_tail.captured,
        stderr: err_tail.captured,
        boot_ms: boot_ms.unwrap_or(total_ms),
        guest_uptime_ms: fs::read_to_string(&started_marker)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .map(|secs| (secs * 1000.0) as u64),
        total_ms,
        accel,
        kernel_release: kernel.release.clone(),
        guest_crashes: Vec::new(),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The caller's terminal size, so the guest shell wraps lines where the terminal does.
fn terminal_size() -> Option<(u16, u16)> {
    let out = Command::new("stty")
        .arg("size")
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    fs::write(path, data).map_err(|e| VmError::io("write", path, e))
}
