//! Booting a guest and running one command (or an interactive shell) in it.
//!
//! The host writes a per-run second-stage script into a private control directory that
//! the guest mounts over 9p. The command's stdout and stderr go to files in that share
//! (9p writes are synchronous, so nothing is lost at power-off and no console line can
//! mix in); the host tails them while the guest runs and reads the exit status from a
//! file the guest writes last.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Result, VmError};
use crate::fetch::{self, KernelImage};
use crate::initramfs::{
    GUEST_BUSYBOX, GUEST_CTL, NINEP_OPTS, TAG_CTL, TAG_MODULES, TAG_ROOT, TAG_SCRATCH,
};
use crate::probe::QEMU;

/// Environment variable choosing the accelerator: `auto`, `tcg` or `kvm`.
pub const ACCEL_ENV: &str = "LVSLAB_VM_ACCEL";
/// Environment variable giving the default time limit in seconds.
pub const TIMEOUT_ENV: &str = "LVSLAB_VM_TIMEOUT";
/// Set to `1` in the guest's environment, so programs know they run inside the VM.
pub const IN_VM_ENV: &str = "LVSLAB_IN_VM";
/// Set in the guest to the scratch directory's path when there is one.
pub const SCRATCH_ENV: &str = "LVSLAB_VM_SCRATCH";

/// Environment variable with extra guest kernel arguments (e.g. `loglevel=7`).
pub const KERNEL_ARGS_ENV: &str = "LVSLAB_VM_KERNEL_ARGS";

/// Environment variable naming a file to keep the guest's console in (normally it lives
/// and dies with the run's control directory).
pub const CONSOLE_LOG_ENV: &str = "LVSLAB_VM_CONSOLE_LOG";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const KVM_PROBE_FILE: &str = "kvm-probe";
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables copied from the caller's environment into the guest's when set.
pub const DEFAULT_PASS_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "TERM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "NO_COLOR",
    "CLICOLOR_FORCE",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "RUST_LOG",
    "RUST_MIN_STACK",
    "RUST_TEST_THREADS",
    "RUST_TEST_NOCAPTURE",
];

/// How the guest's CPU is emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM if a probe boot (done once per host kernel, remembered in the cache) proved it
    /// works, TCG otherwise.
    Auto,
    /// Pure emulation: slow, but works everywhere, including nested guests.
    Tcg,
    /// Hardware virtualisation; fails where `/dev/kvm` exists but cannot run a guest.
    Kvm,
}

impl Accel {
    /// Reads [`ACCEL_ENV`]; unset or unknown means [`Accel::Auto`].
    pub fn from_env() -> Accel {
        match std::env::var(ACCEL_ENV).as_deref() {
            Ok("tcg") => Accel::Tcg,
            Ok("kvm") => Accel::Kvm,
            _ => Accel::Auto,
        }
    }
}

/// Where the command's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Streamed to this process's stdout and stderr as it arrives.
    Stream,
    /// Kept in [`RunOutcome::stdout`] and [`RunOutcome::stderr`] only.
    Capture,
    /// Both streamed and kept.
    Tee,
}

/// How to boot the guest and what it sees.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The kernel cache (see [`crate::fetch`]).
    pub cache: PathBuf,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Guest vCPUs.
    pub cpus: u32,
    /// Wall-clock limit from qemu's start to its end; qemu is killed past it. Not applied
    /// to [`crate::shell`].
    pub timeout: Duration,
    /// The accelerator.
    pub accel: Accel,
    /// The command's working directory in the guest; `None` means this process's. It
    /// must exist in the guest: the host root is shared, but `/tmp`, `/run` and `/var` are
    /// fresh tmpfs there.
    pub cwd: Option<PathBuf>,
    /// Variable names copied from this process's environment when set.
    pub pass_env: Vec<String>,
    /// Every variable whose name starts with one of these is copied too.
    pub pass_env_prefixes: Vec<String>,
    /// Variables set explicitly, after (and over) the copied ones.
    pub env: Vec<(OsString, OsString)>,
    /// A host directory shared read-write, mounted at the same path in the guest.
    pub scratch: Option<PathBuf>,
    /// More host directories shared read-write at the same paths (mounted before
    /// `scratch`, which may lie inside one of them).
    pub shares: Vec<PathBuf>,
    /// Modules loaded with `modprobe` before the command starts.
    pub modules: Vec<String>,
    /// Where the command's output goes.
    pub output: OutputMode,
}

impl Default for RunOptions {
    fn default() -> Self {
        let timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        RunOptions {
            cache: fetch::default_cache_dir(),
            memory_mib: 1024,
            cpus: 2,
            timeout,
            accel: Accel::from_env(),
            cwd: None,
            pass_env: DEFAULT_PASS_ENV.iter().map(|s| (*s).to_owned()).collect(),
            pass_env_prefixes: vec!["LVSLAB_".to_owned()],
            env: Vec::new(),
            scratch: None,
            shares: Vec::new(),
            modules: Vec::new(),
            output: OutputMode::Stream,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The command's exit status as its shell reports it (128+N when killed by signal N).
    pub exit_code: i32,
    /// The command's stdout, when captured (empty with [`OutputMode::Stream`]).
    pub stdout: Vec<u8>,
    /// The command's stderr, when captured (empty with [`OutputMode::Stream`]).
    pub stderr: Vec<u8>,
    /// Milliseconds from starting qemu until the guest was about to start the command.
    pub boot_ms: u64,
    /// The guest's own uptime in milliseconds when the command started (kernel boot plus
    /// both init stages, as the guest clock saw it); `None` if it was not reported.
    pub guest_uptime_ms: Option<u64>,
    /// Milliseconds from starting qemu until it ended.
    pub total_ms: u64,
    /// The accelerator actually used ([`Accel::Tcg`] or [`Accel::Kvm`]).
    pub accel: Accel,
    /// The guest kernel's release.
    pub kernel_release: String,
}

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
    boot_command(&opts, &kernel, accel, &argv)
}

/// Host folders the guest covers with a fresh tmpfs.
const SHADOWED: [&str; 3] = ["/tmp", "/run", "/var"];

/// A checkout under /tmp, /run or /var (a CI clone, say) is invisible in the guest, which
/// mounts fresh tmpfs there: share the working directory's top folder below the
/// shadowed one (e.g. `/tmp/clone`) read-write at the same path, so the command, its
/// binaries and its files are where they were.
fn share_shadowed_cwd(opts: &RunOptions) -> std::borrow::Cow<'_, RunOptions> {
    let Some(cwd) = opts.cwd.clone().or_else(|| std::env::current_dir().ok()) else {
        return std::borrow::Cow::Borrowed(opts);
    };
    let covered = opts
        .scratch
        .iter()
        .chain(&opts.shares)
        .any(|d| cwd.starts_with(d));
    if covered || !SHADOWED.iter().any(|d| cwd.starts_with(d)) {
        return std::borrow::Cow::Borrowed(opts);
    }
    match cwd
        .ancestors()
        .nth(cwd.components().count().saturating_sub(3))
    {
        Some(top) if top.components().count() == 3 => {
            let mut o = opts.clone();
            o.shares.push(top.to_path_buf());
            std::borrow::Cow::Owned(o)
        }
        _ => std::borrow::Cow::Borrowed(opts),
    }
}

/// The 9p tag of `shares[k]`.
fn share_tag(k: usize) -> String {
    format!("lvslab_share{k}")
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

/// Picks the accelerator for a run; for [`Accel::Auto`], consults (or makes) the
/// remembered KVM probe.
fn resolve_accel(opts: &RunOptions, kernel: &KernelImage) -> Result<Accel> {
    match opts.accel {
        Accel::Tcg => Ok(Accel::Tcg),
        Accel::Kvm => Ok(Accel::Kvm),
        Accel::Auto => Ok(if kvm_works(opts, kernel) {
            Accel::Kvm
        } else {
            Accel::Tcg
        }),
    }
}

/// Whether a KVM guest boots here. A usable-looking `/dev/kvm` is not proof (nested KVM
/// can fail at the first instruction), so the answer comes from a real boot of `true`,
/// remembered per host kernel in the cache.
fn kvm_works(opts: &RunOptions, kernel: &KernelImage) -> bool {
    let host_release = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let key = format!("host={host_release} guest={}", kernel.release);
    let record = opts.cache.join(KVM_PROBE_FILE);
    if let Ok(text) = fs::read_to_string(&record) {
        if let Some(rest) = text.strip_prefix(&key) {
            return rest.trim_start().starts_with("ok");
        }
    }
    let usable = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let verdict = if usable {
        let probe_opts = RunOptions {
            accel: Accel::Kvm,
            timeout: KVM_PROBE_TIMEOUT,
            output: OutputMode::Capture,
            modules: Vec::new(),
            scratch: None,
            shares: Vec::new(),
            cwd: Some(PathBuf::from("/")),
            ..opts.clone()
        };
        match boot_command(&probe_opts, kernel, Accel::Kvm, &["true".into()]) {
            Ok(outcome) if outcome.exit_code == 0 => "ok".to_owned(),
            Ok(outcome) => format!("fail: `true` exited {}", outcome.exit_code),
            Err(e) => format!("fail: {}", e.to_string().lines().next().unwrap_or("")),
        }
    } else {
        "fail: /dev/kvm cannot be opened read-write".to_owned()
    };
    tracing::info!(%verdict, "KVM probe");
    // Losing the record only costs another probe next time.
    let tmp = opts
        .cache
        .join(format!("{KVM_PROBE_FILE}.{}", std::process::id()));
    if fs::write(&tmp, format!("{key} {verdict}\n")).is_ok() {
        let _ = fs::rename(&tmp, &record);
    }
    verdict == "ok"
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
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The qemu command line: no network, no display, the host root and the kernel's modules
/// read-only, the control share read-write.
fn qemu_command(
    opts: &RunOptions,
    kernel: &KernelImage,
    accel: Accel,
    ctl: &Path,
    interactive: bool,
) -> Command {
    let mut cmd = Command::new(QEMU);
    let (accel_name, cpu) = match accel {
        Accel::Kvm => ("kvm", "host"),
        Accel::Tcg | Accel::Auto => ("tcg", "max"),
    };
    cmd.args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"])
        .args(["-accel", accel_name, "-cpu", cpu])
        .args(["-m", &opts.memory_mib.to_string()])
        .args(["-smp", &opts.cpus.to_string()])
        .args(["-nic", "none"])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(&kernel.initramfs)
        .arg("-append")
        .arg(kernel_command_line());
    if interactive {
        cmd.args(["-serial", "mon:stdio"]);
    } else {
        let mut serial = OsString::from("file:");
        match std::env::var_os(CONSOLE_LOG_ENV).filter(|p| !p.is_empty()) {
            Some(path) => serial.push(qemu_escape(&path)),
            None => serial.push(qemu_escape(ctl.join("console.log").as_os_str())),
        }
        cmd.arg("-serial").arg(serial).args(["-monitor", "none"]);
    }
    let shares = vec![
        (TAG_ROOT, Path::new("/"), true),
        (TAG_MODULES, kernel.modules_root.as_path(), true),
        (TAG_CTL, ctl, false),
    ];
    let extra: Vec<(String, &Path)> = opts
        .shares
        .iter()
        .enumerate()
        .map(|(k, p)| (share_tag(k), p.as_path()))
        .collect();
    let mut shares: Vec<(&str, &Path, bool)> = shares;
    for (tag, path) in &extra {
        shares.push((tag.as_str(), path, false));
    }
    if let Some(scratch) = &opts.scratch {
        shares.push((TAG_SCRATCH, scratch.as_path(), false));
    }
    for (tag, path, readonly) in shares {
        let mut fsdev = OsString::from(format!("local,id={tag},path="));
        fsdev.push(qemu_escape(path.as_os_str()));
        fsdev.push(",security_model=none,multidevs=remap");
        if readonly {
            fsdev.push(",readonly=on");
        }
        cmd.arg("-fsdev")
            .arg(fsdev)
            .arg("-device")
            .arg(format!("virtio-9p-pci,fsdev={tag},mount_tag={tag}"));
    }
    cmd
}

/// The guest kernel's command line: quiet, so that the serial console (slow under TCG)
/// carries little; [`KERNEL_ARGS_ENV`] appends to it.
fn kernel_command_line() -> String {
    let mut line =
        "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init mitigations=off".to_owned();
    if let Ok(extra) = std::env::var(KERNEL_ARGS_ENV) {
        line.push(' ');
        line.push_str(&extra);
    }
    line
}

/// qemu option values separate with commas; a literal comma is written twice.
fn qemu_escape(value: &OsStr) -> OsString {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsStr::from_bytes(&out).to_owned()
}

/// The guest's environment: copied names and prefixes, then explicit settings, then ours.
fn guest_env(opts: &RunOptions) -> Result<Vec<(OsString, OsString)>> {
    fn set(env: &mut Vec<(OsString, OsString)>, name: OsString, value: OsString) {
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    }
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    for (name, value) in std::env::vars_os() {
        let text = name.to_string_lossy();
        let wanted = opts.pass_env.iter().any(|n| *n == text)
            || opts
                .pass_env_prefixes
                .iter()
                .any(|p| text.starts_with(p.as_str()));
        if wanted {
            set(&mut env, name, value);
        }
    }
    for (name, value) in &opts.env {
        set(&mut env, name.clone(), value.clone());
    }
    set(&mut env, IN_VM_ENV.into(), "1".into());
    if let Some(scratch) = &opts.scratch {
        set(
            &mut env,
            SCRATCH_ENV.into(),
            scratch.clone().into_os_string(),
        );
    }
    if !env.iter().any(|(n, _)| n == "PATH") {
        set(&mut env, "PATH".into(), FALLBACK_PATH.into());
    }
    for (name, value) in &env {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.contains(&b'=') || bytes.contains(&0) {
            return Err(VmError::InvalidRequest(format!(
                "environment variable name {name:?} is empty or contains '=' or NUL"
            )));
        }
        if value.as_bytes().contains(&0) {
            return Err(VmError::InvalidRequest(format!(
                "environment variable {name:?} contains NUL"
            )));
        }
    }
    Ok(env)
}

/// What stage 2 does once the guest is up.
enum Stage2<'a> {
    Command {
        argv: &'a [OsString],
    },
    Shell {
        shell: OsString,
        size: Option<(u16, u16)>,
    },
}

/// Writes the per-run second stage, run by the host's `/bin/sh` as the guest's PID 1.
/// Every value from the caller is single-quoted, so any byte but NUL survives.
fn stage2_script(
    opts: &RunOptions,
    env: &[(OsString, OsString)],
    stage: &Stage2<'_>,
) -> Result<Vec<u8>> {
    let cwd = match &opts.cwd {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| VmError::io("read", ".", e))?,
    };
    let mut s: Vec<u8> = Vec::new();
    let mut line = |parts: &[&[u8]]| {
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                s.push(b' ');
            }
            s.extend_from_slice(part);
        }
        s.push(b'\n');
    };
    line(&[b"#!/bin/sh"]);
    line(&[b"# lvslab-vm stage 2, written by the host for one run."]);
    line(&[format!("B={GUEST_BUSYBOX}; C={GUEST_CTL}").as_bytes()]);
    line(&[format!("PATH={FALLBACK_PATH}; export PATH").as_bytes()]);
    line(&[br#"fail() { printf '%s\n' "$*" > "$C/error"; $B poweroff -f; }"#]);
    line(&[b"$B hostname lvslab-vm; $B ip link set lo up"]);
    for module in &opts.modules {
        let q = quote(module.as_bytes());
        line(&[
            b"out=$(modprobe --",
            &q,
            b"2>&1) || fail modprobe",
            &q,
            b": \"$out\"",
        ]);
    }
    for (k, share) in opts.shares.iter().enumerate() {
        let q = quote(share.as_os_str().as_bytes());
        line(&[b"$B mkdir -p", &q, b"2>/dev/null"]);
        line(&[
            format!("$B mount -t 9p -o {NINEP_OPTS} {}", share_tag(k)).as_bytes(),
            &q,
            b"|| fail cannot mount a shared folder on",
            &q,
        ]);
    }
    if let Some(scratch) = &opts.scratch {
        let q = quote(scratch.as_os_str().as_bytes());
        line(&[b"$B mkdir -p", &q, b"2>/dev/null"]);
        line(&[
            format!("$B mount -t 9p -o {NINEP_OPTS} {TAG_SCRATCH}").as_bytes(),
            &q,
            b"|| fail cannot mount the scratch share on",
            &q,
        ]);
    }
    let qcwd = quote(cwd.as_os_str().as_bytes());
    let mut exec_env: Vec<u8> = b"/usr/bin/env -i".to_vec();
    for (name, value) in env {
        let mut assignment = name.as_bytes().to_vec();
        assignment.push(b'=');
        assignment.extend_from_slice(value.as_bytes());
        exec_env.push(b' ');
        exec_env.extend_from_slice(&quote(&assignment));
    }
    // `env` would take an argv[0] containing '=' for an assignment; the shell's
    // `exec "$@"` has no such trap and searches PATH as execvp does.
    exec_env.extend_from_slice(b" /bin/sh -c 'exec \"$@\"' lvslab-vm");
    match stage {
        Stage2::Command { argv } => {
            line(&[
                b"cd",
                &qcwd,
                b"|| fail working directory",
                &qcwd,
                b"does not exist in the guest \\(/tmp, /run and /var are fresh tmpfs there\\)",
            ]);
            line(&[b"$B cut -d' ' -f1 /proc/uptime > \"$C/started\""]);
            let mut words: Vec<Vec<u8>> = vec![exec_env];
            words.extend(argv.iter().map(|a| quote(a.as_bytes())));
            words.push(b"</dev/null >\"$C/stdout\" 2>\"$C/stderr\"".to_vec());
            let refs: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
            line(&refs);
        }
        Stage2::Shell { shell, size } => {
            if let Some((rows, cols)) = size {
                line(&[format!("$B stty -F /dev/ttyS0 rows {rows} cols {cols}").as_bytes()]);
            }
            line(&[b"cd", &qcwd, b"2>/dev/null || cd /"]);
            line(&[b"$B cut -d' ' -f1 /proc/uptime > \"$C/started\""]);
            line(&[
                b"$B setsid -c",
                &exec_env,
                &quote(shell.as_bytes()),
                b"<>/dev/ttyS0 >&0 2>&0",
            ]);
        }
    }
    line(&[b"echo $? > \"$C/rc\""]);
    line(&[b"$B poweroff -f"]);
    Ok(s)
}

/// Single-quotes bytes for a POSIX shell.
fn quote(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
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

#[derive(Clone, Copy)]
enum Stream {
    Out,
    Err,
}

/// Follows a file the guest appends to and forwards what is new.
struct Tail {
    file: File,
    path: PathBuf,
    mode: OutputMode,
    stream: Stream,
    captured: Vec<u8>,
}

impl Tail {
    fn open(path: &Path, mode: OutputMode, stream: Stream) -> Result<Tail> {
        let file = File::open(path).map_err(|e| VmError::io("open", path, e))?;
        Ok(Tail {
            file,
            path: path.to_path_buf(),
            mode,
            stream,
            captured: Vec::new(),
        })
    }

    fn pump(&mut self) -> Result<()> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = self
                .file
                .read(&mut buf)
                .map_err(|e| VmError::io("read", &self.path, e))?;
            if n == 0 {
                return Ok(());
            }
            let chunk = &buf[..n];
            if self.mode != OutputMode::Stream {
                self.captured.extend_from_slice(chunk);
            }
            if self.mode != OutputMode::Capture {
                // A closed stdout (`| head`) must not abort the run or leave qemu behind.
                let _ = match self.stream {
                    Stream::Out => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(chunk).and_then(|()| out.flush())
                    }
                    Stream::Err => {
                        let mut err = std::io::stderr().lock();
                        err.write_all(chunk).and_then(|()| err.flush())
                    }
                };
            }
        }
    }
}

/// A running qemu that is killed (by its pid) and reaped if dropped before it ends.
struct Qemu {
    child: Child,
    done: bool,
}

impl Qemu {
    fn spawn(mut cmd: Command) -> Result<Qemu> {
        let child = cmd.spawn().map_err(|source| VmError::Spawn {
            program: QEMU.into(),
            source,
        })?;
        Ok(Qemu { child, done: false })
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self.child.try_wait().map_err(|source| VmError::Spawn {
            program: format!("{QEMU} (wait)"),
            source,
        })?;
        self.done |= status.is_some();
        Ok(status)
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        let status = self.child.wait().map_err(|source| VmError::Spawn {
            program: format!("{QEMU} (wait)"),
            source,
        })?;
        self.done = true;
        Ok(status)
    }

    fn kill(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.done = true;
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The per-run directory shared with the guest as its control channel; removed on drop.
struct CtlDir {
    path: PathBuf,
}

impl CtlDir {
    fn create() -> Result<CtlDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "lvslab-vm-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).map_err(|e| VmError::io("create directory", &path, e))?;
        Ok(CtlDir { path })
    }

    fn console_tail(&self) -> String {
        let path = std::env::var_os(CONSOLE_LOG_ENV)
            .filter(|p| !p.is_empty())
            .map_or_else(|| self.path.join("console.log"), PathBuf::from);
        let text = fs::read(path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().rev().take(30).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Reads how the guest ended: a setup error, an exit status, or neither.
    fn finish_status(&self, qemu_status: ExitStatus) -> Result<i32> {
        if let Ok(message) = fs::read_to_string(self.path.join("error")) {
            return Err(VmError::GuestSetup {
                message: message.trim().to_owned(),
                console_tail: self.console_tail(),
            });
        }
        let rc_path = self.path.join("rc");
        match fs::read_to_string(&rc_path) {
            Ok(text) => text.trim().parse().map_err(|_| VmError::BadCache {
                path: rc_path.clone(),
                detail: format!("exit status file holds {text:?}"),
            }),
            Err(_) => Err(VmError::NoStatus {
                status: qemu_status.to_string(),
                qemu_log: fs::read_to_string(self.path.join("qemu.log"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                console_tail: self.console_tail(),
            }),
        }
    }
}

impl Drop for CtlDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::{quote, stage2_script, RunOptions, Stage2};
    use std::ffi::OsString;
    use std::path::PathBuf;
    use std::process::Command;

    #[test]
    fn quoting_survives_the_shell() {
        let nasty: &[u8] = b"it's a $HOME `x` \"q\" \\ \n end";
        let mut script = b"printf %s ".to_vec();
        script.extend_from_slice(&quote(nasty));
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(std::ffi::OsStr::new(
                std::str::from_utf8(&script).expect("test input is UTF-8"),
            ))
            .output()
            .expect("run /bin/sh");
        assert_eq!(out.stdout, nasty);
    }

    #[test]
    fn stage2_passes_argv_and_env_exactly() {
        // Run the command line stage 2 builds on the host's own sh, with the guest-only
        // parts stubbed, and check argv and env arrive unchanged.
        let opts = RunOptions {
            cwd: Some(PathBuf::from("/")),
            ..RunOptions::default()
        };
        let env = vec![
            (OsString::from("PATH"), OsString::from("/usr/bin:/bin")),
            (OsString::from("ODD"), OsString::from("a'b c")),
        ];
        let argv = vec![
            OsString::from("sh"),
            OsString::from("-c"),
            OsString::from("printf '%s|' \"$0\" \"$1\" \"$ODD\"; env | grep -c ."),
            OsString::from("x=y"),
        ];
        let script =
            stage2_script(&opts, &env, &Stage2::Command { argv: &argv }).expect("script builds");
        let text = String::from_utf8(script).expect("script is UTF-8 here");
        let exec_line = text
            .lines()
            .find(|l| l.starts_with("/usr/bin/env -i"))
            .expect("exec line present");
        let exec_line = exec_line
            .split(" </dev/null")
            .next()
            .expect("split keeps the head");
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(exec_line)
            .output()
            .expect("run /bin/sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // $0 of `sh -c` is the first argument after the script: "x=y".
        assert!(stdout.starts_with("x=y||a'b c|"), "got {stdout:?}");
    }
}
