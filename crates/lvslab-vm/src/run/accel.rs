//! Choosing the accelerator: KVM only where a real probe boot proved it works.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::{boot_command, Accel, OutputMode, RunOptions};
use crate::error::Result;
use crate::fetch::KernelImage;

const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const KVM_PROBE_FILE: &str = "kvm-probe";

/// Picks the accelerator for a run; for [`Accel::Auto`], consults (or makes) the
/// remembered KVM probe.
pub(super) fn resolve_accel(opts: &RunOptions, kernel: &KernelImage) -> Result<Accel> {
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
pub(super) fn kvm_works(opts: &RunOptions, kernel: &KernelImage) -> bool {
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
