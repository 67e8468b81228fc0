//! lvslab-vm: runs commands inside a qemu guest booted from a real Debian kernel, for
//! kernel features the host lacks (IPVS, ipip, gre).
//!
//! [`fetch`] puts the newest Debian `linux-image-<ver>-amd64` into a cache; [`run`] boots
//! it with the host's root filesystem shared read-only over 9p (tmpfs on `/tmp`, `/run`,
//! `/var`; the kernel's modules on `/lib/modules`), runs one command with the caller's
//! `PATH` and working directory, and returns its exit status, its output kept apart from
//! the console; [`shell`] gives an interactive shell; [`probe`] says whether any of this
//! can work here and why not.
//!
//! It depends on no other lvslab crate; it runs `qemu-system-x86_64`, and [`fetch`] the
//! host's packaging tools (apt, `dpkg-deb`, `depmod`). It must never write the host
//! filesystem except where it was told to: the guest sees the host root read-only and can
//! write only the folders shared read-write with it ([`RunOptions::scratch`] and
//! [`RunOptions::shares`], plus the working directory's top folder when that lies under
//! `/tmp`, `/run` or `/var`, which the guest covers with tmpfs). The host side writes
//! only the kernel cache, a per-run control directory (removed when the run ends) and the
//! console log `$LVSLAB_VM_CONSOLE_LOG` names. [`fetch`] alone writes elsewhere: apt's
//! package lists (`apt-get update`, when they are stale) and an empty `/lib/modules`
//! when the host has none (the guest mounts the kernel's modules there).

mod cpio;
mod debver;
mod error;
mod fetch;
mod initramfs;
mod probe;
mod run;

pub use error::{Result, VmError};
pub use fetch::{cached, default_cache_dir, fetch, KernelImage, CACHE_ENV, DEFAULT_CACHE_DIR};
pub use probe::{probe, probe_cache, VmAvailability, QEMU};
pub use run::{
    run, shell, Accel, OutputMode, RunOptions, RunOutcome, ACCEL_ENV, DEFAULT_PASS_ENV, IN_VM_ENV,
    SCRATCH_ENV, TIMEOUT_ENV,
};
