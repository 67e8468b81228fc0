//! The undo journal of a lab instance: `/run/lvslab/<instance>/journal.json`.
//!
//! Every namespace is recorded *before* it is created and every background process right
//! after it starts, and each record is written atomically (temp file + rename + fsync),
//! so `lvslab down` can finish the job after Ctrl-C, a crash or `kill -9` at any point.
//! Deleting a namespace deletes every link, address, route, sysctl and nft rule inside it,
//! so namespaces and processes are all there is to undo.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::ns::Netns;

/// Default root of instance journals; `LVSLAB_RUN_DIR` overrides it.
pub const DEFAULT_RUN_DIR: &str = "/run/lvslab";
/// Where named namespaces live (what `ip netns` reads).
pub const NETNS_DIR: &str = "/run/netns";

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
        source: std::io::Error,
    },
    #[error("journal {path} is not valid: {detail}; remove the namespaces it names with `lvslab down --all`")]
    Corrupt { path: PathBuf, detail: String },
}

/// A namespace the instance owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsRecord {
    /// Node or switch name.
    pub node: String,
    /// `/run/netns/lvslab-<instance>-<node>`.
    pub path: PathBuf,
}

/// A background process the instance owns. `start_time` (field 22 of
/// `/proc/<pid>/stat`) guards against signalling a recycled pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRecord {
    pub pid: i32,
    pub start_time: u64,
    pub what: String,
}

/// Everything `down` needs, and what `status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalState {
    pub instance: String,
    pub lab: String,
    pub lab_file: PathBuf,
    pub params: Vec<(String, String)>,
    pub dataplane: String,
    pub created_unix: u64,
    pub namespaces: Vec<NsRecord>,
    pub processes: Vec<ProcRecord>,
    /// Set when `up` finished; an incomplete journal means `up` was interrupted.
    pub complete: bool,
}

/// An open journal; writes go straight to disk.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    pub state: JournalState,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl Journal {
    /// Starts the journal of a new instance; refuses when the instance is already up.
    pub fn create(
        instance: &str,
        lab: &str,
        lab_file: &Path,
        params: &[(String, String)],
        dataplane: &str,
    ) -> Result<Journal, JournalError> {
        let root = run_dir();
        fs::create_dir_all(&root).map_err(io("create", &root))?;
        let dir = root.join(instance);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(JournalError::AlreadyUp {
                    instance: instance.into(),
                    path: dir.join("journal.json"),
                })
            }
            Err(e) => return Err(io("create", &dir)(e)),
        }
        let created_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let j = Journal {
            dir,
            state: JournalState {
                instance: instance.into(),
                lab: lab.into(),
                lab_file: lab_file.to_path_buf(),
                params: params.to_vec(),
                dataplane: dataplane.into(),
                created_unix,
                namespaces: Vec::new(),
                processes: Vec::new(),
                complete: false,
            },
        };
        j.write()?;
        Ok(j)
    }

    /// Opens the journal of a running instance.
    pub fn open(instance: &str) -> Result<Journal, JournalError> {
        let dir = run_dir().join(instance);
        let path = dir.join("journal.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JournalError::NotFound {
                    instance: instance.into(),
                    path,
                })
            }
            Err(e) => return Err(io("read", &path)(e)),
        };
        let state = serde_json::from_str(&text).map_err(|e| JournalError::Corrupt {
            path,
            detail: e.to_string(),
        })?;
        Ok(Journal { dir, state })
    }

    /// Every instance with a journal, sorted by name.
    pub fn list() -> Result<Vec<Journal>, JournalError> {
        let root = run_dir();
        let mut out = Vec::new();
        let entries = match fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io("read", &root)(e)),
        };
        for e in entries.flatten() {
            if let Some(name) = e.file_name().to_str() {
                if e.path().is_dir() {
                    match Journal::open(name) {
                        Ok(j) => out.push(j),
                        // Removed by a `down` since the folder was listed, or an `up`
                        // that has made its folder but not yet its first record.
                        Err(JournalError::NotFound { .. }) => {}
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        out.sort_by(|a, b| a.state.instance.cmp(&b.state.instance));
        Ok(out)
    }

    /// The instance's folder (sockets, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records a namespace before it is created.
    pub fn record_namespace(&mut self, node: &str, path: &Path) -> Result<(), JournalError> {
        self.state.namespaces.push(NsRecord {
            node: node.into(),
            path: path.to_path_buf(),
        });
        self.write()
    }

    /// Records a background process right after it started.
    pub fn record_process(&mut self, pid: i32, what: &str) -> Result<(), JournalError> {
        let start_time = process_start_time(pid).unwrap_or(0);
        self.state.processes.push(ProcRecord {
            pid,
            start_time,
            what: what.into(),
        });
        self.write()
    }

    pub fn mark_complete(&mut self) -> Result<(), JournalError> {
        self.state.complete = true;
        self.write()
    }

    fn write(&self) -> Result<(), JournalError> {
        let path = self.dir.join("journal.json");
        let tmp = self.dir.join("journal.json.tmp");
        let text = serde_json::to_vec_pretty(&self.state).map_err(|e| JournalError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let mut f = fs::File::create(&tmp).map_err(io("write", &tmp))?;
        f.write_all(&text).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("sync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        Ok(())
    }

    /// Undoes everything the journal names: stops processes (TERM, then KILL after a
    /// grace period), removes namespaces, then the journal itself. Continues past
    /// failures and returns every one of them.
    pub fn teardown(self) -> Vec<String> {
        let mut errors = Vec::new();
        for p in self.state.processes.iter().rev() {
            if let Err(e) = stop_process(p) {
                errors.push(e);
            }
        }
        for ns in self.state.namespaces.iter().rev() {
            if let Err(e) = Netns::remove_named(&ns.path) {
                errors.push(format!(
                    "remove namespace {} ({}): {e}",
                    ns.node,
                    ns.path.display()
                ));
            }
        }
        if errors.is_empty() {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errors.push(format!("remove {}: {e}", self.dir.display()));
                }
            }
        }
        errors
    }
}

/// Named namespaces of lvslab (`/run/netns/lvslab-*`) that no journal accounts for:
/// left by a journal removed by hand. `down --all` removes them too.
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

/// Field 22 of `/proc/<pid>/stat`: start time in clock ticks since boot; `None` when the
/// process is gone or is a zombie (it has exited; only its parent's wait is missing, and
/// after `up` exits that parent is init, which may take its time).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields after it
    // start behind the last `)`: state is field 3, start time field 22.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z") | Some("X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

fn is_same_process(p: &ProcRecord) -> bool {
    process_start_time(p.pid).is_some_and(|t| p.start_time == 0 || t == p.start_time)
}

fn stop_process(p: &ProcRecord) -> Result<(), String> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if !is_same_process(p) {
        return Ok(());
    }
    let pid = Pid::from_raw(p.pid);
    kill(pid, Signal::SIGTERM).map_err(|e| format!("stop {} (pid {}): {e}", p.what, p.pid))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        // A child of ours must be reaped to disappear; others vanish by themselves.
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        if !is_same_process(p) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(pid, Signal::SIGKILL).map_err(|e| format!("kill {} (pid {}): {e}", p.what, p.pid))?;
    Ok(())
}
