//! What identifies a namespace and a process beyond its name or (recyclable) pid, so that
//! nothing is removed or signalled that is not provably the one recorded.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::named::NamedNs;

/// A namespace the instance owns (or meant to create: a record without inodes comes from
/// an older lvslab and proves nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsRecord {
    /// Node or switch name.
    pub node: String,
    /// `/run/netns/lvslab-<instance>-<node>`.
    pub path: PathBuf,
    #[serde(default)]
    pub staging: PathBuf,
    #[serde(default)]
    pub ns_inode: Option<u64>,
    #[serde(default)]
    pub file_inode: Option<u64>,
}

impl NsRecord {
    /// What proves the namespace is this instance's; `None` for a record of an older
    /// lvslab, which proves nothing.
    pub fn identity(&self) -> Option<NamedNs> {
        if self.staging.as_os_str().is_empty() {
            return None;
        }
        Some(NamedNs {
            path: self.path.clone(),
            staging: self.staging.clone(),
            ns_inode: self.ns_inode?,
            file_inode: self.file_inode,
        })
    }

    /// Whether the namespace at the path is the one recorded (mounted, same inode).
    pub fn is_present(&self) -> bool {
        self.ns_inode.is_some_and(|ino| {
            fs::metadata(&self.path).is_ok_and(|m| m.ino() == ino)
                && nix::sys::statfs::statfs(&self.path)
                    .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        })
    }
}

/// A process the instance owns, with what identifies it beyond its (recyclable) pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRecord {
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks since boot).
    pub start_time: u64,
    /// `/proc/<pid>/exe` when recorded.
    #[serde(default)]
    pub exe: PathBuf,
    pub what: String,
}

impl ProcRecord {
    /// Identifies a running process now; `None` when it is gone or unreadable.
    pub fn of(pid: i32, what: &str) -> Option<ProcRecord> {
        let (start_time, exe) = process_identity(pid)?;
        Some(ProcRecord {
            pid,
            start_time,
            exe,
            what: what.to_string(),
        })
    }

    /// Whether the pid still belongs to the recorded process (start time and executable
    /// match). A record lacking either never matches: nothing unproven is signalled.
    pub fn is_alive(&self) -> bool {
        if self.start_time == 0 || self.exe.as_os_str().is_empty() {
            return false;
        }
        process_identity(self.pid).is_some_and(|(t, exe)| t == self.start_time && exe == self.exe)
    }
}

/// Start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot) and executable of
/// a running process; `None` when it is gone or is a zombie (exited, only its parent's
/// wait missing).
pub fn process_identity(pid: i32) -> Option<(u64, PathBuf)> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields after it
    // start behind the last `)`: state is field 3, start time field 22.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z") | Some("X")) {
        return None;
    }
    let start: u64 = fields.nth(18)?.parse().ok()?;
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    // A binary rebuilt while the process runs shows as "<path> (deleted)".
    let exe = match exe.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(s) => PathBuf::from(s),
        None => exe,
    };
    Some((start, exe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_start_time_or_exe_is_never_alive() {
        let me = std::process::id() as i32;
        let mut rec = ProcRecord::of(me, "test").expect("this process");
        assert!(rec.is_alive());
        rec.start_time = 0;
        assert!(!rec.is_alive(), "start_time 0 must not mean `same process`");
        let mut rec = ProcRecord::of(me, "test").expect("this process");
        rec.exe = PathBuf::new();
        assert!(!rec.is_alive());
        let mut rec = ProcRecord::of(me, "test").expect("this process");
        rec.exe = PathBuf::from("/bin/true");
        assert!(!rec.is_alive(), "another executable is another process");
        let mut rec = ProcRecord::of(me, "test").expect("this process");
        rec.start_time += 1;
        assert!(!rec.is_alive(), "another start time is a recycled pid");
    }
}
