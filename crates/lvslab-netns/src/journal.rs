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

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lvslab_spec::Dataplane;
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use serde::{Deserialize, Serialize};

use crate::named::{remove_owned, NamedNs, Removal};

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

/// What a teardown did: removed objects, objects left because they are not provably
/// this lab's, and failures (each with its object and OS error).
#[derive(Debug, Default)]
pub struct Teardown {
    pub removed: Vec<String>,
    pub left: Vec<String>,
    pub errors: Vec<TeardownError>,
}

impl Teardown {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The failures, one per line.
    pub fn error_lines(&self) -> String {
        self.errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One failure while undoing: the object (namespace path, pid, folder), the cause and
/// the OS error number behind it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{op} {object}: {detail}")]
pub struct TeardownError {
    pub op: &'static str,
    pub object: String,
    pub errno: Option<i32>,
    pub detail: String,
}

impl TeardownError {
    fn os(op: &'static str, object: String, e: &io::Error) -> TeardownError {
        TeardownError {
            op,
            object,
            errno: e.raw_os_error(),
            detail: e.to_string(),
        }
    }

    fn errno(op: &'static str, object: String, e: nix::errno::Errno) -> TeardownError {
        TeardownError {
            op,
            object,
            errno: Some(e as i32),
            detail: e.desc().to_string(),
        }
    }
}

/// Creates a private folder (0700 whatever the umask).
fn private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o700).create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

/// Refuses a folder or file that someone other than us (or root) owns or could write.
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), JournalError> {
    let me = nix::unistd::geteuid().as_raw();
    let insecure = |detail: String| JournalError::Insecure {
        path: path.to_path_buf(),
        detail,
    };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(insecure(format!(
            "owned by uid {}, not by uid {me} or root",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(insecure(format!(
            "mode {:04o} lets others write it",
            meta.mode() & 0o7777
        )));
    }
    if meta.file_type().is_symlink() {
        return Err(insecure("is a symbolic link".into()));
    }
    Ok(())
}

/// The run directory, created private if missing and checked if present.
fn secure_run_dir() -> Result<PathBuf, JournalError> {
    let root = run_dir();
    if let Some(parent) = root.parent() {
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    }
    match private_dir(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("create", &root)(e)),
    }
    let meta = fs::symlink_metadata(&root).map_err(io_err("stat", &root))?;
    check_private(&root, &meta)?;
    Ok(root)
}

fn write_private_file(path: &Path, data: &[u8]) -> Result<(), JournalError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("write", path))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err("chmod", path))?;
    f.write_all(data).map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("sync", path))
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
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

    /// Undoes everything the journal names that is provably this instance's: stops its
    /// processes (TERM, then KILL after a grace period), removes its namespaces, then the
    /// folder. Continues past failures and returns every one of them; the folder stays
    /// when something failed, so `down` can be run again.
    pub fn teardown(self) -> Teardown {
        let mut t = Teardown::default();
        for p in self.state.processes.iter().rev() {
            match stop_process(p) {
                Ok(true) => t.removed.push(format!("{} (pid {})", p.what, p.pid)),
                Ok(false) => {}
                Err(e) => t.errors.push(e),
            }
        }
        for ns in self.state.namespaces.iter().rev() {
            let Some(id) = ns.identity() else {
                if ns.path.exists() {
                    t.left.push(format!(
                        "{}: recorded without its identity (older lvslab?), so not removed; remove it by hand if it is this lab's",
                        ns.path.display()
                    ));
                }
                continue;
            };
            match remove_owned(&id) {
                Ok(Removal::Removed) => t.removed.push(ns.path.display().to_string()),
                Ok(Removal::Absent) => {}
                Ok(Removal::NotOurs { detail }) => t.left.push(format!("{detail}; left in place")),
                Err(e) => t.errors.push(TeardownError {
                    op: "remove namespace",
                    object: ns.path.display().to_string(),
                    errno: e.errno(),
                    detail: e.to_string(),
                }),
            }
        }
        if t.errors.is_empty() {
            // Renamed away first, in one step, so that a crash while deleting never leaves
            // a folder with half a journal under the instance's name.
            let trash = self.dir.parent().unwrap_or(Path::new("/")).join(format!(
                "{TRASH_PREFIX}{}-{}",
                self.state.instance,
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&trash);
            match fs::rename(&self.dir, &trash) {
                Ok(()) => {
                    if let Err(e) = fs::remove_dir_all(&trash) {
                        t.errors
                            .push(TeardownError::os("remove", trash.display().to_string(), &e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => t.errors.push(TeardownError::os(
                    "rename",
                    self.dir.display().to_string(),
                    &e,
                )),
            }
        }
        t
    }
}

/// Named namespaces of lvslab (`/run/netns/lvslab-*`) that no journal accounts for. They
/// are reported, never removed: without a journal nothing proves lvslab made them.
pub fn orphan_namespaces(journals: &[Journal]) -> Vec<PathBuf> {
    let known: std::collections::HashSet<&Path> = journals
        .iter()
        .flat_map(|j| j.state.namespaces.iter().map(|n| n.path.as_path()))
        .collect();
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("lvslab-"))
        })
        .filter(|p| !known.contains(p.as_path()))
        .collect();
    out.sort();
    out
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

/// Stops a recorded process if it is still the one recorded. `Ok(false)`: it was gone.
fn stop_process(p: &ProcRecord) -> Result<bool, TeardownError> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if !p.is_alive() {
        return Ok(false);
    }
    let pid = Pid::from_raw(p.pid);
    let object = format!("{} (pid {})", p.what, p.pid);
    kill(pid, Signal::SIGTERM).map_err(|e| TeardownError::errno("stop", object.clone(), e))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        // A child of ours must be reaped to disappear; others vanish by themselves.
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        if !p.is_alive() {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Checked again: the pid must still be the recorded process when it is killed.
    if p.is_alive() {
        kill(pid, Signal::SIGKILL).map_err(|e| TeardownError::errno("kill", object, e))?;
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
    }
    Ok(true)
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
