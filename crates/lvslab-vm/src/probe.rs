//! Can a VM run here, and if not, why not: for test collection to skip kernel trials
//! with a reason instead of failing in the middle of them.

use std::path::{Path, PathBuf};

use crate::fetch::{self, KernelImage};

/// The qemu binary the runner starts.
pub const QEMU: &str = "qemu-system-x86_64";

/// What the host offers for running guests.
#[derive(Debug, Clone)]
pub struct VmAvailability {
    /// The qemu binary, when found on `PATH`.
    pub qemu: Option<PathBuf>,
    /// The kernel in the cache, when one was fetched.
    pub kernel: Option<KernelImage>,
    /// Whether [`crate::fetch`] has the tools it needs (apt, dpkg-deb, depmod, static busybox).
    pub can_fetch: bool,
    /// Every reason a run or a fetch would fail, written for the person reading the skip.
    pub reasons: Vec<String>,
}

impl VmAvailability {
    /// True when [`crate::run`] can boot a guest now, without fetching anything.
    pub fn can_run(&self) -> bool {
        self.qemu.is_some() && self.kernel.is_some() && Path::new("/lib/modules").is_dir()
    }

    /// `None` when a guest can run; otherwise all reasons joined, for a skip message.
    pub fn skip_reason(&self) -> Option<String> {
        if self.can_run() {
            None
        } else {
            Some(format!("no VM can run: {}", self.reasons.join("; ")))
        }
    }
}

/// Probes the default cache (see [`crate::default_cache_dir`]).
pub fn probe() -> VmAvailability {
    probe_cache(&fetch::default_cache_dir())
}

/// Probes with an explicit cache directory. Boots nothing and downloads nothing.
pub fn probe_cache(cache: &Path) -> VmAvailability {
    let mut reasons = Vec::new();
    let qemu = find_program(QEMU);
    if qemu.is_none() {
        reasons.push(format!(
            "{QEMU} not found on PATH (apt-get install qemu-system-x86)"
        ));
    }
    let kernel = match fetch::cached(cache) {
        Ok(Some(kernel)) => Some(kernel),
        Ok(None) => {
            reasons.push(format!(
                "no kernel fetched into {} (run `lvslab vm fetch` or .ci/vm-setup.sh)",
                cache.display()
            ));
            None
        }
        Err(e) => {
            reasons.push(e.to_string());
            None
        }
    };
    if !Path::new("/lib/modules").is_dir() {
        reasons.push(
            "/lib/modules does not exist on the host, so the guest cannot mount its modules there (a fetch creates it)"
                .into(),
        );
    }
    let mut can_fetch = true;
    for (tool, package) in [("apt-get", "apt"), ("dpkg-deb", "dpkg"), ("depmod", "kmod")] {
        if find_program(tool).is_none() {
            can_fetch = false;
            reasons.push(format!(
                "cannot fetch: {tool} missing (apt-get install {package})"
            ));
        }
    }
    if let Err(e) = crate::initramfs::find_static_busybox() {
        can_fetch = false;
        reasons.push(format!("cannot fetch: {e}"));
    }
    VmAvailability {
        qemu,
        kernel,
        can_fetch,
        reasons,
    }
}

/// Looks a program up on `PATH` (plus the sbin directories a non-login root shell may lack).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
