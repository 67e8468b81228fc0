//! The qemu command line (devices, 9p shares, kernel arguments) and the qemu process.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};

use super::options::share_tag;
use super::{Accel, RunOptions, CONSOLE_LOG_ENV, KERNEL_ARGS_ENV};
use crate::error::{Result, VmError};
use crate::fetch::KernelImage;
use crate::initramfs::{TAG_CTL, TAG_MODULES, TAG_ROOT, TAG_SCRATCH};
use crate::probe::QEMU;

/// The qemu command line: no network, no display, the host root and the kernel's modules
/// read-only, the control share read-write.
pub(super) fn qemu_command(
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
pub(super) fn kernel_command_line() -> String {
    let mut line =
        "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init mitigations=off".to_owned();
    if let Ok(extra) = std::env::var(KERNEL_ARGS_ENV) {
        line.push(' ');
        line.push_str(&extra);
    }
    line
}

/// qemu option values separate with commas; a literal comma is written twice.
pub(super) fn qemu_escape(value: &OsStr) -> OsString {
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

/// A running qemu that is killed (by its pid) and reaped if dropped before it ends.
pub(super) struct Qemu {
    child: Child,
    done: bool,
}

impl Qemu {
    pub(super) fn spawn(mut cmd: Command) -> Result<Qemu> {
        let child = cmd.spawn().map_err(|source| VmError::Spawn {
            program: QEMU.into(),
            source,
        })?;
        Ok(Qemu { child, done: false })
    }

    pub(super) fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self.child.try_wait().map_err(|source| VmError::Spawn {
            program: format!("{QEMU} (wait)"),
            source,
        })?;
        self.done |= status.is_some();
        Ok(status)
    }

    pub(super) fn wait(&mut self) -> Result<ExitStatus> {
        let status = self.child.wait().map_err(|source| VmError::Spawn {
            program: format!("{QEMU} (wait)"),
            source,
        })?;
        self.done = true;
        Ok(status)
    }

    pub(super) fn kill(&mut self) {
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
