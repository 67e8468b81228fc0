//! Getting a Debian kernel into the cache: pick the newest `linux-image-<ver>-amd64`,
//! download it with apt, unpack it, index its modules and build the initramfs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::debver;
use crate::error::{Result, VmError};
use crate::initramfs;

/// The environment variable that moves the cache away from [`DEFAULT_CACHE_DIR`].
pub const CACHE_ENV: &str = "LVSLAB_VM_CACHE";
/// Where kernels are cached unless [`CACHE_ENV`] says otherwise.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/lvslab/vm";

/// The file in the cache naming the kernel release in use.
const CURRENT_FILE: &str = "current";
/// The file in a kernel's directory recording what it is; written last, so its presence
/// means the entry is complete.
const RECORD_FILE: &str = "lvslab-kernel.txt";
const INITRAMFS_FILE: &str = "initramfs.cpio";

/// The cache directory in force: `$LVSLAB_VM_CACHE` or [`DEFAULT_CACHE_DIR`].
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os(CACHE_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), PathBuf::from)
}

/// A kernel unpacked in the cache, ready to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    /// The kernel release, as `uname -r` prints it in the guest (e.g. `6.12.117+deb12-amd64`).
    pub release: String,
    /// The Debian package it came from.
    pub package: String,
    /// That package's version.
    pub package_version: String,
    /// The compressed kernel image given to qemu's `-kernel`.
    pub vmlinuz: PathBuf,
    /// The initramfs given to qemu's `-initrd`.
    pub initramfs: PathBuf,
    /// The directory holding `<release>/`; the guest sees it as `/lib/modules`.
    pub modules_root: PathBuf,
}

/// The kernel currently recorded in `cache`, if a complete one is there.
pub fn cached(cache: &Path) -> Result<Option<KernelImage>> {
    let current = cache.join(CURRENT_FILE);
    let release = match fs::read_to_string(&current) {
        Ok(text) => text.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(VmError::io("read", &current, e)),
    };
    let dir = cache.join(format!("kernel-{release}"));
    let record_path = dir.join(RECORD_FILE);
    let record = match fs::read_to_string(&record_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(VmError::io("read", &record_path, e)),
    };
    let field = |key: &str| {
        record
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
            .ok_or_else(|| VmError::BadCache {
                path: record_path.clone(),
                detail: format!("no `{key}=` line"),
            })
    };
    let image = KernelImage {
        release: field("release")?,
        package: field("package")?,
        package_version: field("package_version")?,
        vmlinuz: dir.join(field("vmlinuz")?),
        initramfs: dir.join(INITRAMFS_FILE),
        modules_root: dir.join(field("modules_root")?),
    };
    for path in [&image.vmlinuz, &image.initramfs, &image.modules_root] {
        if !path.exists() {
            return Err(VmError::BadCache {
                path: path.clone(),
                detail: "listed in the record but missing (delete the cache and fetch again)"
                    .into(),
            });
        }
    }
    Ok(Some(image))
}

/// Makes sure a kernel is in `cache` and returns it. The first call downloads the newest
/// plain `linux-image-<ver>-amd64` package apt knows, unpacks it, runs `depmod` and builds
/// the initramfs; later calls find it recorded and return at once.
pub fn fetch(cache: &Path) -> Result<KernelImage> {
    if let Some(image) = cached(cache)? {
        return Ok(image);
    }
    let busybox = initramfs::find_static_busybox()?;
    for (tool, package) in [
        ("apt-get", "apt"),
        ("apt-cache", "apt"),
        ("dpkg-deb", "dpkg"),
        ("depmod", "kmod"),
    ] {
        if crate::probe::find_program(tool).is_none() {
            return Err(VmError::Missing {
                what: tool.into(),
                hint: format!("apt-get install {package}"),
            });
        }
    }
    ensure_host_modules_dir()?;
    fs::create_dir_all(cache).map_err(|e| VmError::io("create directory", cache, e))?;

    let mut updated = false;
    let (package, version) = match newest_kernel_package()? {
        Some(found) => found,
        None => {
            apt_update()?;
            updated = true;
            newest_kernel_package()?.ok_or(VmError::NoKernelPackage)?
        }
    };
    let final_dir = match install(cache, &package, &version, &busybox) {
        Ok(dir) => dir,
        // Stale package lists can name a file the mirror no longer has: refresh, retry.
        Err(first) if !updated => {
            tracing::warn!(error = %first, "kernel download failed; updating apt lists and retrying");
            apt_update()?;
            let (package, version) = newest_kernel_package()?.ok_or(VmError::NoKernelPackage)?;
            install(cache, &package, &version, &busybox)?
        }
        Err(e) => return Err(e),
    };
    cached(cache)?.ok_or_else(|| VmError::BadCache {
        path: final_dir,
        detail: "just written but not readable back".into(),
    })
}

fn apt_update() -> Result<()> {
    run_tool(Command::new("apt-get").args(["update", "-qq"])).map(drop)
}

/// Unpacks one package into a work directory, then moves it into place and records it
/// as current; returns its final directory.
fn install(cache: &Path, package: &str, version: &str, busybox: &Path) -> Result<PathBuf> {
    let release = package
        .strip_prefix("linux-image-")
        .unwrap_or(package)
        .to_owned();
    tracing::info!(%package, %version, "fetching kernel");
    let work = cache.join(format!("tmp-{}", std::process::id()));
    remove_dir_if_present(&work)?;
    fs::create_dir_all(&work).map_err(|e| VmError::io("create directory", &work, e))?;
    let result = unpack(&work, package, version, &release, busybox);
    let final_dir = cache.join(format!("kernel-{release}"));
    let outcome = result.and_then(|()| {
        let root = work.join("root");
        remove_dir_if_present(&final_dir)?;
        fs::rename(&root, &final_dir).map_err(|e| VmError::io("rename", &root, e))?;
        let tmp_current = cache.join(format!("{CURRENT_FILE}.tmp"));
        fs::write(&tmp_current, format!("{release}\n"))
            .map_err(|e| VmError::io("write", &tmp_current, e))?;
        let current = cache.join(CURRENT_FILE);
        fs::rename(&tmp_current, &current).map_err(|e| VmError::io("rename", &tmp_current, e))
    });
    let cleanup = remove_dir_if_present(&work);
    outcome?;
    cleanup?;
    Ok(final_dir)
}

/// Downloads, extracts and prepares one package inside `work/root`.
fn unpack(work: &Path, package: &str, version: &str, release: &str, busybox: &Path) -> Result<()> {
    run_tool(
        Command::new("apt-get")
            .current_dir(work)
            // Downloading as root into a directory `_apt` cannot read warns; root is fine.
            .args(["-qq", "-o", "APT::Sandbox::User=root", "download"])
            .arg(format!("{package}={version}")),
    )?;
    let deb = fs::read_dir(work)
        .map_err(|e| VmError::io("list", work, e))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| VmError::Missing {
            what: format!("the downloaded {package} .deb in {}", work.display()),
            hint: "apt-get download reported success but left no file".into(),
        })?;
    let root = work.join("root");
    run_tool(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    fs::remove_file(&deb).map_err(|e| VmError::io("remove", &deb, e))?;

    let vmlinuz = format!("boot/vmlinuz-{release}");
    if !root.join(&vmlinuz).is_file() {
        return Err(VmError::Missing {
            what: format!("{vmlinuz} in package {package}"),
            hint: "the package layout is not the expected Debian one".into(),
        });
    }
    // Debian moved modules from /lib to /usr/lib; accept either.
    let modules_root = ["lib/modules", "usr/lib/modules"]
        .into_iter()
        .find(|m| root.join(m).join(release).is_dir())
        .ok_or_else(|| VmError::Missing {
            what: format!("lib/modules/{release} in package {package}"),
            hint: "the package layout is not the expected Debian one".into(),
        })?;
    // depmod's -b base is the directory above `lib/modules`.
    let depmod_base = root.join(modules_root.trim_end_matches("lib/modules"));
    run_tool(
        Command::new("depmod")
            .arg("-b")
            .arg(&depmod_base)
            .arg(release),
    )?;
    let modules_dir = root.join(modules_root).join(release);
    initramfs::build(&modules_dir, busybox, &root.join(INITRAMFS_FILE))?;
    let record = format!(
        "release={release}\npackage={package}\npackage_version={version}\nvmlinuz={vmlinuz}\nmodules_root={modules_root}\n"
    );
    let record_path = root.join(RECORD_FILE);
    fs::write(&record_path, record).map_err(|e| VmError::io("write", &record_path, e))
}

/// The guest mounts the kernel's modules over the host's `/lib/modules`, which must exist
/// as a directory on the (read-only in the guest) host root.
fn ensure_host_modules_dir() -> Result<()> {
    let dir = Path::new("/lib/modules");
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| VmError::io("create directory", dir, e))
}

/// Asks apt for every plain `linux-image-<ver>-amd64` and returns the newest (name,
/// version), or `None` when apt knows none (its lists may not be downloaded yet).
fn newest_kernel_package() -> Result<Option<(String, String)>> {
    let search = run_tool(Command::new("apt-cache").args([
        "search",
        "--names-only",
        "^linux-image-[0-9].*-amd64$",
    ]))?;
    let names: Vec<String> = search
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| is_plain_kernel_package(name))
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let show = run_tool(
        Command::new("apt-cache")
            .args(["show", "--no-all-versions"])
            .args(&names),
    )?;
    Ok(newest_of(&parse_package_versions(&show)))
}

/// `linux-image-6.12.117+deb12-amd64` yes; its `-cloud-`, `-rt-`, `-dbg` and
/// `-unsigned` siblings and the meta-packages (`linux-image-6.12-amd64`) no.
fn is_plain_kernel_package(name: &str) -> bool {
    let Some(middle) = name
        .strip_prefix("linux-image-")
        .and_then(|rest| rest.strip_suffix("-amd64"))
    else {
        return false;
    };
    let starts_with_digit = middle.starts_with(|c: char| c.is_ascii_digit());
    let flavoured = ["cloud", "rt", "dbg", "unsigned"]
        .iter()
        .any(|f| middle.ends_with(&format!("-{f}")) || middle.contains(&format!("-{f}-")));
    // A real image's version has an ABI part (`6.1.0-56`, `6.12.117+deb12`); a
    // meta-package's has only `major.minor`.
    let has_abi = middle.contains('-') || middle.contains('+') || middle.matches('.').count() >= 2;
    starts_with_digit && !flavoured && has_abi
}

fn parse_package_versions(show: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for stanza in show.split("\n\n") {
        let get = |key: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        };
        if let (Some(name), Some(version)) = (get("Package:"), get("Version:")) {
            found.push((name, version));
        }
    }
    found
}

fn newest_of(packages: &[(String, String)]) -> Option<(String, String)> {
    packages
        .iter()
        .max_by(|a, b| debver::compare(&a.1, &b.1).then_with(|| a.0.cmp(&b.0)))
        .cloned()
}

/// Runs a helper to completion and returns its stdout, or an error with its stderr.
pub(crate) fn run_tool(cmd: &mut Command) -> Result<String> {
    let program = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .take(3)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    let out = cmd.output().map_err(|source| VmError::Spawn {
        program: program.clone(),
        source,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        return Err(VmError::Tool {
            program,
            status: out.status.to_string(),
            detail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn remove_dir_if_present(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(VmError::io("remove directory", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_plain_kernel_package, newest_of, parse_package_versions};

    #[test]
    fn only_plain_images_are_candidates() {
        assert!(is_plain_kernel_package("linux-image-6.12.117+deb12-amd64"));
        assert!(is_plain_kernel_package("linux-image-6.1.0-56-amd64"));
        assert!(!is_plain_kernel_package(
            "linux-image-6.12.117+deb12-cloud-amd64"
        ));
        assert!(!is_plain_kernel_package("linux-image-6.1.0-56-rt-amd64"));
        assert!(!is_plain_kernel_package("linux-image-6.1.0-56-amd64-dbg"));
        assert!(!is_plain_kernel_package(
            "linux-image-6.1.0-56-amd64-unsigned"
        ));
        assert!(!is_plain_kernel_package("linux-image-6.12-amd64"));
        assert!(!is_plain_kernel_package("linux-image-amd64"));
    }

    #[test]
    fn newest_is_chosen_by_debian_version_not_by_name() {
        let show = "Package: linux-image-6.1.0-56-amd64\nVersion: 6.1.192-2\n\n\
                    Package: linux-image-6.12.117+deb12-amd64\nVersion: 6.12.117-1~deb12u1\n\n\
                    Package: linux-image-6.12.99+deb12-amd64\nVersion: 6.12.99-1~deb12u1\n";
        let parsed = parse_package_versions(show);
        assert_eq!(parsed.len(), 3);
        let (name, version) = newest_of(&parsed).expect("three candidates");
        assert_eq!(name, "linux-image-6.12.117+deb12-amd64");
        assert_eq!(version, "6.12.117-1~deb12u1");
    }
}
