//! The undo journal of a lab instance: `/run/lvslab/<instance>/journal.json`.
//!
//! `lvslab up` runs as root, and `lvslab down` deletes and kills what the journal names, so
//! the journal is written to be trusted only as far as it can be checked:
//! - It appears whole: the instance folder is prepared under a private name and renamed
//!   into place (never replacing) with its first record already in it, so no crash leaves
//!   a folder without a journal. Every later record is written atomically (temp file,
//!   fsync, rename, fsync of the folder).
//! - Folders are 0700 and files 0600 whatever the umask, owned by the user running lvslab;
//!   a journal or folder that others could have written is refused, not obeyed.
//! - Namespaces are recorded with both inodes *before* their name becomes visible
//!   ([`crate::named`]); processes with their start time and executable, and are signalled
//!   only while both still match.
//!
//! Deleting a namespace deletes every link, address, route, sysctl and nft rule inside it,
//! so namespaces and processes are all there is to undo.
//!
//! This module holds the journal itself (create, open, list, record, clean up staging);
//! `records` is how a namespace and a process are identified, `files` the private
//! folders and atomic writes, and `teardown` the undo.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use lvslab_spec::Dataplane;
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use serde::{Deserialize, Serialize};

use crate::named::NamedNs;

mod files;
mod records;
mod teardown;

pub use records::{process_identity, NsRecord, ProcRecord};
pub use teardown::{orphan_namespaces, Teardown, TeardownError};

use files::{check_private, private_dir, secure_run_dir, sync_dir, write_private_file};

/// Default root of instance journals; `LVSLAB_RUN_DIR` overrides it.
pub const DEFAULT_RUN_DIR: &str = "/run/lvslab";
pub use crate::ns::NETNS_DIR;

/// Name of the journal file in an instance's folder.
pub const JOURNAL_FILE: &str = "journal.json";
/// Prefix of a folder being prepared by `up` (renamed to the instance name when whole).
const STAGING_PREFIX: &str = ".new-";
/// Prefix of a folder `down` has finished with (renamed away, then deleted).
const TRASH_PREFIX: &str = ".old-";

/// Root of instance journals.
pub fn run_dir() -> PathBuf {
    std::env::var_os("LVSLAB_RUN_DIR").map_or_else(|| PathBuf::from(DEFAULT_RUN_DIR), PathBuf::from)
}

/// Journal errors: which instance, which file, and the OS error.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("instance `{instance}` is already up (journal {path}); run `lvslab down {instance}` first, or choose another name with --instance")]
    AlreadyUp { instance: String, path: PathBuf },
    #[error("no instance `{instance}` is up (no journal at {path}); `lvslab status` lists the instances that are")]
    NotFound { instance: String, path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("journal {path} is not valid: {detail}; lvslab will not act on it (inspect it, then remove the folder by hand)")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path} is not safe to trust: {detail}; lvslab will not act on it (fix its owner and mode, or remove it)")]
    Insecure { path: PathBuf, detail: String },
    #[error("process {pid} ({what}) cannot be identified (it exited or /proc is unreadable), so it was not recorded")]
    Unidentifiable { pid: i32, what: String },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Everything `down` needs, and what `status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalState {
    pub instance: String,
    pub lab: String,
    pub lab_file: PathBuf,
    pub params: Vec<(String, String)>,
    pub dataplane: Dataplane,
    pub created_unix: u64,
    /// Who ran `up` (the control socket serves root and this user).
    #[serde(default)]
    pub owner_uid: u32,
    /// The `up` process: while it lives and `complete` is false, `up` is still working.
    #[serde(default)]
    pub creator: Option<ProcRecord>,
    pub namespaces: Vec<NsRecord>,
    pub processes: Vec<ProcRecord>,
    /// Set when `up` finished; an incomplete journal means `up` was interrupted.
    pub complete: bool,
}

impl JournalState {
    /// `up` is still running (incomplete, and its process lives).
    pub fn in_progress(&self) -> bool {
        !self.complete && self.creator.as_ref().is_some_and(ProcRecord::is_alive)
    }
}

/// An open journal; writes go straight to disk.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    pub state: JournalState,
}

/// A journal that could not be opened while listing: shown, never fatal for the others.
#[derive(Debug)]
pub struct JournalProblem {
    pub instance: String,
    pub error: JournalError,
}

/// Every instance folder of the run directory.
#[derive(Debug, Default)]
pub struct JournalList {
    pub journals: Vec<Journal>,
    pub problems: Vec<JournalProblem>,
}

impl Journal {
    /// Starts the journal of a new instance; refuses when the instance is already up. The
    /// calling process is recorded as the instance's creator.
    pub fn create(
        instance: &str,
        lab: &str,
        lab_file: &Path,
        params: &[(String, String)],
        dataplane: Dataplane,
    ) -> Result<Journal, JournalError> {
        let root = secure_run_dir()?;
        let dir = root.join(instance);
        if dir.exists() {
            return Err(JournalError::AlreadyUp {
                instance: instance.into(),
                path: dir.join(JOURNAL_FILE),
            });
        }
        let pid = std::process::id() as i32;
        let creator = ProcRecord::of(pid, "lvslab up").ok_or(JournalError::Unidentifiable {
            pid,
            what: "lvslab up".into(),
        })?;
        let staging = root.join(format!("{STAGING_PREFIX}{instance}-{pid}"));
        // A leftover of this very pid (a crash long ago, pid reused) holds nothing.
        let _ = fs::remove_dir_all(&staging);
        private_dir(&staging).map_err(io_err("create", &staging))?;
        let created_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut j = Journal {
            dir: staging.clone(),
            state: JournalState {
                instance: instance.into(),
                lab: lab.into(),
                lab_file: lab_file.to_path_buf(),
                params: params.to_vec(),
                dataplane,
                created_unix,
                owner_uid: nix::unistd::getuid().as_raw(),
                creator: Some(creator),
                namespaces: Vec::new(),
                processes: Vec::new(),
                complete: false,
            },
        };
        if let Err(e) = j.write() {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        match renameat2(
            AT_FDCWD,
            &staging,
            AT_FDCWD,
            &dir,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {}
            Err(errno) => {
                let _ = fs::remove_dir_all(&staging);
                if errno == nix::errno::Errno::EEXIST {
                    return Err(JournalError::AlreadyUp {
                        instance: instance.into(),
                        path: dir.join(JOURNAL_FILE),
                    });
                }
                return Err(io_err("rename into", &dir)(errno.into()));
            }
        }
        sync_dir(&root)?;
        j.dir = dir;
        Ok(j)
    }

    /// Opens the journal of an instance, refusing one that others could have written.
    pub fn open(instance: &str) -> Result<Journal, JournalError> {
        let root = run_dir();
        if let Ok(meta) = fs::symlink_metadata(&root) {
            check_private(&root, &meta)?;
        }
        Journal::open_in(&root, instance)
    }

    fn open_in(root: &Path, instance: &str) -> Result<Journal, JournalError> {
        let dir = root.join(instance);
        let path = dir.join(JOURNAL_FILE);
        let not_found = || JournalError::NotFound {
            instance: instance.into(),
            path: path.clone(),
        };
        let dir_meta = match fs::symlink_metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(io_err("stat", &dir)(e)),
        };
        check_private(&dir, &dir_meta)?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(JournalError::Corrupt {
                    path,
                    detail: "the instance folder has no journal".into(),
                })
            }
            Err(e) => return Err(io_err("stat", &path)(e)),
        };
        check_private(&path, &meta)?;
        let text = fs::read(&path).map_err(io_err("read", &path))?;
        let state: JournalState =
            serde_json::from_slice(&text).map_err(|e| JournalError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if state.instance != instance {
            return Err(JournalError::Corrupt {
                path,
                detail: format!(
                    "it names instance `{}`, its folder `{instance}`",
                    state.instance
                ),
            });
        }
        Ok(Journal { dir, state })
    }

    /// Every instance with a folder, sorted by name; a journal that cannot be read is a
    /// problem of its own instance, listed beside the others.
    pub fn list() -> Result<JournalList, JournalError> {
        let root = run_dir();
        let mut out = JournalList::default();
        let entries = match fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("read", &root)(e)),
        };
        let meta = fs::symlink_metadata(&root).map_err(io_err("stat", &root))?;
        check_private(&root, &meta)?;
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            match Journal::open_in(&root, &name) {
                Ok(j) => out.journals.push(j),
                // Removed by a `down` since the folder was listed.
                Err(JournalError::NotFound { .. }) => {}
                Err(error) => out.problems.push(JournalProblem {
                    instance: name,
                    error,
                }),
            }
        }
        out.journals
            .sort_by(|a, b| a.state.instance.cmp(&b.state.instance));
        out.problems.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(out)
    }

    /// Removes folders that an `up` began preparing and never renamed into place, when
    /// that `up` is gone (they hold a journal and nothing else: no namespace is created
    /// before the rename), and folders a `down` renamed away before deleting them (made
    /// only once everything they named was gone). `instance` limits it to one instance.
    /// Returns what was removed.
    pub fn clean_staging(instance: Option<&str>) -> Vec<PathBuf> {
        let root = run_dir();
        let Ok(entries) = fs::read_dir(&root) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let of_instance = |prefix: &str| {
                name.strip_prefix(prefix).is_some_and(|rest| {
                    instance.is_none_or(|i| {
                        rest.strip_prefix(i).is_some_and(|r| {
                            r.starts_with('-') && r[1..].bytes().all(|b| b.is_ascii_digit())
                        })
                    })
                })
            };
            let remove = if of_instance(TRASH_PREFIX) {
                true
            } else if of_instance(STAGING_PREFIX) {
                let creator = fs::read(path.join(JOURNAL_FILE))
                    .ok()
                    .and_then(|t| serde_json::from_slice::<JournalState>(&t).ok())
                    .and_then(|s| s.creator);
                let busy = match creator {
                    Some(c) => c.is_alive(),
                    // Not even a journal yet: busy while a process of the folder's pid
                    // lives.
                    None => name
                        .rsplit('-')
                        .next()
                        .and_then(|p| p.parse::<i32>().ok())
                        .is_some_and(|pid| process_identity(pid).is_some()),
                };
                !busy
            } else {
                false
            };
            if remove && fs::remove_dir_all(&path).is_ok() {
                removed.push(path);
            }
        }
        removed
    }

    /// The instance's folder (sockets, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records (or updates) a namespace at each step of its creation, always before the
    /// step's effect can exist (see [`crate::named`]).
    pub fn record_namespace(&mut self, node: &str, id: &NamedNs) -> Result<(), JournalError> {
        let rec = NsRecord {
            node: node.into(),
            path: id.path.clone(),
            staging: id.staging.clone(),
            ns_inode: Some(id.ns_inode),
            file_inode: id.file_inode,
        };
        match self.state.namespaces.iter_mut().find(|n| n.node == node) {
            Some(existing) => *existing = rec,
            None => self.state.namespaces.push(rec),
        }
        self.write()
    }

    /// Drops the record of a namespace that was never published (its name was taken).
    pub fn forget_namespace(&mut self, node: &str) -> Result<(), JournalError> {
        self.state.namespaces.retain(|n| n.node != node);
        self.write()
    }

    /// Records a background process; fails when it cannot be identified (the caller then
    /// stops it by its handle: nothing unrecorded may outlive `up`).
    pub fn record_process(&mut self, pid: i32, what: &str) -> Result<(), JournalError> {
        let rec = ProcRecord::of(pid, what).ok_or_else(|| JournalError::Unidentifiable {
            pid,
            what: what.into(),
        })?;
        self.state.processes.push(rec);
        self.write()
    }

    pub fn mark_complete(&mut self) -> Result<(), JournalError> {
        self.state.complete = true;
        self.write()
    }

    fn write(&self) -> Result<(), JournalError> {
        let path = self.dir.join(JOURNAL_FILE);
        let tmp = self.dir.join(format!("{JOURNAL_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(&self.state).map_err(|e| JournalError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_private_file(&tmp, &text)?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_journals_without_identities_still_parse() {
        let text = r#"{"instance":"x","lab":"nat","lab_file":"/l","params":[],"dataplane":"userspace",
            "created_unix":1,"namespaces":[{"node":"a","path":"/run/netns/lvslab-x-a"}],
            "processes":[{"pid":1,"start_time":0,"what":"d"}],"complete":true}"#;
        let s: JournalState = serde_json::from_str(text).expect("parse");
        assert_eq!(s.namespaces[0].identity(), None);
        assert!(!s.processes[0].is_alive());
        assert!(!s.in_progress());
    }
}
