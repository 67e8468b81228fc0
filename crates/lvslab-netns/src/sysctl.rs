//! Per-namespace sysctls (`sysctl -w net.…` inside a namespace).
//!
//! Files under `/proc/sys/net` belong to the namespace of the thread that opens them, so
//! every read and write happens on a thread inside the target namespace. Only `net.*`
//! keys are accepted: everything else is global to the machine.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::ns::Netns;

const PROC_SYS: &str = "/proc/sys";

/// Turns a sysctl key into its path below `/proc/sys`.
///
/// Accepts the dotted form (`net.ipv4.conf.lo.arp_ignore`) and the slash form
/// (`net/ipv4/conf/eth0.100/rp_filter`, needed when an interface name contains a dot).
/// Rejects keys outside `net`, empty or `..` components, and characters that cannot
/// occur in a sysctl name.
pub fn sysctl_path(key: &str) -> Result<PathBuf> {
    let invalid = |detail: String| Error::InvalidArgument {
        op: format!("sysctl {key}"),
        detail,
    };
    let slash_form = key.contains('/');
    let parts: Vec<&str> = if slash_form {
        key.split('/').collect()
    } else {
        key.split('.').collect()
    };
    if parts.first() != Some(&"net") {
        return Err(invalid(format!(
            "{key:?} is not under net.: only per-namespace (net.*) sysctls can be set in a lab"
        )));
    }
    if parts.len() < 2 {
        return Err(invalid(format!("{key:?} names no sysctl below net.")));
    }
    for part in &parts {
        if part.is_empty() || *part == "." || *part == ".." {
            return Err(invalid(format!(
                "{key:?} has an empty, '.' or '..' component"
            )));
        }
        let allowed =
            |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (slash_form && c == '.');
        if !part.chars().all(allowed) {
            return Err(invalid(format!(
                "{key:?} contains a character other than letters, digits, '_', '-'{}",
                if slash_form { " or '.'" } else { "" }
            )));
        }
    }
    Ok(parts.iter().collect())
}

/// `sysctl -w KEY=VALUE` inside `ns`.
pub fn set_sysctl(ns: &Netns, key: &str, value: &str) -> Result<()> {
    let op = format!("sysctl -w {key}={value}");
    ns.ensure_writable(&op)?;
    if value.is_empty() || value.contains(['\n', '\0']) {
        return Err(Error::InvalidArgument {
            op,
            detail: "the value must be non-empty and on one line".into(),
        });
    }
    let path = Path::new(PROC_SYS).join(sysctl_path(key)?);
    ns.run(|| {
        let mut file = OpenOptions::new().write(true).open(&path)?;
        file.write_all(value.as_bytes())
    })?
    .map_err(|source| Error::Sysctl {
        op,
        ns: ns.label().to_string(),
        key: key.to_string(),
        source,
    })
}

/// `sysctl -n KEY` inside `ns`, without the trailing newline.
pub fn get_sysctl(ns: &Netns, key: &str) -> Result<String> {
    let op = format!("sysctl -n {key}");
    let path = Path::new(PROC_SYS).join(sysctl_path(key)?);
    ns.run(|| fs::read_to_string(&path))?
        .map(|text| text.trim_end().to_string())
        .map_err(|source| Error::Sysctl {
            op,
            ns: ns.label().to_string(),
            key: key.to_string(),
            source,
        })
}

/// Reads every readable sysctl below the given `/proc/sys`-relative directories (e.g.
/// `net/ipv4`) inside `ns`, keyed by dotted name. Write-only entries are skipped.
pub fn read_tree(ns: &Netns, roots: &[&str]) -> Result<BTreeMap<String, String>> {
    ns.run(|| {
        let mut out = BTreeMap::new();
        for root in roots {
            walk(&Path::new(PROC_SYS).join(root), &mut out)?;
        }
        Ok(out)
    })?
    .map_err(|source| Error::Sysctl {
        op: format!("sysctl -a ({})", roots.join(", ")),
        ns: ns.label().to_string(),
        key: roots.join(","),
        source,
    })
}

fn walk(dir: &Path, out: &mut BTreeMap<String, String>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
            continue;
        }
        match fs::read_to_string(&path) {
            Ok(text) => {
                out.insert(dotted_key(&path), text.trim_end().to_string());
            }
            // Write-only (e.g. route/flush) or not readable in this namespace.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::PermissionDenied | ErrorKind::InvalidInput | ErrorKind::NotFound
                ) || e.raw_os_error() == Some(libc::EIO) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn dotted_key(path: &Path) -> String {
    let rel = path.strip_prefix(PROC_SYS).unwrap_or(path);
    rel.iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_and_slash_keys_map_to_proc_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.conf.lo.arp_ignore").expect("valid"),
            PathBuf::from("net/ipv4/conf/lo/arp_ignore")
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/rp_filter").expect("valid"),
            PathBuf::from("net/ipv4/conf/eth0.100/rp_filter")
        );
        assert_eq!(
            sysctl_path("net.ipv4.vs.expire_nodest_conn").expect("valid"),
            PathBuf::from("net/ipv4/vs/expire_nodest_conn")
        );
        assert_eq!(
            sysctl_path("net.ipv4.conf.veth-rs1.rp_filter").expect("valid"),
            PathBuf::from("net/ipv4/conf/veth-rs1/rp_filter")
        );
    }

    #[test]
    fn keys_outside_net_are_refused_with_a_reason() {
        let err = sysctl_path("kernel.hostname").expect_err("not per-netns");
        assert!(err.to_string().contains("only per-namespace"), "{err}");
        assert!(sysctl_path("vm.swappiness").is_err());
        assert!(sysctl_path("network.x").is_err());
        assert!(sysctl_path("").is_err());
        assert!(sysctl_path("net").is_err());
    }

    #[test]
    fn traversal_and_odd_characters_are_refused() {
        for bad in [
            "net/../kernel/hostname",
            "net/ipv4/./ip_forward",
            "net..ipv4.ip_forward",
            "net.ipv4.ip_forward.",
            "net.ipv4.conf.a b.rp_filter",
            "net.ipv4.conf.*.rp_filter",
            "/net/ipv4/ip_forward",
            "net/ipv4//ip_forward",
        ] {
            assert!(sysctl_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dotted_keys_are_built_from_proc_paths() {
        assert_eq!(
            dotted_key(Path::new("/proc/sys/net/ipv4/conf/all/rp_filter")),
            "net.ipv4.conf.all.rp_filter"
        );
    }
}
