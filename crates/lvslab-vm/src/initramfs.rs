//! The small initramfs every guest boots: static busybox, the modules needed to mount the
//! host's root over 9p, and a first-stage `/init` that mounts everything and hands over to
//! the per-run second stage the host writes into the control share.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio::{Archive, Entry};
use crate::error::{Result, VmError};

/// Modules that stage 1 needs before it can mount the root; those built into the kernel
/// are skipped.
const BOOT_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p"];

/// 9p tags shared by qemu, and the options every 9p mount uses.
pub(crate) const TAG_ROOT: &str = "lvslab_root";
pub(crate) const TAG_MODULES: &str = "lvslab_modules";
pub(crate) const TAG_CTL: &str = "lvslab_ctl";
pub(crate) const TAG_SCRATCH: &str = "lvslab_scratch";
pub(crate) const NINEP_OPTS: &str = "trans=virtio,version=9p2000.L,msize=524288";

/// Where the control share and busybox copy live inside the guest.
pub(crate) const GUEST_CTL: &str = "/run/lvslab-vm/ctl";
pub(crate) const GUEST_BUSYBOX: &str = "/run/lvslab-vm/busybox";

/// Finds a statically linked busybox on the host (the guest runs it before any host
/// library is reachable).
pub fn find_static_busybox() -> Result<PathBuf> {
    for candidate in ["/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox"] {
        let path = Path::new(candidate);
        if let Ok(bytes) = fs::read(path) {
            if is_static_elf(&bytes) {
                return Ok(path.to_path_buf());
            }
        }
    }
    Err(VmError::Missing {
        what: "a statically linked busybox".into(),
        hint: "apt-get install busybox-static".into(),
    })
}

/// True for a 64-bit little-endian ELF without a program interpreter (PT_INTERP).
fn is_static_elf(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return false;
    }
    let u16_at = |off: usize| u16::from_le_bytes([bytes[off], bytes[off + 1]]) as usize;
    let phoff = bytes[0x20..0x28]
        .try_into()
        .map(u64::from_le_bytes)
        .unwrap_or(u64::MAX);
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        match bytes.get(at..at + 4) {
            Some(t) => u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != PT_INTERP,
            None => false,
        }
    })
}

/// Module file names (relative to the release's module dir) in an order `insmod` can load
/// them, dependencies first, resolved from `modules.dep`.
pub(crate) fn boot_module_order(modules_dir: &Path) -> Result<Vec<String>> {
    let dep_path = modules_dir.join("modules.dep");
    let deps_text = fs::read_to_string(&dep_path).map_err(|e| VmError::io("read", &dep_path, e))?;
    let builtin_path = modules_dir.join("modules.builtin");
    let builtin_text = fs::read_to_string(&builtin_path).unwrap_or_default();
    let builtin: HashSet<String> = builtin_text.lines().map(module_name).collect();

    let mut deps: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in deps_text.lines() {
        let Some((file, rest)) = line.split_once(':') else {
            continue;
        };
        let list = rest.split_whitespace().map(str::to_owned).collect();
        deps.insert(module_name(file), (file.to_owned(), list));
    }

    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for wanted in BOOT_MODULES {
        if builtin.contains(*wanted) {
            continue;
        }
        let Some((file, list)) = deps.get(*wanted) else {
            return Err(VmError::BadCache {
                path: dep_path.clone(),
                detail: format!("module {wanted} is neither built in nor in modules.dep"),
            });
        };
        // modules.dep lists the full closure with the deepest dependency last.
        for dep in list.iter().rev().chain(std::iter::once(file)) {
            if seen.insert(dep.clone()) {
                order.push(dep.clone());
            }
        }
    }
    Ok(order)
}

/// `kernel/fs/9p/9p.ko.xz` → `9p`; dashes become underscores as the kernel does.
fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

/// Reads a module file, decompressing it (busybox's insmod wants a plain ELF).
fn read_module(busybox: &Path, path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let applet = if name.ends_with(".xz") {
        Some("xzcat")
    } else if name.ends_with(".gz") {
        Some("zcat")
    } else if name.ends_with(".zst") {
        None
    } else {
        return fs::read(path).map_err(|e| VmError::io("read", path, e));
    };
    let mut cmd = match applet {
        Some(applet) => {
            let mut c = Command::new(busybox);
            c.arg(applet);
            c
        }
        None => {
            let mut c = Command::new("zstd");
            c.args(["-dc", "-q"]);
            c
        }
    };
    cmd.arg(path);
    let out = cmd.output().map_err(|source| VmError::Spawn {
        program: format!("decompressor for {name}"),
        source,
    })?;
    if !out.status.success() {
        return Err(VmError::Tool {
            program: format!("decompress {name}"),
            status: out.status.to_string(),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(out.stdout)
}

/// Writes the initramfs for one extracted kernel.
pub(crate) fn build(modules_dir: &Path, busybox: &Path, out: &Path) -> Result<()> {
    let order = boot_module_order(modules_dir)?;
    let busybox_bytes = fs::read(busybox).map_err(|e| VmError::io("read", busybox, e))?;

    let mut archive = Archive::default();
    for dir in ["bin", "dev", "proc", "sys", "newroot", "modules"] {
        archive.push(&Entry::Dir {
            path: dir,
            mode: 0o755,
        });
    }
    // The kernel opens /dev/console for init's stdio before anything is mounted.
    archive.push(&Entry::CharDev {
        path: "dev/console",
        mode: 0o600,
        major: 5,
        minor: 1,
    });
    archive.push(&Entry::File {
        path: "bin/busybox",
        mode: 0o755,
        data: &busybox_bytes,
    });
    let mut names = Vec::new();
    for file in &order {
        let name = module_name(file);
        let data = read_module(busybox, &modules_dir.join(file))?;
        let path = format!("modules/{name}.ko");
        archive.push(&Entry::File {
            path: &path,
            mode: 0o644,
            data: &data,
        });
        names.push(name);
    }
    let init = stage1_script(&names);
    archive.push(&Entry::File {
        path: "init",
        mode: 0o755,
        data: init.as_bytes(),
    });
    let bytes = archive.finish();
    fs::write(out, bytes).map_err(|e| VmError::io("write", out, e))
}

/// Stage 1: load the 9p modules, mount the host root read-only with writable tmpfs where
/// a running system needs to write, and switch to the host's `/bin/sh` running stage 2.
fn stage1_script(modules: &[String]) -> String {
    format!(
        r#"#!/bin/busybox sh
B=/bin/busybox
fail() {{ $B echo "lvslab-vm stage 1: $*" >/dev/console; $B poweroff -f; }}
for m in {modules}; do $B insmod /modules/$m.ko || fail "insmod $m"; done
o={NINEP_OPTS}
$B mount -t 9p -o $o,ro,cache=loose {TAG_ROOT} /newroot || fail "mount host root (9p {TAG_ROOT})"
R=/newroot
$B mount -t proc proc $R/proc || fail "mount /proc"
$B mount -t sysfs sysfs $R/sys || fail "mount /sys"
$B mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
$B mount -t devtmpfs devtmpfs $R/dev || fail "mount /dev"
$B mkdir -p $R/dev/pts $R/dev/shm
$B mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts $R/dev/pts
$B ln -sf pts/ptmx $R/dev/ptmx
$B mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
$B mount -t tmpfs -o mode=1777 tmpfs $R/tmp || fail "mount /tmp"
$B mount -t tmpfs -o mode=0755 tmpfs $R/run || fail "mount /run"
$B mount -t tmpfs -o mode=0755 tmpfs $R/var || fail "mount /var"
$B mkdir -p $R/var/tmp $R/var/log $R/var/lib $R/var/cache $R/run/lock
$B chmod 1777 $R/var/tmp
$B ln -s /run $R/var/run
$B ln -s /run/lock $R/var/lock
$B mount -t 9p -o $o,ro,cache=loose {TAG_MODULES} $R/lib/modules || fail "mount kernel modules on /lib/modules (does /lib/modules exist on the host?)"
$B mkdir -p $R{GUEST_CTL}
$B cp $B $R{GUEST_BUSYBOX}
$B mount -t 9p -o $o {TAG_CTL} $R{GUEST_CTL} || fail "mount the control share"
exec $B switch_root $R /bin/sh {GUEST_CTL}/stage2.sh
fail "switch_root"
"#,
        modules = modules.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::{is_static_elf, module_name};

    #[test]
    fn module_names_drop_path_and_suffixes() {
        assert_eq!(module_name("kernel/fs/9p/9p.ko.xz"), "9p");
        assert_eq!(module_name("kernel/net/9p/9pnet-virtio.ko"), "9pnet_virtio");
        assert_eq!(
            module_name("kernel/drivers/virtio/virtio_pci.ko"),
            "virtio_pci"
        );
    }

    #[test]
    fn elf_without_interp_is_static() {
        let mut elf = vec![0u8; 64 + 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20] = 64; // phoff
        elf[0x36] = 56; // phentsize
        elf[0x38] = 1; // phnum
        elf[64] = 1; // PT_LOAD
        assert!(is_static_elf(&elf));
        elf[64] = 3; // PT_INTERP
        assert!(!is_static_elf(&elf));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }
}
