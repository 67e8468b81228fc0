//! What the caller asks for ([`RunOptions`]) and gets back ([`RunOutcome`]), and what the
//! guest gets from the options: its environment and the host folders shared with it.

use std::borrow::Cow;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Result, VmError};
use crate::fetch;

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
/// `PATH` in the guest when the caller passes none.
pub(super) const FALLBACK_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
    /// Earlier guests whose kernel died before the command could report (each replaced
    /// by a fresh boot), first line of what was seen.
    pub guest_crashes: Vec<String>,
}

/// The guest's environment: copied names and prefixes, then explicit settings, then ours.
pub(super) fn guest_env(opts: &RunOptions) -> Result<Vec<(OsString, OsString)>> {
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

/// Host folders the guest covers with a fresh tmpfs.
pub(super) const SHADOWED: [&str; 3] = ["/tmp", "/run", "/var"];
/// A checkout under /tmp, /run or /var (a CI clone, say) is invisible in the guest, which
/// mounts fresh tmpfs there: share the working directory's top folder below the
/// shadowed one (e.g. `/tmp/clone`) read-write at the same path, so the command, its
/// binaries and its files are where they were.
pub(super) fn share_shadowed_cwd(opts: &RunOptions) -> Cow<'_, RunOptions> {
    let Some(cwd) = opts.cwd.clone().or_else(|| std::env::current_dir().ok()) else {
        return Cow::Borrowed(opts);
    };
    let covered = opts
        .scratch
        .iter()
        .chain(&opts.shares)
        .any(|d| cwd.starts_with(d));
    if covered || !SHADOWED.iter().any(|d| cwd.starts_with(d)) {
        return Cow::Borrowed(opts);
    }
    match cwd
        .ancestors()
        .nth(cwd.components().count().saturating_sub(3))
    {
        Some(top) if top.components().count() == 3 => {
            let mut o = opts.clone();
            o.shares.push(top.to_path_buf());
            Cow::Owned(o)
        }
        _ => Cow::Borrowed(opts),
    }
}

/// The 9p tag of `shares[k]`.
pub(super) fn share_tag(k: usize) -> String {
    format!("lvslab_share{k}")
}
